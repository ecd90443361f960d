"""The SVD path (``eigh`` for Hermitian input): the definition of every result, and the fallback of the dispatch.

One SVD (one ``eigh``) with the values at or below the cutoff masked out.
A matrix with one side at least :data:`QR_RATIO` times the other is reduced
by a thin QR first, ``A = Q R``, and the small ``R`` decomposed (Chan's
R-SVD); for a matrix sharded along its rows that QR is TSQR
(:mod:`jaxpinv._sharding`). A path that already factored the same matrix by
QR hands it over (``reduction``) instead of the SVD computing it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpinv import _sharding, _tolerance
from jaxpinv._kernel import Clean, PinvParts, SolveParts, float_rank, masked_reciprocal, nan_where, rank, unit_scale
from jaxpinv._linalg import h, hmm, mm, mm_h, zero_tangent

# Reduce by QR first when one side is at least this many times the other: 1.1-1.3x faster than a
# direct SVD from m = 2n up, slower at m = 1.5n (the crossover table of benchmarks/bench.py).
QR_RATIO = 2

Reduction = Callable[[], tuple[jax.Array, jax.Array]]
"""A thin ``(Q, R)`` of ``a`` (tall) or ``a^H`` (wide) that another path already has, formed on demand."""


class SvdFactors(NamedTuple):
    """``a = [q_left] left diag(values) right_h [q_right^H]``; the bracketed factors are a QR reduction's, or None."""

    left: jax.Array
    right_h: jax.Array
    q_left: jax.Array | None
    q_right: jax.Array | None


class Decomposition(NamedTuple):
    """The SVD (``eigh``) with the cutoff applied."""

    values: jax.Array
    """Singular values, descending (signed eigenvalues, ascending, if Hermitian)."""
    keep: jax.Array
    """Which values are above the cutoff."""
    bad: jax.Array
    """Per matrix: its result must be NaN (non-finite input or a NaN tolerance)."""
    factors: SvdFactors


def reduces(m: int, n: int) -> tuple[bool, bool]:
    """``(tall, wide)``: is a (non-Hermitian) matrix reduced by a QR of ``a`` (tall) or of ``a^H`` (wide) first?"""
    return m >= QR_RATIO * n, n >= QR_RATIO * m


def largest(values: jax.Array, hermitian: bool) -> jax.Array:
    """The largest magnitude of the sorted ``values`` (descending singular values, ascending eigenvalues)."""
    if hermitian:
        return jnp.maximum(jnp.abs(values[..., 0]), jnp.abs(values[..., -1]))
    return values[..., 0]


def decompose(
    clean: Clean, atol: jax.Array, rtol: jax.Array, hermitian: bool, reduction: Reduction | None = None
) -> Decomposition:
    """SVD (or ``eigh``) of the sanitised batch with the cutoff applied.

    Hermitian input is read as it is (``eigh`` without symmetrising, which
    would overflow at entries near the dtype's maximum).
    """
    a = clean.a
    if hermitian:
        values, u = jnp.linalg.eigh(a, symmetrize_input=False)
        factors = SvdFactors(u, h(u), None, None)
        magnitude = jnp.abs(values)
    else:
        m, n = a.shape[-2:]
        tall, wide = reduces(m, n)
        core = h(a) if wide else a  # wide: A^H = Q R, so A = R^H Q^H and the SVD is that of R^H
        q = None
        if tall or wide:
            q, core = _sharding.qr(core) if reduction is None else reduction()  # TSQR if row-sharded
            core = h(core) if wide else core
        u, values, vh = jnp.linalg.svd(core, full_matrices=False)
        factors = SvdFactors(u, vh, q if tall else None, q if wide else None)
        magnitude = values
    keep, nan_tol = _tolerance.keep(magnitude, largest(values, hermitian), atol, rtol)
    return Decomposition(values, keep, clean.bad | nan_tol, factors)


def _gram(a: jax.Array, d: Decomposition, inv: jax.Array, scale: jax.Array, hermitian: bool) -> jax.Array:
    """``c^2`` times ``V diag(1/s^2) V^H`` (tall) or ``U diag(1/s^2) U^H`` (wide), from the small factor."""
    left, right_h = d.factors.left, d.factors.right_h
    m, n = a.shape[-2:]
    if hermitian or m == n:
        return zero_tangent(a[..., :0, :0])  # empty; varies like a inside a user's shard_map
    cinv = inv * scale[..., 0]
    inv2 = (cinv * jnp.conj(cinv))[..., None, :]
    if m > n:
        return mm(h(right_h) * inv2, right_h)
    return mm(left * inv2, h(left))


def pinv(
    clean: Clean, atol: jax.Array, rtol: jax.Array, hermitian: bool, reduction: Reduction | None = None
) -> PinvParts:
    """:class:`PinvParts` from the SVD; ``gram`` costs ``n^3`` from the small factor, not ``m n^2``."""
    d = decompose(clean, atol, rtol, hermitian, reduction)
    dtype = clean.a.dtype
    # A bad matrix gets NaN reciprocals, which the product spreads to all of its
    # pinv (NaN * 0 is NaN): cheaper than a select on the full output.
    inv = nan_where(d.bad, masked_reciprocal(d.values, d.keep)).astype(dtype)
    f = d.factors
    p = mm(h(f.right_h) * inv[..., None, :], h(f.left))
    if f.q_left is not None:  # tall, A = Q R: pinv(A) = pinv(R) Q^H
        p = mm_h(p, f.q_left)
    if f.q_right is not None:  # wide, A = R^H Q^H: pinv(A) = Q pinv(R^H)
        p = mm(f.q_right, p)
    scale = unit_scale(largest(d.values, hermitian)).astype(dtype)[..., None, None]
    gram = _gram(clean.a, d, inv, scale, hermitian)
    values = nan_where(d.bad, d.values)
    return PinvParts(p, gram, float_rank(rank(d.keep, d.bad), values.dtype), scale, values)


def solve(
    clean: Clean, b: jax.Array, atol: jax.Array, rtol: jax.Array, reduction: Reduction | None = None
) -> SolveParts:
    """:class:`SolveParts` from the SVD, without forming ``pinv(a)``: ``V diag(1/s) U^H b``."""
    d = decompose(clean, atol, rtol, False, reduction)
    f = d.factors
    inv = nan_where(d.bad, masked_reciprocal(d.values, d.keep)).astype(clean.a.dtype)
    y = hmm(f.q_left, b) if f.q_left is not None else b
    y = hmm(f.left, y) * inv[..., :, None]  # diag(1/s) U^H b
    x = mm(h(f.right_h), y)
    if f.q_right is not None:
        x = mm(f.q_right, x)
    return SolveParts(x, float_rank(rank(d.keep, d.bad), d.values.dtype), nan_where(d.bad, d.values))
