"""The static policy: ``method="auto"`` compiles the QR path in only where its gain can repay its compile time.

The rule is decided at trace time from the shape (``matrices * m * n *
min(m, n) >= 64**3``, the performance page) and is overridable: ``method="qr"``
compiles the QR path in at any size, ``method="svd"`` never. Structure (is a
``geqrf`` in the program?) and ``path_taken`` are checked on both sides of
the threshold; values are the same whichever path runs (NumPy reference).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import forward_tol, jaxpr_eqns, random_matrix, rel_err

import jaxpinv
from jaxpinv.internal import QR_SMALL, path_taken


def _has_geqrf(f, *args) -> bool:
    """Is there a ``geqrf`` anywhere in the program (sub-jaxprs included)?"""
    return any(eqn.primitive.name == "geqrf" for eqn in jaxpr_eqns(f, *args))


# (shape, compiled in under "auto"): the threshold is 64^3 = 262144 multiply-adds' worth of work
SHAPES = [
    ((8, 8), False),
    ((63, 63), False),
    ((64, 64), True),
    ((256, 16), False),  # 65536
    ((1024, 16), True),  # 262144
    ((16, 1024), True),  # wide alike
    ((4096, 8, 8), True),  # a batch of small matrices: 2097152
    ((3, 32, 32), False),  # 98304
]


@pytest.mark.parametrize("shape,compiled", SHAPES)
def test_auto_compiles_the_qr_path_in_from_the_threshold(shape, compiled):
    a = jnp.asarray(random_matrix(np.random.default_rng(sum(shape)), shape, np.float32, cond=10.0))
    assert _has_geqrf(jaxpinv.pinv, a) == compiled
    assert _has_geqrf(lambda a: jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a)))(a), a) == compiled
    assert path_taken(a) == ("qr" if compiled else "svd")
    assert path_taken(a, method="qr") == "qr"  # the override: at any size
    assert path_taken(a, method="svd") == "svd"


@pytest.mark.parametrize("shape", [(6, 6), (9, 4), (2, 4, 9)])
def test_values_do_not_depend_on_the_policy(shape):
    rng = np.random.default_rng(1)
    a = random_matrix(rng, shape, np.float32, cond=100.0)
    ref = np.linalg.pinv(a.astype(np.float64))
    for method in ("auto", "qr", "svd"):
        # both paths backward stable: 10 n eps cond (helpers.forward_tol)
        assert rel_err(jaxpinv.pinv(a, method=method), ref) < forward_tol(np.float32, 100.0, max(shape[-2:]))
    b = rng.standard_normal(shape[:-1]).astype(np.float32)
    x_ref = np.einsum("...ij,...j->...i", ref, b.astype(np.float64))
    for method in ("auto", "qr", "svd"):
        assert rel_err(jaxpinv.lstsq(a, b, method=method), x_ref) < forward_tol(np.float32, 100.0, max(shape[-2:]))


def test_hermitian_positive_definite_takes_cholesky_from_the_threshold():
    rng = np.random.default_rng(3)
    q = np.linalg.qr(rng.standard_normal((64, 64)))[0]
    spd = ((q * np.logspace(0, -2, 64)) @ q.T).astype(np.float32)
    indefinite = ((q * np.logspace(0, -2, 64) * (-1.0) ** np.arange(64)) @ q.T).astype(np.float32)
    assert path_taken(spd, hermitian=True) == "cholesky"
    assert path_taken(indefinite, hermitian=True) == "qr"  # potrf fails: the next path
    assert path_taken(spd[:8, :8] + 10 * np.eye(8, dtype=np.float32), hermitian=True) == "svd"  # below
    assert path_taken(spd[:8, :8] + 10 * np.eye(8, dtype=np.float32), hermitian=True, method="cholesky") == "cholesky"
    assert path_taken(spd, hermitian=False) == "qr"  # only hermitian=True reads it as Hermitian


def test_lstsq_follows_the_same_policy():
    rng = np.random.default_rng(2)
    small = jnp.asarray(random_matrix(rng, (8, 8), np.float32, cond=10.0))
    large = jnp.asarray(random_matrix(rng, (64, 64), np.float32, cond=10.0))
    assert not _has_geqrf(jaxpinv.lstsq, small, small[:, 0])
    assert _has_geqrf(lambda a, b: jaxpinv.lstsq(a, b, method="qr"), small, small[:, 0])
    assert _has_geqrf(jaxpinv.lstsq, large, large[:, 0])


def test_under_vmap_the_policy_sees_the_whole_batch():
    # The dispatch runs once on the whole mapped batch (jaxpinv._batching.whole_batch): vmap over
    # 4096 8 x 8 matrices compiles the QR path in as the batched call does, and vmap over one 8 x 8
    # matrix's tolerances (the matrix not mapped) does not.
    a = jnp.asarray(random_matrix(np.random.default_rng(4), (4096, 8, 8), np.float32, cond=10.0))
    assert _has_geqrf(jaxpinv.pinv, a)
    assert _has_geqrf(jax.vmap(jaxpinv.pinv), a)
    assert _has_geqrf(jax.vmap(jax.vmap(jaxpinv.pinv)), a.reshape(64, 64, 8, 8))
    assert _has_geqrf(jax.vmap(jax.grad(lambda x: jnp.sum(jaxpinv.pinv(x)))), a)
    assert not _has_geqrf(jax.vmap(lambda r: jaxpinv.pinv(a[0], rtol=r)), jnp.linspace(0.0, 0.1, 4096))
    assert not _has_geqrf(jax.vmap(jaxpinv.pinv), a[:4])


def _has_loop(f, *args) -> bool:
    """Is there a loop (the power method's) anywhere in the program?"""
    return any(eqn.primitive.name in ("while", "scan") for eqn in jaxpr_eqns(f, *args))


@pytest.mark.parametrize(
    "shape,loop",
    [
        ((QR_SMALL, QR_SMALL), False),
        ((4 * QR_SMALL, QR_SMALL), False),  # tall: R is QR_SMALL wide, whatever max(m, n)
        ((QR_SMALL, 4 * QR_SMALL), False),  # wide alike
        ((QR_SMALL + 1, QR_SMALL + 1), True),
        ((4 * QR_SMALL, QR_SMALL + 1), True),
    ],
)
def test_power_loop_compiled_in_only_where_r_is_above_qr_small(shape, loop):
    # Up to QR_SMALL the estimates are norm bounds of R and the explicit R^-1 (no loop: the
    # performance page's compile-time measurement); the size is R's, not max(m, n).
    a = jnp.zeros(shape, jnp.float32)
    assert _has_loop(jaxpinv.pinv, a) == loop
    assert _has_loop(jaxpinv.lstsq, a, a[:, 0]) == loop
    h = jnp.zeros(shape[-1:] * 2, jnp.float32)  # the Cholesky path: A itself, k x k
    assert _has_loop(lambda x: jaxpinv.pinv(x, hermitian=True), h) == (shape[-1] > QR_SMALL)
