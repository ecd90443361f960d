"""The QR path (``method="auto"``): ``pinv`` from a Householder QR where the SVD keeps every value.

``pinv`` is defined by the SVD. Where the SVD would keep every singular value
(the matrix has full rank, clearly above the cutoff) the pseudo-inverse is
``R^-1 Q^H`` for ``A = QR`` (the inverse, for square ``A``; ``Q R^-H`` from
``A^H = QR`` for wide ``A``), which a Householder QR and one triangular
solve compute at a fraction of the SVD's cost, backward stably. The work is
split in two stages so that a matrix turned away costs only the QR's first
half and a few ``O(k^2)`` products:

1. :func:`factor` computes ``R`` and the Householder reflectors (LAPACK
   ``geqrf``; ``R`` has the singular values of ``A``) and estimates
   ``s_hi ~ sigma_max(R)`` and ``s_lo ~ sigma_min(R) = 1 / ||R^-1||_2``:
   for ``k <= SMALL`` by the bounds ``||R||_F`` and ``1 / ||R^-1||_F`` from the
   explicit ``R^-1``, where they turn a matrix away the tighter Schatten
   4-norm's (``(sum sigma_i^4)^(1/4)``); above, by ``STEPS`` steps of the power method on
   ``R`` and on ``R^-1`` (applied by triangular solves), ``O(k^2)`` per step
   against the QR's ``O(m k^2)``.
2. :func:`decide`, per matrix::

       fast  iff  s_lo > MARGIN * max(atol, rtol * s_hi, k * eps * s_hi)

   with ``k = max(m, n)`` and ``eps`` the compute dtype's. Only where the
   whole batch qualifies does :func:`finish` form ``Q`` and ``X`` (or
   :func:`solve` ``X b``); otherwise the SVD runs (:mod:`jaxpinv._dispatch`),
   reusing the QR where the SVD path reduces by the same one.

Why QR rather than LU or Cholesky: measured, on the performance page.

Why a near-cutoff matrix always reaches the SVD:

* For ``k <= SMALL`` the estimates are bounds: ``||R||_F >= sigma_max`` and
  ``1 / ||R^-1||_F <= sigma_min``, or where those turn a matrix away
  ``||R||_S4`` and ``1 / ||R^-1||_S4`` (each loose by at most ``k^(1/4)``,
  3.5 at ``k = 144``; the Frobenius norm's ``sqrt(k)`` alone turned away
  float32 matrices of condition 1e3 at ``k = 128``), so passing the test
  implies ``sigma_min > MARGIN * cutoff`` outright (up to the rounding of ``R^-1``, relative
  ``~ k eps cond``, far inside the margin).
* The power method estimates a norm from below, so ``s_hi <= sigma_max`` and
  ``s_lo >= sigma_min`` (up to rounding). After ``STEPS`` steps from a start
  vector with a component ``c`` along the top singular vector it is within a
  factor ``f = (1 / c) ** (1 / (2 STEPS))`` of the norm: 1.24 for
  ``c = 1 / 32`` (a random start in 1024 dimensions), 1.54 for ``c = 1e-3``.
  With both estimates within ``f``, passing the test implies ``sigma_min >
  (MARGIN / f**2) * cutoff``: with ``MARGIN = 8`` every matrix whose smallest
  singular value is below ``8 / f**2`` (5.2 at ``c = 1 / 32``, 3.4 at
  ``c = 1e-3``) times the cutoff goes to the SVD, and the SVD decides it
  exactly as without this path.
* ``k * eps * s_hi`` in the test keeps numerically singular matrices (condition
  above ``1 / (8 k eps)``) on the SVD path whatever the tolerances: there the
  factorization's own rounding (``~ k eps sigma_max``) could move ``s_lo``
  across a small ``atol``; the SVD decides those.
* A matrix whose ``R`` is exactly singular gives an infinite ``||R^-1||``,
  so ``s_lo`` is 0 or NaN and the test is false: the SVD runs. A matrix that
  passes has ``||X||_2 = 1 / sigma_min < 1 / (8 k eps s_hi)`` (within ``f``),
  so ``X`` is finite.

The start vector is fixed (seeded normal entries, a constant of the
program), so the decision is deterministic; a matrix built to be orthogonal
to it would have its norm underestimated, which this margin does not cover:
such a matrix is constructible but not one that arises from data.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv import _householder
from jaxpinv._batching import fold_columns
from jaxpinv._estimate import MIN_WORK, SMALL, bounds, decide, estimates, screen
from jaxpinv._kernel import (
    Clean,
    PinvParts,
    Problem,
    SolveParts,
    Verdict,
    float_rank,
    nan_placeholder,
    nan_where,
    real_dtype,
    unit_scale,
    zero_where,
)
from jaxpinv._linalg import eye_like, h, hmm, mm, mm_h, trsm, zero_tangent

# lstsq's rule solves with the factors (linear_solve) rather than form X from this much work per
# matrix on, where its gain repays the 0.13-0.2 s it adds to jit(grad)'s compile time within about
# 1000 calls, as MIN_WORK's: one core, float32, 200 x 200 1.36 -> 1.08 ms, 512 x 256 4.1 -> 2.8 ms;
# 128 x 128 0.47 -> 0.40 and 1000 x 50 0.60 -> 0.53 do not (the performance page).
LINEAR_WORK = 160**3


class QrFactors(NamedTuple):
    """:func:`factor`'s QR of ``a`` (square and tall) or ``a^H`` (wide)."""

    qr: _householder.Householder
    rinv: jax.Array | None
    """The explicit ``R^-1`` for ``k <= SMALL``, else None (applied by triangular solves)."""


