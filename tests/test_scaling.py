"""Scale invariance: pinv(c A) = pinv(A) / c without overflow or underflow.

For c across 1e±30 in float32 and 1e±300 in float64, the forward pass and the
derivatives must equal the rescaled unit-scale results wherever those are
representable. The tolerance is a few eps of the dtype times the condition
number (the unit-scale error), since scaling by c is exact up to rounding of
c itself: we use c = 2^k so that c A is exact.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import eps, forward_tol, random_matrix, rel_err

import jaxpinv
from jaxpinv.internal import path_taken

# exact powers of two near 1e±30 (float32) and 1e±300 (float64)
SCALES = {np.float32: [2.0**-100, 2.0**-60, 2.0**60, 2.0**100], np.float64: [2.0**-997, 2.0**-500, 2.0**500, 2.0**997]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,rank,hermitian", [((5, 3), 3, False), ((4, 6), 2, False), ((4, 4), 4, True)])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_forward_scale_invariance(dtype, shape, rank, hermitian):
    rng = np.random.default_rng(0)
    a = random_matrix(rng, shape, np.float64, rank=rank, cond=10.0)
    if hermitian:
        a = a + a.T
    a = a.astype(dtype)
    p1 = np.asarray(jaxpinv.pinv(a, hermitian=hermitian), np.float64)
    tol = 50 * max(shape) * eps(dtype) * 10
    for c in SCALES[dtype]:
        pc = np.asarray(jaxpinv.pinv(a * dtype(c), hermitian=hermitian), np.float64)
        assert np.all(np.isfinite(pc)), c
        np.testing.assert_allclose(pc * c, p1, rtol=tol, atol=tol * np.abs(p1).max(), err_msg=str(c))
        assert int(jaxpinv.matrix_rank(a * dtype(c), hermitian=hermitian)) == rank


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hermitian,cols", [(False, 3), (False, 4), (True, 4)])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_derivative_scale_invariance(dtype, hermitian, cols):
    # Rank 2 of 4x3 (tall: the rule scales by c), 4x4 and Hermitian 4x4 (the
    # rule pairs P with dA or A and does not scale).
    # jvp: d pinv(cA)[c dA] = d pinv(A)[dA] / c (representable for all c here);
    # grad of sum(pinv(cA) * C) = grad at A / c^2, checked where c^-2 fits.
    rng = np.random.default_rng(1)
    x = random_matrix(rng, (4, 2), np.float64, cond=3.0)
    a = x @ np.diag([1.0, -0.5]) @ x.T if hermitian else x @ random_matrix(rng, (cols, 2), np.float64, cond=3.0).T
    da = rng.standard_normal(a.shape)
    if hermitian:
        da = da + da.T
    else:  # a rank-preserving direction: d(X Y^T) = dX Y^T
        da = rng.standard_normal(x.shape) @ np.linalg.pinv(x) @ a
    a, da = a.astype(dtype), da.astype(dtype)
    cmat = jnp.asarray(rng.standard_normal(a.shape[::-1]).astype(dtype))

    def f(m):
        return jaxpinv.pinv(m, hermitian=hermitian)

    t1 = np.asarray(jax.jvp(f, (a,), (da,))[1], np.float64)
    g1 = np.asarray(jax.grad(lambda m: jnp.sum(f(m) * cmat))(a), np.float64)
    tol = 200 * eps(dtype) * 100  # cond^2 of the derivative, cond <= 10
    fi = np.finfo(dtype)
    for c in SCALES[dtype]:
        tc = np.asarray(jax.jvp(f, (a * dtype(c),), (da * dtype(c),))[1], np.float64)
        assert np.all(np.isfinite(tc)), c
        np.testing.assert_allclose(tc * c, t1, rtol=tol, atol=tol * np.abs(t1).max(), err_msg=str(c))
        k = int(np.log2(c))  # c = 2^k: the gradient scales by 2^(-2k)
        exponent = np.log2(np.abs(g1).max()) - 2 * k
        if fi.minexp + 30 < exponent < fi.maxexp - 4:  # representable with room
            gc = np.asarray(jax.grad(lambda m: jnp.sum(f(m) * cmat))(a * dtype(c)), np.float64)
            assert np.all(np.isfinite(gc)), c
            np.testing.assert_allclose(np.ldexp(gc, 2 * k), g1, rtol=tol, atol=tol * np.abs(g1).max(), err_msg=str(c))


def _scaled(c, dtype, *xs):
    return tuple(np.asarray(x * dtype(c), dtype) for x in xs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,rank", [((5, 3), 3), ((3, 5), 3), ((4, 6), 2), ((6, 4), 2)])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_lstsq_derivative_scale_invariance(dtype, shape, rank):
    # x(cA, b) = x(A, b) / c, so the jvp along (c dA, db) is the unit-scale jvp
    # along (dA, db) divided by c. dA keeps the rank (d(X Y^T) = dX Y^T). The
    # rule's terms P^H x ~ 1/c^2 must not under- or overflow.
    rng = np.random.default_rng(2)
    x = random_matrix(rng, (shape[0], rank), np.float64, cond=3.0)
    a = x @ random_matrix(rng, (shape[1], rank), np.float64, cond=3.0).T
    da = rng.standard_normal(x.shape) @ np.linalg.pinv(x) @ a
    b, db = rng.standard_normal(shape[0]), rng.standard_normal(shape[0])
    a, da, b, db = (v.astype(dtype) for v in (a, da, b, db))

    def f(m, v):
        return jaxpinv.lstsq(m, v)

    x1, t1 = (np.asarray(v, np.float64) for v in jax.jvp(f, (a, b), (da, db)))
    tol = 200 * eps(dtype) * 100  # cond^2 of the derivative, cond <= 10
    for c in SCALES[dtype]:
        ac, dac = _scaled(c, dtype, a, da)
        xc, tc = (np.asarray(v, np.float64) for v in jax.jvp(f, (ac, b), (dac, db)))
        assert np.all(np.isfinite(tc)), c
        np.testing.assert_allclose(xc * c, x1, rtol=tol, atol=tol * np.abs(x1).max(), err_msg=str(c))
        np.testing.assert_allclose(tc * c, t1, rtol=tol, atol=tol * np.abs(t1).max(), err_msg=str(c))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,rank,lam", [((5, 3), 3, 0.3), ((3, 5), 2, 0.3), ((5, 3), 2, 0.0), ((4, 4), 4, 0.0)])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_damped_pinv_scale_invariance(dtype, shape, rank, lam):
    # damped_pinv(cA, c lam) = damped_pinv(A, lam) / c, forward and jvp along
    # (c dA, c dlam); at lam = 0 it is pinv (rank-preserving dA there).
    rng = np.random.default_rng(3)
    x = random_matrix(rng, (shape[0], rank), np.float64, cond=3.0)
    a = x @ random_matrix(rng, (shape[1], rank), np.float64, cond=3.0).T
    da = rng.standard_normal(x.shape) @ np.linalg.pinv(x) @ a
    a, da = a.astype(dtype), da.astype(dtype)
    dlam = dtype(0.7) if lam else dtype(0.0)

    def f(m, lam):
        return jaxpinv.damped_pinv(m, lam)

    p1, t1 = (np.asarray(v, np.float64) for v in jax.jvp(f, (a, dtype(lam)), (da, dlam)))
    tol = 200 * eps(dtype) * 100
    for c in SCALES[dtype]:
        ac, dac = _scaled(c, dtype, a, da)
        lc, dlc = dtype(lam * c), dtype(dlam * c)
        pc, tc = (np.asarray(v, np.float64) for v in jax.jvp(f, (ac, lc), (dac, dlc)))
        assert np.all(np.isfinite(pc)) and np.all(np.isfinite(tc)), c
        np.testing.assert_allclose(pc * c, p1, rtol=tol, atol=tol * np.abs(p1).max(), err_msg=str(c))
        np.testing.assert_allclose(tc * c, t1, rtol=tol, atol=tol * np.abs(t1).max(), err_msg=str(c))


def test_damped_pinv_hessian_at_small_scale_float32():
    # The Hessian of sum(damped_pinv(A, 0) * C) is homogeneous of degree -3:
    # at c A it is H(A) / c^3, representable here (c = 2^-33, about 1e-10),
    # though (A^H A)^+ ~ 1/c^2 ~ 7e19 and its square overflowed float32.
    rng = np.random.default_rng(4)
    a = random_matrix(rng, (4, 3), np.float64, cond=3.0).astype(np.float32)
    cm = jnp.asarray(rng.standard_normal((3, 4)).astype(np.float32))

    def h(m):
        return np.asarray(jax.hessian(lambda m: jnp.sum(jaxpinv.damped_pinv(m, 0.0) * cm))(m), np.float64)

    h1 = h(a)
    c = 2.0**-33
    hc = h(a * np.float32(c))
    assert np.all(np.isfinite(hc))
    tol = 1000 * eps(np.float32) * 30  # cond^3 of the second derivative, cond 3
    np.testing.assert_allclose(hc * c**3, h1, rtol=tol, atol=tol * np.abs(h1).max())


@pytest.mark.parametrize("dtype,exponents", [(np.float32, (60, 62, -62)), (np.float64, (508, 510, -510))])
@pytest.mark.parametrize("method", ["auto", "svd"])
@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_fast_path_derivative_at_extreme_scale(dtype, exponents, method, wide):
    # Issue 21 #1: a full-rank 100 x 60 matrix (cond 10) at c = 2^62 (float32) took the QR path
    # and its jvp was off by 0.09-0.3 (c^2 R^-1 R^-H was formed from R^-1 R^-H, flushed to zero).
    # The jvp along c dA, times c, must equal the unit-scale jvp: the difference of two roundings,
    # O(n eps cond^2) (forward_tol with cond^2 = 100).
    rng = np.random.default_rng(7)
    a = random_matrix(rng, (100, 60), np.float64, cond=10.0).astype(dtype)
    d = rng.standard_normal(a.shape).astype(dtype)
    if wide:
        a, d = a.T, d.T

    @jax.jit
    def tangent(c):
        return jax.jvp(lambda x: jaxpinv.pinv(x * c, method=method) * c, (a,), (d,))[1]

    unit = tangent(dtype(1.0))
    for k in exponents:
        assert path_taken(a * dtype(2.0**k), method=method) == ("qr" if method == "auto" else "svd")
        assert rel_err(tangent(dtype(2.0**k)), unit) < forward_tol(dtype, 100.0, 100), k


@pytest.mark.parametrize("dtype,exponent", [(np.float32, -70), (np.float64, -520)])
@pytest.mark.parametrize("name", ["pinv", "pinv_svd", "lstsq", "damped_pinv_0", "damped_pinv"])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_forward_over_forward_at_small_scale(dtype, exponent, name):
    # f(c a) c = f(a) (with the damping scaled too), so its second derivative by forward over
    # forward (jacfwd of jacfwd: tangents c dA, intermediates ~ 1/c) equals the unit-scale one.
    # It was NaN from c^2 underflow on (2^-65 float32, 2^-513 float64): the rules' 1/c met the
    # scale's zero tangent (0 * inf). Tolerance: O(n eps cond^3) of the second derivative, cond 3.
    rng = np.random.default_rng(9)
    a = random_matrix(rng, (5, 3), np.float64, cond=3.0).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    calls = {
        "pinv": lambda x, c: jaxpinv.pinv(x * c) * c,
        "pinv_svd": lambda x, c: jaxpinv.pinv(x * c, method="svd") * c,
        "lstsq": lambda x, c: jaxpinv.lstsq(x * c, b) * c,
        "damped_pinv_0": lambda x, c: jaxpinv.damped_pinv(x * c, 0.0) * c,
        "damped_pinv": lambda x, c: jaxpinv.damped_pinv(x * c, 0.3 * c) * c,
    }

    def second(c):
        return np.asarray(jax.jacfwd(jax.jacfwd(lambda x: jnp.sum(jnp.sin(calls[name](x, c)))))(a), np.float64)

    unit, scaled = second(dtype(1.0)), second(dtype(2.0**exponent))
    assert np.all(np.isfinite(scaled))
    tol = 100 * 5 * eps(dtype) * 27
    np.testing.assert_allclose(scaled, unit, rtol=tol, atol=tol * np.abs(unit).max())
