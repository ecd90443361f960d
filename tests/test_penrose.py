"""The four Penrose conditions, by hypothesis over shapes, ranks, dtypes and batch dims.

For ``P = pinv(A)``:  ``A P A = A``,  ``P A P = P``,  ``(A P)^H = A P``,  ``(P A)^H = P A``.

Tolerances: with singular values in ``[1/cond, 1]`` (and exact zeros for the
rank deficiency), a backward-stable SVD gives ``|P| <= cond`` and residuals
``|APA - A| <= c n eps |A|``, ``|PAP - P| <= c n eps cond^2`` and
``|AP - (AP)^H| <= c n eps cond``; we take ``c = 20`` for margin.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import adjoint as h
from helpers import eps, random_matrix
from hypothesis import given
from hypothesis import strategies as st

import jaxpinv


@st.composite
def problems(draw):
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    m = draw(st.integers(1, 7))
    n = draw(st.integers(1, 7))
    rank = draw(st.integers(0, min(m, n)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.complex64, np.complex128]))
    cond = draw(st.sampled_from([1.0, 10.0, 100.0]))
    hermitian = draw(st.booleans()) and m == n
    seed = draw(st.integers(0, 2**32 - 1))
    return batch, m, n, rank, dtype, cond, hermitian, seed


@given(problems())
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_penrose_conditions(problem):
    batch, m, n, rank, dtype, cond, hermitian, seed = problem
    rng = np.random.default_rng(seed)
    a = random_matrix(rng, batch + (m, n), np.complex128, rank=rank, cond=cond)
    complex_ = np.issubdtype(dtype, np.complexfloating)
    if hermitian:
        # U diag(+-s) U^H: Hermitian, indefinite, singular values as above
        g = rng.standard_normal(batch + (m, m))
        u, _ = np.linalg.qr(g + 1j * rng.standard_normal(g.shape) if complex_ else g)
        s = np.zeros(m)
        s[:rank] = np.logspace(0, -np.log10(cond), rank) * rng.choice([-1, 1], rank)
        a = (u * s) @ h(u)
    elif not complex_:
        a = random_matrix(rng, batch + (m, n), np.float64, rank=rank, cond=cond)
    a = a.astype(dtype)

    p = np.asarray(jaxpinv.pinv(a, hermitian=hermitian), np.complex128)
    rank_used = np.asarray(jaxpinv.matrix_rank(a, hermitian=hermitian))
    a = a.astype(np.complex128)
    assert p.shape == batch + (n, m)
    k = max(m, n)
    c = 20 * k * eps(dtype)
    an = max(np.abs(a).max(), 1e-300)
    np.testing.assert_array_less(np.abs(a @ p @ a - a), c * an + 1e-300)
    np.testing.assert_array_less(np.abs(p @ a @ p - p), c * cond**2 + 1e-300)
    np.testing.assert_array_less(np.abs(a @ p - h(a @ p)), c * cond + 1e-300)
    np.testing.assert_array_less(np.abs(p @ a - h(p @ a)), c * cond + 1e-300)
    # the rank pinv used is the rank of A (the cutoff sits far from 1/cond and from 0)
    np.testing.assert_array_equal(rank_used, np.full(batch, rank))