class Stage(NamedTuple):
    """What the QR path's result needs from its decision: the clean batch, the factors and ``s_hi``."""

    clean: Clean
    factors: QrFactors
    s_hi: jax.Array


def factor(clean: Clean, atol: jax.Array, rtol: jax.Array, spare: int) -> tuple[QrFactors, jax.Array, jax.Array]:
    """Stage 1: ``(factors, s_hi, ok)`` of a sanitised batch.

    Householder QR of ``a`` (square and tall) or of ``a^H`` (wide): ``R`` has
    the singular values of ``a``. Only ``R`` and the reflectors are computed
    here (LAPACK ``geqrf``); ``Q`` is formed by :func:`finish` if the batch
    qualifies. ``s_hi`` estimates ``sigma_max`` per matrix, ``ok`` is
    :func:`decide`'s verdict (true for the flagged matrices, whose result is
    NaN on either path).

    Small ``R`` (``k <= SMALL``): ``R^-1`` is formed (one triangular solve
    per matrix, reused by the finish) and the estimates are the rigorous
    bounds ``s_hi = ||R||_S4 >= sigma_max`` and ``s_lo = 1 / ||R^-1||_S4 <=
    sigma_min`` (Schatten 4-norms), loose by at most ``k^(1/4)`` each, with
    no iteration: one ``k x k`` product each.

    Larger ``R``: the power method (see the module docstring), ``R^-1``
    applied by triangular solves. A pre-screen skips the Schatten products
    and the power method when the diagonal of ``R`` already shows that more
    matrices fail than the batch may spare: ``min |r_ii| >= sigma_min`` and
    ``max |r_ii| <= sigma_max`` (the eigenvalues of a triangular matrix are
    its diagonal), so the test on them fails whenever the test on the
    estimates would (up to the estimates' own error, in the margin, where
    turning a matrix away is always sound). A rank-deficient matrix has a
    (rounding-level) zero on the diagonal of ``R``, so it costs the ``geqrf``
    (and up to ``SMALL`` the explicit ``R^-1`` and the Frobenius bounds)
    before the SVD.
    """
    a, bad = clean
    m, n = a.shape[-2:]
    qr = _householder.factor(h(a) if n > m else a)
    r = qr.r
    k = r.shape[-1]
    eps = float(jnp.finfo(real_dtype(a.dtype)).eps)
    diag = jnp.abs(jnp.diagonal(r, axis1=-2, axis2=-1))
    passable = screen(diag, atol, rtol, max(m, n), eps, bad)
    if k <= SMALL:
        # Rigorous bounds, no iteration: sigma_max <= ||R||_S4, sigma_min >= 1 / ||R^-1||_S4.
        rinv = trsm(r, eye_like(r))
        s_hi, ok = bounds(r, rinv, atol, rtol, max(m, n), eps, bad, passable, spare)
        return QrFactors(qr, rinv), s_hi, ok
    s_hi, s_lo = estimates(r, lambda v: trsm(r, v), lambda u: trsm(r, u, adjoint=True), passable, spare)
    return QrFactors(qr, None), s_hi, decide(s_hi, s_lo, atol, rtol, max(m, n), eps) | bad


