"""Matrix products shared by the forward passes and the rules (every one at ``HIGHEST`` precision)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

_mm = partial(jnp.matmul, precision=lax.Precision.HIGHEST)


def _h(x: jax.Array) -> jax.Array:
    """Conjugate transpose of the last two axes."""
    return jnp.conj(jnp.swapaxes(x, -1, -2))


def _hmm(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x^H @ y`` without materialising ``x^H`` (``conj(x^T conj(y))``; see :func:`_mm_h`)."""
    out = jnp.einsum("...ji,...jk->...ik", x, jnp.conj(y), precision=lax.Precision.HIGHEST)
    return jnp.conj(out)


def _mm_h(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x @ y^H`` without materialising ``y^H``.

    Written as ``conj(conj(x) @ y^T)`` with the transpose folded into the
    contraction, so that when ``y`` is a primal value and ``x`` a tangent,
    reverse mode saves ``y`` itself rather than a transposed copy.
    """
    out = jnp.einsum("...ij,...kj->...ik", jnp.conj(x), y, precision=lax.Precision.HIGHEST)
    return jnp.conj(out)
