"""Mixed batches: the few members a fast path turns away are redone by the SVD alone.

The dispatch lets up to an eighth of a batch of 8 or more fail the
QR path's test: those members are gathered into a buffer of that fixed size,
decomposed by the SVD and scattered back; more, and the whole batch takes the
SVD. Under ``jax.vmap`` the dispatch runs once on the whole mapped batch
(``jaxpinv._batching.whole_batch``), so the per-matrix function under
``vmap`` gets the same split. Checked here: which path ran
(``path_taken``), that the SVD in the program runs on the buffer only, each
member against NumPy in float64 (the redone members with their truncation),
and derivatives against central differences, batched and under ``vmap``
both ways round.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import check_grads_per_entry, forward_tol, random_matrix, rel_err

import jaxpinv
from jaxpinv.internal import path_taken

pytestmark = pytest.mark.x64  # float64 references (see conftest)

BATCH = 16
CAPACITY = BATCH // 8  # the dispatch's buffer: an eighth of the batch
COND = 10.0


def _batch(shape, turned_away, dtype=np.float32, seed=0):
    """``BATCH`` matrices of condition ``COND``; members ``turned_away`` get rank ``k - 2`` (the QR path refuses them)."""
    rng = np.random.default_rng(seed)
    a = random_matrix(rng, (BATCH, *shape), np.float64, cond=COND)
    k = min(shape)
    for i in turned_away:
        a[i] = random_matrix(rng, shape, np.float64, rank=k - 2, cond=COND)
    return a.astype(dtype)


def _reference(a, rtol):
    """NumPy float64 pinv per member, with the default cutoff ``max(m, n) * eps`` of ``a``'s dtype."""
    return np.linalg.pinv(a.astype(np.float64), rcond=rtol)


