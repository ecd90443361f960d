"""Parity with torch at the cutoff edge.

``jaxpinv.pinv`` / ``pinverse`` / ``matrix_rank`` against ``torch.linalg.pinv`` /
``torch.pinverse`` / ``torch.linalg.matrix_rank`` on matrices with *known*
singular values (eigenvalues for ``hermitian=True``) placed just above and just
below the cutoff ``max(atol, rtol * sigma_max)``.

Every comparison runs both libraries on the same input array, so nothing here
compares jaxpinv with itself. Three things are checked per case:

1. the set of kept singular values, exactly: ``jaxpinv.matrix_rank`` must equal
   ``torch.linalg.matrix_rank`` elementwise (shape included: tolerances with
   extra leading dimensions enlarge it), and both must equal the rank predicted
   by an independent float64 model of torch's rule (``_ref_cutoff``), which
   also guards against a test whose design does not do what it claims;
2. ``pinv`` against ``torch.linalg.pinv`` within a tolerance derived from the
   dtype's eps and the conditioning of the kept part (see ``_output_tol``);
3. dtype and shape of the outputs.

Edge margins. Values straddle a cutoff at ``(1 +- MARGIN) * cutoff`` with
``MARGIN = 1e-3``. Two kinds of test matrix:

* dense ``U diag(s) V^H`` (random unitary ``U``, ``V``): a backward-stable SVD
  returns the singular values of ``A + E`` with ``|E|_2 <~ p(n) eps sigma_max``
  (rounding ``A`` to the dtype is part of ``E``; observed ``|E| ~ 1 eps``). So
  a straddled value is only placed where ``MARGIN * cutoff >= 1.8e-5 sigma_max``,
  i.e. >= 150 eps_float32 * sigma_max and astronomically more in float64;
* "monomial" matrices (a permutation of ``diag(s)`` with random signs or unit
  phases): LAPACK returns their singular values to a few ulps *relative*
  accuracy, which lets us straddle cutoffs that live at the rounding level,
  such as the default ``rtol = max(m, n) * eps`` and ``torch.pinverse``'s
  ``rcond = 1e-15``.

``_check_design`` asserts for every case that no singular value is within this
rounding noise of its cutoff, so a failure below is a real disagreement, not
noise.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import eps  # noqa: E402

import jaxpinv  # noqa: E402

MARGIN = 1e-3
DTYPES = [np.float64, np.float32, np.complex128, np.complex64]
# A batch of 4 matrices, tall or wide (with a 2-d batch), each dtype paired with
# one of them so that every dtype class meets both (and jit compiles stay few).
TALL, WIDE = (4, 7, 4), (2, 2, 4, 7)
DTYPE_SHAPES = [
    pytest.param(np.float64, TALL, id="float64-tall"),
    pytest.param(np.float32, WIDE, id="float32-wide"),
    pytest.param(np.complex128, WIDE, id="complex128-wide"),
    pytest.param(np.complex64, TALL, id="complex64-tall"),
]

# torch.linalg.matrix_rank with tolerances that enlarge the batch resizes its
# output buffer and warns about it; the values are right.
pytestmark = pytest.mark.filterwarnings("ignore:An output with one or more elements was resized:UserWarning")


# --------------------------------------------------------------------------- #
# Test matrices with known singular values
# --------------------------------------------------------------------------- #


def _is_complex(dtype) -> bool:
    return np.issubdtype(np.dtype(dtype), np.complexfloating)


def _orthonormal(rng, batch, m, k, cplx):
    x = rng.standard_normal((*batch, m, k))
    if cplx:
        x = x + 1j * rng.standard_normal((*batch, m, k))
    q, _ = np.linalg.qr(x)
    return q


def _dense(rng, s, m, n, dtype):
    """``U diag(s) V^H`` built in float64/complex128, then rounded to ``dtype``."""
    s = np.asarray(s, np.float64)
    batch, k = s.shape[:-1], s.shape[-1]
    assert k == min(m, n)
    cplx = _is_complex(dtype)
    u = _orthonormal(rng, batch, m, k, cplx)
    v = _orthonormal(rng, batch, n, k, cplx)
    a = (u * s[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))
    return a.astype(dtype)


def _monomial(rng, s, m, n, dtype):
    """A row/column permutation of ``diag(s)`` with random signs (unit phases)."""
    s = np.asarray(s, np.float64)
    batch, k = s.shape[:-1], s.shape[-1]
    assert k == min(m, n)
    cplx = _is_complex(dtype)
    a = np.zeros((*batch, m, n), np.complex128 if cplx else np.float64)
    for idx in np.ndindex(*batch):
        if cplx:
            phase = np.exp(2j * np.pi * rng.random(k))
        else:
            phase = rng.choice([-1.0, 1.0], k)
        rows = rng.permutation(m)[:k]
        cols = rng.permutation(n)[:k]
        a[idx + (rows, cols)] = s[idx] * phase
    return a.astype(dtype)


def _hermitian(rng, lam, dtype):
    """``Q diag(lam) Q^H``, symmetrized so that the rounded matrix is exactly Hermitian."""
    lam = np.asarray(lam, np.float64)
    batch, n = lam.shape[:-1], lam.shape[-1]
    q = _orthonormal(rng, batch, n, n, _is_complex(dtype))
    h = (q * lam[..., None, :]) @ np.conj(np.swapaxes(q, -1, -2))
    h = (h + np.conj(np.swapaxes(h, -1, -2))) / 2
    return h.astype(dtype)


def _straddle(c):
    """Two singular values just above and just below the cutoff ``c``."""
    return [(1 + MARGIN) * c, (1 - MARGIN) * c]


def _pad(rows, k):
    """Sort each row descending, then truncate or zero-pad it to length ``k``."""
    out = np.zeros((len(rows), k))
    for i, r in enumerate(rows):
        r = sorted(r, reverse=True)[:k]
        out[i, : len(r)] = r
    return out


# --------------------------------------------------------------------------- #
# The reference model, the design check and the output tolerance
# --------------------------------------------------------------------------- #


def _ref_cutoff(smax, atol, rtol, m, n, dtype):
    """torch's rule in float64 (independent of jaxpinv), broadcast over the batch.

    atol None -> 0; rtol None -> max(m, n) * eps where atol is None or 0 and 0
    where atol > 0 (elementwise); cutoff = max(atol, rtol * sigma_max).
    """
    default = max(m, n) * eps(dtype)
    a = np.zeros(()) if atol is None else np.asarray(atol, np.float64)
    if rtol is not None:
        r = np.asarray(rtol, np.float64)
    elif atol is None:
        r = np.asarray(default)
    else:
        r = np.where(a > 0, 0.0, default)
    return np.maximum(a, r * smax)


def _check_design(s, c, m, n, dtype, exact_svd, expect_edge):
    """No singular value may sit within rounding noise of its cutoff (see module doc)."""
    e = eps(dtype)
    smax = s.max(-1, keepdims=True)
    if exact_svd:
        # Singular values and the cutoff are each known to a few ulps relative.
        noise = 16 * e * np.maximum(s, c)
        exempt = s == 0  # exact zeros stay exact zeros
    else:
        # Backward error |E| ~ eps * sigma_max (observed about 1 eps); 2 sqrt(n)
        # eps is a generous bound for the sizes used here.
        noise = 2 * np.sqrt(max(m, n)) * e * smax
        exempt = np.zeros(s.shape, bool)
    # rtol >= 1 compares sigma_max with (a multiple of) itself, which is exact.
    exempt |= (s == smax) & (c == smax)
    near = (np.abs(s - c) <= noise) & ~exempt
    assert not near.any(), f"test design: singular values {s[near]} are within noise of the cutoff"
    if expect_edge:
        edge = (c > 0) & (np.abs(s / np.where(c > 0, c, 1) - 1) <= 1.5 * MARGIN)
        assert edge.any(), "test design: no singular value straddles the cutoff"


def _output_tol(s, c, m, n, dtype, exact_svd):
    """Max-abs tolerance on ``pinv_jax - pinv_torch`` for each matrix of the batch.

    Let the kept singular values be ``s_1 >= ... >= s_k > cutoff``, the largest
    dropped one ``s_{k+1}`` (or 0), ``kappa = s_1 / s_k`` (the condition number
    of the kept part) and ``gap = s_k - s_{k+1}``. Each library returns the exact
    rank-k truncated pinv of ``A + E`` with ``|E|_2 <= gamma eps s_1``,
    ``gamma = 8 max(m, n)`` (backward-stable SVD/eigh, generous constant; the
    rank is the same, which matrix_rank checks exactly). A first-order
    (Wedin-type) perturbation bound for the truncated pseudo-inverse ``P_k`` (``|P_k| = 1/s_k``):

        |dP|_2 <= |E| (|P_k|^2 + 2 |P_k| / gap)
               =  gamma eps (kappa + 2 s_1 / gap) / s_k .

    Both libraries err, so the difference gets twice that, and the max-abs
    entry is bounded by the 2-norm. For Hermitian input the |eigenvalues| play
    the part of singular values and the |.|-gap is a lower bound on the gap
    between kept and dropped eigenvalues. For monomial matrices the singular
    values come out to a few ulps relative and the singular vectors are a
    permutation up to O(eps), so neither kappa nor the gap enters:
    ``|dP| <= 16 eps / s_k`` per library. Nothing kept: both must return exactly 0.
    """
    e = eps(dtype)
    kept = s > c
    s_k = np.min(np.where(kept, s, np.inf), axis=-1)
    norm_p = np.where(np.isfinite(s_k), 1 / s_k, 0.0)
    if exact_svd:
        return 2 * 16 * e * norm_p
    s_1 = s.max(-1)
    gap = s_k - np.max(np.where(kept, 0.0, s), axis=-1)
    with np.errstate(invalid="ignore"):
        kappa = np.where(np.isfinite(s_k), s_1 / s_k, 0.0)
        gap_term = np.where(np.isfinite(s_k), 2 * s_1 / gap, 0.0)
    gamma = 8 * max(m, n)
    return 2 * gamma * e * (kappa + gap_term) * norm_p


def _torch_tols(*tols):
    """torch takes both tolerances as floats or both as tensors."""
    if all(t is None or isinstance(t, float) for t in tols):
        return tols
    return tuple(None if t is None else torch.as_tensor(np.asarray(t, np.float64)) for t in tols)


def _compare(pj, pt, rj, rt, s, c, m, n, dtype, exact_svd, what):
    out_batch = c.shape[:-1]
    expected_rank = np.sum(s > c, axis=-1)
    assert rj.shape == out_batch, f"{what}: jaxpinv rank shape {rj.shape}, expected {out_batch}"
    assert rt.shape == out_batch, f"{what}: torch rank shape {rt.shape}, expected {out_batch}"
    np.testing.assert_array_equal(
        rj, rt, err_msg=f"{what}: DISCREPANCY jaxpinv.matrix_rank != torch.linalg.matrix_rank"
    )
    np.testing.assert_array_equal(
        rt, expected_rank, err_msg=f"{what}: torch disagrees with the float64 model (test design?)"
    )
    assert pj.dtype == np.dtype(dtype) and pt.dtype == np.dtype(dtype), (pj.dtype, pt.dtype)
    assert pj.shape == pt.shape == out_batch + (n, m), (pj.shape, pt.shape)
    tol = _output_tol(s, c, m, n, dtype, exact_svd)
    err = np.max(np.abs(pj - pt), axis=(-2, -1))
    bad = ~(err <= tol)
    assert not bad.any(), (
        f"{what}: DISCREPANCY pinv differs from torch at batch index "
        f"{np.argwhere(bad)[0]}: max|diff| = {err[bad][0]:.3e} > tol {tol[bad][0]:.3e} "
        f"(ranks jax {rj}, torch {rt})"
    )


def _check_parity(a, sv, *, atol=None, rtol=None, hermitian=False, exact_svd=False, expect_edge=True):
    """Run pinv and matrix_rank in both libraries with the same arguments and compare.

    ``sv``: the designed singular values (|eigenvalues| if Hermitian), shape
    ``a.shape[:-2] + (k,)``. Returns ``(pinv_jax, pinv_torch)``.
    """
    m, n = a.shape[-2:]
    dtype = a.dtype
    sv = np.abs(np.asarray(sv, np.float64))
    cut = _ref_cutoff(sv.max(-1), atol, rtol, m, n, dtype)
    s = np.broadcast_to(sv, cut.shape + sv.shape[-1:])
    c = cut[..., None]
    _check_design(s, c, m, n, dtype, exact_svd, expect_edge)

    kw = dict(atol=atol, rtol=rtol, hermitian=hermitian)
    pj = np.asarray(jaxpinv.pinv(a, **kw))
    rj = np.asarray(jaxpinv.matrix_rank(a, **kw))
    t_atol, t_rtol = _torch_tols(atol, rtol)
    ta = torch.from_numpy(a)
    tkw = dict(atol=t_atol, rtol=t_rtol, hermitian=hermitian)
    pt = torch.linalg.pinv(ta, **tkw).numpy()
    rt = torch.linalg.matrix_rank(ta, **tkw).numpy()
    what = f"pinv/matrix_rank(atol={atol!r}, rtol={rtol!r}, hermitian={hermitian}, dtype={dtype})"
    _compare(pj, pt, rj, rt, s, c, m, n, dtype, exact_svd, what)
    return pj, pt


# --------------------------------------------------------------------------- #
# atol alone, rtol alone: values straddling the cutoff, scalar and array forms
# --------------------------------------------------------------------------- #

C = 0.1
# Four batch members; at cutoff C their ranks are 3, 2, 1, 0 (k = 4). The
# last one has every value below the cutoff: both must return exactly zero.
ABS_ROWS = [
    [1.0, 0.5, *_straddle(C), 0.03, 0.0],
    [0.3, *_straddle(C), 0.05, 0.02, 0.01],
    [*_straddle(C), 0.06, 0.04, 0.02, 0.0],
    [(1 - MARGIN) * C, 0.05, 0.03, 0.02, 0.01, 0.0],
]
# Relative to sigma_max = 1; at rtol C the ranks are 3, 2, 1 and 4 (k = 4).
REL_ROWS = [
    [1.0, 0.5, *_straddle(C), 0.03, 0.0],
    [1.0, *_straddle(C), 0.05, 0.02, 0.01],
    [1.0, (1 - MARGIN) * C, 0.06, 0.04, 0.02, 0.0],
    [1.0, 0.8, 0.6, 0.4, *_straddle(C)],
]
SCALES = np.array([1.0, 1e3, 1e-3, 7.0])  # scale invariance over a wide range


@pytest.mark.parametrize("form", ["scalar", "array"])
@pytest.mark.parametrize("which", ["atol", "rtol"])
@pytest.mark.parametrize("dtype,shape", DTYPE_SHAPES)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_straddle_single_tolerance(dtype, shape, which, form):
    rng = np.random.default_rng(10)
    *batch, m, n = shape
    k = min(m, n)
    if which == "atol":
        if form == "scalar":
            s, tol = _pad(ABS_ROWS, k), C
        else:  # per-member absolute cutoff C * scale
            s, tol = _pad(ABS_ROWS, k) * SCALES[:, None], C * SCALES
    else:
        s = _pad(REL_ROWS, k) * SCALES[:, None]
        # array form: per-member rtol; members 2 and 3 cut far from any value
        tol = C if form == "scalar" else np.array([C, C, 0.05, 0.5])
    s = s.reshape(*batch, k)
    if not np.isscalar(tol):
        tol = tol.reshape(batch)
    a = _dense(rng, s, m, n, dtype)
    _check_parity(a, s, **{which: tol})


# --------------------------------------------------------------------------- #
# atol and rtol together: which one wins per batch member
# --------------------------------------------------------------------------- #

ATOL, RTOL = 0.3, 0.15
SMAX = np.array([1.0, 4.0, 16.0, 0.25])  # atol wins for 0 and 3, rtol for 1 and 2


def _together_rows(k):
    rows = []
    for smax in SMAX:
        r = [smax, *_straddle(RTOL * smax)]
        if ATOL < smax:
            r += _straddle(ATOL)
        rows.append(r)
    return _pad(rows, k)


TOGETHER = {
    "scalar": (ATOL, RTOL),
    # second row: atol 0.03 < rtol * sigma_max everywhere -> rtol wins everywhere
    "atol(2,1)": (np.array([[ATOL], [0.03]]), RTOL),
    # rtol 0 -> atol alone; rtol 1 -> cutoff sigma_max itself: strict, all dropped
    "rtol(3,1)": (ATOL, np.array([[RTOL], [0.0], [1.0]])),
    "both(4,)": (np.full(4, ATOL), np.array([RTOL, RTOL, 0.0, RTOL])),
}


def _pairs(table):
    """Parameters for (dtype, case) pairs: each case meets a real and a complex dtype."""
    return [
        pytest.param(dtype, case, id=f"{np.dtype(dtype).name}-{case}")
        for dtype, cases in table.items()
        for case in cases
    ]


@pytest.mark.parametrize(
    "dtype,form",
    _pairs(
        {
            np.float64: ["scalar", "rtol(3,1)"],
            np.float32: ["atol(2,1)", "both(4,)"],
            np.complex128: ["atol(2,1)", "rtol(3,1)"],
            np.complex64: ["scalar", "both(4,)"],
        }
    ),
)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_atol_and_rtol_together(dtype, form):
    rng = np.random.default_rng(20)
    m, n = TALL[-2:]
    s = _together_rows(min(m, n))
    atol, rtol = TOGETHER[form]
    a = _dense(rng, s, m, n, dtype)
    _check_parity(a, s, atol=atol, rtol=rtol)

    # The design must tell max(atol, rtol*smax) from atol alone, rtol alone and min().
    smax = s.max(-1)
    model = np.sum(s > _ref_cutoff(smax, atol, rtol, m, n, dtype)[..., None], -1)
    a_b, r_b = np.asarray(atol, float), np.asarray(rtol, float)
    for alt in (a_b + 0 * smax, r_b * smax, np.minimum(a_b, r_b * smax)):
        alt_rank = np.sum(np.broadcast_to(s, alt.shape + s.shape[-1:]) > alt[..., None], -1)
        assert np.any(alt_rank != model), "test design: alternative rule not excluded"


# --------------------------------------------------------------------------- #
# rtol=None: default max(m, n)*eps, or 0 where atol > 0 (elementwise)
# --------------------------------------------------------------------------- #

# Rows [1, (1 + MARGIN) dc, (1 - MARGIN) dc, 0] with dc = max(m, n) * eps, the
# default cutoff (sigma_max = 1). Each case: (atol, rtol) as a function of dc,
# and the expected ranks (broadcast against the batch of 4). The value just
# under dc is dropped by the default rtol and kept once atol > 0 turns rtol to 0.
RTOL_NONE_CASES = {
    "default": (lambda dc: (None, None), 2),
    "atol=0": (lambda dc: (0.0, None), 2),  # atol = 0: the default rtol still applies
    "atol>0": (lambda dc: (dc / 64, None), 3),  # atol > 0: rtol becomes 0
    "atol>0,explicit-rtol": (lambda dc: (dc / 64, dc), 2),  # a given rtol is not replaced
    "atol=0,rtol=0": (lambda dc: (0.0, 0.0), 3),  # cutoff 0: only exact zeros go (strict)
    "rtol=0": (lambda dc: (None, 0.0), 3),
    "atol(4,)": (lambda dc: (np.array([0.0, dc / 64, 0.0, dc / 64]), None), [2, 3, 2, 3]),
    # extra leading dim: output (3, 4); 0.7 lies between dc and 1
    "atol(3,1)": (lambda dc: (np.array([[0.0], [dc / 64], [0.7]]), None), [[2], [3], [1]]),
}


@pytest.mark.parametrize("case", list(RTOL_NONE_CASES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_rtol_none_depends_on_atol(dtype, case):
    rng = np.random.default_rng(30)
    *batch, m, n = TALL
    dc = max(m, n) * eps(dtype)
    s = np.broadcast_to([1.0, *_straddle(dc), 0.0], (*batch, min(m, n)))
    a = _monomial(rng, s, m, n, dtype)
    tols, want = RTOL_NONE_CASES[case]
    atol, rtol = tols(dc)
    _check_parity(a, s, atol=atol, rtol=rtol, exact_svd=True, expect_edge=False)
    rank = np.asarray(jaxpinv.matrix_rank(a, atol=atol, rtol=rtol))
    np.testing.assert_array_equal(rank, np.broadcast_to(want, rank.shape))


@pytest.mark.parametrize("dtype,shape", DTYPE_SHAPES)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_default_rtol_straddle(dtype, shape):
    """Values at (1 +- 1e-3) * max(m, n) * eps * sigma_max: monomial matrices only."""
    rng = np.random.default_rng(40)
    *batch, m, n = shape
    dc = max(m, n) * eps(dtype)
    smax = 3.0
    row = [smax, 1.0, *_straddle(dc * smax), 0.0]
    s = np.broadcast_to(_pad([row], min(m, n))[0], (*batch, min(m, n)))
    a = _monomial(rng, s, m, n, dtype)
    _check_parity(a, s, exact_svd=True)


@pytest.mark.parametrize(
    "dtype,shape,rank",
    [
        pytest.param(np.float64, (12, 9), 5, id="float64-(12,9)"),
        pytest.param(np.float32, (3, 10, 10), 4, id="float32-(3,10,10)"),
        pytest.param(np.complex128, (9, 12), 6, id="complex128-(9,12)"),
        pytest.param(np.complex64, (3, 10, 10), 4, id="complex64-(3,10,10)"),
    ],
)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_default_rtol_dense(dtype, shape, rank):
    """Dense, exactly rank-deficient: the zero singular values become noise of
    about 1 eps * sigma_max, well under the default cutoff max(m, n) eps sigma_max."""
    rng = np.random.default_rng(50)
    *batch, m, n = shape
    k = min(m, n)
    s = np.zeros((*batch, k))
    s[..., :rank] = np.logspace(0, -2, rank)
    a = _dense(rng, s, m, n, dtype)
    _check_parity(a, s, expect_edge=False)


# --------------------------------------------------------------------------- #
# hermitian=True: indefinite matrices, and a garbage upper triangle
# --------------------------------------------------------------------------- #

H_SMAX = np.array([1.5, 2.0, 0.5])
H_ATOL, H_RTOL = 0.1, 0.1


def _hermitian_eigs():
    """Eigenvalues with both signs straddling +-atol and +-rtol*max|lam|, plus a 0.

    The dominant eigenvalue of member 0 is negative: the cutoff must use max|lam|.
    """
    rows = []
    for i, smax in enumerate(H_SMAX):
        hi_a, lo_a = _straddle(H_ATOL)
        hi_r, lo_r = _straddle(H_RTOL * smax)
        rows.append([(-1) ** (i == 0) * smax, -hi_a, lo_a, hi_r, -lo_r, 0.0])
    return np.array(rows)


HERMITIAN_CASES = {
    "rtol": (None, H_RTOL),  # relative to max|lam|, a negative eigenvalue in member 0
    "atol+rtol": (H_ATOL, H_RTOL),  # atol wins for member 2 only
    # row 0: atol alone (rtol becomes 0); row 1: atol 0, the default rtol
    "atol(2,1)": (np.array([[H_ATOL], [0.0]]), None),
}


@pytest.mark.parametrize("garbage", [False, True], ids=["clean", "garbage-upper"])
@pytest.mark.parametrize(
    "dtype,case",
    _pairs(
        {
            np.float64: ["rtol", "atol+rtol"],
            np.float32: ["rtol", "atol(2,1)"],
            np.complex128: ["atol+rtol", "atol(2,1)"],
            np.complex64: ["rtol", "atol(2,1)"],
        }
    ),
)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_hermitian(dtype, case, garbage):
    rng = np.random.default_rng(60)
    lam = _hermitian_eigs()
    h = _hermitian(rng, lam, dtype)
    a = h.copy()
    if garbage:
        n = a.shape[-1]
        junk = 10 * rng.standard_normal(a.shape)
        if _is_complex(dtype):
            junk = junk + 10j * rng.standard_normal(a.shape)
            # LAPACK's heevd also ignores the imaginary part of the diagonal
            a[..., np.arange(n), np.arange(n)] += 1j * rng.standard_normal(a.shape[:-1]).astype(dtype)
        upper = np.triu(np.ones((n, n), bool), 1)
        a[..., upper] = junk[..., upper].astype(dtype)
    atol, rtol = HERMITIAN_CASES[case]
    pj, pt = _check_parity(a, lam, atol=atol, rtol=rtol, hermitian=True)
    if garbage:
        # Both libraries must ignore the upper triangle: torch on the garbage
        # input equals torch on the clean Hermitian matrix, and so does jaxpinv.
        t_atol, t_rtol = _torch_tols(atol, rtol)
        clean = torch.linalg.pinv(torch.from_numpy(h), atol=t_atol, rtol=t_rtol, hermitian=True).numpy()
        m = a.shape[-1]
        c = _ref_cutoff(np.abs(lam).max(-1), atol, rtol, m, m, a.dtype)[..., None]
        s = np.broadcast_to(np.abs(lam), c.shape[:-1] + lam.shape[-1:])
        tol = _output_tol(s, c, m, m, a.dtype, False)
        torch_err = np.max(np.abs(pt - clean), axis=(-2, -1))
        assert np.all(torch_err <= tol), "torch read the upper triangle"
        err = np.max(np.abs(pj - clean), axis=(-2, -1))
        assert np.all(err <= tol), f"DISCREPANCY: jaxpinv read the upper triangle ({err} > {tol})"


# --------------------------------------------------------------------------- #
# pinverse(x, rcond) against torch.pinverse(x, rcond)
# --------------------------------------------------------------------------- #

DEFAULT = "default"
# sigma_max = 2; straddles rcond=0.1 (at 0.2) and the default 1e-15 (at 2e-15).
PINVERSE_ROW = [2.0, 1.0, *_straddle(0.2), *_straddle(2e-15), 0.0]


@pytest.mark.parametrize("rcond", [DEFAULT, 1e-15, 0.1, 0.0], ids=str)
@pytest.mark.parametrize(
    "dtype,shape",
    [
        pytest.param(np.float64, (2, 8, 7), id="float64-(2,8,7)"),
        pytest.param(np.float32, (7, 9), id="float32-(7,9)"),
        pytest.param(np.complex128, (7, 7), id="complex128-(7,7)"),
        pytest.param(np.complex64, (2, 7, 9), id="complex64-(2,7,9)"),
    ],
)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_pinverse_monomial(dtype, shape, rcond):
    """Kept: 5 singular values for rcond 1e-15 (also the default), 3 for 0.1,
    and for rcond 0 all but the exact zero (strict comparison)."""
    rng = np.random.default_rng(70)
    *batch, m, n = shape
    s = np.broadcast_to(np.array(PINVERSE_ROW), (*batch, 7))
    a = _monomial(rng, s, m, n, dtype)
    _pinverse_parity(a, s, rcond, exact_svd=True)


@pytest.mark.parametrize("rcond", [DEFAULT, 0.1], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_pinverse_dense(dtype, rcond):
    rng = np.random.default_rng(80)
    s = np.broadcast_to(np.array([1.0, 0.5, *_straddle(0.1)]), (4, 4))
    a = _dense(rng, s, *TALL[-2:], dtype)
    _pinverse_parity(a, s, rcond, exact_svd=False)


def _pinverse_parity(a, s, rcond, exact_svd):
    m, n = a.shape[-2:]
    ta = torch.from_numpy(a)
    if rcond == DEFAULT:
        pj, pt, r = np.asarray(jaxpinv.pinverse(a)), torch.pinverse(ta).numpy(), 1e-15
    else:
        pj, pt, r = np.asarray(jaxpinv.pinverse(a, rcond)), torch.pinverse(ta, rcond).numpy(), rcond
    # torch.pinverse(x, r) is linalg.pinv(x, rtol=r) (atol 0): the kept set is
    # that of matrix_rank(x, rtol=r) in both libraries.
    rj = np.asarray(jaxpinv.matrix_rank(a, rtol=r))
    rt = torch.linalg.matrix_rank(ta, rtol=r).numpy()
    c = _ref_cutoff(s.max(-1), None, r, m, n, a.dtype)[..., None]
    # Edges: 2e-15 (monomial only) for rcond 1e-15, 0.2 or 0.1 for rcond 0.1.
    edge = r != 0.0 and (exact_svd or r != 1e-15)
    _check_design(s, c, m, n, a.dtype, exact_svd, expect_edge=edge)
    _compare(pj, pt, rj, rt, s, c, m, n, a.dtype, exact_svd, f"pinverse(rcond={rcond!r})")


# --------------------------------------------------------------------------- #
# Tolerances are exact in torch, not rounded to the input's precision
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kw", ["atol", "rtol", "rcond"])
def test_float32_tolerance_is_compared_unrounded(kw):
    """torch keeps a Python-float tolerance in float64 and compares the float32
    singular values with the cutoff in float64. Here sigma = float32(0.1) =
    0.10000000149... > 0.1 = atol = rtol * sigma_max exactly, so torch keeps it
    (rank 2, pinv = diag(1, 10)). An implementation that rounds the tolerance
    to float32 first gets a cutoff equal to sigma and the strict comparison
    drops it (rank 1, pinv = diag(1, 0)): jaxpinv did so before commit 1568b2c.
    The same happens for any tolerance that rounds *up* onto a float32
    singular value (e.g. eye(2) with atol=0.99999999)."""
    a = np.diag(np.array([1.0, 0.1], np.float32))
    tol = 0.1
    assert float(a[1, 1]) > tol  # float32(0.1) rounds up
    ta = torch.from_numpy(a)
    if kw == "rcond":
        pt = torch.pinverse(ta, tol).numpy()
        pj = np.asarray(jaxpinv.pinverse(a, tol))
    else:
        pt = torch.linalg.pinv(ta, **{kw: tol}).numpy()
        pj = np.asarray(jaxpinv.pinv(a, **{kw: tol}))
    rank_kw = {"rtol" if kw == "rcond" else kw: tol}  # pinverse(x, r) = pinv(x, rtol=r)
    rt = int(torch.linalg.matrix_rank(ta, **rank_kw))
    rj = int(jaxpinv.matrix_rank(a, **rank_kw))
    want = np.diag(np.array([1.0, 1 / np.float32(0.1)], np.float32))
    assert rt == 2 and np.allclose(pt, want, rtol=1e-6)  # torch: sigma kept
    assert rj == rt and np.allclose(pj, pt, rtol=1e-6), (
        f"DISCREPANCY: float32 diag(1, 0.1) with {kw}=0.1: torch rank {rt}, pinv "
        f"{pt.tolist()}; jaxpinv rank {rj}, pinv {pj.tolist()}. jaxpinv rounds the "
        "tolerance to float32 (0.1 -> 0.10000000149 = sigma) before the strict "
        "comparison; torch compares against the float64 cutoff."
    )