def qr_of(factors: QrFactors) -> tuple[jax.Array, jax.Array]:
    """The thin ``(Q, R)`` from :func:`factor`'s factors."""
    return _householder.q(factors.qr), factors.qr.r


def _rinv(factors: QrFactors) -> jax.Array:
    """The explicit ``R^-1``."""
    return trsm(factors.qr.r, eye_like(factors.qr.r)) if factors.rinv is None else factors.rinv


def finish(a: jax.Array, factors: QrFactors, scale: jax.Array | None) -> tuple[jax.Array, jax.Array | None]:
    """Stage 2: ``(X, c^2 R^-1 R^-H or None)`` from :func:`factor`'s factors.

    ``X = R^-1 Q^H`` (wide: ``X = Q R^-H`` from ``a^H = QR``). Given the
    explicit small ``R^-1``, the reflectors are applied to it (``ormqr``, no
    ``Q`` formed: 0.70-0.92x the time of ``orgqr`` and the product at
    64-128); else ``Q`` (``orgqr``) and one triangular solve with ``m``
    right-hand sides give ``Q R^-H``. Householder QR and the solve are
    backward stable as they are, no refinement needed.
    Given the unit ``scale`` ``c`` (``(..., 1, 1)``), also ``c^2 R^-1 R^-H``,
    which is ``c^2 (A^H A)^-1`` (tall) or ``c^2 (A A^H)^-1`` (wide), for the
    derivative: formed from ``c R^-1`` (norm ``c / sigma_min``), since
    ``R^-1 R^-H`` itself (``~ 1 / sigma^2``) under- or overflows where ``X``
    does not.
    """
    wide = a.shape[-1] > a.shape[-2]
    packed, taus, _ = factors.qr
    if factors.rinv is None:  # Q R^-H: solve X R^H = Q from the right
        q, r = qr_of(factors)
        xh = lax.linalg.triangular_solve(r, q, left_side=False, lower=False, transpose_a=True, conjugate_a=True)
        x = xh if wide else h(xh)
    elif wide:
        x = _householder.apply_q(packed, taus, h(factors.rinv), adjoint=False)
    else:
        x = _householder.times_q_h(packed, taus, factors.rinv)
    g = None
    if scale is not None:
        unit = _rinv(factors) * scale
        g = mm_h(unit, unit)
    return x, g


def _apply_q(factors: QrFactors, y: jax.Array, adjoint: bool) -> jax.Array:
    """``Q y`` (``Q^H y`` with ``adjoint``; then only its first ``k`` rows) from the reflectors.

    Under ``vmap`` over ``y`` alone (``jax.jacrev`` of a solve), one call on
    more columns (:func:`jaxpinv._batching.fold_columns`).
    """
    packed, taus, _ = factors.qr
    return fold_columns(partial(_householder.apply_q, adjoint=adjoint), (packed, taus), y)


