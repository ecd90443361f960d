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

from jaxpinv import _sharding, _tolerance, _validate
from jaxpinv._batching import any_true
from jaxpinv._linalg import _h, _hmm, _mm, _mm_h, _zeros
from jaxpinv._pinv import ArrayLike, _check, _decompose


def damped_pinv(a: ArrayLike, damping: Any) -> jax.Array:
    r"""Damped (Tikhonov, ridge) pseudo-inverse ``(A^H A + damping^2 I)^-1 A^H``.

    $$
    A^+_\lambda = V\,\mathrm{diag}\!\left(\frac{s_i}{s_i^2 + \lambda^2}\right) U^H
    $$

    from the thin SVD ``a = U diag(s) V^H``. For ``damping > 0`` it is smooth in
    both arguments; ``damping = 0`` gives exactly ``pinv(a)`` with its default
    tolerance, and ``damping -> 0+`` converges to it.

    **Arguments:**

    - `a`: array of shape ``(*, m, n)``, as for [`pinv`][jaxpinv.pinv].
    - `damping`: ``lambda >= 0``, a Python number or a real array broadcasting
      against the batch shape ``a.shape[:-2]``; it may be traced and **is
      differentiable**.

    **Returns:**

    Array of shape ``(*, n, m)`` in ``a``'s dtype. A matrix holding NaN or
    ±Inf, or a NaN damping, gives an all-NaN result for that matrix only.

    **Raises:** `TypeError`/`ValueError` as [`pinv`][jaxpinv.pinv] (naming
    ``damped_pinv``), and for a damping known at trace time that is negative,
    NaN or complex (a traced negative damping is used by its magnitude, since
    only ``lambda^2`` enters).

    **Example:**

    ```python
    >>> import jax, jax.numpy as jnp
    >>> import jaxpinv
    >>> a = jnp.diag(jnp.array([2.0, 0.0]))
    >>> jaxpinv.damped_pinv(a, 2.0).tolist()  # 2 / (4 + 4)
    [[0.25, 0.0], [0.0, 0.0]]
    >>> round(float(jax.grad(lambda lam: jaxpinv.damped_pinv(a, lam)[0, 0])(2.0)), 6)  # -4l/(4+l^2)^2
    -0.125

    ```
    """
    fname = "damped_pinv"
    arr, _, _, _ = _check(fname, a, None, None, False)
    lam = _check_damping(fname, arr, damping)
    _validate.batch_shape(fname, arr.shape, lam, None, ("damping", ""))
    return _damped_impl(arr, lam)


def _check_damping(fname: str, a: jax.Array, damping: Any) -> Any:
    """Validate the damping (as a tolerance: real, >= 0 where known); ``None`` is an error."""
    lam = _validate.tolerance(fname, "damping", damping)
    if lam is None:
        raise TypeError(f"{fname}: argument 'damping' is required (a number >= 0); got None.")
    return lam


@jax.jit
def _damped_impl(a: jax.Array, lam: Any) -> jax.Array:
    _, compute_dtype, out_dtype = _validate.matrix_dtypes("damped_pinv", "a", a)
    m, n = a.shape[-2:]
    batch = _validate.batch_shape("damped_pinv", a.shape, lam, None)
    real = jnp.finfo(compute_dtype).dtype
    lam = jnp.broadcast_to(jnp.abs(jnp.asarray(lam).astype(real)), batch)
    atol, rtol = _tolerance.resolve(None, None, batch, m, n, out_dtype)
    a = jnp.broadcast_to(a.astype(compute_dtype), batch + (m, n))
    a, lam = _sharding.align_batch([a, lam], len(batch))
    a = _sharding.prepare(a)  # TSQR for a row-sharded a; other shardings gathered
    if a.size == 0:
        return jnp.zeros(batch + (n, m), out_dtype)
    wide = m < n
    if wide:
        a = _h(a)
    x = _damped(a, lam, atol, rtol)
    return (_h(x) if wide else x).astype(out_dtype)


