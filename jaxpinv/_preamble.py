"""The one preamble of every jitted implementation: dtypes, broadcasting, meshes, batch alignment, TSQR preparation.

It is fed with what the host-side check (:mod:`jaxpinv._check`) computed, as
a static :class:`Spec`, and validates nothing again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpinv import _sharding, _tolerance
from jaxpinv._kernel import real_dtype
from jaxpinv._linalg import h


class Spec(NamedTuple):
    """What the host check found (hashable: a static argument of the jitted implementations).

    The three batch shapes have one length (``a``'s padded with leading 1s):
    broadcasting is not batching, so a matrix that broadcasts against the
    tolerances, the damping or ``b`` is factored once, at ``a_batch``; the
    cutoffs and filter factors apply at ``cut_batch``; ``b``'s remaining batch
    dimensions are solved as further columns (:func:`_fold`).
    """

    compute: Any
    """The dtype the factorizations run in; its eps sets the default ``rtol``."""
    out: Any
    """The dtype of the result."""
    batch: tuple[int, ...]
    """The result's batch shape: ``a``, ``b``, the tolerances and the damping broadcast."""
    a_batch: tuple[int, ...]
    """``a``'s own batch shape: what is factored."""
    cut_batch: tuple[int, ...]
    """``a``'s batch broadcast with the tolerances' (or the damping's) shapes: where a cutoff applies."""
    hermitian: bool = False


def _same(x: jax.Array) -> jax.Array:
    return x


class Prepared(NamedTuple):
    """The preamble's arrays: ``a`` (and ``b``) cast and placed; tolerances resolved.

    ``a`` is at ``spec.a_batch``, the tolerances and the damping at
    ``spec.cut_batch``, ``b`` folded to ``spec.cut_batch``: ``unfold`` brings
    a result ``(*, r, F k)`` back to ``(*spec.batch, r, k)``.
    """

    a: jax.Array
    atol: jax.Array
    rtol: jax.Array
    b: jax.Array | None = None
    damping: jax.Array | None = None
    unfold: Callable[[jax.Array], jax.Array] = _same


def _folded(spec: Spec) -> tuple[int, ...]:
    """The batch dimensions of ``b`` that neither ``a`` nor a cutoff has: solved as further columns."""
    return tuple(d for d, (c, full) in enumerate(zip(spec.cut_batch, spec.batch)) if c == 1 and full > 1)


def _fold(spec: Spec, b: jax.Array) -> tuple[jax.Array, Callable[[jax.Array], jax.Array]]:
    """``b`` at ``spec.batch`` as ``(*cut_batch, m, F k)`` (its dimensions in :func:`_folded` moved into the
    columns), and the inverse for a result ``(*cut_batch, r, F k)``.

    Column ``j`` of ``pinv(a) @ b`` depends on column ``j`` of ``b`` alone, so
    many right-hand sides against one matrix are one solve with more columns.
    A ``b`` with an explicit sharding is left as it is (a reshape of it would
    need its output's sharding spelled out): ``a`` is still factored once, the
    factors broadcast against ``b`` in the solves.
    """
    free = _folded(spec)
    if not free or _sharding.explicitly_sharded(b):
        return b, _same
    lead = len(spec.batch)
    kept = [d for d in range(lead) if d not in free]
    b = jnp.transpose(b, (*kept, lead, *free, lead + 1))  # (*kept, m, *free, k)
    b = b.reshape(spec.cut_batch + (b.shape[len(kept)], -1))  # cut_batch is 1 at the free dimensions
    # a result comes back as (*kept, r, *free, k): each batch dimension to its place
    order = [0] * (lead + 2)
    for i, d in enumerate(kept):
        order[d] = i
    for i, d in enumerate(free):
        order[d] = len(kept) + 1 + i
    order[lead], order[lead + 1] = len(kept), lead + 1

    def unfold(x: jax.Array) -> jax.Array:
        shape = tuple(spec.cut_batch[d] for d in kept) + (x.shape[-2],) + tuple(spec.batch[d] for d in free) + (-1,)
        return jnp.transpose(x.reshape(shape), order)

    return b, unfold


def hermitian_from_lower(a: jax.Array) -> jax.Array:
    """The Hermitian matrix whose lower triangle is that of ``a`` (diagonal made real).

    This is what LAPACK's ``*heevd`` with ``UPLO='L'`` reads, so forward and
    derivative describe the same function. It is linear in ``a``.
    """
    # jax<=0.10.2: jnp.where over iota masks with a transposed operand crashed XLA's CPU compiler
    # (a segfault) for n >= 1024; tril does not.
    lower = jnp.tril(a, -1)
    diag = jnp.real(jnp.diagonal(a, axis1=-2, axis2=-1)).astype(a.dtype)
    return lower + h(lower) + diag[..., None] * jnp.eye(a.shape[-1], dtype=a.dtype)


def prepare(
    spec: Spec, a: jax.Array, atol: Any = None, rtol: Any = None, b: jax.Array | None = None, damping: Any = None
) -> Prepared:
    """Cast to ``spec.compute``, put on one mesh and one batch sharding, read the lower triangle if Hermitian.

    ``a`` stays at its own batch shape (``spec.a_batch``), the tolerances and
    the damping come out at ``spec.cut_batch``, ``b`` (a stack ``(*, m, k)``)
    folded (:func:`_fold`). A matrix TSQR factors in place keeps its sharding
    (``b`` is sharded like its rows); any other sharding of the matrix
    dimensions is gathered (:mod:`jaxpinv._sharding`).
    """
    m, n = a.shape[-2:]
    a = jnp.broadcast_to(a.astype(spec.compute), spec.a_batch + (m, n))  # leading 1s only
    atol, rtol = _tolerance.resolve(atol, rtol, spec.cut_batch, m, n, spec.compute)
    if damping is not None:
        damping = jnp.broadcast_to(jnp.abs(jnp.asarray(damping).astype(real_dtype(spec.compute))), spec.cut_batch)
    unfold: Callable[[jax.Array], jax.Array] = _same
    if b is not None:
        b, unfold = _fold(spec, jnp.broadcast_to(b.astype(spec.compute), spec.batch + b.shape[-2:]))
        a, b = _sharding.on_common_mesh(a, b), _sharding.on_common_mesh(b, a)
    # In this order: the first explicit batch sharding among them wins (see align_batch); a dimension
    # of size 1 (where one broadcasts against the others) is left unsharded.
    arrays = _sharding.align_batch([x for x in [a, b, atol, rtol, damping] if x is not None], len(spec.batch))
    a = arrays.pop(0)
    if b is not None:
        b = arrays.pop(0)
    atol, rtol = arrays.pop(0), arrays.pop(0)
    damping = arrays.pop(0) if damping is not None else None
    a = _sharding.prepare(a)
    if b is not None:
        b = _sharding.like_rows(b, a)
    if spec.hermitian and a.size:
        a = jax.checkpoint(hermitian_from_lower)(a)
    return Prepared(a, atol, rtol, b, damping, unfold)
