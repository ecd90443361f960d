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
from helpers import check_grads_per_entry as check
from helpers import eps, forward_tol, random_matrix

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
@pytest.mark.x64  # float64 inputs or references (see conftest)
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
    ref = np.stack(
        [
            np.linalg.lstsq(m.astype(np.complex128), v, rcond=rcond)[0]
            for m, v in zip(a.reshape(-1, *a_shape[-2:]), bb.reshape(-1, *bb.shape[-2:]))
        ]
    )
    ref = ref.reshape(a_shape[:-2] + (a_shape[-1], bb.shape[-1]))
    if vector:
        ref = ref[..., 0]
    assert x.shape == ref.shape and x.dtype == dtype
    tol = forward_tol(dtype, 10.0, max(a_shape[-2:]))  # cond 10
    assert np.abs(x - ref).max() <= tol * max(np.abs(ref).max(), 1)


@pytest.mark.x64  # float64 inputs or references (see conftest)
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
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_gradient_finite_and_equal_to_pinv_route(name):
    rng = np.random.default_rng(2)
    u = rng.standard_normal((30, 1))
    a = {"identity": np.eye(4), "zero": np.zeros((4, 3)), "rank1_30x30": u @ u.T, "repeated": np.diag([2.0, 2.0, 1.0])}[
        name
    ]
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
    [
        (5, 3, 3, 2, np.float64),
        (3, 5, 3, 1, np.float64),
        pytest.param(4, 4, 4, 2, np.complex128, marks=pytest.mark.slow),
        pytest.param(6, 4, 2, 2, np.float64, marks=pytest.mark.slow),
        (4, 6, 2, 1, np.complex128),
        (9, 2, 2, 1, np.float64),
    ],
)
@pytest.mark.x64  # float64 inputs or references (see conftest)
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


@pytest.mark.x64  # float64 inputs or references (see conftest)
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
    # lstsq_full: no singular values; x = 0 and the residuals are |b|^2 (NumPy's values)
    b = np.arange(4.0)
    x, res, rank, s = jaxpinv.lstsq_full(jnp.zeros((4, 0)), b)
    assert x.shape == (0,) and s.shape == (0,) and int(rank) == 0
    np.testing.assert_allclose(res, np.sum(b**2))
    x, res, rank, s = jaxpinv.lstsq_full(np.eye(4, 3), np.zeros((4, 0)))  # no right-hand side
    assert x.shape == (3, 0) and res.shape == (0,) and int(rank) == 3
    np.testing.assert_allclose(s, np.ones(3))
    # with damping: x = 0 of the right shape
    assert jaxpinv.lstsq(jnp.zeros((0, 3)), jnp.zeros((0, 2)), damping=0.5).shape == (3, 2)
    np.testing.assert_array_equal(jaxpinv.lstsq(np.eye(3), jnp.zeros((3, 0)), damping=0.5), np.zeros((3, 0)))


