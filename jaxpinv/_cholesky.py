"""The Cholesky path (``hermitian=True``): ``pinv`` of a Hermitian positive definite matrix as ``L^-H L^-1``.

For Hermitian ``A`` the result is defined by ``eigh``. Where ``A`` is
positive definite and clearly of full rank (every eigenvalue kept by the
cutoff, by the margin of :mod:`jaxpinv._estimate`), ``pinv(A) = A^-1 =
L^-H L^-1`` for the Cholesky factor ``A = L L^H`` (LAPACK ``potrf``, about a
tenth of an ``eigh``), formed as LAPACK's ``potri`` does, blocked once
(:func:`_inverse`). Stage 1 is the ``potrf``, the inverse and the
estimates, decided on ``A`` itself, whose singular values are the
eigenvalues' magnitudes:

* a pre-screen on the diagonal of ``L`` (``l_ii^2`` lies between the
  extreme eigenvalues: they are ``L``'s singular values squared, and the
  diagonal holds ``L``'s eigenvalues); a batch it turns away is not
  inverted;
* the explicit ``X = A^-1`` (the result) and the rigorous bounds
  ``||A|| >= sigma_max``, ``1 / ||X|| <= sigma_min`` in the Frobenius norm;
  where they turn a matrix away, the Schatten 4-norm (``k <= SMALL``) or the
  power method on ``A`` and ``X`` by products (above;
  :func:`jaxpinv._estimate.bounds`).

A matrix that is not positive definite makes ``potrf`` fail: JAX returns NaN,
whose estimates :func:`jaxpinv._estimate.decide` refuses, so an indefinite or
singular batch moves on (to the QR path, then ``eigh``) at the cost of the
``potrf``. The soundness argument is the QR path's (:mod:`jaxpinv._qr`), for
``A`` in place of ``R``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv._estimate import MIN_WORK, SMALL, bounds, screen
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
)
from jaxpinv._linalg import eye_like, h, mm, trsm, zero_tangent


class Stage(NamedTuple):
    """What the result needs from the decision: the clean batch, ``X = A^-1`` and ``s_hi``."""

    clean: Clean
    x: jax.Array
    s_hi: jax.Array


def factor(clean: Clean, atol: jax.Array, rtol: jax.Array, spare: int) -> tuple[Stage, jax.Array]:
    """Stage 1: the Cholesky factor, ``X = A^-1``, the estimates and the per-matrix verdict (true for flagged matrices)."""
    a, bad = clean
    k = a.shape[-1]
    eps = float(jnp.finfo(real_dtype(a.dtype)).eps)
    # A = L L^H. A is exactly Hermitian (the preamble forms it), so potrf may read h(A): with LAPACK's
    # column-major layout that is A's own memory, where A itself would be copied transposed (slow at
    # sizes that are powers of two on XLA's CPU backend); L stays lower for the same reason.
    low = jnp.linalg.cholesky(h(a), symmetrize_input=False)  # NaN where A is not positive definite
    diag = jnp.abs(jnp.diagonal(low, axis1=-2, axis2=-1)) ** 2  # eigenvalues of L, squared
    passable = screen(diag, atol, rtol, k, eps, bad)

    def inverse() -> jax.Array:  # the result where the batch passes
        return nan_where(bad, _inverse(low))

    # The inverse (most of the path's cost) only for a batch the screen leaves a chance: an
    # indefinite batch fails potrf, and then costs the potrf alone before the next path.
    # The dispatch runs on the whole batch (also under vmap): the count is one for the batch.
    x = lax.cond(jnp.sum(~passable) <= spare, inverse, lambda: nan_placeholder(a, (k, k), a.dtype))
    s_hi, ok = bounds(a, x, atol, rtol, k, eps, bad, passable, spare)
    return Stage(clean, x, s_hi), ok


def _inverse(low: jax.Array) -> jax.Array:
    """``A^-1 = L^-H L^-1`` from ``A = L L^H``, made exactly Hermitian.

    Up to ``SMALL``, two triangular solves (the first against the identity). Above, as
    LAPACK's ``potri`` (``W = L^-1``, then ``W^H W``), blocked once: with
    ``L`` split at ``m = k // 2`` into ``L11``, ``L21``, ``L22``,
    ``W11 = L11^-1``, ``W22 = L22^-1`` (two half-size solves),
    ``W21 = -W22 L21 W11``, and the product by W's first block column and
    last block row. Most of the work is then in matrix products, which XLA's
    CPU backend runs two to three times faster per flop than the solves
    (0.35x of an eigh at 512^2 float64 where the solves take 0.48x); below
    ``SMALL`` the gain (under 0.2 ms a call) does not repay the products'
    compile time (about 0.15 s; the performance page).
    """
    k = low.shape[-1]
    # At unit scale: with A near overflow A^-1 is near underflow, and XLA's CPU runtime flushes
    # subnormal partial results to zero (1e-8 relative error at 2^997 in float64, 5e-3 at 2^124 in
    # complex64).
    scale = (1 / jnp.max(jnp.abs(jnp.diagonal(low, axis1=-2, axis2=-1)), axis=-1))[..., None, None]
    low = low * scale.astype(low.dtype)
    if k <= SMALL:
        x = trsm(low, trsm(low, eye_like(low), lower=True), adjoint=True, lower=True)
    else:
        m = k // 2
        l11, l21, l22 = low[..., :m, :m], low[..., m:, :m], low[..., m:, m:]
        w11, w22 = trsm(l11, eye_like(l11), lower=True), trsm(l22, eye_like(l22), lower=True)
        w21 = -mm(w22, mm(l21, w11))
        left = jnp.concatenate([w11, w21], -2)
        x11, bottom = mm(h(left), left), mm(h(w22), jnp.concatenate([w21, w22], -1))  # bottom = [X21, X22]
        x = jnp.concatenate([jnp.concatenate([x11, h(bottom[..., :m])], -1), bottom], -2)
    # Exactly Hermitian; this pass also lays x out as the branch that forms it returns it.
    return (x + h(x)) / 2 * scale.astype(x.dtype) * scale.astype(x.dtype)


class CholeskyPath:
    """The Cholesky path as a unit of the dispatch (:mod:`jaxpinv._dispatch`)."""

    name = "cholesky"

    def eligible(self, problem: Problem) -> bool:
        """Hermitian input only (``hermitian=True``: the lower triangle defines the matrix)."""
        return problem.hermitian and not problem.in_place

    def repays(self, problem: Problem) -> bool:
        """As the QR path: from ``matrices * k^3 >= MIN_WORK`` on."""
        return problem.matrices * problem.m**3 >= MIN_WORK

    def decide(self, clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem) -> Verdict:
        stage, ok = factor(clean, atol, rtol, problem.spare)
        return self.resume(ok, stage)

    def resume(self, ok: jax.Array, stage: Stage) -> Verdict:
        return Verdict(ok, stage, None)

    def linear_rule(self, problem: Problem) -> bool:  # pragma: no cover - never eligible for lstsq
        """Never: ``lstsq`` takes no ``hermitian``."""
        return False

    def pinv(self, stage: Stage, problem: Problem) -> PinvParts:
        """:class:`PinvParts` (every matrix qualified): ``X = A^-1`` from stage 1."""
        (a, bad), x, s_hi = stage
        k = a.shape[-1]
        real = real_dtype(a.dtype)
        scale = unit_scale(s_hi).astype(a.dtype)[..., None, None]
        rank = float_rank(jnp.where(bad, -1, k), real)
        values = nan_placeholder(a, (k,), real)  # unknown without eigh
        # square: the rule needs no gram; empty, varying like a inside a user's shard_map
        return PinvParts(x, zero_tangent(a[..., :0, :0]), rank, scale, values)

    def solve(self, stage: Any, b: jax.Array, problem: Problem) -> SolveParts:  # pragma: no cover - never eligible
        """Not reached: ``lstsq`` takes no ``hermitian`` (never eligible there)."""
        raise NotImplementedError("the Cholesky path solves only through pinv")

    def solve_linear(self, stage: Any, a: jax.Array, b: jax.Array) -> SolveParts:  # pragma: no cover - never eligible
        """Not reached, as :meth:`solve`."""
        raise NotImplementedError("the Cholesky path solves only through pinv")


PATH = CholeskyPath()
