"""Forward semantics against independent references (NumPy in float64, explicit SVDs).

Tolerances: for a matrix with kept-part condition number ``kappa`` the forward
error of an SVD-based pinv is ``O(kappa * eps)`` relative to ``|P|``; the
``tol`` helper (helpers' ``forward_tol``) states the constant.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import eps, random_matrix, rel_err
from helpers import forward_tol as tol

import jaxpinv
from jaxpinv.internal import path_taken

SHAPES = [(5, 3), (3, 5), (4, 4), (1, 1), (1, 6), (6, 1), (2, 6, 3), (2, 3, 4, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32, np.complex64])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_matches_numpy_full_rank(shape, dtype):
    rng = np.random.default_rng(0)
    cond = 100.0
    a = random_matrix(rng, shape, dtype, cond=cond)
    ref = np.linalg.pinv(a.astype(np.complex128 if np.iscomplexobj(a) else np.float64))
    got = jaxpinv.pinv(a)
    assert got.dtype == dtype
    assert got.shape == shape[:-2] + shape[-2:][::-1]
    assert rel_err(got, ref) < tol(dtype, cond, max(shape[-2:]))


@pytest.mark.parametrize("shape,rank", [((6, 4), 2), ((4, 6), 1), ((5, 5), 3), ((3, 7, 7), 4)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_matches_numpy_rank_deficient(shape, rank, dtype):
    rng = np.random.default_rng(1)
    a = random_matrix(rng, shape, dtype, rank=rank, cond=10.0)
    ref = np.linalg.pinv(a.astype(np.complex128), rcond=1e-6)
    got = jaxpinv.pinv(a)
    assert rel_err(got, ref) < tol(dtype, 10.0, max(shape[-2:]))
    np.testing.assert_array_equal(jaxpinv.matrix_rank(a), np.full(shape[:-2], rank))


def test_strict_cutoff_zero_matrix_maps_to_zero():
    for shape in [(3, 3), (2, 4), (5, 2)]:
        p = jaxpinv.pinv(jnp.zeros(shape))
        np.testing.assert_array_equal(p, np.zeros(shape[::-1]))
        assert int(jaxpinv.matrix_rank(jnp.zeros(shape))) == 0


def diag_matrix(s, m=None, n=None):
    """A matrix with prescribed singular values (exactly representable)."""
    s = np.asarray(s, np.float64)
    k = s.shape[-1]
    m, n = m or k, n or k
    a = np.zeros(s.shape[:-1] + (m, n))
    a[..., np.arange(k), np.arange(k)] = s
    return a


@pytest.mark.parametrize(
    "kwargs,kept",
    [
        ({"atol": 0.5}, [1, 1, 0]),  # cutoff 0.5: 0.5 is not kept (strict)
        ({"atol": 0.49}, [1, 1, 1]),
        ({"rtol": 0.25}, [1, 1, 0]),  # cutoff 0.25 * 2 = 0.5
        ({"rtol": 0.2}, [1, 1, 1]),
        ({"atol": 0.1, "rtol": 0.3}, [1, 1, 0]),  # max(0.1, 0.6) = 0.6
        ({"atol": 1.5, "rtol": 0.1}, [1, 0, 0]),  # max(1.5, 0.2) = 1.5
        ({"atol": 0.0}, [1, 1, 1]),  # atol=0 keeps the default rtol (tiny)
    ],
)
def test_cutoff_rule(kwargs, kept):
    s = np.array([2.0, 1.0, 0.5])
    a = diag_matrix(s)
    expected = np.diag(np.where(kept, 1 / s, 0))
    np.testing.assert_allclose(jaxpinv.pinv(a, **kwargs), expected, rtol=1e-14)
    assert int(jaxpinv.matrix_rank(a, **kwargs)) == sum(kept)


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_default_rtol_is_max_m_n_eps_and_zero_when_atol_positive():
    # s = [1, 5 eps]: with m = n = 4 the default cutoff is 4 eps < 5 eps -> kept.
    e = eps(np.float64)
    a = diag_matrix([1.0, 5 * e, 3 * e, 0.0])
    assert int(jaxpinv.matrix_rank(a)) == 2
    # atol > 0 switches the default rtol off: only atol counts.
    assert int(jaxpinv.matrix_rank(a, atol=2.5 * e)) == 3
    # atol == 0 keeps the default rtol.
    assert int(jaxpinv.matrix_rank(a, atol=0.0)) == 2
    # float32 uses float32's eps.
    e32 = eps(np.float32)
    a32 = diag_matrix([1.0, 5 * e32, 3 * e32]).astype(np.float32)
    assert int(jaxpinv.matrix_rank(a32)) == 2


@pytest.mark.parametrize("traced", [False, True])
def test_zero_atol_keeps_the_default_rtol_traced_or_not(traced):
    # torch's rule: rtol defaults to max(m, n) eps unless atol > 0, so atol = 0
    # (or a zero entry of an array atol) counts as absent. A host atol decides it
    # on the host, a traced one inside the program: both must agree.
    # s = [1, 5 eps, 2 eps] (exact in float32): default cutoff 3 eps keeps two.
    e = eps(np.float32)
    a = jnp.asarray(diag_matrix([1.0, 5 * e, 2 * e]), jnp.float32)
    rank = jax.jit(jaxpinv.matrix_rank) if traced else jaxpinv.matrix_rank
    pinv = jax.jit(jaxpinv.pinv) if traced else jaxpinv.pinv
    assert int(rank(a, atol=0.0)) == 2
    assert int(rank(a, atol=1.5 * e)) == 3  # atol > 0: rtol 0, the cutoff is atol
    np.testing.assert_array_equal(rank(a, atol=np.array([0.0, 1.5 * e], np.float32)), [2, 3])
    np.testing.assert_allclose(np.diag(pinv(a, atol=0.0)), [1.0, 1 / (5 * e), 0.0], rtol=1e-6)


def test_array_tolerances_broadcast_with_batch_and_enlarge_output():
    s = np.array([[2.0, 1.0, 0.5], [4.0, 1.0, 0.1]])  # batch of 2
    a = diag_matrix(s)
    atol = np.array([[0.05], [0.6], [1.5]])  # (3, 1) against batch (2,) -> (3, 2)
    p = jaxpinv.pinv(a, atol=atol)
    assert p.shape == (3, 2, 3, 3)
    for i in range(3):
        for j in range(2):
            keep = s[j] > atol[i, 0]
            np.testing.assert_allclose(p[i, j], np.diag(np.where(keep, 1 / s[j], 0)), rtol=1e-14)
    ranks = jaxpinv.matrix_rank(a, atol=atol)
    np.testing.assert_array_equal(ranks, (s[None] > atol[:, :, None]).sum(-1))


def test_array_atol_elementwise_default_rtol():
    # atol = [0, 0.3]: first member uses the default rtol, the second rtol = 0.
    s = np.array([[1.0, 1e-20], [1.0, 0.2]])
    ranks = jaxpinv.matrix_rank(diag_matrix(s), atol=np.array([0.0, 0.3]))
    np.testing.assert_array_equal(ranks, [1, 1])
    ranks = jaxpinv.matrix_rank(diag_matrix(s), atol=np.array([0.0, 0.1]))
    np.testing.assert_array_equal(ranks, [1, 2])


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_pinverse_is_pinv_with_rtol():
    rng = np.random.default_rng(2)
    a = diag_matrix([3.0, 1.0, 0.01, 1e-17]) @ np.linalg.qr(rng.standard_normal((4, 4)))[0]
    # rcond 1e-15: 1e-17 / 3 < 1e-15 -> dropped; rcond 1e-2: 0.01 / 3 > 1e-2? no, 0.0033 -> dropped.
    ref15 = np.linalg.pinv(a, rcond=1e-15)
    np.testing.assert_allclose(jaxpinv.pinverse(a), ref15, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jaxpinv.pinverse(a, rcond=1e-2), np.linalg.pinv(a, rcond=1e-2), rtol=1e-10, atol=1e-12)
    assert int(jaxpinv.matrix_rank(a, rtol=1e-2)) == 2


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_hermitian_reads_lower_triangle(dtype):
    rng = np.random.default_rng(3)
    n = 5
    x = random_matrix(rng, (n, n), dtype, cond=50.0)
    h = x + np.conj(x.T)  # Hermitian, indefinite
    w = np.linalg.eigvalsh(h)
    h = h - w[2] * np.eye(n)  # make it singular: one zero eigenvalue
    garbage = h.copy()
    iu = np.triu_indices(n, 1)
    garbage[iu] = 1e3 * (1 + 1j if np.iscomplexobj(h) else 1)
    if np.iscomplexobj(h):
        garbage[np.diag_indices(n)] += 7j  # imaginary diagonal ignored too
    ref = np.linalg.pinv(h, rcond=1e-10, hermitian=True)
    got = jaxpinv.pinv(garbage, hermitian=True)
    assert rel_err(got, ref) < 1e-10
    assert int(jaxpinv.matrix_rank(garbage, hermitian=True)) == n - 1
    # Without hermitian=True the upper triangle does matter.
    assert rel_err(jaxpinv.pinv(garbage), ref) > 1e-3


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_hermitian_uses_abs_eigenvalues_for_cutoff():
    h = np.diag([-3.0, 1.0, -0.2])
    np.testing.assert_allclose(jaxpinv.pinv(h, hermitian=True, rtol=0.1), np.diag([-1 / 3, 1.0, 0.0]), rtol=1e-14)
    assert int(jaxpinv.matrix_rank(h, hermitian=True, atol=0.5)) == 2


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (0, 2, 3), (2, 0, 4), (3, 4, 0), (0, 0, 0)])
def test_zero_size(shape):
    a = jnp.zeros(shape)
    p = jaxpinv.pinv(a)
    assert p.shape == shape[:-2] + (shape[-1], shape[-2])
    assert p.dtype == a.dtype
    r = jaxpinv.matrix_rank(a)
    assert r.shape == shape[:-2]
    np.testing.assert_array_equal(r, np.zeros(shape[:-2]))
    if shape[-1] == shape[-2]:
        assert jaxpinv.pinv(a, hermitian=True).shape == p.shape
    assert path_taken(a) == "none"  # nothing is factored


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_matrix_rank_consistent_with_pinv_on_random_tolerances():
    rng = np.random.default_rng(4)
    a = random_matrix(rng, (20, 6, 4), np.float64, cond=1e4)
    atol = rng.uniform(0, 0.5, size=20)
    p = np.asarray(jaxpinv.pinv(a, atol=atol))
    r = np.asarray(jaxpinv.matrix_rank(a, atol=atol))
    # rank(pinv) computed independently by numpy with a threshold far from any kept 1/s
    np.testing.assert_array_equal(r, np.linalg.matrix_rank(p, tol=1e-8))
    np.testing.assert_array_equal(r, (np.linalg.svd(a, compute_uv=False) > atol[:, None]).sum(-1))


@pytest.mark.parametrize("shape", [(40, 20), (64, 16), (16, 64), (3, 48, 12)])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize("rank", [None, 5])
def test_qr_reduced_path_as_accurate_as_a_direct_svd(shape, dtype, rank):
    # m >= 2n goes through A = Q R and the SVD of R. Its error against a
    # double-precision reference must stay that of jnp.linalg.pinv's direct
    # single-precision SVD on the same inputs (worst of 8 seeds, within 2x;
    # both are O(eps * cond)). (P = (R^H R)^+ A^H, which skips forming Q,
    # failed this at up to 3.4x.)
    ours, theirs = [], []
    for seed in range(8):
        a = random_matrix(np.random.default_rng(seed), shape, dtype, rank=rank, cond=1e3)
        ref = np.linalg.pinv(a.astype(np.complex128), rcond=1e-5)
        ours.append(rel_err(jaxpinv.pinv(a, rtol=1e-5), ref))
        theirs.append(rel_err(jnp.linalg.pinv(a, rtol=1e-5), ref))
    assert max(ours) < 2 * max(theirs), (max(ours), max(theirs))


# --------------------------------------------------------------------------- #
# Edge tolerances, huge Hermitian entries, ties between a singular value and
# the cutoff.
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_infinite_tolerance_keeps_nothing(dtype):
    # cutoff = max(atol, rtol * s_max) = inf > every singular value, and on the
    # zero matrix inf * 0 must not make it NaN: torch returns zeros and rank 0.
    for a in (np.zeros((2, 2)), np.eye(2), np.ones((3, 2))):
        a = a.astype(dtype)
        for kw in ({"rtol": np.inf}, {"atol": np.inf}, {"atol": 1.0, "rtol": np.inf}):
            p = np.asarray(jaxpinv.pinv(a, **kw))
            np.testing.assert_array_equal(p, np.zeros(a.shape[::-1]), err_msg=str(kw))
            assert int(jaxpinv.matrix_rank(a, **kw)) == 0
            assert int(jaxpinv.lstsq_full(a, np.ones(a.shape[0]), **kw).rank) == 0
        p = jax.jit(lambda a, t: jaxpinv.pinv(a, rtol=t))(a, np.inf)  # traced
        np.testing.assert_array_equal(p, np.zeros(a.shape[::-1]))
    try:  # torch, where installed, agrees (the hand reference above always runs)
        import torch
    except ImportError:
        return
    np.testing.assert_array_equal(torch.linalg.pinv(torch.zeros(2, 2), rtol=float("inf")).numpy(), np.zeros((2, 2)))


def test_tiny_atol_switches_default_rtol_off_without_x64():
    # atol = 1e-300 rounds to 0 in float32, but the rule "rtol = 0 where atol >
    # 0" is decided on the value written: s = 1e-10 is kept (torch: diag(1, 1e10)).
    from helpers import x64

    with x64(False):
        a = np.diag([1.0, 1e-10]).astype(np.float32)
        np.testing.assert_allclose(jaxpinv.pinv(a, atol=1e-300), np.diag([1.0, 1e10]), rtol=1e-6)
        assert int(jaxpinv.matrix_rank(a, atol=1e-300)) == 2
        assert int(jaxpinv.lstsq_full(a, np.ones(2, np.float32), atol=1e-300).rank) == 2
        np.testing.assert_allclose(
            jaxpinv.pinv(a, atol=np.array([1e-300, 0.0])),
            np.stack([np.diag([1.0, 1e10]), np.diag([1.0, 0.0])]),
            rtol=1e-6,
        )
        # atol exactly 0 keeps the default rtol (2 * eps): 1e-10 is dropped
        np.testing.assert_array_equal(jaxpinv.pinv(a, atol=0.0), np.diag([1.0, 0.0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_hermitian_rank_at_entries_near_the_largest_float(dtype):
    big = np.finfo(dtype).max
    a = np.diag([big / 1.7, big / 6.8]).astype(dtype)  # 2e38, 5e37 in float32
    a[1, 0] = big / 10  # only the lower triangle is read: a + a^H would overflow
    assert int(jaxpinv.matrix_rank(a, hermitian=True)) == 2
    assert int(jaxpinv.matrix_rank(a)) == 2
    assert np.isfinite(np.asarray(jaxpinv.pinv(a, hermitian=True))).all()


@pytest.mark.parametrize("hermitian", [False, True])
def test_matrix_rank_counts_exactly_what_pinv_keeps_at_ties(hermitian):
    # atol set to a singular value as another routine computes it: whether
    # that value is kept is decided by ULPs, and matrix_rank, pinv and
    # lstsq_full must decide it the same way (the same decomposition).
    for seed in range(12):
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((6, 6 if hermitian else 4))
        if hermitian:
            a = a + a.T
        s = np.abs(np.linalg.eigvalsh(a)) if hermitian else np.linalg.svd(a, compute_uv=False)
        for atol in (
            np.sort(s)[len(s) // 2],
            float(
                np.sort(
                    np.asarray(jnp.abs(jnp.linalg.eigvalsh(a)) if hermitian else jnp.linalg.svd(a, compute_uv=False))
                )[1]
            ),
        ):
            rank = int(jaxpinv.matrix_rank(a, atol=atol, hermitian=hermitian))
            p = np.asarray(jaxpinv.pinv(a, atol=atol, hermitian=hermitian))
            # kept values of p are 1/s >= 1/s_max; dropped ones are exact zeros
            sp = np.linalg.svd(p, compute_uv=False)
            assert rank == int((sp > 1e-6 * sp.max()).sum()), (seed, atol)
            if not hermitian:
                assert int(jaxpinv.lstsq_full(a, np.ones(6), atol=atol).rank) == rank


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
@pytest.mark.parametrize("shape", [(3, 8), (8, 3), (5, 5)])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_default_rtol_is_max_m_n_eps_without_torch(shape, dtype):
    # A handmade reference, no torch: a diagonal matrix with exactly
    # representable singular values 1 and k * eps (k between min(m, n) and
    # max(m, n), or the size of a square matrix). The default cutoff
    # max(m, n) * eps * 1 drops k * eps when k < max(m, n) and keeps it when
    # k > max(m, n); a min(m, n) rule would keep both non-square cases.
    m, n = shape
    e = eps(dtype)
    for k, kept in ((max(m, n) - 1, False), (max(m, n) + 1, True)):
        if m != n and k - 1 < min(m, n):
            continue
        a = np.zeros(shape, dtype)
        a[0, 0], a[1, 1] = 1.0, k * e
        p = np.asarray(jaxpinv.pinv(a))
        assert int(jaxpinv.matrix_rank(a)) == (2 if kept else 1), (k, kept)
        assert (p[1, 1] != 0) == kept and p[0, 0] == 1.0
        # and the rule at its boundary is strict: k = max(m, n) exactly is dropped
        a[1, 1] = max(m, n) * e
        assert int(jaxpinv.matrix_rank(a)) == 1


@pytest.mark.parametrize("tol", [0.1, 0.3, 1 / 3, 0.7])
def test_host_tolerance_compared_exactly_as_written(tol):
    # sigma = float32(tol) is kept iff float32(tol) > tol, compared exactly (in
    # float64, as torch does). In the default configuration (x64 off, the x64-off
    # CI run) the cutoff lives in float32: a host tolerance must be rounded
    # *down* for that to hold; rounded to nearest, diag(1, .1) f32 with atol=.1
    # would get rank 1 where torch gives 2.
    s = np.float32(tol)
    a = np.diag([np.float32(1.0), s])
    kept = float(s) > tol  # exact: float32 -> float64 is exact
    want = 2 if kept else 1
    assert int(jaxpinv.matrix_rank(a, atol=tol)) == want
    assert (np.asarray(jaxpinv.pinv(a, atol=tol))[1, 1] != 0) == kept
    assert int(jaxpinv.matrix_rank(a, atol=np.array([tol]))[0]) == want
