"""Matrix products and small matrix idioms shared by every path and rule (products at ``HIGHEST`` precision).

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

from jaxpinv import _sharding

HIGHEST = lax.Precision.HIGHEST


def mm(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x @ y``."""
    out = _sharding.contraction_sharding(x, y, -2, -1, -1, -2)
    if out is None:
        return jnp.matmul(x, y, precision=HIGHEST)
    return jnp.einsum("...ij,...jk->...ik", x, y, precision=HIGHEST, out_sharding=out)


def h(x: jax.Array) -> jax.Array:
    """Conjugate transpose of the last two axes."""
    return jnp.conj(jnp.swapaxes(x, -1, -2))


def hmm(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x^H @ y`` without materialising ``x^H`` (``conj(x^T conj(y))``; see :func:`mm_h`)."""
    out = jnp.einsum(
        "...ji,...jk->...ik",
        x,
        jnp.conj(y),
        precision=HIGHEST,
        out_sharding=_sharding.contraction_sharding(x, y, -1, -1, -2, -2),
    )
    return jnp.conj(out)


def mm_h(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x @ y^H`` without materialising ``y^H``.

    Written as ``conj(conj(x) @ y^T)`` with the transpose folded into the
    contraction, so that when ``y`` is a primal value and ``x`` a tangent,
    reverse mode saves ``y`` itself rather than a transposed copy.
    """
    out = jnp.einsum(
        "...ij,...kj->...ik",
        jnp.conj(x),
        y,
        precision=HIGHEST,
        out_sharding=_sharding.contraction_sharding(x, y, -2, -2, -1, -1),
    )
    return jnp.conj(out)


def hmv(x: jax.Array, v: jax.Array) -> jax.Array:
    """``x^H v``; a multiply-and-sum over the rows when ``v`` is one column.

    Under ``jax.jacfwd`` the tangent ``x`` carries a batch of basis directions,
    and XLA's CPU backend runs the matmul form's contraction of a non-minor
    axis about 20x slower than this reduction (see the performance page).
    """
    if v.shape[-1] == 1:
        return jnp.sum(jnp.conj(x) * v, axis=-2)[..., None]
    return hmm(x, v)


def zero_tangent(x: jax.Array) -> jax.Array:
    """Zeros shaped like ``x`` (a rule's zero tangent), varying over the same mesh axes as ``x``.

    Finite entries times 0 (``x`` may hold NaN or Inf, hence the ``where``).
    """
    # jax<0.7: jnp.zeros_like drops the mesh axes a value varies over inside a user's shard_map (seen on 0.6.2)
    return jnp.where(jnp.isfinite(x), x, 0) * 0


def eye_like(x: jax.Array) -> jax.Array:
    """Identity matrices shaped (and sharded) like the square ``x``."""
    return jnp.zeros_like(x) + jnp.eye(x.shape[-1], dtype=x.dtype)


def complement(x: jax.Array) -> jax.Array:
    """``I - x`` for a square ``x``.

    Built inside each branch that needs it (not once outside): a constant
    closed over by a ``jax.checkpoint``-ed branch is saved for reverse mode.
    """
    return jnp.eye(x.shape[-1], dtype=x.dtype) - x


def broadcast_batch(*xs: jax.Array) -> tuple[jax.Array, ...]:
    """Stacks of matrices broadcast to one batch shape (for the LAPACK kernels, which do not broadcast)."""
    batch = jnp.broadcast_shapes(*(x.shape[:-2] for x in xs))
    return tuple(jnp.broadcast_to(x, batch + x.shape[-2:]) for x in xs)


def trsm(t: jax.Array, b: jax.Array, adjoint: bool = False, lower: bool = False) -> jax.Array:
    """``t^-1 b`` (``t^-H b`` with ``adjoint``) for the upper (``lower``: lower) triangle of ``t``; batch dimensions broadcast."""
    t, b = broadcast_batch(t, b)
    return lax.linalg.triangular_solve(t, b, left_side=True, lower=lower, transpose_a=adjoint, conjugate_a=adjoint)