def _factors(a: jax.Array, lam: jax.Array, atol: jax.Array, rtol: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(X, c^2 M^-1, c)`` for a tall or square ``a`` (m >= n).

    ``c = max(sigma_max, lam)`` per matrix, shape ``(..., 1, 1)`` (1 where that
    is 0 or not finite), is the unit the rule computes in: ``M^-1 ~ 1/c^2``
    would over- or underflow where ``X ~ 1/c`` does not (float32 at
    ``c = 2^-100``), so ``M^-1`` is returned as ``c^2 M^-1``. ``c`` is a
    constant for the derivatives (every formula is homogeneous in it).
    """
    values, keep, bad, factors = _decompose(a, atol, rtol, False)
    left, right_h, q_left, _ = factors
    bad = bad | jnp.isnan(lam)
    c = jnp.maximum(values[..., 0], lam)
    c = jnp.where((c > 0) & jnp.isfinite(c), c, 1)
    sh = values / c[..., None]  # singular values and damping in units of c, <= 1
    lam2 = ((lam / c) ** 2)[..., None]
    damped = lam2 > 0
    safe = jnp.where(damped, sh**2 + lam2, 1)
    inv = jnp.where(keep, 1 / jnp.where(keep, sh, 1), 0)  # c / s: pinv's 1/s in units of c
    gain = jnp.where(damped, sh / safe, inv) / c[..., None]  # s / (s^2 + lam^2), or 1/s
    gain = jnp.where(bad[..., None], jnp.nan, gain).astype(a.dtype)
    x = _mm(_h(right_h) * gain[..., None, :], _h(left))
    if q_left is not None:
        x = _mm_h(x, q_left)
    w = jnp.where(damped, 1 / safe, inv**2)  # c^2 / (s^2 + lam^2), or c^2 (A^H A)^+
    w = jnp.where(bad[..., None], jnp.nan, w).astype(a.dtype)
    return x, _mm(_h(right_h) * w[..., None, :], right_h), c.astype(a.dtype)[..., None, None]


@jax.custom_jvp
def _damped(a: jax.Array, lam: jax.Array, atol: jax.Array, rtol: jax.Array) -> jax.Array:
    return _factors(a, lam, atol, rtol)[0]


@jax.custom_jvp
def _damped_with_minv(
    a: jax.Array, lam: jax.Array, atol: jax.Array, rtol: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    return _factors(a, lam, atol, rtol)


def _tangents(
    a: jax.Array, lam: jax.Array, x: jax.Array, minv: jax.Array, c: jax.Array, da: jax.Array, dlam: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(dX, d(c^2 M^-1))`` from the primal ``X``, ``c^2 M^-1`` (see the module docstring).

    In units of ``c``: ``d = dA / c``, ``a_ = A / c``, ``xs = c X``, ``l = lam / c``,
    ``dl = dlam / c`` and ``dM_ = dM / c^2 = d^H a_ + a_^H d + 2 l dl I``; then
    ``dX = minv (d^H - dM_ xs) / c`` and ``d(c^2 M^-1) = -minv dM_ minv``, every
    intermediate of the size of its result.
    """
    n = a.shape[-1]
    eye = jnp.eye(n, dtype=a.dtype)
    s = 1 / c
    d, a_, xs = da * s, a * s, x * c
    s_b = s[..., 0, 0]
    two_l_dl = (2 * (lam * s_b) * (dlam * s_b)).astype(a.dtype)[..., None, None]  # 2 l dl
    # dM_ (n x n) first, then dM_ xs: n^2 m flops and no m x m intermediate (the
    # products A X or dA X would be m x m, and illegal for a matrix sharded along its rows).
    dm = _hmm(d, a_) + _hmm(a_, d) + two_l_dl * eye
    dx = _mm(minv, _h(d) - _mm(dm, xs)) * s
    dminv = -_mm(_mm(minv, dm), minv)

    # lam = 0 (pinv): X = A^+ and M^-1 = (A^H A)^+, whose Golub-Pereyra
    # derivatives have terms with the projector I - X A onto the null space of
    # A; they vanish at full column rank, and for lam > 0 they do not belong
    # (M is invertible). A cond skips them unless some lam is 0 (a batch-level
    # predicate, unbatched under vmap: see _batching).
    def at_zero() -> tuple[jax.Array, jax.Array]:
        zero = (lam == 0)[..., None, None]
        null = eye - _mm(x, a)  # I - X A, Hermitian
        extra_x = _mm(_mm_h(_mm(null, _h(d)), xs), xs) * s  # (I - X A) dA^H X^H X
        t = _mm(_mm(minv, minv), _mm(dm, null))  # c^2 M^+^2 dM (I - M M^+)
        return jnp.where(zero, extra_x, 0), jnp.where(zero, t + _h(t), 0)

    def none() -> tuple[jax.Array, jax.Array]:
        return dx * 0, dminv * 0  # tangents: a linear zero (transposable), varying like them

    extra_x, extra_minv = lax.cond(any_true(lam == 0), at_zero, none)
    return dx + extra_x, dminv + extra_minv


@_damped.defjvp
def _damped_jvp(primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    a, lam, atol, rtol = primals
    x, minv, c = _damped_with_minv(a, lam, atol, rtol)
    return x, _tangents(a, lam, x, minv, c, tangents[0], tangents[1])[0]


@_damped_with_minv.defjvp
def _damped_with_minv_jvp(primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    a, lam, atol, rtol = primals
    x, minv, c = out = _damped_with_minv(a, lam, atol, rtol)
    return out, _tangents(a, lam, x, minv, c, tangents[0], tangents[1]) + (_zeros(c),)
