"""Tolerances: ``atol``/``rtol`` to a per-matrix cutoff, torch.linalg.pinv's contract.

    cutoff = max(atol, rtol * sigma_max)        per matrix of the batch
    sigma is kept  iff  sigma > cutoff          (strict: the zero matrix maps to zero)

``atol=None`` means 0. ``rtol=None`` means ``max(m, n) * eps`` where ``atol`` is
None or 0 and 0 where ``atol > 0`` (elementwise, so it works for traced and
array tolerances too); ``eps`` is the machine epsilon of the input's real dtype.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def default_rtol(m: int, n: int, input_dtype: Any) -> float:
    """``max(m, n) * eps`` of the input's real dtype (float16 uses float16's eps)."""
    real = jnp.finfo(input_dtype).dtype  # the real dtype of a complex one
    return max(m, n) * float(jnp.finfo(real).eps)


def resolve(
    atol: Any,
    rtol: Any,
    batch: tuple[int, ...],
    m: int,
    n: int,
    input_dtype: Any,
    real_dtype: Any,
) -> tuple[jax.Array, jax.Array]:
    """Return ``(atol, rtol)`` as arrays of shape ``batch`` in ``real_dtype``.

    Negative values (possible only for traced tolerances, the others are checked
    by ``_validate.tolerance``) become 0; NaN stays NaN so that the result it
    touches is NaN rather than silently wrong. Tolerances are never
    differentiated: their tangents are cut here.
    """
    default = default_rtol(m, n, input_dtype)
    if atol is None:
        atol_arr = jnp.zeros((), real_dtype)
        rtol_arr = jnp.asarray(default, real_dtype) if rtol is None else _as_real(rtol, real_dtype)
    else:
        atol_arr = _as_real(atol, real_dtype)
        if rtol is None:
            rtol_arr = jnp.where(atol_arr > 0, jnp.zeros((), real_dtype), jnp.asarray(default, real_dtype))
        else:
            rtol_arr = _as_real(rtol, real_dtype)
    return (
        jnp.broadcast_to(atol_arr, batch),
        jnp.broadcast_to(rtol_arr, batch),
    )


def _as_real(tol: Any, real_dtype: Any) -> jax.Array:
    tol = jax.lax.stop_gradient(jnp.asarray(tol).astype(real_dtype))
    # maximum() propagates NaN, which is what we want (see resolve).
    return jnp.maximum(tol, jnp.zeros((), real_dtype))


def cutoff(s_max: jax.Array, atol: jax.Array, rtol: jax.Array) -> jax.Array:
    """``max(atol, rtol * s_max)``, NaN if either tolerance is NaN."""
    return jnp.maximum(atol, rtol * s_max)

