"""The estimates a fast path decides by: ``sigma_max`` and ``sigma_min`` of a square factor, and the test.

A path (:mod:`jaxpinv._qr`, :mod:`jaxpinv._cholesky`) replaces the SVD only
where the SVD would keep every singular value, clearly::

    fast  iff  s_lo > MARGIN * max(atol, rtol * s_hi, k * eps * s_hi)  and  s_hi > tiny / eps

(:func:`decide`), with ``s_hi ~ sigma_max`` and ``s_lo ~ sigma_min`` of a
square matrix ``x`` whose singular values are the input's (QR's ``R``; the
Hermitian matrix itself for Cholesky):

* where the path has the explicit inverse (QR up to :data:`SMALL`,
  Cholesky always), the rigorous bounds ``||x|| >= sigma_max`` and
  ``1 / ||x^-1|| <= sigma_min`` in the Frobenius norm, or where that is too
  loose the Schatten 4-norm up to :data:`SMALL`, the power method above
  (:func:`bounds`);
* elsewhere (QR above :data:`SMALL`), :data:`STEPS` steps of the power
  method on ``x`` and on ``x^-1`` (:func:`power`, ``x^-1`` applied by the
  path's triangular solves).

A pre-screen on the diagonal of a triangular factor (:func:`screen`) skips
the tighter estimates (:func:`bounds`, :func:`estimates`), and the Cholesky
path's inverse, where more matrices already fail than the batch may spare.

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
from jaxpinv._linalg import h, hmm, mm, mm_h

# method="auto" compiles a fast path in from this much work per call (matrices * m * n * min(m, n)):
# one 64 x 64 matrix, where the QR path saves about 0.25 ms a call on a CPU core and repays the
# ~0.25 s it adds to the compile time within about 1000 calls; below, it cannot (the performance page).
MIN_WORK = 64**3
MARGIN = 8.0
STEPS = 8
# Up to this size the QR path forms the explicit inverse, and the bounds' second try is the Schatten
# norm (no loop: about 0.3 s less compile time than the power method's, and faster at 129-144; above
# 144 complex64's products cost more than the power method's steps, one core, the performance page).
# The Cholesky path's inverse is blocked above it (jaxpinv._cholesky).
SMALL = 144


def bounds(
    x: jax.Array,
    x_inv: jax.Array,
    atol: jax.Array,
    rtol: jax.Array,
    k: int,
    eps: float,
    flagged: jax.Array,
    screen: jax.Array,
    spare: int,
) -> tuple[jax.Array, jax.Array]:
    """``(s_hi, ok)`` from norms of ``x`` and its explicit inverse ``x_inv``.

    ``||x||_p >= sigma_max`` and ``1 / ||x^-1||_p <= sigma_min`` for the
    Frobenius norm (``p = F``, loose by up to ``sqrt(k)``, no product) and the
    Schatten 4-norm (``(sum sigma_i^4)^(1/4) = ||x x^H||_F^(1/2)``, loose by up
    to ``k^(1/4)``, one ``k x k`` product). The Frobenius bounds decide where
    they take every matrix; only where they turn one away are tighter
    estimates formed: up to ``SMALL`` the Schatten bounds (the product costs
    up to 0.4 of the SVD on small complex batches), above :func:`power` with
    products by ``x_inv``; and not where more than ``spare`` matrices fail the
    diagonal ``screen`` (:func:`screen`): the batch then takes the SVD
    whatever they say (measured: the performance page). Skipping them is
    always sound: the Frobenius verdict is rigorous, only less generous.
    Each matrix is divided by its largest magnitude first, so neither norm
    over- or underflows (``y y^H`` has entries at most ``k`` and 2-norm at
    least 1). ``flagged`` matrices pass (their result is NaN).
    """
    # One set of kernels for both (compile time). XLA's CPU reductions read materialised operands:
    # the magnitudes are formed once (real), and y = stack / top only in the Schatten branch (256
    # complex128 32 x 32 matrices spent longer on these passes than on their QR).
    mag = jnp.abs(jnp.stack([x, x_inv]))
    top = jnp.max(mag, axis=(-2, -1))
    scale = (1 / jnp.where(top > 0, top, 1))[..., None, None]  # the zero matrix stays 0; inf or NaN: NaN, refused

    def verdict(norms: jax.Array) -> tuple[jax.Array, jax.Array]:
        s_hi, s_lo = top[0] * norms[0], 1 / (top[1] * norms[1])
        return s_hi, decide(s_hi, s_lo, atol, rtol, k, eps) | flagged

    def tighter() -> tuple[jax.Array, jax.Array]:
        if x.shape[-1] > SMALL:  # the power method with products by the explicit inverse (not k: max(m, n) for QR)
            s_hi, s_lo = power(x, lambda v: mm(x_inv, v), lambda u: hmm(x_inv, u))
            return s_hi, decide(s_hi, s_lo, atol, rtol, k, eps) | flagged
        y = jnp.stack([x, x_inv]) * scale
        w = mm_h(y, y)
        return verdict(jnp.sqrt(jnp.sqrt(jnp.sum(jnp.real(w * jnp.conj(w)), axis=(-2, -1)))))

    frobenius = verdict(jnp.sqrt(jnp.sum(jnp.square(mag * scale), axis=(-2, -1))))
    # The dispatch runs on the whole batch (also under vmap): one predicate for the batch.
    return lax.cond(jnp.all(frobenius[1]) | (jnp.sum(~screen) > spare), lambda: frobenius, tighter)


def screen(diag: jax.Array, atol: jax.Array, rtol: jax.Array, k: int, eps: float, flagged: jax.Array) -> jax.Array:
    """Per matrix: may it pass at all, judged by ``diag`` (``(..., k)``), values between its extreme singular values?

    The magnitudes of a triangular factor's diagonal (its eigenvalues) lie
    between its extreme singular values, so ``min |d_i| >= sigma_min`` and
    ``max |d_i| <= sigma_max``: a matrix that fails :func:`decide` on them
    fails on any sound estimate too (up to the estimates' own error, in the
    margin). A rank-deficient matrix has a rounding-level zero there.
    ``flagged`` matrices pass.
    """
    return decide(jnp.max(diag, axis=-1), jnp.min(diag, axis=-1), atol, rtol, k, eps) | flagged


def _start(like: jax.Array) -> jax.Array:
    """The power method's fixed start vector of unit 2-norm, shaped ``(..., n, 1)`` like a column of ``like``.

    Seeded normal entries made at trace time (a constant: no random-number
    program to compile); adding zeros shaped like a column of the batch
    gives it the batch's shape and sharding.
    """
    n = like.shape[-1]
    v = np.random.default_rng(20261129).standard_normal((n, 1))
    start = jnp.asarray(v / np.linalg.norm(v), like.dtype)
    # jax<0.7: like * 0, not zeros_like: inside a user's shard_map the loop's carry must vary over
    # the same mesh axes as ``like`` (seen on 0.6.2).
    return jnp.swapaxes(like[..., :1, :] * 0, -1, -2) + start


def power(
    x: jax.Array, solve: Callable[[jax.Array], jax.Array], solve_h: Callable[[jax.Array], jax.Array]
) -> tuple[jax.Array, jax.Array]:
    """``(||x||_2, 1 / ||x^-1||_2)`` of each square matrix, estimated by the power method.

    ``solve(v) = x^-1 v`` and ``solve_h(u) = x^-H u``. Both iterations run in
    one loop, on ``y = x / t`` (``t`` the largest magnitude of ``x``, so that
    no scale of ``x`` over- or underflows): each step applies ``B = y^H y``
    to a unit vector (``y^H`` is never formed), resp. ``C = (y y^H)^-1``,
    and divides by the result's 2-norm. That norm of the last step is the
    estimate: for unit ``v_j`` proportional to ``B^j v_0``, ``||B v_j||`` lies
    in ``[c^(1/(j+1)), 1] * sigma_max(y)^2`` (``c`` the component of ``v_0``
    along the top singular vector; the moments ``sum c_i^2 sigma_i^p`` are
    log-convex in ``p``), so after ``STEPS`` steps the estimate of each norm
    is within ``f = c^(-1/(2 STEPS))`` below it, and no product is spent
    after the loop. A product that overflows makes its estimate inf or NaN
    (only where ``cond(x)`` is above about ``1e9`` in float32, refused
    anyway), which :func:`decide` refuses.
    """
    top = jnp.max(jnp.abs(x), axis=(-2, -1), keepdims=True)
    top = jnp.where(top > 0, top, 1)  # the zero matrix stays 0 (refused); inf or NaN gives NaN: refused

    def unit(u: jax.Array) -> tuple[jax.Array, jax.Array]:
        size = jnp.sqrt(jnp.sum(jnp.real(u * jnp.conj(u)), axis=-2, keepdims=True))
        return u / size, size

    def step(_: Any, vs: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
        v, w, _, _ = vs
        v, grow = unit(h(mm(h(mm(x, v) / top), x)) / top)  # y^H (y v), as a row and back
        w, shrink = unit(solve_h(solve(w) * top) * top)  # (y y^H)^-1 w = y^-H (y^-1 w)
        return v, w, grow, shrink

    v0 = _start(x)
    one = top * 0 + 1
    _, _, grow, shrink = lax.fori_loop(0, STEPS, step, (v0, v0, one, one))
    return (top * jnp.sqrt(grow))[..., 0, 0], (top / jnp.sqrt(shrink))[..., 0, 0]


def decide(s_hi: jax.Array, s_lo: jax.Array, atol: jax.Array, rtol: jax.Array, k: int, eps: float) -> jax.Array:
    """Per matrix: may a path's result stand for the SVD's? (See the module docstring.)"""
    floor = float(jnp.finfo(s_hi.dtype).tiny) / eps  # in the factor's dtype (below)
    s_hi = s_hi.astype(atol.dtype)
    s_lo = s_lo.astype(atol.dtype)
    cut = jnp.maximum(jnp.maximum(atol, rtol * s_hi), k * eps * s_hi)
    # Only finite estimates count (an overflowed norm reads as 0 or inf), and only above tiny / eps:
    # XLA's CPU runtime flushes subnormal results to zero, which below that costs the QR or Cholesky
    # more than its rounding (eps sigma_max); the SVD's LAPACK driver scales such a matrix first.
    sane = jnp.isfinite(s_hi) & jnp.isfinite(s_lo) & (s_hi > floor)
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
