"""Broadcasting is not batching: a matrix that broadcasts against tolerances, dampings or right-hand sides is factored once.

Two kinds of check. Structure: the factorizations in the traced program
(``svd``, ``eigh``, ``geqrf``) run on ``a``'s own batch, never on the
broadcast batch (forward and gradient). Values: each entry of the broadcast
result against an independent float64 reference (NumPy's pinv, lstsq and the
ridge formula), and derivatives against central finite differences.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import check_grads_per_entry, forward_tol, jaxpr_eqns, random_matrix, rel_err

import jaxpinv

pytestmark = pytest.mark.x64  # float64 inputs and references (see conftest)

FACTORIZATIONS = {"svd", "eigh", "geqrf"}


def _factored_batches(f, *args):
    """The batch size of every factorization in the jaxpr of ``f(*args)`` (sub-jaxprs included)."""
    return [math.prod(e.invars[0].aval.shape[:-2]) for e in jaxpr_eqns(f, *args) if e.primitive.name in FACTORIZATIONS]


A = random_matrix(np.random.default_rng(0), (2, 6, 4), cond=10.0)  # a batch of 2
RTOL = np.logspace(-3, -0.3, 5)[:, None]  # (5, 1) against (2,): results (5, 2)
LAM = np.logspace(-2, 1, 5)[:, None]
B = np.random.default_rng(1).standard_normal((7, 1, 6, 2))  # (7, 1) against (2,): results (7, 2)

CALLS = {
    "pinv rtol": lambda a: jaxpinv.pinv(a, rtol=RTOL),
    "pinv atol hermitian": lambda a: jaxpinv.pinv(a[..., :4, :], atol=RTOL, hermitian=True),
    "pinverse rcond": lambda a: jaxpinv.pinverse(a, rcond=RTOL),
    "damped_pinv": lambda a: jaxpinv.damped_pinv(a, LAM),
    "lstsq b": lambda a: jaxpinv.lstsq(a, B),
    "lstsq b svd": lambda a: jaxpinv.lstsq(a, B, method="svd"),
    "lstsq b damping": lambda a: jaxpinv.lstsq(a, B, damping=LAM[:, :, None][:2]),
    "lstsq_full b": lambda a: jaxpinv.lstsq_full(a, B).solution,
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("grad", [False, True])
def test_each_matrix_is_factored_once(name, grad):
    f = CALLS[name]
    if grad:
        f = jax.grad(lambda a, f=f: jnp.sum(f(a)))
    sizes = _factored_batches(f, jnp.asarray(A))
    assert sizes and all(size == A.shape[0] for size in sizes), sizes


def test_matrix_rank_factors_once():
    sizes = _factored_batches(lambda a: jaxpinv.matrix_rank(a, rtol=RTOL), jnp.asarray(A))
    assert sizes == [A.shape[0]]


def _numpy_pinv(a, rtol):
    """NumPy's float64 pinv: ``rcond`` is the same strict relative cutoff."""
    return np.linalg.pinv(a, rcond=rtol)


@pytest.mark.parametrize("method", ["auto", "svd"])
def test_tolerance_sweep_matches_numpy_per_entry(method):
    # Singular values 1 ... 1e-2 (cond 100) and a sweep of cutoffs crossing them, so the entries
    # differ in rank; a tolerance of 0.5 sits between values, never on one.
    rng = np.random.default_rng(2)
    a = random_matrix(rng, (3, 8, 5), cond=100.0)
    rtol = np.array([1e-6, 0.015, 0.2, 0.5])[:, None]
    p = np.asarray(jaxpinv.pinv(a, rtol=rtol, method=method))
    rank = np.asarray(jaxpinv.matrix_rank(a, rtol=rtol))
    assert p.shape == (4, 3, 5, 8) and rank.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            # kept part's condition at most 100: 10 n eps cond (helpers.forward_tol)
            assert rel_err(p[i, j], _numpy_pinv(a[j], rtol[i, 0])) < forward_tol(np.float64, 100.0, 8)
            assert rank[i, j] == np.linalg.matrix_rank(a[j], tol=rtol[i, 0] * np.linalg.norm(a[j], 2))
    assert len(set(rank.ravel())) > 1  # the sweep crosses singular values


def test_damping_sweep_matches_the_ridge_formula():
    rng = np.random.default_rng(3)
    a = random_matrix(rng, (2, 7, 4), cond=50.0)
    lam = np.array([0.0, 1e-2, 0.3, 3.0])[:, None]
    x = np.asarray(jaxpinv.damped_pinv(a, lam))
    assert x.shape == (4, 2, 4, 7)
    for i in range(4):
        for j in range(2):
            ref = np.linalg.solve(a[j].T @ a[j] + lam[i, 0] ** 2 * np.eye(4), a[j].T)  # cond <= 2500 in float64
            assert rel_err(x[i, j], ref) < 1e-10


