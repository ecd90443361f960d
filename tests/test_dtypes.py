"""Dtypes: float32/64, complex64/128, promotion of ints and bools, float16 and bfloat16."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import eps, forward_tol, random_matrix, rel_err

import jaxpinv


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("hermitian", [False, True])
def test_half_precision_computed_in_float32_returned_in_input_dtype(dtype, hermitian):
    rng = np.random.default_rng(0)
    a64 = random_matrix(rng, (3, 4, 4), np.float64, cond=5.0)
    if hermitian:
        a64 = a64 + np.swapaxes(a64, -1, -2)
    a = jnp.asarray(a64, dtype)
    p = jaxpinv.pinv(a, hermitian=hermitian)
    assert p.dtype == dtype and p.shape == (3, 4, 4)
    # Reference: float64 pinv of the *rounded* input; the only error left is the
    # float32 computation (~n eps32 cond) plus rounding the output to `dtype`
    # (eps(dtype) relative): bound 4 eps(dtype) relative to max |P|.
    ref = np.linalg.pinv(np.asarray(a, np.float64), hermitian=hermitian)
    err = np.abs(np.asarray(p, np.float64) - ref).max() / np.abs(ref).max()
    assert err < 4 * eps(dtype)
    g = jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a, hermitian=hermitian)).astype(jnp.float32))(a)
    assert g.dtype == dtype
    # The gradient's accuracy, against its closed form at the rounded input
    # (full rank, so pinv = inv): d(1^T A^-1 1) = -1^T A^-1 dA A^-1 1, i.e.
    # G_ij = -(1^T P)_i (P 1)_j; hermitian=True reads the lower triangle, so the
    # upper part's gradient folds onto it. The rule runs in float32, so what is
    # left is rounding G to `dtype` (eps/2 relative) on matrices with cond <= 13:
    # bound 2 eps(dtype) relative to max |G| (measured 0.23-0.30 eps).
    ar = np.asarray(a, np.float64)
    if hermitian:
        ar = np.tril(ar) + np.swapaxes(np.tril(ar, -1), -1, -2)
    inv = np.linalg.inv(ar)
    ref = -inv.sum(-2)[..., :, None] * inv.sum(-1)[..., None, :]
    if hermitian:
        ref = (
            np.tril(ref + np.swapaxes(ref, -1, -2), -1) + np.eye(4) * np.diagonal(ref, axis1=-2, axis2=-1)[..., None, :]
        )
    err = np.abs(np.asarray(g, np.float64) - ref).max() / np.abs(ref).max()
    assert err < 2 * eps(dtype), err


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize(
    "n", [8, 32, 128, 129, 256, pytest.param(512, marks=pytest.mark.slow), pytest.param(1024, marks=pytest.mark.slow)]
)
def test_half_precision_default_rtol_keeps_well_conditioned_matrices(dtype, n):
    # Issue 21 #3's reproduction: (q * logspace(0, -1, n)) @ q.T in bfloat16 had rank 0 at 128
    # (the default rtol was max(m, n) * eps(bfloat16) >= 1) and float16 kept 115 of 128. The
    # default is max(m, n) * eps(float32), the computation's rounding: a matrix of condition
    # <= 100 keeps all n values at every size. The pseudo-inverse equals the float64 one of the
    # rounded input up to the float32 computation (forward_tol at the rounded matrix's condition)
    # and the output's rounding (eps of the dtype).
    rng = np.random.default_rng(n)
    q = random_matrix(rng, (n, n), np.float64, cond=1.0)
    for top in (1, 2):  # condition 10 and 100
        a = jnp.asarray((q * np.logspace(0, -top, n)) @ q.T, dtype)
        assert int(jaxpinv.matrix_rank(a)) == n
        rounded = np.asarray(a, np.float64)
        ref = np.linalg.pinv(rounded)
        cond = np.linalg.cond(rounded)
        assert rel_err(np.asarray(jaxpinv.pinv(a), np.float64), ref) < eps(dtype) + forward_tol(np.float32, cond, n)


def test_half_precision_default_rtol_is_float32s():
    # The cutoff max(m, n) * eps(float32) * s_max: for 3 x 3, 3.6e-7 * s_max; 1e-3 is kept (float16's
    # own eps gave a cutoff of 2.9e-3 * s_max), 1e-7 is dropped, as it is for float32 input.
    a = jnp.asarray(np.diag([1.0, 5e-3, 1e-3]), jnp.float16)
    assert int(jaxpinv.matrix_rank(a)) == 3
    b = np.diag([1.0, 1e-3, 1e-7]).astype(np.float32)
    assert int(jaxpinv.matrix_rank(jnp.asarray(b, jnp.float16))) == int(jaxpinv.matrix_rank(b)) == 2


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn"])
def test_eight_bit_and_narrower_floats_are_rejected(name):
    # Issue 21 #3: float8 was accepted silently. 2-4 significant bits cannot hold a pseudo-inverse.
    dtype = getattr(jnp, name, None)
    if dtype is None:
        pytest.skip(f"jax has no {name}")
    a = jnp.eye(3, dtype=dtype)
    with pytest.raises(TypeError, match=rf"^pinv: argument 'a' has dtype {name}.*float16, bfloat16 or float32"):
        jaxpinv.pinv(a)
    with pytest.raises(TypeError, match=rf"^lstsq: argument 'b' has dtype {name}"):
        jaxpinv.lstsq(np.eye(3, dtype=np.float32), jnp.ones(3, dtype))


@pytest.mark.parametrize(
    "dtype,expected",
    [(np.int32, jnp.float64), (np.int64, jnp.float64), (np.bool_, jnp.float64), (np.uint8, jnp.float64)],
)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_ints_and_bools_promote_like_jnp(dtype, expected):
    a = np.array([[1, 0], [1, 1], [0, 1]], dtype=dtype)
    p = jaxpinv.pinv(a)
    assert p.dtype == expected == jnp.linalg.pinv(a.astype(np.float64)).dtype  # x64 on in tests
    np.testing.assert_allclose(p, np.linalg.pinv(a.astype(np.float64)), rtol=1e-12)
    assert int(jaxpinv.matrix_rank(a)) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_dtype_preserved_and_accurate(dtype):
    rng = np.random.default_rng(1)
    a = random_matrix(rng, (2, 5, 3), dtype, cond=20.0)
    p = jaxpinv.pinv(a)
    assert p.dtype == dtype
    ref = np.linalg.pinv(a.astype(np.complex128))
    assert rel_err(p, ref) < forward_tol(dtype, 20.0, 5)  # backward-stable SVD, cond 20
    r = jaxpinv.matrix_rank(a)
    assert r.dtype == jnp.int32


def test_python_lists_and_numpy_inputs():
    p = jaxpinv.pinv([[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(p, [[1.0, 0.0], [0.0, 0.5]])
    assert isinstance(p, jax.Array)


def test_float64_numpy_input_without_x64_runs_in_float32_without_a_warning():
    # JAX's default configuration: jnp.asarray turns float64 NumPy input into float32 silently; so do
    # we (the compute dtype was float64, which JAX truncated with a UserWarning in every call).
    import warnings

    from helpers import x64

    rng = np.random.default_rng(5)
    a = random_matrix(rng, (2, 5, 3), np.float64, cond=10.0)
    b = rng.standard_normal((2, 5))
    with x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        calls = {
            "pinv": jaxpinv.pinv(a, rtol=np.array(1e-6)),
            "pinverse": jaxpinv.pinverse(a),
            "lstsq": jaxpinv.lstsq(a, b),
            "lstsq_full": jaxpinv.lstsq_full(a, b).solution,
            "damped_pinv": jaxpinv.damped_pinv(a, np.float64(0.1)),
            "complex": jaxpinv.pinv(a.astype(np.complex128)),
        }
        assert int(jaxpinv.matrix_rank(a)[0]) == 3
    ref = np.linalg.pinv(a)
    for name, out in calls.items():
        assert out.dtype == (np.complex64 if name == "complex" else np.float32), name
    # float32 computation of a condition-10 matrix: 10 n eps cond (helpers.forward_tol)
    for name in ("pinv", "pinverse", "complex"):
        assert rel_err(calls[name], ref) < forward_tol(np.float32, 10.0, 5), name
