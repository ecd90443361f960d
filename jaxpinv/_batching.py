"""Batch-level predicates that stay unbatched under ``jax.vmap``, and a call that sees the whole mapped batch.

The derivative rules skip work with ``lax.cond`` on a predicate about the
whole batch ("every matrix has full rank", "some damping is 0"). Under
``jax.vmap`` such a predicate would become *batched*, and JAX then turns the
``cond`` into a ``select`` that runs every branch, and wraps the operands in
``stop_gradient``, which has no transpose rule: reverse mode through the
``vmap`` fails (jax-ml/jax#22011). :func:`all_true` and :func:`any_true` are
``jnp.all`` / ``jnp.any`` whose vmap rule reduces over the mapped axis too and
returns an *unbatched* value, so the ``cond`` stays a ``cond`` and takes one
branch for the whole mapped batch, exactly as for the natively batched call.

Sound because every branch is correct wherever its predicate holds for *all*
matrices together, and the fallback branch (the predicate false) is correct
for every matrix. The predicates only ever see non-differentiated values
(ranks, masks), so these helpers need no derivative rules.

:func:`whole_batch` goes further for the path dispatch: the whole function
runs once on the batch with the mapped axis joined to it, so it can count
and gather members across that axis. It too is only called on values the
rules treat as constants (the cores' primal computation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap

T = TypeVar("T")


@custom_vmap
def all_true(p: jax.Array) -> jax.Array:
    """``jnp.all(p)``; under ``vmap``, over the mapped axis as well (unbatched result)."""
    return jnp.all(p)


@all_true.def_vmap
def _all_true_vmap(axis_size: int, in_batched: Any, p: jax.Array) -> tuple[jax.Array, bool]:
    # Call all_true again (not just jnp.all), so that an enclosing vmap reduces
    # its own axis too rather than batching this result.
    return all_true(jnp.all(p)), False


@custom_vmap
def any_true(p: jax.Array) -> jax.Array:
    """``jnp.any(p)``; under ``vmap``, over the mapped axis as well (unbatched result)."""
    return jnp.any(p)


@any_true.def_vmap
def _any_true_vmap(axis_size: int, in_batched: Any, p: jax.Array) -> tuple[jax.Array, bool]:
    return any_true(jnp.any(p)), False


def whole_batch(fn: Callable[..., T], args: Sequence[jax.Array], cores: Sequence[int]) -> T:
    """``fn(*args)``, run once on the whole batch also under ``jax.vmap``.

    Under ``vmap`` the mapped axis joins the batch: it becomes the leading
    batch dimension of every mapped argument (a 1 of the others, which
    broadcast against it) and ``fn`` runs on that natively batched call. So ``fn`` sees how
    many matrices it factors (the static policy), its ``cond``s stay ``cond``s,
    and it may gather members across the mapped axis (the dispatch's mixed
    batches). ``cores``: each argument's trailing non-batch dimensions; the
    batch dimensions broadcast from the right, as in a batched call, and
    every output carries the whole batch.
    """

    @custom_vmap
    def call(*xs: jax.Array) -> T:
        return fn(*xs)

    @call.def_vmap
    def _rule(axis_size: int, in_batched: Any, *xs: jax.Array) -> tuple[T, Any]:
        ranks = [x.ndim - core - int(mapped) for x, core, mapped in zip(xs, cores, in_batched)]
        rank = max(ranks)
        # Every argument's batch padded with 1s to one length, the mapped axis (or a 1) in front: a
        # batched call's arguments have batches of one length (jaxpinv._preamble.Spec).
        padded = [
            lax.expand_dims(x, range(1, 1 + rank - r) if mapped else range(1 + rank - r))
            for x, r, mapped in zip(xs, ranks, in_batched)
        ]
        out = whole_batch(fn, padded, cores)  # an enclosing vmap joins in the same way
        # An output at a batch the mapped axis does not reach (a 1 in front: it depends only on
        # unmapped arguments) is the same for every mapped member: unbatched.
        batched = jax.tree.map(lambda x: axis_size == 1 or x.shape[0] != 1, out)
        return jax.tree.map(lambda x, b: x if b else x[0], out, batched), batched

    return call(*args)


def fold_columns(fn: Callable[..., jax.Array], consts: Sequence[jax.Array], y: jax.Array) -> jax.Array:
    """``fn(*consts, y)`` for a map ``fn`` that acts on each column of ``y`` ``(..., rows, cols)`` alone.

    Under ``vmap`` with ``y`` mapped and the ``consts`` not, the mapped axis
    joins ``y``'s columns: one call with more columns, not one per member.
    LAPACK kernels such as ``ormqr`` batch by broadcasting every operand, so
    ``jax.jacrev`` of a solve (a ``vmap`` over a basis of cotangents) would
    otherwise run the kernel once per basis vector with the same factors.
    """

    @custom_vmap
    def call(*xs: jax.Array) -> jax.Array:
        return fn(*xs)

    @call.def_vmap
    def _rule(axis_size: int, in_batched: Any, *xs: jax.Array) -> tuple[jax.Array, bool]:
        *cs, v = xs
        if any(in_batched[:-1]):  # the consts vary: the member-by-member batch
            every = [x if b else jnp.broadcast_to(x, (axis_size, *x.shape)) for x, b in zip(xs, in_batched)]
            return fn(*every), True
        folded = jnp.moveaxis(v, 0, -1)  # (..., rows, cols, members)
        out = call(*cs, folded.reshape(*folded.shape[:-2], -1))
        return jnp.moveaxis(out.reshape(*out.shape[:-1], v.shape[-1], axis_size), -1, 0), True

    return call(*consts, y)