@pytest.mark.parametrize("method", ["auto", "svd"])
@pytest.mark.parametrize("wide", [False, True])
def test_many_right_hand_sides_match_numpy_per_column(method, wide):
    rng = np.random.default_rng(4)
    a = random_matrix(rng, (4, 6) if wide else (6, 4), cond=20.0)
    b = rng.standard_normal((5, 3, a.shape[0], 2))  # a broadcasts against (5, 3)
    x = np.asarray(jaxpinv.lstsq(a, b, method=method))
    assert x.shape == (5, 3, a.shape[1], 2)
    ref = np.linalg.pinv(a) @ b  # min-norm least squares, float64
    assert rel_err(x, ref) < forward_tol(np.float64, 20.0, 6)
    full = jaxpinv.lstsq_full(a, b)
    assert full.residuals.shape == (5, 3, 2) and full.rank.shape == (5, 3) and full.singular_values.shape == (5, 3, 4)
    residuals = np.sum((a @ ref - b) ** 2, axis=-2)
    np.testing.assert_allclose(full.residuals, residuals, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(full.singular_values, np.broadcast_to(np.linalg.svd(a)[1], (5, 3, 4)), rtol=1e-12)
    assert np.all(np.asarray(full.rank) == 4)


@pytest.mark.parametrize("method", ["auto", "qr"])  # "qr": its solve broadcasts the factors against b
def test_a_batch_and_b_batch_and_tolerances_together(method):
    # a (2, 1, m, n), b (3, m, k), rtol (4, 1, 1): batch (4, 2, 3); a factored at (2, 1), cut at (4, 2, 1)
    rng = np.random.default_rng(5)
    a = random_matrix(rng, (2, 1, 6, 4), cond=100.0)
    b = rng.standard_normal((3, 6, 2))
    rtol = np.array([1e-6, 0.015, 0.2, 0.5])[:, None, None]
    x = np.asarray(jaxpinv.lstsq(a, b, rtol=rtol, method=method))
    assert x.shape == (4, 2, 3, 4, 2)
    for i in range(4):
        for j in range(2):
            ref = _numpy_pinv(a[j, 0], rtol[i, 0, 0]) @ b
            assert rel_err(x[i, j], ref) < forward_tol(np.float64, 100.0, 6)
    sizes = _factored_batches(lambda a: jaxpinv.lstsq(a, b, rtol=rtol, method=method), jnp.asarray(a))
    assert sizes and all(size == 2 for size in sizes), sizes


def test_a_non_finite_column_of_one_right_hand_side_spoils_only_its_column():
    rng = np.random.default_rng(6)
    a = random_matrix(rng, (6, 4), cond=10.0)
    b = rng.standard_normal((3, 6, 2))
    b[1, 2, 0] = np.nan
    x = np.asarray(jaxpinv.lstsq(a, b))
    assert np.isnan(x[1, :, 0]).all()
    mask = np.ones(x.shape, bool)
    mask[1, :, 0] = False
    assert np.isfinite(x[mask]).all()
    g = jax.grad(lambda a: jnp.nansum(jaxpinv.lstsq(a, b)[jnp.arange(3) != 1]))(jnp.asarray(a))
    assert np.isfinite(np.asarray(g)).all()


# Derivatives: central finite differences in float64, per entry, to second order: the step (1e-5)
# and the conditions (<= 5) put the differences' truncation and rounding near 1e-6 for the second
# derivative (the suite's tolerance for order 2, as in test_transforms), against errors of O(1).
def test_derivatives_of_a_tolerance_sweep():
    a = random_matrix(np.random.default_rng(7), (2, 5, 3), cond=5.0)
    rtol = np.array([1e-6, 1e-3])[:, None]
    # First order: the second-order projections here sum 60 entries of size ~1e2, beyond what the
    # helper's per-entry scaling of the tolerance allows for finite differences (1.8e-6 relative).
    check_grads_per_entry(lambda a: jaxpinv.pinv(a, rtol=rtol), (a,), order=1, tol=1e-6)


def test_derivatives_of_a_damping_sweep_in_a_and_the_damping():
    a = random_matrix(np.random.default_rng(8), (5, 3), cond=5.0)
    lam = np.array([0.1, 0.5, 2.0])
    check_grads_per_entry(jaxpinv.damped_pinv, (a, lam), order=2, tol=1e-5)


@pytest.mark.parametrize("method", ["auto", "svd"])
def test_derivatives_of_many_right_hand_sides_in_a_and_b(method):
    rng = np.random.default_rng(9)
    a = random_matrix(rng, (6, 4), cond=5.0)
    b = rng.standard_normal((3, 6, 1))
    check_grads_per_entry(lambda a, b: jaxpinv.lstsq(a, b, method=method), (a, b), order=2, tol=1e-5)


def test_vmap_over_the_tolerances_agrees_with_the_broadcast_call():
    # The per-tolerance function under vmap (a closed over) is how a sweep is also written.
    a = random_matrix(np.random.default_rng(10), (6, 4), cond=100.0)
    rtol = np.array([1e-6, 0.015, 0.2, 0.5])
    mapped = np.asarray(jax.vmap(lambda r: jaxpinv.pinv(a, rtol=r))(rtol))
    for i, r in enumerate(rtol):
        assert rel_err(mapped[i], _numpy_pinv(a, r)) < forward_tol(np.float64, 100.0, 6)
