"""Tolerances: ``atol``/``rtol`` to a per-matrix cutoff, torch.linalg.pinv's contract.

    cutoff = max(atol, rtol * sigma_max)        per matrix of the batch
    sigma is kept  iff  sigma > cutoff          (strict: the zero matrix maps to zero)

``atol=None`` means 0. ``rtol=None`` means ``max(m, n) * eps`` where ``atol`` is
None or 0 and 0 where ``atol > 0`` (elementwise, so it works for traced and
array tolerances too); ``eps`` is the machine epsilon of the real dtype the
decomposition runs in: the input's, except float16/bfloat16, computed in
float32. The default cutoff stands for the rounding the *computation* adds
(``~ max(m, n) eps sigma_max``), as for every other dtype: 16-bit input is
held exactly in float32, and its own eps (bfloat16: 2^-7, so ``max(m, n) eps
>= 1`` from 128 on) would drop well-conditioned matrices whole. Data known
only to 16-bit accuracy wants an explicit ``rtol`` of that size.

The cutoff and the comparison are computed in the widest float JAX has
(float64 with ``jax_enable_x64``, else float32), whatever the input's dtype:
torch does the same in double, so a float32 singular value is compared with
the tolerance the user wrote, not with its float32 rounding. Without x64, a
tolerance known on the host is rounded *down* to float32, which keeps
``sigma > atol`` exact for every float32 ``sigma``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def wide_dtype() -> Any:
    """JAX's default float dtype, float64 under ``jax_enable_x64``, else float32: where cutoffs are computed."""
    return jnp.zeros((), dtype=float).dtype


def host(value: Any) -> Any:
    """A tolerance known on the host (Python number, NumPy array) in the wide dtype.

    Rounded toward -inf when the wide dtype is float32, so that for every
    float32 ``sigma``, ``sigma > rounded`` iff ``sigma > value``. JAX arrays
    (concrete or traced) already have a JAX dtype and pass through.
    """
    if value is None or isinstance(value, jax.Array):
        return value
    exact = np.asarray(value, dtype=np.float64)
    wide = wide_dtype()
    if wide == np.float64:
        return exact
    rounded = exact.astype(np.float32)
    up = rounded.astype(np.float64) > exact
    return np.where(up, np.nextafter(rounded, np.float32(-np.inf)), rounded).astype(np.float32)


def host_pair(atol: Any, rtol: Any, m: int, n: int, compute_dtype: Any) -> tuple[Any, Any]:
    """Both tolerances through :func:`host`, the default rtol decided on the exact atol.

    ``rtol=None`` means 0 where ``atol > 0``: decided here on the value the user
    wrote, since a tiny positive atol (1e-300) rounds to 0 in float32 (which
    keeps ``sigma > atol`` exact for float32 ``sigma``) but must still switch the
    default rtol off, as in torch. Traced atols decide it in :func:`resolve`.
    """
    if rtol is None and atol is not None and not isinstance(atol, jax.Array):
        exact = np.asarray(atol, dtype=np.float64)
        rtol = np.where(exact > 0, 0.0, default_rtol(m, n, compute_dtype))
    return host(atol), host(rtol)


def default_rtol(m: int, n: int, compute_dtype: Any) -> float:
    """``max(m, n) * eps`` of the real dtype the decomposition runs in (float32 for 16-bit input)."""
    real = jnp.finfo(compute_dtype).dtype  # the real dtype of a complex one
    return max(m, n) * float(jnp.finfo(real).eps)


def resolve(
    atol: Any,
    rtol: Any,
    batch: tuple[int, ...],
    m: int,
    n: int,
    compute_dtype: Any,
) -> tuple[jax.Array, jax.Array]:
    """Return ``(atol, rtol)`` as arrays of shape ``batch`` in the wide dtype.

    Negative values (possible only for traced tolerances, the others are checked
    by ``_validate.tolerance``) become 0; NaN stays NaN so that the result it
    touches is NaN rather than silently wrong. Tolerances are never
    differentiated: their tangents are cut here.
    """
    default = default_rtol(m, n, compute_dtype)
    real_dtype = wide_dtype()
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


def keep(magnitude: jax.Array, largest: jax.Array, atol: jax.Array, rtol: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(keep, nan_tol)``: the mask ``sigma > max(atol, rtol * sigma_max)`` per matrix.

    ``magnitude`` holds the singular values (|eigenvalues|) along its last
    axis and ``largest`` their maximum, which the caller reads off the sorted
    decomposition (a reduction less to compile); the comparison runs in the
    wide dtype. ``nan_tol`` flags matrices whose cutoff is NaN (a NaN tolerance).
    """
    magnitude = magnitude.astype(atol.dtype)
    largest = largest.astype(atol.dtype)
    # rtol = inf on the zero matrix: inf * 0 would be NaN; the cutoff is 0 and
    # nothing is kept (torch's result). A NaN rtol still gives NaN.
    relative = jnp.where((largest == 0) & ~jnp.isnan(rtol), jnp.zeros((), atol.dtype), rtol * largest)
    cut = jnp.maximum(atol, relative)
    return magnitude > cut[..., None], jnp.isnan(cut)