@pytest.mark.parametrize("shape", [(7, 3), (3, 7)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.x64  # float64 inputs or references (see conftest)
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


# --------------------------------------------------------------------------- #
# Batch rules (torch.linalg.solve's), lstsq_full's rank and singular values,
# non-finite right-hand sides: the same under every transformation.
# --------------------------------------------------------------------------- #


def _torch_or_none():
    try:
        import torch
    except ImportError:  # torch is an optional reference; the NumPy one above always runs
        return None
    return torch


def _numpy_lstsq(a, b):
    """NumPy's minimum-norm solution per matrix of broadcast stacks ``a (*, m, n)``, ``b (*, m, k)``."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:]).reshape(-1, *a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:]).reshape(-1, *b.shape[-2:])
    x = np.stack([np.linalg.lstsq(m, v, rcond=None)[0] for m, v in zip(a, b)])
    return x.reshape(batch + x.shape[-2:])


@pytest.mark.parametrize(
    "a_shape,b_shape,out_shape",
    [
        ((2, 6, 4), (6,), (2, 4)),  # 1-D b: a vector for every matrix
        ((3, 1, 6, 4), (5, 6, 2), (3, 5, 4, 2)),  # batch dims broadcast to (3, 5)
        ((4, 4, 4), (4, 4), (4, 4)),  # b.shape == a.shape[:-1]: a batch of vectors
        ((3, 6, 4), (1, 6), None),  # neither: a (1, 6) matrix, whose rows do not match
        ((2, 5, 3), (3, 1, 5, 1), (3, 2, 3, 1)),
    ],
)
@pytest.mark.parametrize("damping", [None, 0.5])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_batch_broadcasting_follows_torch_solve(a_shape, b_shape, out_shape, damping):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape)
    b = rng.standard_normal(b_shape)
    if out_shape is None:
        with pytest.raises(ValueError, match=r"lstsq: argument 'b'.*\(1, 6\)"):
            jaxpinv.lstsq(a, b, damping=damping)
        return
    x = np.asarray(jaxpinv.lstsq(a, b, damping=damping))
    assert x.shape == out_shape
    vector = b.ndim == 1 or b.shape == a.shape[:-1]
    if damping is None:
        ref = _numpy_lstsq(a, b[..., None] if vector else b)
    else:  # ridge: stack [a; damping I] and [b; 0] (an independent formulation)
        n = a.shape[-1]
        bb = b[..., None] if vector else b
        batch = np.broadcast_shapes(a.shape[:-2], bb.shape[:-2])
        aa = np.broadcast_to(a, batch + a.shape[-2:])
        bb = np.broadcast_to(bb, batch + bb.shape[-2:])
        stacked_a = np.concatenate([aa, np.broadcast_to(damping * np.eye(n), batch + (n, n))], -2)
        stacked_b = np.concatenate([bb, np.zeros(batch + (n, bb.shape[-1]))], -2)
        ref = _numpy_lstsq(stacked_a, stacked_b)
    ref = ref[..., 0] if vector else ref
    np.testing.assert_allclose(x, ref, rtol=1e-10, atol=1e-12)
    torch = _torch_or_none()
    if torch is not None and damping is None and a_shape[-1] == a_shape[-2]:  # torch.linalg.solve agrees
        assert tuple(torch.linalg.solve(torch.as_tensor(a), torch.as_tensor(b)).shape) == out_shape


@pytest.mark.parametrize("damping", [None, 0.1])
def test_batch_mismatch_errors_name_lstsq(damping):
    with pytest.raises(ValueError) as info:
        jaxpinv.lstsq(np.ones((3, 6, 4)), np.ones((2, 6, 2)), damping=damping)
    msg = str(info.value)
    assert msg.startswith("lstsq:") and "(3, 6, 4)" in msg and "(2, 6, 2)" in msg and "broadcast" in msg
    with pytest.raises(ValueError) as info:
        jaxpinv.lstsq(
            np.ones((3, 6, 4)), np.ones(6), **({"atol": np.ones(2)} if damping is None else {"damping": np.ones(2)})
        )
    msg = str(info.value)
    assert msg.startswith("lstsq:") and ("'atol'" in msg or "atol" in msg if damping is None else "damping" in msg)


def test_lstsq_full_rank_and_singular_values_describe_a_under_every_transform():
    # rank and singular values are a's (NumPy's meaning): b never enters them.
    # A non-finite a has rank -1 and NaN singular values.
    cases = [
        (np.eye(3), np.zeros((3, 0)), 3, [1.0, 1.0, 1.0]),  # no right-hand side at all
        (np.diag([1.0, 0.0, 0.0]), np.array([1.0, np.nan, 0.0]), 1, [1.0, 0.0, 0.0]),  # NaN in b
        (np.diag([1.0, np.nan, 0.0]), np.array([1.0, 0.0, 0.0]), -1, [np.nan] * 3),  # NaN in a
        (np.diag([2.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0]), 2, [2.0, 1.0, 0.0]),
    ]
    for a, b, rank, s in cases:
        k = b.shape[-1] if b.ndim == 2 else 1
        db = np.ones_like(b)
        transforms = {
            "plain": lambda a, b: jaxpinv.lstsq_full(a, b),
            "jit": jax.jit(jaxpinv.lstsq_full),
            "jvp": lambda a, b: jax.jvp(lambda b: jaxpinv.lstsq_full(a, b), (b,), (db,))[0],
            "vjp": lambda a, b: jax.vjp(lambda b: jaxpinv.lstsq_full(a, b), b)[0],
            "vmap": lambda a, b: jax.tree_util.tree_map(lambda x: x[0], jax.vmap(jaxpinv.lstsq_full)(a[None], b[None])),
        }
        for name, f in transforms.items():
            x, res, r, sv = f(jnp.asarray(a), jnp.asarray(b))
            assert int(r) == rank, (name, a, b)
            np.testing.assert_allclose(sv, s, err_msg=name)
            if not np.isfinite(a).all() or not np.isfinite(b).all():
                assert np.isnan(x).all() and np.isnan(res).all(), name
            elif k:
                np.testing.assert_allclose(x, np.linalg.lstsq(a, b, rcond=None)[0], err_msg=name)


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_lstsq_full_batched_and_non_finite_isolated():
    rng = np.random.default_rng(5)
    a = np.stack([random_matrix(rng, (6, 4), np.float64, rank=r, cond=10.0) for r in (4, 2, 3)])
    b = rng.standard_normal((3, 6, 2))
    a[2, 0, 0] = np.inf
    x, res, rank, s = jaxpinv.lstsq_full(a, b)
    np.testing.assert_array_equal(rank, [4, 2, -1])
    for i in range(2):
        xr, _, rr, sr = np.linalg.lstsq(a[i], b[i], rcond=np.sqrt(eps(np.float64)))
        np.testing.assert_allclose(x[i], xr, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(res[i], np.sum((b[i] - a[i] @ xr) ** 2, 0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s[i], sr, rtol=1e-12, atol=1e-14)
        assert rr == rank[i]
    assert np.isnan(x[2]).all() and np.isnan(res[2]).all() and np.isnan(s[2]).all()


@pytest.mark.parametrize("damping", [None, 0.1])
def test_non_finite_vector_b_gives_a_nan_solution_under_every_transform(damping):
    a = jnp.eye(2)
    b = jnp.asarray([np.inf, 0.0])

    def f(b):
        return jaxpinv.lstsq(a, b, damping=damping)

    outs = {
        "plain": f(b),
        "jit": jax.jit(f)(b),
        "jvp": jax.jvp(f, (b,), (jnp.ones(2),))[0],
        "value_and_grad": jax.value_and_grad(lambda b: f(b)[0])(b)[0][None].repeat(2),
        "vmap": jax.vmap(f)(b[None])[0],
    }
    for name, x in outs.items():
        assert np.isnan(np.asarray(x)).all(), (name, x)
    # the other matrices of a batch are unaffected
    x = jaxpinv.lstsq(jnp.stack([a, 2 * a]), jnp.stack([b, jnp.ones(2)]), damping=damping)
    assert np.isnan(x[0]).all() and np.isfinite(x[1]).all()


# --------------------------------------------------------------------------- #
# Tolerances, single precision: lstsq has pinv's cutoff, checked against
# NumPy's lstsq with the equivalent rcond (NumPy keeps s > rcond * s_max).
# --------------------------------------------------------------------------- #


def _graded(rng, batch, dtype):
    """A batch of 6x4 matrices with singular values 1, 0.1, 1e-3, 1e-5 (clear gaps for cutoffs)."""
    s = np.array([1.0, 0.1, 1e-3, 1e-5])
    u = random_matrix(rng, (batch, 6, 4), np.complex128 if np.iscomplexobj(dtype(0)) else np.float64, cond=1.0)
    v = random_matrix(rng, (batch, 4, 4), u.dtype, cond=1.0)
    return ((u * s) @ np.conj(np.swapaxes(v, -1, -2))).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex64])
@pytest.mark.parametrize("kind", ["rtol", "atol_array", "atol_traced", "both"])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_tolerances_match_numpy_with_the_same_cutoff(kind, dtype):
    rng = np.random.default_rng(11)
    a = _graded(rng, 3, dtype)
    b = rng.standard_normal((3, 6, 2)).astype(dtype)
    tols = {
        "rtol": ({"rtol": 1e-2}, [2, 2, 2]),
        "atol_array": ({"atol": np.array([0.5, 0.05, 1e-4])}, [1, 2, 3]),
        "atol_traced": ({"atol": jnp.asarray([0.5, 0.05, 1e-4])}, [1, 2, 3]),
        "both": ({"atol": np.array([0.5, 1e-6, 1e-6]), "rtol": 5e-3}, [1, 2, 2]),
    }
    kw, ranks = tols[kind]
    if kind == "atol_traced":
        x, res, rank, s = jax.jit(lambda a, b, t: jaxpinv.lstsq_full(a, b, atol=t))(a, b, kw["atol"])
        x2 = jax.jit(lambda a, b, t: jaxpinv.lstsq(a, b, atol=t))(a, b, kw["atol"])
    else:
        x, res, rank, s = jaxpinv.lstsq_full(a, b, **kw)
        x2 = jaxpinv.lstsq(a, b, **kw)
    np.testing.assert_array_equal(rank, ranks)
    np.testing.assert_array_equal(rank, jaxpinv.matrix_rank(a, **kw))
    for i in range(3):
        a64 = a[i].astype(np.complex128)
        s1 = np.linalg.svd(a64, compute_uv=False)[0]
        atol = np.broadcast_to(np.asarray(kw.get("atol", 0.0)), (3,))[i]
        rcond = max(float(atol) / s1, kw.get("rtol", 0.0))
        ref, _, rank_np, _ = np.linalg.lstsq(a64, b[i].astype(np.complex128), rcond=rcond)
        assert rank_np == ranks[i]
        # backward-stable solve: relative error ~ n eps / s_min(kept), s_min >= 1e-3
        tol = forward_tol(dtype, 10.0 ** (ranks[i] - 1 + (ranks[i] == 3)), 6)
        scale = np.abs(ref).max()
        np.testing.assert_allclose(np.asarray(x[i], np.complex128), ref, rtol=0, atol=tol * scale)
        np.testing.assert_allclose(np.asarray(x2[i], np.complex128), ref, rtol=0, atol=tol * scale)
        np.testing.assert_allclose(res[i], np.sum(np.abs(b[i] - a64 @ ref) ** 2, 0), rtol=100 * tol, atol=tol)


@pytest.mark.parametrize("shape", [(7, 3), (3, 7)])
def test_float32_jvp_matches_float64_finite_differences(shape):
    # Single precision derivative against a float64 reference (central
    # differences of NumPy's lstsq, h = 1e-6), along a random direction of a
    # full-rank, cond-3 matrix; float32 rounding of O(n eps cond^2) relative.
    rng = np.random.default_rng(sum(shape) + 1)
    a = random_matrix(rng, shape, np.float64, cond=3.0)
    b = rng.standard_normal(shape[0])
    da, db = rng.standard_normal(shape), rng.standard_normal(shape[0])
    h = 1e-6

    def ref(t):
        return np.linalg.lstsq(a + t * da, b + t * db, rcond=None)[0]

    fd = (ref(h) - ref(-h)) / (2 * h)
    f32 = np.float32
    _, t = jax.jvp(jaxpinv.lstsq, (a.astype(f32), b.astype(f32)), (da.astype(f32), db.astype(f32)))
    assert t.dtype == jnp.float32
    tol = forward_tol(f32, 9.0, max(shape))  # cond^2 = 9
    np.testing.assert_allclose(np.asarray(t, np.float64), fd, rtol=0, atol=tol * np.abs(fd).max())


@pytest.mark.parametrize("method", ["auto", "svd"])
def test_nan_in_one_column_of_b_spoils_only_that_column(method):
    # Issue 21 #2's reproduction: numpy.linalg.lstsq (and pinv(a) @ b) give column 0 finite.
    a = np.array([[2.0, 0.0], [0.0, 4.0], [1.0, 1.0]], np.float32)
    b = np.array([[1.0, np.nan], [2.0, 0.0], [3.0, 1.0]], np.float32)
    ref = np.linalg.lstsq(a.astype(np.float64), b[:, :1].astype(np.float64), rcond=None)
    tol = 10 * 3 * float(np.finfo(np.float32).eps) * 4  # forward error O(n eps cond), cond 4
    for x in (jaxpinv.lstsq(a, b, method=method), jaxpinv.lstsq(a, b, damping=0.0)):
        np.testing.assert_allclose(x[:, 0], ref[0][:, 0], rtol=tol)
        assert np.all(np.isnan(x[:, 1]))
    full = jaxpinv.lstsq_full(a, b)
    np.testing.assert_allclose(full.residuals[0], ref[1][0], rtol=tol)
    assert np.isnan(full.residuals[1]) and int(full.rank) == 2
