"""The estimates a fast path decides by: ``sigma_max`` and ``sigma_min`` of a square factor, and the test.

A path (:mod:`jaxpinv._qr`, :mod:`jaxpinv._cholesky`) replaces the SVD only
where the SVD would keep every singular value, clearly::

    fast  iff  s_lo > MARGIN * max(atol, rtol * s_hi, k * eps * s_hi)

(:func:`decide`), with ``s_hi ~ sigma_max`` and ``s_lo ~ sigma_min`` of a
square matrix ``x`` whose singular values are the input's (QR's ``R``; the
Hermitian matrix itself for Cholesky):

* up to :data:`SMALL`, the rigorous bounds ``||x|| >= sigma_max`` and
  ``1 / ||x^-1|| <= sigma_min`` in the Frobenius norm, or where that is too
  loose the Schatten 4-norm (:func:`bounds`, the explicit inverse);
* above, :data:`STEPS` steps of the power method on ``x`` and on ``x^-1``
  (:func:`power`, ``x^-1`` applied by the path's triangular solves), after a
  pre-screen that skips them where some matrix already fails
  (:func:`estimates`).

Why this is sound (a near-cutoff matrix always reaches the SVD): the QR
path's module docstring (:mod:`jaxpinv._qr`) gives the argument in full.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpinv._kernel import nan_placeholder, real_dtype
from jaxpinv._linalg import h, mm, mm_h

# method="auto" compiles a fast path in from this much work per call (matrices * m * n * min(m, n)):
# one 64 x 64 matrix, where the QR path saves about 0.25 ms a call on a CPU core and repays the
# ~0.25 s it adds to the compile time within about 1000 calls; below, it cannot (the performance page).
MIN_WORK = 64**3
MARGIN = 8.0
STEPS = 8
SMALL = 128  # up to this size: the explicit inverse and Schatten-norm bounds


def _norm(x: jax.Array, axis: tuple[int, ...]) -> jax.Array:
    """2-norm over ``axis`` (keeping it), computed on ``x`` divided by its largest magnitude.

    The squares of ``x`` itself would overflow from about the square root of
    the dtype's largest number and underflow below the root of its smallest
    (float32: 1e19, 1e-19), where the estimates of :func:`decide` then read 0
    or inf and turn every matrix at such a scale away from this path.
    """
    top = jnp.max(jnp.abs(x), axis=axis, keepdims=True)
    top = jnp.where(top > 0, top, 1)  # the zero matrix stays 0; inf or NaN gives NaN: refused
    y = x / top
    return top * jnp.sqrt(jnp.sum(jnp.real(y * jnp.conj(y)), axis=axis, keepdims=True))


def _vector_norm(v: jax.Array) -> jax.Array:
    """2-norm of each column vector ``(..., n, 1)``, shape ``(..., 1, 1)``."""
    return _norm(v, (-2,))


def bounds(
    x: jax.Array, x_inv: jax.Array, atol: jax.Array, rtol: jax.Array, k: int, eps: float, flagged: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(s_hi, ok)`` from rigorous norm bounds of ``x`` and its explicit inverse (``k <= SMALL``).

    ``||x||_p >= sigma_max`` and ``1 / ||x^-1||_p <= sigma_min`` for the
    Frobenius norm (``p = F``, loose by up to ``sqrt(k)``, no product) and the
    Schatten 4-norm (``(sum sigma_i^4)^(1/4) = ||x x^H||_F^(1/2)``, loose by up
    to ``k^(1/4)``, one ``k x k`` product). The Frobenius bounds decide where
    they take every matrix; only where they turn one away are the tighter
    Schatten bounds formed (the product costs up to 0.4 of the SVD on small
    complex batches). Each matrix is divided by its largest magnitude first,
    so neither norm over- or underflows (``y y^H`` has entries at most ``k``
    and 2-norm at least 1). ``flagged`` matrices pass (their result is NaN).
    """
    stack = jnp.stack([x, x_inv])  # one set of kernels for both (compile time)
    top = jnp.max(jnp.abs(stack), axis=(-2, -1))
    y = stack / jnp.where(top > 0, top, 1)[..., None, None]  # the zero matrix stays 0; inf or NaN: NaN, refused

    def verdict(norms: jax.Array) -> tuple[jax.Array, jax.Array]:
        s_hi, s_lo = top[0] * norms[0], 1 / (top[1] * norms[1])
        return s_hi, decide(s_hi, s_lo, atol, rtol, k, eps) | flagged

    def schatten() -> tuple[jax.Array, jax.Array]:
        w = mm_h(y, y)
        return verdict(jnp.sqrt(jnp.sqrt(jnp.sum(jnp.real(w * jnp.conj(w)), axis=(-2, -1)))))

    frobenius = verdict(jnp.sqrt(jnp.sum(jnp.real(y * jnp.conj(y)), axis=(-2, -1))))
    # The dispatch runs on the whole batch (also under vmap): one predicate for the batch.
    return lax.cond(jnp.all(frobenius[1]), lambda: frobenius, schatten)