def _solve_r(factors: QrFactors, y: jax.Array, adjoint: bool) -> jax.Array:
    """``R^-1 y`` (``R^-H y`` with ``adjoint``): triangular solves, or products with the explicit small ``R^-1``."""
    if factors.rinv is None:
        return trsm(factors.qr.r, y, adjoint=adjoint)
    return hmm(factors.rinv, y) if adjoint else mm(factors.rinv, y)


def solve(a: jax.Array, factors: QrFactors, b: jax.Array) -> jax.Array:
    """``X b`` for :func:`finish`'s ``X``, without forming ``X``: ``lstsq``'s fast forward.

    ``R^-1 (Q^H b)`` (square and tall); wide: the minimum-norm ``Q (R^-H b)``.
    """
    if a.shape[-1] > a.shape[-2]:
        return _apply_q(factors, _solve_r(factors, b, adjoint=True), adjoint=False)
    return _solve_r(factors, _apply_q(factors, b, adjoint=True), adjoint=False)


def linear_solve(a: jax.Array, factors: QrFactors, b: jax.Array) -> jax.Array:
    """:func:`solve`'s ``X b`` as a function of ``a`` and ``b`` whose derivatives of every order are exact.

    ``lstsq``'s rule differentiates this where the whole batch qualified (full
    rank), instead of forming ``X``. With ``B = A`` (square and tall) or
    ``B = A^H`` (wide) and ``B = Q R`` (the ``factors``), ``x`` solves the
    augmented system (nonsingular at full rank)::

        [[I, B], [B^H, 0]] [u; v] = [f; g]      tall: f = b, g = 0, x = v
                                                wide: f = 0, g = b, x = u

    by ``v = R^-1 (Q^H f - R^-H g)``, ``u = f + Q (R^-H g - Q^H f)`` (backward
    stable: orthogonal maps and triangular solves; ``v = R^-1 Q^H b`` and
    ``u = Q R^-H b`` are :func:`solve`'s). ``lax.custom_linear_solve`` then
    differentiates by implicit differentiation through the products with
    ``a`` alone: the factors are constants (the Householder kernels have
    no derivative rules), and the system's derivative is again such a solve,
    so ``jacfwd``, reverse mode and higher orders cost a solve each. The
    system is Hermitian: its transpose (reverse mode) is its conjugate.
    Square ``A`` solves ``A x = b`` itself (``u`` is 0): half the work, its
    transpose ``conj(Q R^-H conj(y))``. ``a``, ``b`` and the factors broadcast
    to one batch.
    """
    shape = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2], factors.qr.r.shape[:-2])
    b = jnp.broadcast_to(b, shape + b.shape[-2:])
    if a.shape[-1] == a.shape[-2]:

        def inverse_square(_: object, y: jax.Array) -> jax.Array:
            return _solve_r(factors, _apply_q(factors, y, adjoint=True), adjoint=False)

        def transposed_square(_: object, y: jax.Array) -> jax.Array:
            return jnp.conj(_apply_q(factors, _solve_r(factors, jnp.conj(y), adjoint=True), adjoint=False))

        return lax.custom_linear_solve(partial(mm, a), b, inverse_square, transposed_square)

    wide = a.shape[-1] > a.shape[-2]
    rows = a.shape[-1] if wide else a.shape[-2]  # B's: u's rows; v's follow

    def product(y: jax.Array) -> jax.Array:
        u, v = y[..., :rows, :], y[..., rows:, :]
        return jnp.concatenate((u + hmm(a, v), mm(a, u)) if wide else (u + mm(a, v), hmm(a, u)), axis=-2)

    def inverse(_: object, y: jax.Array) -> jax.Array:
        f, g = y[..., :rows, :], y[..., rows:, :]
        c, t = _apply_q(factors, f, adjoint=True), _solve_r(factors, g, adjoint=True)
        return jnp.concatenate(
            (f + _apply_q(factors, t - c, adjoint=False), _solve_r(factors, c - t, adjoint=False)), -2
        )

    def transposed(_: object, y: jax.Array) -> jax.Array:
        return jnp.conj(inverse(None, jnp.conj(y)))

    zeros = jnp.zeros_like(hmm(a, b))  # A^H b's shape (and sharding): g (tall) or f (wide); never computed
    # jax<0.10: custom_linear_solve's transpose binds the symbolic-zero cotangent of an unused output
    # (seen on 0.6.2; 0.10.2 instantiates it), so [u; v] is one array, not a pair.
    y = lax.custom_linear_solve(product, jnp.concatenate((zeros, b) if wide else (b, zeros), -2), inverse, transposed)
    return y[..., :rows, :] if wide else y[..., rows:, :]


