"""The Cholesky path (``hermitian=True``): ``pinv`` of a Hermitian positive definite matrix as ``U^-1 U^-H``.

For Hermitian ``A`` the result is defined by ``eigh``. Where ``A`` is
positive definite and clearly of full rank (every eigenvalue kept by the
cutoff, by the margin of :mod:`jaxpinv._estimate`), ``pinv(A) = A^-1 =
U^-1 U^-H`` for the Cholesky factor ``A = U^H U`` (LAPACK ``potrf``, about a
tenth of an ``eigh``), two triangular solves. Stage 1 is the ``potrf`` and
the estimates, decided on ``A`` itself, whose singular values are the
eigenvalues' magnitudes:

* a pre-screen on the diagonal of ``U`` (``u_ii^2`` lies between the
  extreme eigenvalues: they are ``U``'s singular values squared, and the
  diagonal holds ``U``'s eigenvalues), then
* ``k <= SMALL``: the explicit ``X = U^-1 U^-H`` (the result) and the rigorous
  bounds ``||A||_S4 >= sigma_max``, ``1 / ||X||_S4 <= sigma_min``;
* above: the power method on ``A`` and on ``A^-1`` (two triangular solves
  per step).

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
)
from jaxpinv._linalg import eye_like, h, trsm, zero_tangent


class Stage(NamedTuple):
    """What the result needs from the decision: the clean batch, ``U``, ``X`` if formed, and ``s_hi``."""

    clean: Clean
    u: jax.Array
    x: jax.Array | None
    s_hi: jax.Array


def factor(clean: Clean, atol: jax.Array, rtol: jax.Array, spare: int) -> tuple[Stage, jax.Array]:
    """Stage 1: the Cholesky factor, the estimates and the per-matrix verdict (true for flagged matrices)."""
    a, bad = clean
    k = a.shape[-1]
    eps = float(jnp.finfo(real_dtype(a.dtype)).eps)
    u = h(jnp.linalg.cholesky(a, symmetrize_input=False))  # A = U^H U; NaN where A is not positive definite
    diag = jnp.abs(jnp.diagonal(u, axis1=-2, axis2=-1)) ** 2  # eigenvalues of U, squared
    passable = screen(diag, atol, rtol, k, eps, bad)
    if k <= SMALL:
        x = trsm(u, trsm(u, eye_like(u), adjoint=True))  # U^-1 U^-H = A^-1
        s_hi, ok = bounds(a, x, atol, rtol, k, eps, bad, passable, spare)
        return Stage(clean, u, x, s_hi), ok

    def solve(v: jax.Array) -> jax.Array:  # A^-1 v (A is Hermitian: also A^-H v)
        return trsm(u, trsm(u, v, adjoint=True))

    s_hi, s_lo = estimates(a, solve, solve, passable, spare)
    return Stage(clean, u, None, s_hi), decide(s_hi, s_lo, atol, rtol, k, eps) | bad


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
        """:class:`PinvParts` (every matrix qualified): ``X = U^-1 U^-H``, made exactly Hermitian."""
        (a, bad), u, x, s_hi = stage
        if x is None:
            x = trsm(u, trsm(u, eye_like(u), adjoint=True))
        x = (x + h(x)) / 2
        k = a.shape[-1]
        real = real_dtype(a.dtype)
        scale = unit_scale(s_hi).astype(a.dtype)[..., None, None]
        rank = float_rank(jnp.where(bad, -1, k), real)
        values = nan_placeholder(a, (k,), real)  # unknown without eigh
        # square: the rule needs no gram; empty, varying like a inside a user's shard_map
        return PinvParts(nan_where(bad, x), zero_tangent(a[..., :0, :0]), rank, scale, values)

    def solve(self, stage: Any, b: jax.Array, problem: Problem) -> SolveParts:  # pragma: no cover - never eligible
        """Not reached: ``lstsq`` takes no ``hermitian`` (never eligible there)."""
        raise NotImplementedError("the Cholesky path solves only through pinv")

    def solve_linear(self, stage: Any, a: jax.Array, b: jax.Array) -> SolveParts:  # pragma: no cover - never eligible
        """Not reached, as :meth:`solve`."""
        raise NotImplementedError("the Cholesky path solves only through pinv")


PATH = CholeskyPath()
