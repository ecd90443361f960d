"""Composition with JAX transformations: jit, vmap (matrix and tolerances), scan, eval_shape."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import check_grads_per_entry, random_matrix

import jaxpinv


def batch(seed=0, shape=(6, 5, 3), rank=None):
    return jnp.asarray(random_matrix(np.random.default_rng(seed), shape, np.float64, rank=rank))


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_jit_with_traced_tolerances_matches_numpy():
    a = batch()
    f = jax.jit(lambda a, atol, rtol: jaxpinv.pinv(a, atol=atol, rtol=rtol))
    for atol, rtol in [(0.0, 1e-10), (0.5, 0.0), (0.05, 0.5)]:
        s = np.linalg.svd(np.asarray(a), compute_uv=False)
        cut = np.maximum(atol, rtol * s[:, :1])
        ref = np.stack([np.linalg.pinv(m, rcond=0) for m in np.asarray(a)])  # all kept
        got = f(a, atol, rtol)
        assert f._cache_size() == 1  # one compilation for all tolerance values
        for i in range(a.shape[0]):
            if np.all(s[i] > cut[i]):
                np.testing.assert_allclose(got[i], ref[i], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(
            jax.jit(lambda a, t, r: jaxpinv.matrix_rank(a, atol=t, rtol=r))(a, atol, rtol),
            (s > cut).sum(-1),
        )


def test_vmap_over_matrices_equals_batch():
    a = batch(rank=2)
    np.testing.assert_allclose(jax.vmap(jaxpinv.pinv)(a), jaxpinv.pinv(a), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(jax.vmap(jaxpinv.matrix_rank)(a), jaxpinv.matrix_rank(a))
    # nested vmap over a (2, 3, m, n) stack
    a4 = a.reshape(2, 3, 5, 3)
    np.testing.assert_allclose(jax.vmap(jax.vmap(jaxpinv.pinv))(a4), jaxpinv.pinv(a4), rtol=1e-12, atol=1e-14)


def test_vmap_over_tolerances():
    a = jnp.asarray(np.diag([2.0, 1.0, 0.5]))
    atols = jnp.array([0.1, 0.7, 1.5, 3.0])
    got = jax.vmap(lambda t: jaxpinv.pinv(a, atol=t))(atols)
    ref = jaxpinv.pinv(a, atol=atols[:, None][:, 0])  # array tolerance: batch (4,)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(jax.vmap(lambda t: jaxpinv.matrix_rank(a, atol=t))(atols), [3, 2, 1, 0])
    # vmap over matrix and tolerance together, with hermitian=True
    h = jnp.stack([a, -a])
    got = jax.vmap(lambda m, t: jaxpinv.pinv(m, rtol=t, hermitian=True))(h, jnp.array([0.3, 0.1]))
    np.testing.assert_allclose(got[0], np.diag([0.5, 1.0, 0.0]))
    np.testing.assert_allclose(got[1], -np.diag([0.5, 1.0, 2.0]))


def test_vmap_of_grad_equals_per_matrix_grad():
    a = batch(seed=1, shape=(4, 3, 3))
    c = jnp.asarray(np.random.default_rng(2).standard_normal((3, 3)))
    g = jax.grad(lambda m: jnp.sum(jaxpinv.pinv(m) * c))
    batched = jax.jit(jax.vmap(g))(a)
    for i in range(4):
        np.testing.assert_allclose(batched[i], g(a[i]), rtol=1e-12, atol=1e-13)


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_scan_and_fori_loop_bodies():
    a = batch(seed=3, shape=(4, 4, 4))

    def body(carry, m):
        p = jaxpinv.pinv(m + carry)
        return carry + 0.01 * jnp.trace(p), p

    carry, ps = jax.lax.scan(body, jnp.zeros(()), a)
    c = 0.0
    for i in range(4):
        np.testing.assert_allclose(ps[i], np.linalg.pinv(np.asarray(a[i]) + c), rtol=1e-9, atol=1e-12)
        c += 0.01 * np.trace(np.asarray(ps[i]))
    np.testing.assert_allclose(carry, c, rtol=1e-9)
    # Newton-Schulz-free fixed point: x <- pinv(pinv(x)) keeps x (full rank)
    x0 = a[0]
    out = jax.lax.fori_loop(0, 3, lambda i, x: jaxpinv.pinv(jaxpinv.pinv(x)), x0)
    np.testing.assert_allclose(out, x0, rtol=1e-8, atol=1e-10)
    # and its gradient through the loop is finite
    g = jax.grad(lambda x: jnp.sum(jax.lax.fori_loop(0, 2, lambda i, y: jaxpinv.pinv(y), x)))(x0)
    np.testing.assert_allclose(g, np.ones((4, 4)), rtol=1e-7)  # pinv(pinv(x)) = x


def test_eval_shape_and_dtypes():
    spec = jax.ShapeDtypeStruct((7, 5, 3), jnp.complex64)
    out = jax.eval_shape(jaxpinv.pinv, spec)
    assert out.shape == (7, 3, 5) and out.dtype == jnp.complex64
    out = jax.eval_shape(lambda a: jaxpinv.pinv(a, atol=jnp.ones((2, 1))), spec)
    assert out.shape == (2, 7, 3, 5)
    out = jax.eval_shape(jaxpinv.matrix_rank, spec)
    assert out.shape == (7,) and out.dtype == jnp.int32
    out = jax.eval_shape(lambda a: jaxpinv.pinv(a, hermitian=True), jax.ShapeDtypeStruct((4, 4), jnp.bfloat16))
    assert out.shape == (4, 4) and out.dtype == jnp.bfloat16


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_jit_grad_hessian_compose_inside_larger_program():
    a = batch(seed=4, shape=(3, 3))

    @jax.jit
    def loss(a):
        p = jaxpinv.pinv(a @ a.T + jnp.eye(3), hermitian=True)
        return jnp.sum(jnp.tanh(p @ a))

    h = jax.jit(jax.hessian(loss))(a)
    assert h.shape == (3, 3, 3, 3)
    # Second derivatives against central differences, not against another mode
    # of the same rule: check_grads order 2 (jvp-of-jvp, vjp-of-vjp), and the
    # Hessian against differences of the gradient. a a^T + I >= I keeps the
    # rank under any small step; float64 differences with step 1e-5 are good
    # to ~1e-9 here (step^2 truncation, eps / step rounding).
    check_grads_per_entry(loss, (a,), order=2, tol=1e-5)
    grad = jax.jit(jax.grad(loss))
    step = 1e-5
    basis = np.eye(a.size).reshape(a.size, *a.shape) * step
    fd = np.stack([(grad(a + e) - grad(a - e)) / (2 * step) for e in basis], axis=-1)
    np.testing.assert_allclose(np.asarray(h).reshape(a.size, a.size), fd.reshape(a.size, a.size), atol=1e-7)
