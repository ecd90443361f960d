"""Householder QR from its raw LAPACK form: ``R`` and the reflectors, ``Q`` only on demand.

One way to take a QR apart, shared by the fast path (:mod:`jaxpinv._qr`) and
TSQR (:mod:`jaxpinv._sharding`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


class Householder(NamedTuple):
    """A thin QR ``x = Q R`` of tall (or square) ``x`` (``m x k``, ``m >= k``), ``Q`` not formed."""

    packed: jax.Array
    """The reflectors below the diagonal, ``m x k`` (LAPACK ``geqrf``'s layout)."""
    taus: jax.Array
    """The reflectors' scalar factors, ``k``."""
    r: jax.Array
    """``R``, ``k x k`` upper triangular."""


def factor(x: jax.Array) -> Householder:
    """LAPACK ``geqrf`` of a batch of tall matrices (``jnp.linalg.qr(mode="raw")``)."""
    raw, taus = jnp.linalg.qr(x, mode="raw")
    packed = jnp.swapaxes(raw, -1, -2)
    k = x.shape[-1]
    # jax<0.7: jnp.triu broadcasts its mask with the operand's sharding, which jax 0.6 refuses
    # inside shard_map with a sharded batch; a product with a constant mask does not.
    r = packed[..., :k, :] * np.triu(np.ones((k, k), dtype=x.dtype))
    return Householder(packed, taus, r)


def q(f: Householder) -> jax.Array:
    """The thin ``Q`` (LAPACK ``orgqr``)."""
    return lax.linalg.householder_product(f.packed, f.taus)


# jax<0.10: no public lax.linalg.ormqr (Q^H b from the reflectors without forming Q); Q is formed instead.
_ormqr = getattr(lax.linalg, "ormqr", None)


def apply_q(packed: jax.Array, taus: jax.Array, y: jax.Array, adjoint: bool) -> jax.Array:
    """``Q y`` (``Q^H y`` with ``adjoint``; then only its first ``k`` rows) from ``geqrf``'s reflectors.

    LAPACK ``ormqr``; the batches of the reflectors and of ``y`` broadcast.
    """
    m, k = packed.shape[-2:]
    if packed.shape[:-2] != y.shape[:-2]:  # one factorization, many cutoffs' right-hand sides
        batch = jnp.broadcast_shapes(packed.shape[:-2], y.shape[:-2])
        packed, y = (jnp.broadcast_to(x, batch + x.shape[-2:]) for x in (packed, y))
        taus = jnp.broadcast_to(taus, batch + taus.shape[-1:])
    if _ormqr is None:  # pragma: no cover - jax<0.10 (the floor run takes this)
        q = lax.linalg.householder_product(packed, taus)
        return jnp.matmul(jnp.conj(jnp.swapaxes(q, -1, -2)), y) if adjoint else jnp.matmul(q, y)
    if adjoint:
        return _ormqr(packed, taus, y, left=True, transpose=True)[..., :k, :]
    pad = [(0, 0)] * (y.ndim - 2) + [(0, m - k), (0, 0)]
    return _ormqr(packed, taus, jnp.pad(y, pad), left=True, transpose=False)


def times_q_h(packed: jax.Array, taus: jax.Array, y: jax.Array) -> jax.Array:
    """``y Q^H`` for ``y`` with ``k`` columns (``Q`` thin, ``m x k``) from ``geqrf``'s reflectors.

    LAPACK ``ormqr`` from the right on ``[y, 0]``: no ``Q`` formed and no
    transposes around the kernel (the square and tall pseudo-inverse
    ``R^-1 Q^H``).
    """
    m, k = packed.shape[-2:]
    if _ormqr is None:  # pragma: no cover - jax<0.10 (the floor run takes this)
        q = lax.linalg.householder_product(packed, taus)
        return jnp.matmul(y, jnp.conj(jnp.swapaxes(q, -1, -2)))
    pad = [(0, 0)] * (y.ndim - 1) + [(0, m - k)]
    return _ormqr(packed, taus, jnp.pad(y, pad), left=False, transpose=True)