def _start(like: jax.Array) -> jax.Array:
    """The power method's fixed start vector, shaped ``(..., n, 1)`` like a column of ``like``.

    Seeded normal entries made at trace time (a constant: no random-number
    program to compile); adding zeros shaped like a column of the batch
    gives it the batch's shape and sharding.
    """
    n = like.shape[-1]
    v = np.random.default_rng(20261129).standard_normal((n, 1))
    start = jnp.asarray(v / np.abs(v).max(), like.dtype)
    # jax<0.7: like * 0, not zeros_like: inside a user's shard_map the loop's carry must vary over
    # the same mesh axes as ``like`` (seen on 0.6.2).
    return jnp.swapaxes(like[..., :1, :] * 0, -1, -2) + start


def _scaled(v: jax.Array) -> jax.Array:
    """``v`` divided by its largest entry's magnitude (0 stays 0, NaN stays NaN): never over- or underflows."""
    top = jnp.max(jnp.abs(v), axis=-2, keepdims=True)
    return v / jnp.where(top > 0, top, 1)


def power(
    x: jax.Array, solve: Callable[[jax.Array], jax.Array], solve_h: Callable[[jax.Array], jax.Array]
) -> tuple[jax.Array, jax.Array]:
    """``(||x||_2, 1 / ||x^-1||_2)`` of each square matrix, estimated by the power method.

    ``solve(v) = x^-1 v`` and ``solve_h(u) = x^-H u``. Both iterations run in
    one loop; each step applies a matrix and then its adjoint (``x^H`` is
    never formed) and rescales the vector to a largest entry of 1. A product
    that overflows makes its estimate inf or NaN, which :func:`decide`
    refuses: such a matrix takes the SVD path, which scales as it must.
    """

    def step(_: Any, vs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        v, w = vs
        return _scaled(h(mm(h(mm(x, v)), x))), _scaled(solve_h(solve(w)))  # x^H (x v) as a row

    v0 = _start(x)
    v, w = lax.fori_loop(0, STEPS, step, (v0, v0))
    return (_vector_norm(mm(x, v)) / _vector_norm(v))[..., 0, 0], (_vector_norm(w) / _vector_norm(solve(w)))[..., 0, 0]


def decide(s_hi: jax.Array, s_lo: jax.Array, atol: jax.Array, rtol: jax.Array, k: int, eps: float) -> jax.Array:
    """Per matrix: may a path's result stand for the SVD's? (See the module docstring.)"""
    s_hi = s_hi.astype(atol.dtype)
    s_lo = s_lo.astype(atol.dtype)
    cut = jnp.maximum(jnp.maximum(atol, rtol * s_hi), k * eps * s_hi)
    # Only finite, positive estimates count (an overflowed norm reads as 0 or inf).
    sane = jnp.isfinite(s_hi) & jnp.isfinite(s_lo) & (s_hi > 0)
    return sane & (s_lo > MARGIN * cut)


def estimates(
    x: jax.Array,
    solve: Callable[[jax.Array], jax.Array],
    solve_h: Callable[[jax.Array], jax.Array],
    screen: jax.Array,
    spare: int,
) -> tuple[jax.Array, jax.Array]:
    """:func:`power`'s ``(s_hi, s_lo)`` where a pre-screen failed at most ``spare`` matrices, else NaN (refused).

    A matrix that fails the screen fails the test on the estimates too (up to
    their error, in the margin): with more than ``spare`` of them the batch
    takes the SVD whatever the estimates say, so they are not computed.
    """

    def run() -> tuple[jax.Array, jax.Array]:
        return power(x, solve, solve_h)

    def skipped() -> tuple[jax.Array, jax.Array]:
        nan = nan_placeholder(x, (), real_dtype(x.dtype))
        return nan, nan

    # The dispatch runs on the whole batch (also under vmap): the count is one for the batch.
    return lax.cond(jnp.sum(~screen) <= spare, run, skipped)
