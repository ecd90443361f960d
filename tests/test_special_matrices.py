"""Derivatives at the special matrices, against closed forms (and torch's autograd).

Where ``svd``'s own rule is NaN (the identity, orthogonal matrices, repeated
singular values, the zero matrix), finiteness is not enough: the derivative
must be the right number. Closed forms that need no reference library:

- identity: ``d pinv(I)[dA] = -dA``; ``lstsq(I, b)``: ``dx = -dA b + db``;
- orthogonal ``Q``: ``d pinv(Q)[dA] = -Q^H dA Q^H``; ``lstsq``:
  ``dx = -Q^H dA Q^H b + Q^H db``;
- zero matrix: every term of Golub–Pereyra carries ``P = 0``: exactly 0;
- ``damped_pinv(A, l) = (A^H A + l^2)^-1 A^H`` at ``A^H A = I`` (identity,
  orthogonal): ``dX = (dA^H - (dA^H A + A^H dA + 2 l dl) X) / (1 + l^2)``
  with ``X = A^H / (1 + l^2)``; at ``A = 0``: ``dX = dA^H / l^2`` (``l > 0``)
  and 0 at ``l = 0``.

All of these are full-rank (or rank-0) points, where every direction keeps
the rank, so they hold for random ``dA``. Tolerance: float64 rounding of a
few products of O(1) matrices, 1e-13.

torch, where installed, gives a second, independent reference: autograd
through ``torch.linalg.pinv`` (finite at all of these, per the issue that
asked for this file).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import adjoint as _h
from helpers import random_matrix

import jaxpinv

TOL = 1e-13


def _special(name, rng, dtype=np.float64):
    n = 4
    if name == "identity":
        return np.eye(n, dtype=dtype)
    if name == "orthogonal":
        return random_matrix(rng, (n, n), dtype, cond=1.0)  # U V^H: every singular value 1
    if name == "zero":
        return np.zeros((n, n), dtype)
    raise ValueError(name)


def _gauss(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("name", ["identity", "orthogonal", "zero"])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_pinv_and_lstsq_closed_forms(name, dtype):
    rng = np.random.default_rng(0)
    a = _special(name, rng, dtype)
    da, b, db = _gauss(rng, a.shape, dtype), _gauss(rng, (4,), dtype), _gauss(rng, (4,), dtype)
    _, dp = jax.jvp(jaxpinv.pinv, (a,), (da,))
    _, dx = jax.jvp(jaxpinv.lstsq, (a, b), (da, db))
    if name == "zero":
        np.testing.assert_array_equal(dp, 0)  # exactly
        np.testing.assert_array_equal(dx, 0)
        return
    ah = _h(a)  # pinv(Q) = Q^H
    np.testing.assert_allclose(dp, -ah @ da @ ah, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(dx, -ah @ da @ ah @ b + ah @ db, rtol=TOL, atol=TOL)
    # reverse mode: the transpose of the same linear map
    c = _gauss(rng, a.shape, dtype)
    g = jax.grad(lambda m: jnp.real(jnp.sum(jaxpinv.pinv(m) * c)))(a)
    # checked as the defining identity of the gradient: Re sum(g * dA) is the
    # directional derivative Re sum(dP * c) for every dA (JAX's convention for
    # complex inputs: g = df/dx - i df/dy).
    for _ in range(3):
        d = _gauss(rng, a.shape, dtype)
        lhs = np.real(np.sum(np.asarray(g) * d))
        rhs = np.real(np.sum((-ah @ d @ ah) * c))
        np.testing.assert_allclose(lhs, rhs, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("lam", [0.0, 0.5])
@pytest.mark.parametrize("name", ["identity", "orthogonal", "zero"])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_damped_pinv_closed_forms(name, lam):
    rng = np.random.default_rng(1)
    a = _special(name, rng)
    da = rng.standard_normal(a.shape)
    dlam = 0.3 if lam else 0.0
    _, dx = jax.jvp(jaxpinv.damped_pinv, (a, lam), (da, dlam))
    if name == "zero":
        want = da.T / lam**2 if lam else np.zeros_like(da)
    else:
        k = 1 + lam**2
        x = a.T / k
        want = (da.T - (da.T @ a + a.T @ da + 2 * lam * dlam * np.eye(4)) @ x) / k
    np.testing.assert_allclose(dx, want, rtol=TOL, atol=TOL)


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_second_derivative_at_identity_against_closed_form():
    # pinv(I + t E) = (I + t E)^-1 = I - t E + t^2 E^2 - ...: the second
    # derivative along E is 2 E^2 (full rank, so the inverse's series holds).
    e = np.random.default_rng(2).standard_normal((4, 4))

    def along(t):
        return jaxpinv.pinv(jnp.eye(4) + t * e)

    second = jax.jvp(lambda t: jax.jvp(along, (t,), (1.0,))[1], (0.0,), (1.0,))[1]
    np.testing.assert_allclose(second, 2 * e @ e, rtol=TOL, atol=TOL)
    hess = jax.hessian(lambda m: jnp.sum(jaxpinv.pinv(m)))(jnp.eye(4))
    np.testing.assert_allclose(np.einsum("ijkl,ij,kl->", hess, e, e), np.sum(2 * e @ e), rtol=1e-12)


@pytest.mark.parametrize("name", ["identity", "orthogonal", "zero", "repeated_deficient", "rank1_30", "wide"])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_gradient_equals_torch_autograd(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    if name == "repeated_deficient":
        a = random_matrix(rng, (5, 5), np.float64, rank=3, cond=1.0)  # singular values 1, 1, 1, 0, 0
    elif name == "rank1_30":
        u = rng.standard_normal((30, 1))
        a = u @ u.T
    elif name == "wide":
        a = random_matrix(rng, (3, 6), np.float64, cond=1.0)
    else:
        a = _special(name, rng)
    c = rng.standard_normal(a.shape[::-1])
    g = np.asarray(jax.grad(lambda m: jnp.sum(jaxpinv.pinv(m) * c))(a))
    ta = torch.tensor(a, requires_grad=True)
    (torch.linalg.pinv(ta) * torch.tensor(c)).sum().backward()
    ref = ta.grad.numpy()
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12 * max(np.abs(ref).max(), 1))
    if name == "zero":
        np.testing.assert_array_equal(g, 0)