def _svd_batches(f, *args):
    """The batch sizes the program's SVDs run at, each only where a ``cond`` takes its branch.

    A ``cond`` whose predicate ``vmap`` batched would become a ``select``
    running every branch: its SVDs would then sit outside any ``cond``.
    """
    found = set()

    def walk(jaxpr, in_branch):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "svd":
                assert in_branch, "an SVD outside a cond runs for every batch"
                found.add(eqn.invars[0].aval.shape[0])
            inside = in_branch or eqn.primitive.name == "cond"
            for param in eqn.params.values():
                for sub in param if isinstance(param, (tuple, list)) else (param,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        walk(inner, inside)

    walk(jax.make_jaxpr(f)(*args).jaxpr, False)
    return sorted(found)


SHAPES = [(12, 12), (20, 8), (8, 20)]
CALLS = {
    "batched": lambda f: f,
    "vmap": jax.vmap,
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("call", CALLS)
def test_a_few_turned_away_members_are_redone_alone(shape, call):
    a = _batch(shape, turned_away=(3, 11))
    rtol = max(shape) * float(jnp.finfo(np.float32).eps)
    assert path_taken(a, method="qr") == "qr+svd"
    pinv = CALLS[call](lambda x: jaxpinv.pinv(x, method="qr"))
    # The SVD of the buffer (CAPACITY members) or of the whole batch, each in its own branch, also
    # for the per-matrix function under vmap.
    assert _svd_batches(pinv, a) == [CAPACITY, BATCH]
    ref = _reference(a, rtol)
    # every member within the backward-stable bound 10 n eps cond (helpers.forward_tol); the redone
    # members are rank k - 2: a value the QR path kept would be off by O(1)
    tol = forward_tol(np.float32, COND, max(shape))
    out = np.asarray(pinv(a))
    for i in range(BATCH):
        assert rel_err(out[i], ref[i]) < tol, i


@pytest.mark.parametrize("call", CALLS)
def test_lstsq_redoes_the_few_members_alone(call):
    a = _batch((20, 8), turned_away=(0, 15))
    b = np.random.default_rng(1).standard_normal((BATCH, 20)).astype(np.float32)
    lstsq = CALLS[call](lambda x, y: jaxpinv.lstsq(x, y, method="qr"))
    assert _svd_batches(lstsq, a, b) == [CAPACITY, BATCH]
    rtol = 20 * float(jnp.finfo(np.float32).eps)
    ref = np.einsum("...ij,...j->...i", _reference(a, rtol), b.astype(np.float64))
    out = np.asarray(lstsq(a, b))
    for i in range(BATCH):  # the redone members solved with their truncation (rank 6)
        assert rel_err(out[i], ref[i]) < forward_tol(np.float32, COND, 20), i


def test_more_than_the_buffer_takes_the_svd_for_the_whole_batch():
    a = _batch((12, 12), turned_away=(1, 5, 9))  # 3 > CAPACITY
    assert path_taken(a, method="qr") == "svd"
    ref = _reference(a, 12 * float(jnp.finfo(np.float32).eps))
    assert rel_err(jaxpinv.pinv(a, method="qr"), ref) < forward_tol(np.float32, COND, 12)
    assert path_taken(_batch((12, 12), turned_away=()), method="qr") == "qr"


@pytest.mark.parametrize("size", [1, 7])
def test_a_batch_below_eight_matrices_has_no_buffer(size):
    # The split's kernels repay their compile time only where the buffer is at most an eighth.
    a = _batch((12, 12), turned_away=(0,))[:size]
    assert path_taken(a, method="qr") == "svd"
    assert _svd_batches(lambda x: jaxpinv.pinv(x, method="qr"), a) == [size]
    assert path_taken(np.concatenate([a, _batch((12, 12), turned_away=())[: 8 - size]]), method="qr") == "qr+svd"


def test_a_non_finite_member_stays_on_the_fast_path():
    # A flagged member's result is NaN on either path: it passes the test and fills no slot.
    a = _batch((12, 12), turned_away=(2,))
    a[7, 0, 0] = np.nan
    assert path_taken(a, method="qr") == "qr+svd"
    out = np.asarray(jaxpinv.pinv(a, method="qr"))
    assert np.isnan(out[7]).all()
    ref = _reference(np.delete(a, 7, axis=0), 12 * float(jnp.finfo(np.float32).eps))
    assert rel_err(np.delete(out, 7, axis=0), ref) < forward_tol(np.float32, COND, 12)


def _near_cutoff_batch(shape, seed=2):
    """Full rank everywhere; members 4 and 9 have ``sigma_min = 6 atol``: the SVD keeps it, the QR path refuses it."""
    rng = np.random.default_rng(seed)
    a = random_matrix(rng, (BATCH, *shape), np.float64, cond=2.0)
    for i in (4, 9):
        a[i] = random_matrix(rng, shape, np.float64, cond=NEAR_COND)
    return a


# The members of condition 2 (sigma_min 0.5) pass the QR path's test (its estimate of sigma_min is
# low by the bounds' factor k^(1/4) < 1.7 at most: above 8 atol), the two near ones (sigma_min =
# 6 atol, condition 8) fail it (the estimate is never above sigma_min) and the SVD keeps all their
# values. Central differences (step h = 1e-5 along a tangent t of entries up to about 3) are off by
# about h^2 |t|^3 / sigma_min^4 / 6, some 2e-6 per entry of the near members, and the reverse-mode
# check compares one inner product over all entries at tol / size (helpers.check_grads_per_entry).
ATOL = 0.02
NEAR_COND = 1 / (6 * ATOL)
FD_TOL = 1e-4


@pytest.mark.parametrize("shape", [(6, 6), (7, 4)], ids=str)
def test_derivatives_of_a_mixed_batch(shape):
    a = _near_cutoff_batch(shape)
    assert path_taken(a, atol=ATOL, method="qr") == "qr+svd"

    def f(x):
        return jaxpinv.pinv(x, atol=ATOL, method="qr")

    def loss(x):
        return jnp.sum(jnp.sin(f(x)))

    check_grads_per_entry(f, (a,), order=1, tol=FD_TOL)
    check_grads_per_entry(jax.vmap(f), (a,), order=1, tol=FD_TOL)
    grad_of_vmap = jax.grad(lambda x: jnp.sum(jax.vmap(loss)(x)))(a)
    vmap_of_grad = jax.vmap(jax.grad(loss))(a)
    reference = jax.grad(lambda x: jnp.sum(jnp.sin(jaxpinv.pinv(x, atol=ATOL, method="svd"))))(a)
    # the same derivative by either path: 10 n eps cond relative (helpers.forward_tol)
    tol = forward_tol(np.float64, NEAR_COND, max(shape))
    assert rel_err(grad_of_vmap, reference) < tol
    assert rel_err(vmap_of_grad, reference) < tol


def test_derivatives_of_lstsq_on_a_mixed_batch():
    a = _near_cutoff_batch((7, 4), seed=3)
    b = np.random.default_rng(4).standard_normal((BATCH, 7))
    assert path_taken(a, atol=ATOL, method="qr") == "qr+svd"

    def solve(x, y):
        return jaxpinv.lstsq(x, y, atol=ATOL, method="qr")

    check_grads_per_entry(solve, (a, b), order=1, tol=FD_TOL)
    check_grads_per_entry(jax.vmap(solve), (a, b), order=1, tol=FD_TOL)


def test_hermitian_batch_splits_at_the_last_path_before_eigh():
    n = 64  # the policy compiles both fast paths in for 16 of them
    rng = np.random.default_rng(6)
    q = np.linalg.qr(rng.standard_normal((BATCH, n, n)))[0]
    lam = np.logspace(0, -1, n) * np.where(np.arange(BATCH)[:, None] == 5, -1.0, 1.0)  # member 5 indefinite
    a = np.einsum("bij,bj,bkj->bik", q, lam, q)
    assert path_taken(a, hermitian=True, method="cholesky") == "cholesky+svd"  # alone: eigh for member 5
    # Cholesky, then QR: member 5 fails Cholesky's test, so the whole batch moves on to the QR path,
    # which takes it; a singular member 9 is then redone by eigh alone.
    a[9] = np.einsum("ij,j,kj->ik", q[9], np.where(np.arange(n) < n - 2, lam[9], 0.0), q[9])
    assert path_taken(a, hermitian=True) == "qr+svd"
    ref = np.linalg.pinv(a, hermitian=True, rcond=n * float(jnp.finfo(np.float64).eps))
    out = np.asarray(jaxpinv.pinv(a, hermitian=True))
    for i in range(BATCH):  # member 9 with its two zero eigenvalues dropped: 10 n eps cond
        assert rel_err(out[i], ref[i]) < forward_tol(np.float64, 10.0, n), i
