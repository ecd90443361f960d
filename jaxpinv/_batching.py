"""Batch-level predicates that stay unbatched under ``jax.vmap``.

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
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap


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
