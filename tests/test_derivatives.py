"""Derivatives against central finite differences, and finiteness where svd's own rule fails.

pinv is differentiable only where the rank (after the cutoff) is locally
constant, so finite differences are taken along rank-preserving paths:
``A = X Y^H`` with thin full-rank factors, differentiated with respect to
``X`` and ``Y`` (every direction in factor space keeps the rank).
``jax.test_util.check_grads`` compares forward and reverse mode, orders 1 and
2, with central differences in float64/complex128.

Tolerances: central differences with step ``h = 1e-5`` have truncation error
``O(h^2 |P'''|)`` and rounding error ``O(eps |P| / h)``; for the well
conditioned factors used here (cond <= 10) both are below 1e-6 relative, so
``atol = rtol = 1e-5`` (1e-4 for second order, whose differences nest) holds
with margin.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import check_grads_per_entry as check
from helpers import exact_svd, product, random_matrix, special_matrices
from helpers import low_rank_factors as factors

import jaxpinv

CASES = [
    # (batch, m, n, r, dtype): tall, wide, square; full rank and rank-deficient;
    # real and complex; batched.
    ((), 5, 3, 3, np.float64),
    ((), 3, 5, 3, np.complex128),
    ((), 4, 4, 4, np.float64),
    ((), 4, 4, 4, np.complex128),
    ((), 6, 4, 2, np.float64),
    ((), 6, 4, 2, np.complex128),
    ((), 4, 6, 2, np.float64),
    ((), 5, 5, 3, np.complex128),
    ((2,), 4, 3, 2, np.float64),
    ((2,), 3, 5, 3, np.complex128),
    ((), 9, 2, 2, np.float64),  # m >= 2n: the forward reduces by QR first
    ((), 2, 9, 1, np.complex128),  # n >= 2m: LQ
]
SECOND_ORDER = {2, 5, 6, 9}  # indices into CASES: order 2 on a spread of them (it is slow)


@pytest.mark.parametrize(
    "case", [pytest.param(case, marks=pytest.mark.slow if case in SECOND_ORDER else ()) for case in range(len(CASES))]
)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_check_grads_rank_preserving(case):
    batch, m, n, r, dtype = CASES[case]
    rng = np.random.default_rng(case)
    x, y = factors(rng, batch, m, n, r, dtype)

    def f(x, y):
        return jaxpinv.pinv(product(x, y))

    order = 2 if case in SECOND_ORDER else 1
    tol = 1e-4 if order == 2 else 1e-5
    check(f, (x, y), order, tol)


@pytest.mark.slow  # second order over a batch; the unbatched checks stay quick
@pytest.mark.parametrize("m,n", [(4, 4), (5, 3)])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_check_grads_batch_mixing_full_rank_and_deficient(m, n):
    # The rule skips terms that vanish at full rank only when the whole batch
    # has full rank: a mixed batch must take the general path for everyone.
    rng = np.random.default_rng(12)
    x1, y1 = factors(rng, (), m, n, n, np.float64)
    x2, y2 = factors(rng, (), m, n, n - 1, np.float64)

    def f(x1, y1, x2, y2):
        return jaxpinv.pinv(jnp.stack([product(x1, y1), product(x2, y2)]))

    check(f, (x1, y1, x2, y2), 2, 1e-4)


@pytest.mark.parametrize("dtype", [np.float64, pytest.param(np.complex128, marks=pytest.mark.slow)])
@pytest.mark.parametrize("n,r", [(4, 4), (5, 3)])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_check_grads_hermitian_rank_preserving(dtype, n, r):
    rng = np.random.default_rng(10 * n + r)
    x = jnp.asarray(random_matrix(rng, (n, r), dtype, cond=3.0))
    d = jnp.asarray(np.linspace(-2.0, 1.5, r))  # indefinite, no zero eigenvalue

    def f(x):
        h = (x * d) @ jnp.conj(x.T)
        return jaxpinv.pinv(h, hermitian=True)

    check(f, (x,), 2, 1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_hermitian_derivative_is_that_of_the_lower_triangle_function(dtype):
    # A general (non-Hermitian) A whose lower triangle defines an invertible
    # Hermitian matrix: every small perturbation keeps the rank, so finite
    # differences of the forward function itself are a valid reference in all
    # directions, including the ignored upper triangle and imaginary diagonal.
    rng = np.random.default_rng(5)
    n = 4
    a = jnp.asarray(random_matrix(rng, (n, n), dtype, cond=3.0) + 3 * np.eye(n))

    def f(a):
        return jaxpinv.pinv(a, hermitian=True)

    check(f, (a,), 2, 1e-4)
    c = jnp.asarray(rng.standard_normal((n, n)))
    g = jax.grad(lambda a: jnp.real(jnp.sum(f(a) * c)))(a)
    iu = np.triu_indices(n, 1)
    np.testing.assert_array_equal(np.asarray(g)[iu], 0)
    if np.iscomplexobj(a):
        # The imaginary part of the diagonal is not read: its gradient is zero.
        np.testing.assert_array_equal(np.imag(np.diag(np.asarray(g))), 0)


# The costliest points are slow (CI's "-m slow" run); the others stay in the quick suite.
SLOW_SPECIAL = {("rank1_30x30", False), ("rank1_30x30", True), ("wide_repeated", False), ("orthogonal", False)}


@pytest.mark.parametrize(
    "name,hermitian",
    [
        pytest.param(name, hermitian, marks=pytest.mark.slow if (name, hermitian) in SLOW_SPECIAL else ())
        for name, hermitian in [(name, False) for name in special_matrices()]
        + [(name, True) for name, a in special_matrices().items() if a.shape[0] == a.shape[1]]
    ],
)
def test_derivatives_finite_where_svd_rule_is_not(name, hermitian):
    a = jnp.asarray(special_matrices()[name])
    c = jnp.asarray(np.random.default_rng(7).standard_normal(a.shape[::-1]))

    def loss(a):
        return jnp.sum(jaxpinv.pinv(a, hermitian=hermitian) * c)

    for d in (
        jax.grad(loss)(a),
        jax.jacfwd(loss)(a),
        jax.jvp(loss, (a,), (jnp.ones_like(a),))[1],
    ):
        assert np.all(np.isfinite(d)), name
    if a.shape[0] <= 5:
        assert np.all(np.isfinite(jax.hessian(loss)(a))), name
    else:
        # rank-1 30x30: a Hessian-vector product instead of the 810k-entry Hessian
        hvp = jax.jvp(jax.grad(loss), (a,), (jnp.ones_like(a),))[1]
        assert np.all(np.isfinite(hvp)), name


def test_naive_svd_gradient_is_nan_at_identity_but_ours_is_exact():
    def naive(a):
        u, s, vh = jnp.linalg.svd(a, full_matrices=False)
        return jnp.sum((vh.T / s) @ u.T)

    eye = jnp.eye(4)
    assert not np.all(np.isfinite(jax.grad(naive)(eye)))  # the instability we avoid
    # d/dA sum(A^-1) = -A^-T 1 1^T A^-T = -ones at A = I
    g = jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a)))(eye)
    np.testing.assert_allclose(g, -np.ones((4, 4)), rtol=1e-14)
    g = jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a, hermitian=True)))(eye)
    # Hermitian: d/dA reads the lower triangle, so the upper gradient folds into it.
    np.testing.assert_allclose(g, -np.tril(2 * np.ones((4, 4)) - np.eye(4)), rtol=1e-14)


@pytest.mark.parametrize("name", ["identity", "orthogonal", "repeated"])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_hessian_matches_finite_differences_of_gradient(name):
    # Full-rank square matrices: every small perturbation keeps the rank, so
    # central differences of the (separately FD-checked) gradient are a reference.
    a = jnp.asarray(special_matrices()[name])
    c = jnp.asarray(np.random.default_rng(8).standard_normal(a.shape))

    def loss(a):
        return jnp.sum(jaxpinv.pinv(a) * c)

    hess = np.asarray(jax.hessian(loss)(a)).reshape(a.size, a.size)
    g = jax.jit(jax.grad(loss))
    h = 1e-5
    fd = np.empty_like(hess)
    for k in range(a.size):
        e = np.zeros(a.size)
        e[k] = h
        e = e.reshape(a.shape)
        fd[:, k] = (np.asarray(g(a + e)) - np.asarray(g(a - e))).ravel() / (2 * h)
    np.testing.assert_allclose(hess, fd, atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(hess, hess.T, atol=1e-12)  # a Hessian is symmetric


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_all_transforms_agree():
    rng = np.random.default_rng(9)
    x, y = factors(rng, (), 5, 4, 3, np.float64)
    dx, dy = jnp.asarray(rng.standard_normal((5, 3))), jnp.asarray(rng.standard_normal((4, 3)))
    a = product(x, y)  # rank 3, 5 x 4
    da = product(dx, y) + product(x, dy)  # the tangent of the path (x + t dx)(y + t dy)^H
    ct = jnp.asarray(rng.standard_normal((4, 5)))
    f = jaxpinv.pinv

    _, t_jvp = jax.jvp(f, (a,), (da,))
    _, lin = jax.linearize(f, a)
    _, vjp = jax.vjp(f, a)
    jf = jax.jacfwd(f)(a)
    jr = jax.jacrev(f)(a)
    ckpt = jax.grad(lambda a: jnp.sum(jax.checkpoint(f)(a) * ct))(a)
    np.testing.assert_allclose(lin(da), t_jvp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jnp.einsum("ijkl,kl->ij", jf, da), t_jvp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jf, jr, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vjp(ct)[0], jnp.einsum("ij,ijkl->kl", ct, jr), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ckpt, vjp(ct)[0], rtol=1e-12, atol=1e-12)
    # and the tangent matches a central difference along the rank-preserving direction
    h = 1e-6
    fd = (f(product(x + h * dx, y + h * dy)) - f(product(x - h * dx, y - h * dy))) / (2 * h)
    np.testing.assert_allclose(t_jvp, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("which", ["atol", "rtol"])
def test_tolerances_are_not_differentiated(which):
    a = jnp.asarray(np.diag([2.0, 1.0, 0.5]))

    def loss(tol):
        return jnp.sum(jaxpinv.pinv(a, **{which: tol}))

    assert float(jax.grad(loss)(0.3)) == 0.0
    g = jax.grad(loss)(jnp.array(0.3))
    assert g.shape == () and float(g) == 0.0
    g = jax.grad(lambda t: jnp.sum(jaxpinv.pinv(a * t[0], **{which: t[1]})))(jnp.array([1.0, 0.1]))
    assert float(g[1]) == 0.0 and np.isfinite(g[0])
    assert float(jax.grad(lambda t: jnp.sum(jaxpinv.matrix_rank(a, **{which: t})) * 1.0)(0.3)) == 0.0


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 2, 2)])
def test_zero_size_derivatives(shape):
    a = jnp.zeros(shape)
    g = jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a)))(a)
    assert g.shape == shape
    t = jax.jvp(jaxpinv.pinv, (a,), (a,))[1]
    assert t.shape == shape[:-2] + shape[-2:][::-1]


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_scale_of_intermediates_in_the_rule():
    # The rule works on A / max|A|: derivatives at a tiny or huge matrix stay
    # finite and equal the scaled derivative at the unit matrix,
    # d pinv(cA)[c dA] = d pinv(A)[dA] / c.
    rng = np.random.default_rng(11)
    x, y = factors(rng, (), 4, 3, 2, np.float64)
    a, da = product(x, y), product(x, jnp.asarray(rng.standard_normal((3, 2))))
    ref = jax.jvp(jaxpinv.pinv, (a,), (da,))[1]
    for c in (1e-150, 1e150):
        t = jax.jvp(jaxpinv.pinv, (c * a,), (c * da,))[1]
        np.testing.assert_allclose(np.asarray(t) * c, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


FORWARD = {
    "auto": lambda x: jaxpinv.pinv(x),
    "svd": lambda x: jaxpinv.pinv(x, method="svd"),
    "damped_pinv_0": lambda x: jaxpinv.damped_pinv(x, 0.0),  # pinv, with damped_pinv's own rule
}


@pytest.mark.parametrize("method", list(FORWARD))
@pytest.mark.parametrize("wide", [False, True], ids=["tall", "wide"])
@pytest.mark.parametrize(
    "dtype,cond",
    [(np.float32, 1e1), (np.float32, 1e2), (np.float32, 1e3), (np.float64, 1e1), (np.float64, 1e4), (np.float64, 1e8)]
    + [pytest.param(np.float64, c, marks=pytest.mark.slow) for c in (1e2, 1e6)],
)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_forward_mode_accuracy_matches_jnp_along_any_direction(dtype, cond, wide, method):
    # Issue 21 #4: the tall rule G (dA^H - (A^H dA + dA^H A) P) cancelled along dA ~ A with error
    # eps cond^2 (float32, cond 1e3: 2.9e-2 against jnp's 1.1e-4). Along A itself, a random and a
    # rank-one direction, the jvp's error (against the exact factors, in float64) must stay within
    # twice jnp.linalg.pinv's (whose rule goes term by term), plus 2 eps cond: the rounding level
    # of any backward-stable evaluation, where the ratio of two such errors is noise (measured over
    # ten draws at cond 1e2-1e4: median ratio 0.4-1.0, largest 1.7).
    rng = np.random.default_rng(int(np.log10(cond)) + 10 * wide)
    q, s, v = exact_svd(rng, 256, 16, cond)
    a = (q * s) @ v.T
    p, g = (v / s) @ q.T, (v / s**2) @ v.T
    directions = {"A": a, "random": rng.standard_normal(a.shape), "rank-one": np.outer(q[:, 0] + 1, v[:, -1])}
    for name, da in directions.items():
        da = da.astype(dtype).astype(np.float64)
        ref = -p @ da @ p + g @ (da.T - (da.T @ q) @ q.T)  # Golub-Pereyra at full column rank
        x, dx, ref = (a.T, da.T, ref.T) if wide else (a, da, ref)
        x, dx = jnp.asarray(x, dtype), jnp.asarray(dx, dtype)
        ours = jax.jvp(FORWARD[method], (x,), (dx,))[1]
        theirs = jax.jvp(lambda x: jnp.linalg.pinv(x, rtol=0.0), (x,), (dx,))[1]

        def err(t):
            return np.linalg.norm(np.asarray(t, np.float64) - ref) / np.linalg.norm(ref)

        assert err(ours) <= 2 * err(theirs) + 2 * np.finfo(dtype).eps * cond, (name, err(ours), err(theirs))
