"""Reverse mode keeps little: what ``jax.vjp`` saves between the passes.

The rule needs ``A`` and ``P`` (and, for tall or wide ``A``, the small Gram
pseudo-inverse ``c^2 (A^H A)^+`` or ``c^2 (A A^H)^+`` and the scalar ``c``);
the rank-deficient branches and the Hermitian symmetrisation are
rematerialised. ``jnp.linalg.pinv`` saves its SVD factors and more. A constant
or product left outside a ``jax.checkpoint``-ed branch is what breaks this.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpinv


def saved_bytes(f, a):
    _, f_vjp = jax.vjp(f, a)
    return sum(x.nbytes for x in jax.tree_util.tree_leaves(f_vjp) if hasattr(x, "nbytes"))


@pytest.mark.parametrize(
    "shape,hermitian",
    [
        ((64, 64), False),
        ((64, 64), True),
        ((3, 32, 32), False),
        ((80, 20), False),  # QR-reduced
        ((20, 80), False),  # LQ-reduced
        ((30, 20), False),  # tall, direct SVD
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.complex64, marks=pytest.mark.slow)])
def test_reverse_mode_saves_a_p_and_the_small_gram_matrix(shape, hermitian, dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if dtype == np.complex64 else 0)
    a = jnp.asarray(a.astype(dtype))
    *batch, m, n = shape
    k = min(m, n)
    itemsize = np.dtype(dtype).itemsize
    matrices = 2 * m * n + (0 if m == n else k * k)  # A, P (+ the k x k Gram pseudo-inverse)
    scalars = 64  # rank, scale and the like, per matrix
    bound = int(np.prod(batch, dtype=int)) * (matrices * itemsize + scalars)
    ours = saved_bytes(lambda x: jaxpinv.pinv(x, hermitian=hermitian), a)
    theirs = saved_bytes(lambda x: jnp.linalg.pinv(x, hermitian=hermitian), a)
    assert ours <= bound, (ours, bound)
    assert ours < theirs, (ours, theirs)
