"""damped_pinv and lstsq(damping=...): values, limits, derivatives, and learning the damping.

References: ``V diag(s/(s^2+lam^2)) U^H`` from NumPy's float64 SVD and the
normal-equations form ``solve(A^H A + lam^2 I, A^H)`` (well conditioned here,
lam >= 0.1). For lam > 0 the map is smooth, so central differences in random
(not only rank-preserving) directions are a valid reference; tolerances are
per entry as in test_derivatives.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import check_grads_per_entry as check
from helpers import random_matrix

import jaxpinv


def reference(a, lam):
    ah = np.conj(np.swapaxes(a, -1, -2))
    n = a.shape[-1]
    return np.linalg.solve(ah @ a + lam**2 * np.eye(n), ah)


@pytest.mark.parametrize("shape,rank", [((5, 3), 3), ((3, 5), 3), ((4, 4), 2), ((12, 2), 1), ((2, 6, 4), 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_values(shape, rank, dtype):
    rng = np.random.default_rng(0)
    a = random_matrix(rng, shape, dtype, rank=rank, cond=10.0)
    for lam in (0.1, 1.0, 3.0):
        np.testing.assert_allclose(jaxpinv.damped_pinv(a, lam), reference(a, lam), rtol=1e-12, atol=1e-13)


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_array_and_traced_damping_per_batch_member():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4, 2))
    lam = np.array([0.5, 1.0, 2.0])
    got = jax.jit(jaxpinv.damped_pinv)(a, lam)
    for i in range(3):
        np.testing.assert_allclose(got[i], reference(a[i], lam[i]), rtol=1e-12)
    got = jax.vmap(jaxpinv.damped_pinv, in_axes=(None, 0))(a[0], jnp.asarray(lam))
    np.testing.assert_allclose(got[2], reference(a[0], 2.0), rtol=1e-12)


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_zero_damping_is_pinv_and_the_limit_converges():
    rng = np.random.default_rng(2)
    for shape, rank in [((5, 3), 3), ((4, 6), 2), ((4, 4), 4)]:
        a = random_matrix(rng, shape, np.float64, rank=rank, cond=10.0)
        p = np.asarray(jaxpinv.pinv(a))
        # equal to rounding (wide matrices are decomposed as A^H here): 10 eps |P|
        np.testing.assert_allclose(jaxpinv.damped_pinv(a, 0.0), p, rtol=0, atol=10 * 2.3e-16 * np.abs(p).max())
        # |A+_lam - A+| = max_i lam^2 / (s_i (s_i^2 + lam^2)) <= lam^2 / s_min^3
        for lam in (1e-2, 1e-3, 1e-4):
            err = np.abs(np.asarray(jaxpinv.damped_pinv(a, lam)) - p).max()
            assert err <= 2 * lam**2 * 10**3, (shape, lam, err)
    g0 = jax.grad(lambda a: jnp.sum(jaxpinv.damped_pinv(a, 0.0)))(jnp.eye(3))
    np.testing.assert_allclose(g0, jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a)))(jnp.eye(3)), rtol=1e-14)


@pytest.mark.parametrize(
    "shape,rank", [((4, 3), 3), ((3, 4), 2), pytest.param((3, 3), 1, marks=pytest.mark.slow), ((7, 2), 2)]
)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_check_grads_random_directions_across_rank(shape, rank, dtype):
    # lam > 0: smooth everywhere, even at rank-deficient a, so every direction is valid.
    rng = np.random.default_rng(3)
    a = jnp.asarray(random_matrix(rng, shape, dtype, rank=rank, cond=5.0))
    # second order on the rank-deficient square case only (it is slow)
    check(jaxpinv.damped_pinv, (a, 0.3), 2 if shape == (3, 3) else 1, 1e-4)


def test_gradients_finite_everywhere():
    for a in (np.zeros((3, 3)), np.eye(3), np.diag([2.0, 2.0, 0.0])):
        for lam in (0.0, 0.5):
            g_a, g_l = jax.grad(lambda a, lam_: jnp.sum(jaxpinv.damped_pinv(a, lam_)), argnums=(0, 1))(a, lam)
            assert np.all(np.isfinite(g_a)) and np.isfinite(g_l)
        h = jax.hessian(lambda a: jnp.sum(jaxpinv.damped_pinv(a, 0.5)))(a)
        assert np.all(np.isfinite(h))


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_lstsq_damping_is_ridge_and_differentiable():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((8, 3))
    b = rng.standard_normal(8)
    lam = 0.8
    ridge = np.linalg.solve(a.T @ a + lam**2 * np.eye(3), a.T @ b)
    np.testing.assert_allclose(jaxpinv.lstsq(a, b, damping=lam), ridge, rtol=1e-12)
    check(lambda a, b, lam_: jaxpinv.lstsq(a, b, damping=lam_), (a, b, lam), 1, 1e-5)
    with pytest.raises(ValueError, match="either 'damping' or"):
        jaxpinv.lstsq(a, b, damping=0.1, rtol=1e-3)


def test_learn_damping_by_gradient_descent_lowers_validation_error():
    # Ridge regression with noisy, ill-conditioned features: tune log(lambda)
    # on a validation set by gradient descent through lstsq(damping=...).
    rng = np.random.default_rng(5)
    n_train, n_val, d = 30, 200, 20
    scales = np.logspace(0, -3, d)
    x_train = rng.standard_normal((n_train, d)) * scales
    x_val = rng.standard_normal((n_val, d)) * scales
    w_true = rng.standard_normal(d)
    y_train = x_train @ w_true + 0.1 * rng.standard_normal(n_train)
    y_val = x_val @ w_true + 0.1 * rng.standard_normal(n_val)

    def val_loss(log_lam):
        w = jaxpinv.lstsq(x_train, y_train, damping=jnp.exp(log_lam))
        return jnp.mean((x_val @ w - y_val) ** 2)

    log_lam = jnp.asarray(np.log(1e-4))
    start = float(val_loss(log_lam))
    step = jax.jit(jax.grad(val_loss))
    for _ in range(150):  # sign gradient descent on log(lambda), step 0.05
        log_lam = log_lam - 0.05 * jnp.sign(step(log_lam))
    end = float(val_loss(log_lam))
    grid = [float(val_loss(jnp.log(lam))) for lam in np.logspace(-4, 1, 51)]
    assert np.isfinite(end) and end < 0.7 * start, (start, end)
    assert end <= 1.05 * min(grid), (end, min(grid))  # found the best damping on the grid


def test_errors_and_non_finite():
    with pytest.raises(ValueError, match="damped_pinv.*'damping'.*non-negative"):
        jaxpinv.damped_pinv(np.eye(2), -1.0)
    with pytest.raises(TypeError, match="damped_pinv.*'damping'.*real"):
        jaxpinv.damped_pinv(np.eye(2), 1j)
    with pytest.raises(ValueError, match="damped_pinv.*'a'"):
        jaxpinv.damped_pinv(np.ones(3), 1.0)
    a = np.stack([np.eye(2), np.eye(2)])
    a[0, 0, 0] = np.nan
    p = np.asarray(jaxpinv.damped_pinv(a, 1.0))
    assert np.isnan(p[0]).all()
    np.testing.assert_allclose(p[1], 0.5 * np.eye(2))
    h = jaxpinv.damped_pinv(jnp.eye(2, dtype=jnp.float16), 1.0)
    assert h.dtype == jnp.float16
    assert jaxpinv.damped_pinv(jnp.zeros((0, 3)), 1.0).shape == (3, 0)


@pytest.mark.slow  # second order; the first-order checks stay quick
@pytest.mark.parametrize("shape,rank", [((4, 3), 2), ((3, 4), 2), ((3, 3), 1)])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_zero_damping_second_derivative_on_rank_preserving_paths(shape, rank):
    # At lam = 0 on rank-deficient A the map is pinv, smooth only along paths
    # that keep the rank: A = B C with B (m x r), C (r x n). Central differences
    # of orders 1 and 2 along such paths are the reference (per-entry tolerance
    # as in test_derivatives.py; cond 3 keeps the float64 differences at ~1e-7).
    rng = np.random.default_rng(11)
    m, n = shape
    b = jnp.asarray(random_matrix(rng, (m, rank), np.float64, cond=3.0))
    c = jnp.asarray(random_matrix(rng, (rank, n), np.float64, cond=3.0))
    check(lambda b, c: jaxpinv.damped_pinv(b @ c, 0.0), (b, c), 2, 1e-5)


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_list_damping_is_an_array_damping():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 5, 3))
    b = rng.standard_normal((2, 5))
    np.testing.assert_allclose(
        jaxpinv.damped_pinv(a, [0.1, 0.2]), jaxpinv.damped_pinv(a, np.array([0.1, 0.2])), rtol=1e-14
    )
    np.testing.assert_allclose(jaxpinv.damped_pinv(a, [0.1, 0.2])[1], reference(a[1], 0.2), rtol=1e-12)
    x = jaxpinv.lstsq(a, b, damping=(0.1, 0.2))
    np.testing.assert_allclose(x[1], reference(a[1], 0.2) @ b[1], rtol=1e-12)
    with pytest.raises(ValueError, match="damped_pinv.*damping.*broadcast"):
        jaxpinv.damped_pinv(a, [0.1, 0.2, 0.3])


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_batch_mixing_zero_and_positive_damping_differentiates_each_member_on_its_own():
    # A batch with lam = [0, 0.5]: the rule's lam = 0 terms (null-space
    # projectors) must act on the lam = 0 member only, and must act there
    # (rank-deficient member). References: central differences (h = 1e-6) of
    # NumPy's pinv along a rank-preserving direction (A = X Y^T, moving X and
    # Y), and of the normal-equations form for lam = 0.5 (smooth).
    rng = np.random.default_rng(14)
    x, y = random_matrix(rng, (5, 2), cond=3.0), random_matrix(rng, (3, 2), cond=3.0)
    dx, dy = rng.standard_normal((5, 2)), rng.standard_normal((3, 2))
    a1, da1 = random_matrix(rng, (5, 3), cond=3.0), rng.standard_normal((5, 3))

    def a0(t):
        return (x + t * dx) @ (y + t * dy).T

    h = 1e-6
    fd0 = (np.linalg.pinv(a0(h)) - np.linalg.pinv(a0(-h))) / (2 * h)
    fd1 = (reference(a1 + h * da1, 0.5) - reference(a1 - h * da1, 0.5)) / (2 * h)
    da0 = dx @ y.T + x @ dy.T
    a, da = np.stack([a0(0.0), a1]), np.stack([da0, da1])
    _, t = jax.jvp(lambda m: jaxpinv.damped_pinv(m, jnp.array([0.0, 0.5])), (a,), (da,))
    # central differences in float64: error ~ h^2 |P'''| + eps |P| / h, ~1e-9 here
    np.testing.assert_allclose(t[0], fd0, rtol=0, atol=1e-7 * np.abs(fd0).max())
    np.testing.assert_allclose(t[1], fd1, rtol=0, atol=1e-7 * np.abs(fd1).max())

    # Second derivative of the lam = 0.5 member along the line (smooth there):
    # jvp of jvp against the second central difference (h = 1e-4: truncation
    # ~h^2, rounding ~eps / h^2, both ~1e-8 of |P''|).
    def along(t):
        return jaxpinv.damped_pinv(a + t * da, jnp.array([0.0, 0.5]))

    second = jax.jvp(lambda t: jax.jvp(along, (t,), (1.0,))[1], (0.0,), (1.0,))[1]
    h2 = 1e-4
    fd2 = (reference(a1 + h2 * da1, 0.5) - 2 * reference(a1, 0.5) + reference(a1 - h2 * da1, 0.5)) / h2**2
    np.testing.assert_allclose(second[1], fd2, rtol=0, atol=1e-5 * np.abs(fd2).max())
