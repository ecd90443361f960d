"""Matrix products shared by the forward passes and the rules (every one at ``HIGHEST`` precision).

Each product checks, at trace time, whether it contracts a dimension that is
explicitly sharded (a matrix sharded along its rows, see
:mod:`jaxpinv._sharding`); JAX's explicit sharding then needs the output's
sharding spelled out, and XLA adds an all-reduce of the (small) result.
Unsharded operands take the plain product.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv._sharding import contraction_sharding

_HI = lax.Precision.HIGHEST


def _mm(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x @ y``."""
    out = contraction_sharding(x, y, -2, -1, -1, -2)
    if out is None:
        return jnp.matmul(x, y, precision=_HI)
    return jnp.einsum("...ij,...jk->...ik", x, y, precision=_HI, out_sharding=out)


def _h(x: jax.Array) -> jax.Array:
    """Conjugate transpose of the last two axes."""
    return jnp.conj(jnp.swapaxes(x, -1, -2))


def _hmm(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x^H @ y`` without materialising ``x^H`` (``conj(x^T conj(y))``; see :func:`_mm_h`)."""
    out = jnp.einsum(
        "...ji,...jk->...ik",
        x,
        jnp.conj(y),
        precision=_HI,
        out_sharding=contraction_sharding(x, y, -1, -1, -2, -2),
    )
    return jnp.conj(out)


def _mm_h(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x @ y^H`` without materialising ``y^H``.

    Written as ``conj(conj(x) @ y^T)`` with the transpose folded into the
    contraction, so that when ``y`` is a primal value and ``x`` a tangent,
    reverse mode saves ``y`` itself rather than a transposed copy.
    """
    out = jnp.einsum(
        "...ij,...kj->...ik",
        jnp.conj(x),
        y,
        precision=_HI,
        out_sharding=contraction_sharding(x, y, -2, -2, -1, -1),
    )
    return jnp.conj(out)


def _zeros(x: jax.Array) -> jax.Array:
    """Zeros shaped like ``x`` (a rule's zero tangent), varying over the same mesh axes as ``x``.

    Inside a user's ``shard_map``, a tangent must vary over the mesh axes its
    primal varies over; ``jnp.zeros_like`` drops that on jax 0.6. Finite
    entries times 0 keep it (``x`` may hold NaN or Inf, hence the ``where``).
    """
    return jnp.where(jnp.isfinite(x), x, 0) * 0
