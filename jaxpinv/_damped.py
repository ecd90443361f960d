"""``damped_pinv``: the Tikhonov (ridge) pseudo-inverse, differentiable in ``a`` and the damping.

    A+_lam = (A^H A + lam^2 I)^-1 A^H = V diag(s / (s^2 + lam^2)) U^H

computed from the SVD (never by forming ``A^H A``, which squares the
condition number). For ``lam > 0`` it is a smooth function of ``A`` and
``lam`` everywhere, across rank changes too. With ``M^-1 = (A^H A + lam^2)^-1``
(``m >= n``; wide matrices use ``A+_lam(A) = A+_lam(A^H)^H``)::

    dX    = M^-1 (dA^H - dM X),      dM = dA^H A + A^H dA + 2 lam dlam I
    dM^-1 = -M^-1 dM M^-1

Both are written in ``X`` and ``M^-1`` as returned by the function itself, so
every order of derivative stays on this stable rule. ``lam = 0`` gives exactly
:func:`jaxpinv.pinv` (default cutoff); there ``M^-1`` is ``(A^H A)^+`` and the
rule adds Golub–Pereyra's ``(I - X A) dA^H X^H X`` term to ``dX`` and the
Hermitian Golub–Pereyra terms ``T + T^H``, ``T = M^+^2 dM (I - X A)``, to
``dM^+`` (all zero at full column rank), so derivatives of every order are
pinv's (on rank-preserving paths, as for pinv).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv import _tolerance, _validate
from jaxpinv._batching import any_true
from jaxpinv._pinv import ArrayLike, _check, _decompose, _h, _hmm, _mm, _mm_h


def damped_pinv(a: ArrayLike, damping: Any) -> jax.Array:
    r"""Damped (Tikhonov, ridge) pseudo-inverse ``(A^H A + damping^2 I)^-1 A^H``.

    .. math::

        A^+_\lambda = V\,\mathrm{diag}\!\left(\frac{s_i}{s_i^2 + \lambda^2}\right) U^H

    from the thin SVD ``a = U diag(s) V^H``. For ``damping > 0`` it is smooth in
    both arguments; ``damping = 0`` gives exactly ``pinv(a)`` with its default
    tolerance, and ``damping -> 0+`` converges to it.

    **Arguments:**

    - `a`: array of shape ``(*, m, n)``, as for :func:`pinv`.
    - `damping`: ``lambda >= 0``, a Python number or a real array broadcasting
      against the batch shape ``a.shape[:-2]``; it may be traced and **is
      differentiable**.

    **Returns:**

    Array of shape ``(*, n, m)`` in ``a``'s dtype. A matrix holding NaN or
    ±Inf, or a NaN damping, gives an all-NaN result for that matrix only.

    **Raises:** `TypeError`/`ValueError` as :func:`pinv` (naming
    ``damped_pinv``), and for a damping known at trace time that is negative,
    NaN or complex (a traced negative damping is used by its magnitude, since
    only ``lambda^2`` enters).

    **Example:**

    >>> import jax, jax.numpy as jnp
    >>> import jaxpinv
    >>> a = jnp.diag(jnp.array([2.0, 0.0]))
    >>> jaxpinv.damped_pinv(a, 2.0).tolist()  # 2 / (4 + 4)
    [[0.25, 0.0], [0.0, 0.0]]
    >>> round(float(jax.grad(lambda lam: jaxpinv.damped_pinv(a, lam)[0, 0])(2.0)), 6)  # -4l/(4+l^2)^2
    -0.125
    """
    fname = "damped_pinv"
    arr, _, _, _ = _check(fname, a, None, None, False)
    lam = _validate.tolerance(fname, "damping", damping)
    if lam is None:
        raise TypeError(f"{fname}: argument 'damping' is required (a number >= 0); got None.")
    _validate.batch_shape(fname, arr.shape, lam, None)
    return _damped_impl(arr, lam)


@jax.jit
def _damped_impl(a: jax.Array, lam: Any) -> jax.Array:
    _, compute_dtype, out_dtype = _validate.matrix_dtypes("damped_pinv", "a", a)
    m, n = a.shape[-2:]
    batch = _validate.batch_shape("damped_pinv", a.shape, lam, None)
    real = jnp.finfo(compute_dtype).dtype
    lam = jnp.broadcast_to(jnp.abs(jnp.asarray(lam).astype(real)), batch)
    atol, rtol = _tolerance.resolve(None, None, batch, m, n, out_dtype)
    a = jnp.broadcast_to(a.astype(compute_dtype), batch + (m, n))
    if a.size == 0:
        return jnp.zeros(batch + (n, m), out_dtype)
    wide = m < n
    if wide:
        a = _h(a)
    x = _damped(a, lam, atol, rtol)
    return (_h(x) if wide else x).astype(out_dtype)


def _factors(
    a: jax.Array, lam: jax.Array, atol: jax.Array, rtol: jax.Array, with_minv: bool
) -> tuple[jax.Array, jax.Array | None]:
    """``X`` (and ``M^-1`` if asked) for a tall or square ``a`` (m >= n)."""
    values, keep, bad, factors = _decompose(a, atol, rtol, False)
    assert factors is not None
    left, right_h, q_left, _ = factors
    bad = bad | jnp.isnan(lam)
    lam2 = (lam**2)[..., None]
    damped = lam2 > 0
    safe = jnp.where(damped, values**2 + lam2, 1)
    inv = jnp.where(keep, 1 / jnp.where(keep, values, 1), 0)
    gain = jnp.where(damped, values / safe, inv)  # s / (s^2 + lam^2), or pinv's 1/s
    gain = jnp.where(bad[..., None], jnp.nan, gain).astype(a.dtype)
    x = _mm(_h(right_h) * gain[..., None, :], _h(left))
    if q_left is not None:
        x = _mm_h(x, q_left)
    if not with_minv:
        return x, None
    w = jnp.where(damped, 1 / safe, inv**2)  # 1 / (s^2 + lam^2), or (A^H A)^+
    w = jnp.where(bad[..., None], jnp.nan, w).astype(a.dtype)
    return x, _mm(_h(right_h) * w[..., None, :], right_h)


@jax.custom_jvp
def _damped(a: jax.Array, lam: jax.Array, atol: jax.Array, rtol: jax.Array) -> jax.Array:
    return _factors(a, lam, atol, rtol, with_minv=False)[0]


@jax.custom_jvp
def _damped_with_minv(
    a: jax.Array, lam: jax.Array, atol: jax.Array, rtol: jax.Array
) -> tuple[jax.Array, jax.Array]:
    x, minv = _factors(a, lam, atol, rtol, with_minv=True)
    assert minv is not None
    return x, minv


def _tangents(
    a: jax.Array, lam: jax.Array, x: jax.Array, minv: jax.Array, da: jax.Array, dlam: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(dX, dM^-1)`` from the primal ``X``, ``M^-1`` (see the module docstring)."""
    n = a.shape[-1]
    eye = jnp.eye(n, dtype=a.dtype)
    two_lam_dlam = (2 * lam * dlam).astype(a.dtype)[..., None, None]
    dm_x = _hmm(da, _mm(a, x)) + _hmm(a, _mm(da, x)) + two_lam_dlam * x  # dM X
    dx = _mm(minv, _h(da) - dm_x)
    dm = _hmm(da, a) + _hmm(a, da) + two_lam_dlam * eye
    dminv = -_mm(_mm(minv, dm), minv)

    # lam = 0 (pinv): X = A^+ and M^-1 = (A^H A)^+, whose Golub-Pereyra
    # derivatives have terms with the projector I - X A onto the null space of
    # A; they vanish at full column rank, and for lam > 0 they do not belong
    # (M is invertible). A cond skips them unless some lam is 0.
    def at_zero() -> tuple[jax.Array, jax.Array]:
        zero = (lam == 0)[..., None, None]
        null = eye - _mm(x, a)  # I - X A, Hermitian
        extra_x = _mm(_mm_h(_mm(null, _h(da)), x), x)  # (I - X A) dA^H X^H X
        t = _mm(_mm(minv, minv), _mm(dm, null))  # M^+^2 dM (I - M M^+)
        return jnp.where(zero, extra_x, 0), jnp.where(zero, t + _h(t), 0)

    def none() -> tuple[jax.Array, jax.Array]:
        return jnp.zeros_like(dx), jnp.zeros_like(dminv)

    extra_x, extra_minv = lax.cond(any_true(lam == 0), at_zero, none)
    dx, dminv = dx + extra_x, dminv + extra_minv
    return dx, dminv


@_damped.defjvp
def _damped_jvp(primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    a, lam, atol, rtol = primals
    x, minv = _damped_with_minv(a, lam, atol, rtol)
    return x, _tangents(a, lam, x, minv, tangents[0], tangents[1])[0]


@_damped_with_minv.defjvp
def _damped_with_minv_jvp(primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    a, lam, atol, rtol = primals
    x, minv = _damped_with_minv(a, lam, atol, rtol)
    return (x, minv), _tangents(a, lam, x, minv, tangents[0], tangents[1])

