"""lstsq: against numpy.linalg.lstsq, pinv(a) @ b, and finite differences.

Forward tolerances are ``10 n eps cond`` relative (backward-stable SVD);
derivative tolerances as in test_derivatives.py (central differences, h=1e-5,
float64, per-entry tolerance).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_grads_per_entry as check, eps, random_matrix

import jaxpinv


@pytest.mark.parametrize(
    "a_shape,rank,b_shape",
    [
        ((6, 3), 3, (6, 2)),  # overdetermined
        ((3, 6), 3, (3,)),  # underdetermined, vector b
        ((5, 5), 5, (5, 1)),
        ((7, 4), 2, (7, 3)),  # rank-deficient
        ((4, 7), 1, (4,)),
        ((12, 2), 2, (12, 2)),  # QR-reduced path
        ((2, 5, 4), 3, (2, 5)),  # batch of vectors
        ((3, 6, 3), 3, (1, 6, 2)),  # b broadcast over a batch
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_matches_numpy_lstsq(a_shape, rank, b_shape, dtype):
    rng = np.random.default_rng(0)
    a = random_matrix(rng, a_shape, dtype, rank=rank, cond=10.0)
    b = rng.standard_normal(b_shape).astype(dtype)
    x = np.asarray(jaxpinv.lstsq(a, b))
    vector = len(b_shape) == len(a_shape) - 1
    bb = b[..., None] if vector else b
    bb = np.broadcast_to(bb, a_shape[:-2] + bb.shape[-2:])
    # rcond sqrt(eps): above the rounding noise of the exact zeros, below 1/cond
    rcond = np.sqrt(eps(dtype))
    ref = np.stack([np.linalg.lstsq(m.astype(np.complex128), v, rcond=rcond)[0]
                    for m, v in zip(a.reshape(-1, *a_shape[-2:]), bb.reshape(-1, *bb.shape[-2:]))])
    ref = ref.reshape(a_shape[:-2] + (a_shape[-1], bb.shape[-1]))
    if vector:
        ref = ref[..., 0]
    assert x.shape == ref.shape and x.dtype == dtype
    tol = 10 * max(a_shape[-2:]) * eps(dtype) * 10
    assert np.abs(x - ref).max() <= tol * max(np.abs(ref).max(), 1)


def test_lstsq_full_matches_numpy_outputs():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((8, 3))
    b = rng.standard_normal((8, 2))
    x, res, rank, s = jaxpinv.lstsq_full(a, b)
    x_np, res_np, rank_np, s_np = np.linalg.lstsq(a, b, rcond=None)
    np.testing.assert_allclose(x, x_np, rtol=1e-12)
    np.testing.assert_allclose(res, res_np, rtol=1e-10)
    assert int(rank) == rank_np
    np.testing.assert_allclose(s, s_np, rtol=1e-12)
    # vector b, rank-deficient: residuals still defined (numpy gives none here)
    a[:, 2] = a[:, 1]
    x, res, rank, s = jaxpinv.lstsq_full(a, b[:, 0])
    assert x.shape == (3,) and res.shape == () and int(rank) == 2
    np.testing.assert_allclose(res, np.sum((b[:, 0] - a @ np.linalg.pinv(a) @ b[:, 0]) ** 2), rtol=1e-10)


@pytest.mark.parametrize("name", ["identity", "zero", "rank1_30x30", "repeated"])
def test_gradient_finite_and_equal_to_pinv_route(name):
    rng = np.random.default_rng(2)
    u = rng.standard_normal((30, 1))
    a = {"identity": np.eye(4), "zero": np.zeros((4, 3)), "rank1_30x30": u @ u.T,
         "repeated": np.diag([2.0, 2.0, 1.0])}[name]
    b = rng.standard_normal((a.shape[0], 2))
    c = rng.standard_normal((a.shape[1], 2))

    def via_lstsq(a, b):
        return jnp.sum(jaxpinv.lstsq(a, b) * c)

    def via_pinv(a, b):
        return jnp.sum((jaxpinv.pinv(a) @ b) * c)

    ga, gb = jax.grad(via_lstsq, argnums=(0, 1))(a, b)
    ra, rb = jax.grad(via_pinv, argnums=(0, 1))(a, b)
    assert np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))
    np.testing.assert_allclose(ga, ra, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(gb, rb, rtol=1e-9, atol=1e-11)
    h = jax.hessian(lambda a: via_lstsq(a, b))(jnp.asarray(a[:4, :4])) if a.shape[0] <= 4 else None
    if h is not None:
        assert np.all(np.isfinite(h))


def test_jnp_lstsq_gradient_is_nan_at_identity_ours_is_not():
    f = lambda lst: jax.grad(lambda a: jnp.sum(lst(a, jnp.ones(3))))(jnp.eye(3))  # noqa: E731
    assert not np.all(np.isfinite(f(lambda a, b: jnp.linalg.lstsq(a, b)[0])))  # jax issue #10805
    np.testing.assert_allclose(f(jaxpinv.lstsq), -np.ones((3, 3)), rtol=1e-14)


@pytest.mark.parametrize(
    "m,n,r,k,dtype",
    [(5, 3, 3, 2, np.float64), (3, 5, 3, 1, np.float64), (4, 4, 4, 2, np.complex128),
     (6, 4, 2, 2, np.float64), (4, 6, 2, 1, np.complex128), (9, 2, 2, 1, np.float64)],
)
def test_check_grads_rank_preserving(m, n, r, k, dtype):
    rng = np.random.default_rng(m * 10 + n)
    x = jnp.asarray(random_matrix(rng, (m, r), dtype, cond=3.0))
    y = jnp.asarray(random_matrix(rng, (n, r), dtype, cond=3.0))
    b = jnp.asarray(random_matrix(rng, (m, k), dtype, cond=3.0))

    def f(x, y, b):
        return jaxpinv.lstsq(x @ jnp.conj(y.T), b)

    check(f, (x, y, b), 1, 1e-5)
    if (m, n) in [(6, 4), (4, 4)]:
        check(f, (x, y, b), 2, 1e-4)


def test_vmap_jit_and_batch_agree():
    rng = np.random.default_rng(3)
    a = jnp.asarray(rng.standard_normal((5, 6, 3)))
    b = jnp.asarray(rng.standard_normal((5, 6)))
    batched = jaxpinv.lstsq(a, b)
    np.testing.assert_allclose(jax.vmap(jaxpinv.lstsq)(a, b), batched, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jax.jit(jaxpinv.lstsq)(a, b), batched, rtol=1e-12, atol=1e-14)
    for i in range(5):
        np.testing.assert_allclose(batched[i], np.linalg.lstsq(a[i], b[i], rcond=None)[0], rtol=1e-10)


def test_non_finite_isolated_and_errors():
    a = np.stack([np.eye(3), np.eye(3), 2 * np.eye(3)])
    b = np.ones((3, 3))
    a[0, 1, 0] = np.inf
    b[1, 2] = np.nan
    x = np.asarray(jaxpinv.lstsq(a, b))
    assert np.isnan(x[0]).all() and np.isnan(x[1]).all()
    np.testing.assert_array_equal(x[2], 0.5 * np.ones(3))
    with pytest.raises(ValueError, match="lstsq.*'b'.*m = a.shape"):
        jaxpinv.lstsq(np.eye(3), np.ones(4))
    with pytest.raises(ValueError, match="lstsq.*'a'"):
        jaxpinv.lstsq(np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="lstsq.*'b'"):
        jaxpinv.lstsq(np.eye(2), np.array(["a", "b"]))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision(dtype):
    a = jnp.asarray([[2.0, 0.0], [0.0, 4.0], [0.0, 0.0]], dtype)
    x = jaxpinv.lstsq(a, jnp.asarray([1.0, 1.0, 5.0], dtype))
    assert x.dtype == dtype
    np.testing.assert_allclose(np.asarray(x, np.float32), [0.5, 0.25])


def test_zero_size():
    assert jaxpinv.lstsq(jnp.zeros((0, 3)), jnp.zeros((0, 2))).shape == (3, 2)
    assert jaxpinv.lstsq(jnp.zeros((4, 0)), jnp.zeros((4,))).shape == (0,)


@pytest.mark.parametrize("shape", [(7, 3), (3, 7)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_jacobians_match_finite_differences(shape, dtype):
    # jacfwd pushes a batch of basis tangents through the rule (a vmap), and
    # jacrev a batch of cotangents; the tall case has a nonzero residual (the
    # P P^H dA^H r term), the wide one the (I - P A) term. Reference: central
    # differences of NumPy's lstsq, h = 1e-6 (error ~ h^2 + eps / h ~ 1e-10
    # at cond 3).
    rng = np.random.default_rng(sum(shape))
    a = random_matrix(rng, shape, dtype, cond=3.0)
    b = random_matrix(rng, (shape[0], 1), dtype, cond=1.0)[:, 0]
    h = 1e-6
    ref = np.zeros((shape[1],) + shape, dtype)
    for i in range(shape[0]):
        for j in range(shape[1]):
            e = np.zeros(shape)
            e[i, j] = h
            plus, minus = (np.linalg.lstsq(a + s * e, b, rcond=None)[0] for s in (1, -1))
            ref[:, i, j] = (plus - minus) / (2 * h)

    def f(a):
        return jaxpinv.lstsq(a, b)

    if dtype == np.float64:
        for jac in (jax.jacfwd, jax.jacrev):
            np.testing.assert_allclose(jac(f)(jnp.asarray(a)), ref, rtol=1e-6, atol=1e-7 * np.abs(ref).max())
    else:  # not holomorphic: push the real basis directions as jacfwd does (a vmap of jvp)
        basis = jnp.asarray(np.eye(a.size).reshape((a.size,) + shape).astype(dtype))
        cols = jax.vmap(lambda t: jax.jvp(f, (jnp.asarray(a),), (t,))[1])(basis)
        got = np.moveaxis(np.asarray(cols).reshape(shape + (shape[1],)), -1, 0)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7 * np.abs(ref).max())
