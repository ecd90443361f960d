"""The one preamble of every jitted implementation: dtypes, broadcasting, meshes, batch alignment, TSQR preparation.

It is fed with what the host-side check (:mod:`jaxpinv._check`) computed, as
a static :class:`Spec`, and validates nothing again.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpinv import _sharding, _tolerance
from jaxpinv._kernel import real_dtype
from jaxpinv._linalg import h


class Spec(NamedTuple):
    """What the host check found (hashable: a static argument of the jitted implementations)."""

    compute: Any
    """The dtype the factorizations run in; its eps sets the default ``rtol``."""
    out: Any
    """The dtype of the result."""
    batch: tuple[int, ...]
    """The result's batch shape: ``a``, ``b``, the tolerances and the damping broadcast."""
    a_batch: tuple[int, ...]
    """The batch shape ``a`` is factored at (``batch`` unless ``b`` alone enlarges it)."""
    hermitian: bool = False


class Prepared(NamedTuple):
    """The preamble's arrays: ``a`` (and ``b``) cast, broadcast and placed; tolerances resolved."""

    a: jax.Array
    atol: jax.Array
    rtol: jax.Array
    b: jax.Array | None = None
    damping: jax.Array | None = None


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
    """Cast to ``spec.compute``, broadcast, put on one mesh and one batch sharding, read the lower triangle if Hermitian.

    ``a``, the tolerances and the damping come out at ``spec.a_batch``, ``b``
    (a stack ``(*, m, k)``) at ``spec.batch``. A matrix TSQR factors in place
    keeps its sharding (``b`` is sharded like its rows); any other sharding
    of the matrix dimensions is gathered (:mod:`jaxpinv._sharding`).
    """
    m, n = a.shape[-2:]
    a = jnp.broadcast_to(a.astype(spec.compute), spec.a_batch + (m, n))
    atol, rtol = _tolerance.resolve(atol, rtol, spec.a_batch, m, n, spec.compute)
    if damping is not None:
        damping = jnp.broadcast_to(jnp.abs(jnp.asarray(damping).astype(real_dtype(spec.compute))), spec.a_batch)
    together = False  # does b meet a at one batch sharding?
    if b is not None:
        b = jnp.broadcast_to(b.astype(spec.compute), spec.batch + b.shape[-2:])
        a, b = _sharding.on_common_mesh(a, b), _sharding.on_common_mesh(b, a)
        together = spec.batch == spec.a_batch
    # In this order: the first explicit batch sharding among them wins (see align_batch).
    arrays = [a, b, atol, rtol, damping] if together else [a, atol, rtol, damping]
    arrays = _sharding.align_batch([x for x in arrays if x is not None], len(spec.a_batch))
    a = arrays.pop(0)
    if together:
        b = arrays.pop(0)
    atol, rtol = arrays.pop(0), arrays.pop(0)
    damping = arrays.pop(0) if damping is not None else None
    a = _sharding.prepare(a)
    if b is not None:
        b = _sharding.like_rows(b, a)
    if spec.hermitian and a.size:
        a = jax.checkpoint(hermitian_from_lower)(a)
    return Prepared(a, atol, rtol, b, damping)