def _rank_and_values(clean: Clean) -> tuple[jax.Array, jax.Array]:
    """Full rank (-1 if flagged), and NaN singular values: unknown without the SVD."""
    k = min(clean.a.shape[-2:])
    real = real_dtype(clean.a.dtype)
    return float_rank(jnp.where(clean.bad, -1, k), real), nan_placeholder(clean.a, (k,), real)


class QrPath:
    """The QR path as a unit of the dispatch (:mod:`jaxpinv._dispatch`)."""

    name = "qr"

    def eligible(self, problem: Problem) -> bool:
        """Everywhere but a matrix TSQR factors in place (its SVD path reduces by TSQR)."""
        return not problem.in_place

    def repays(self, problem: Problem) -> bool:
        """From ``matrices * m * n * min(m, n) >= MIN_WORK`` on (see :data:`MIN_WORK`)."""
        return problem.matrices * problem.m * problem.n * min(problem.m, problem.n) >= MIN_WORK

    def decide(self, clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem) -> Verdict:
        factors, s_hi, ok = factor(clean, atol, rtol, problem.spare)
        return self.resume(ok, Stage(clean, factors, s_hi))

    def resume(self, ok: jax.Array, stage: Stage) -> Verdict:
        return Verdict(ok, stage, lambda: qr_of(stage.factors))

    def linear_rule(self, problem: Problem) -> bool:
        """From ``m * n * min(m, n) >= LINEAR_WORK`` on: below, forming ``X`` costs less than the
        solve's extra kernel calls (see :data:`LINEAR_WORK`)."""
        return problem.m * problem.n * min(problem.m, problem.n) >= LINEAR_WORK

    def pinv(self, stage: Stage, problem: Problem) -> PinvParts:
        """:class:`PinvParts` from the factors (every matrix qualified; ``values`` unknown: NaN)."""
        (a, bad), factors, s_hi = stage
        m, n = a.shape[-2:]
        scale = unit_scale(s_hi).astype(a.dtype)[..., None, None]
        x, gram = finish(a, factors, scale if m != n else None)
        if problem.hermitian:
            x = (x + h(x)) / 2
        p = nan_where(bad, x)
        if gram is None:  # square: the rule needs no gram; empty, varying like a inside a user's shard_map
            gram = zero_tangent(a[..., :0, :0])
        rank, values = _rank_and_values(stage.clean)
        return PinvParts(p, gram, rank, scale, values)

    def solve(self, stage: Stage, b: jax.Array, problem: Problem) -> SolveParts:
        """:class:`SolveParts` from the factors (``values`` unknown: NaN)."""
        (a, bad), factors, _ = stage
        return SolveParts(nan_where(bad, solve(a, factors, b)), *_rank_and_values(stage.clean))

    def solve_linear(self, stage: Stage, a: jax.Array, b: jax.Array) -> SolveParts:
        """:meth:`solve`'s parts with ``x`` differentiable in ``a`` and ``b`` (:func:`linear_solve`)."""
        bad, factors = stage.clean.bad, stage.factors
        x = linear_solve(zero_where(bad, a), factors, b)
        return SolveParts(nan_where(bad, x), *_rank_and_values(stage.clean))


PATH = QrPath()
