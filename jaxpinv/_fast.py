"""The full-rank fast path: ``pinv`` from LU, Cholesky or QR where the SVD keeps every value.

``pinv`` is defined by the SVD. Where the SVD would keep every singular value
(the matrix has full rank, clearly above the cutoff) the pseudo-inverse is the
inverse (square) or ``R^-1 Q^H`` (tall, ``A = QR``), which a cheaper
factorization computes. This module computes that candidate and decides,
per matrix, whether it may be used:

    fast  iff  s_lo > MARGIN * max(atol, rtol * s_hi, k * eps * s_hi)

``s_hi`` estimates ``sigma_max(A)`` and ``s_lo`` estimates ``sigma_min(A) =
1 / ||A^-1||_2``, each by ``STEPS`` steps of the power method (on ``A`` and on
the computed inverse, ``O(k^2)`` per step against the factorization's
``O(k^3)``); ``k = max(m, n)`` and ``eps`` is the compute dtype's.

Why a near-cutoff matrix always reaches the SVD:

* The power method estimates a norm from below, so ``s_hi <= sigma_max`` and
  ``s_lo >= sigma_min`` (up to rounding). After ``STEPS`` steps from a start
  vector with a component ``c`` along the top singular vector it is within a
  factor ``(1 / c) ** (1 / (2 STEPS))`` of the norm: 1.3 for ``c = 1 / 32``
  (a random start in 1024 dimensions), so far inside ``MARGIN``. With both
  estimates within a factor ``f``, the test implies ``sigma_min > (MARGIN /
  f**2) * cutoff``: with ``MARGIN = 8`` every matrix whose smallest singular
  value is below ``8 / f**2`` (about 4.7) times the cutoff goes to the SVD,
  and the SVD decides it exactly as without this path.
* ``k * eps * s_hi`` in the test keeps numerically singular matrices (condition
  above ``1 / (8 k eps)``) on the SVD path whatever the tolerances: there the
  factorization's own rounding (``~ k eps sigma_max``) could move ``s_lo``
  across a small ``atol``; the SVD decides those.
* A matrix the factorization cannot invert (an exact zero pivot, a
  non-positive-definite Cholesky) gives a non-finite candidate, whose ``s_lo``
  is NaN: the test is false and the SVD runs.

The start vector is fixed (a seeded normal vector), so the decision is
deterministic; a matrix built to be orthogonal to it would have its norm
underestimated, which this margin does not cover: such a matrix is
constructible but not one that arises from data.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv._batching import all_true

MARGIN = 8.0
STEPS = 8


def _mm(x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.matmul(x, y, precision=lax.Precision.HIGHEST)


def _h(x: jax.Array) -> jax.Array:
    return jnp.conj(jnp.swapaxes(x, -1, -2))


def _vnorm(v: jax.Array) -> jax.Array:
    """2-norm of each column vector ``(..., n, 1)``, shape ``(..., 1, 1)``, without over- or underflow.

    (Squares of entries near 1e160 overflow float64: the vector is scaled by
    its largest entry first. NaN stays NaN through the sum.)
    """
    top = jnp.max(jnp.abs(v), axis=-2, keepdims=True)
    top = jnp.where(top > 0, top, 1)
    return top * jnp.sqrt(jnp.sum(jnp.abs(v / top) ** 2, axis=-2, keepdims=True))


def norm2_estimate(x: jax.Array) -> jax.Array:
    """``||x||_2`` of each matrix of the batch, from below, by the power method on ``x^H x``.

    Each step applies ``x`` and ``x^H`` to a unit vector and normalises after
    each product (``x^H x v`` itself could overflow). Returns shape ``(...)``;
    NaN where ``x`` holds NaN.
    """
    n = x.shape[-1]
    real = jnp.finfo(x.dtype).dtype
    v = jax.random.normal(jax.random.key(20261129), (n, 1), real).astype(x.dtype)
    # (zeros shaped like a column of x carry its batch sharding)
    v = jnp.swapaxes(jnp.zeros_like(x[..., :1, :]), -1, -2) + v / _vnorm(v)

    def step(_: Any, v: jax.Array) -> jax.Array:
        u = _mm(x, v)
        u = u / jnp.where(_vnorm(u) > 0, _vnorm(u), 1)
        w = _h(_mm(_h(u), x))  # x^H u as a row times x: x^H is never formed
        return w / jnp.where(_vnorm(w) > 0, _vnorm(w), 1)

    v = lax.fori_loop(0, STEPS, step, v)
    return _vnorm(_mm(x, v))[..., 0, 0]


def _newton_schulz(a: jax.Array, x: jax.Array) -> jax.Array:
    """One step ``X + X (I - A X)``: squares the residual of an approximate inverse."""
    r = jnp.eye(a.shape[-1], dtype=a.dtype) - _mm(a, x)
    return x + _mm(x, r)


def _eye_like(x: jax.Array) -> jax.Array:
    """Identity matrices shaped (and sharded) like the square ``x``."""
    return jnp.zeros_like(x) + jnp.eye(x.shape[-1], dtype=x.dtype)


def _lu_inverse(a: jax.Array) -> jax.Array:
    """``A^-1`` from LU with partial pivoting: ``P A = L U``, so ``A^-1 = U^-1 L^-1 P``.

    (``jnp.linalg.inv`` goes through ``custom_linear_solve``, whose
    ``stop_gradient`` we keep out of the rules' programs.)
    """
    lu, _, perm = lax.linalg.lu(a)
    rows = jnp.take_along_axis(_eye_like(a), perm[..., :, None], axis=-2)  # P
    y = lax.linalg.triangular_solve(lu, rows, left_side=True, lower=True, unit_diagonal=True)
    return lax.linalg.triangular_solve(lu, y, left_side=True, lower=False)


def _cholesky_inverse(low: jax.Array) -> jax.Array:
    """``A^-1 = L^-H L^-1`` from the Cholesky factor ``L`` of ``A``."""
    li = lax.linalg.triangular_solve(low, _eye_like(low), left_side=True, lower=True)
    return _mm(_h(li), li)


def candidate(a: jax.Array, hermitian: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(X, big, small)``: the pseudo-inverse of a full-rank ``a`` by a cheap factorization.

    ``a`` must be finite. ``||big||_2 = sigma_max(A)`` and ``||small||_2 =
    1 / sigma_min(A)`` (up to rounding): ``A`` and ``X`` for square input,
    ``R`` and ``R^-1`` of ``A = QR`` (tall) or ``A^H = QR`` (wide), for which
    ``(A^H A)^-1`` (``(A A^H)^-1``) is ``R^-1 R^-H``. Square matrices use LU
    with partial pivoting; Hermitian ones Cholesky when the whole batch is
    positive definite (else LU); both refined by one Newton–Schulz step.
    Tall and wide ones use QR and a triangular solve (backward stable as it is).
    """
    m, n = a.shape[-2:]
    if m == n:
        if hermitian:
            low = jnp.linalg.cholesky(a)  # NaN where not positive definite
            definite = all_true(jnp.all(jnp.isfinite(low), axis=(-2, -1)))
            # Cholesky is backward stable as it is; LU gains from one refinement.
            x = lax.cond(definite, _cholesky_inverse, lambda _: _newton_schulz(a, _lu_inverse(a)), low)
            x = (x + _h(x)) / 2
        else:
            x = _newton_schulz(a, _lu_inverse(a))
        return x, a, x
    wide = n > m
    q, r = jnp.linalg.qr(_h(a) if wide else a)
    rinv = lax.linalg.triangular_solve(r, _eye_like(r), left_side=True, lower=False)
    x = jnp.einsum("...ij,...kj->...ik", rinv, jnp.conj(q), precision=lax.Precision.HIGHEST)  # R^-1 Q^H
    return (_h(x) if wide else x), r, rinv


def decide(
    s_hi: jax.Array, s_lo: jax.Array, atol: jax.Array, rtol: jax.Array, k: int, eps: float
) -> jax.Array:
    """Per matrix: may the fast path's result stand for the SVD's? (See the module docstring.)"""
    s_hi = s_hi.astype(atol.dtype)
    s_lo = s_lo.astype(atol.dtype)
    cut = jnp.maximum(jnp.maximum(atol, rtol * s_hi), k * eps * s_hi)
    # Only finite, positive estimates count (an overflowed norm reads as 0 or inf).
    sane = jnp.isfinite(s_hi) & jnp.isfinite(s_lo) & (s_hi > 0)
    return sane & (s_lo > MARGIN * cut)
