"""Every public function x every path x shape classes (``tests/registry.py``): the cross-cutting checks.

For each: the path that runs is the one asked for (``jaxpinv.internal.path_taken``
asks the dispatch); the value matches the float64 NumPy reference; the
derivative matches central differences (forward and reverse, order 1); reverse
mode through ``vmap`` (``grad(vmap(f))``) and ``vmap(grad(f))`` match the
per-matrix gradients; float32/complex64 keep their dtype and accuracy; a bad
shape raises an error naming the function.

Tolerances: float64, cond 5 inputs. The forward error of a backward-stable
path is ``O(n eps cond)`` (``helpers.forward_tol``); central differences with
``h = 1e-5`` are good to ~1e-6 relative here (tol 1e-5, as in
test_derivatives.py); batched and per-matrix gradients differ only by the
summation order, ``O(n eps cond^2)``: 1e-10.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import registry
from helpers import check_grads_per_entry, eps, forward_tol, rel_err
from registry import FUNCTIONS, cases, inputs, method_of

from jaxpinv.internal import path_taken

X64 = pytest.mark.x64


def _assert_path(name: str, path: str, a) -> None:
    entry = FUNCTIONS[name]
    if entry.method:
        assert path_taken(a, hermitian=entry.hermitian, method=method_of(path)) == path


@X64
@pytest.mark.parametrize("name,path,shape", cases())
def test_value_on_every_path_matches_numpy(name, path, shape):
    a, b = inputs(name, shape, batch=(2,), path=path)
    _assert_path(name, path, a)
    f = FUNCTIONS[name]
    got = jax.vmap(lambda a, b: f.call(a, b, method_of(path)))(a, b)
    ref = np.stack([f.reference(a[i], b[i]) for i in range(2)])
    assert rel_err(got, ref) < forward_tol(np.float64, 5.0, max(a.shape[-2:]))


@X64
@pytest.mark.parametrize("name,path,shape", cases(differentiable=True, quick="one"))
def test_derivative_on_every_path_matches_finite_differences(name, path, shape):
    a, b = inputs(name, shape, seed=1, path=path)
    _assert_path(name, path, a)
    call = FUNCTIONS[name].call
    check_grads_per_entry(lambda a, b: call(a, b, method_of(path)), (jnp.asarray(a), jnp.asarray(b)), 1, 1e-5)


@X64
@pytest.mark.parametrize("name,path,shape", cases(differentiable=True, quick="one"))
def test_reverse_through_vmap_on_every_path(name, path, shape):
    a, b = (jnp.asarray(x) for x in inputs(name, shape, batch=(3,), seed=2, path=path))
    _assert_path(name, path, a)
    call = FUNCTIONS[name].call
    w = jnp.asarray(
        np.random.default_rng(3).standard_normal(jax.eval_shape(lambda a, b: call(a, b, "svd"), a[0], b[0]).shape)
    )

    def loss(a, b):
        return jnp.sum(jnp.tanh(call(a, b, method_of(path)) * w))

    grad = jax.grad(loss, argnums=(0, 1))

    @jax.jit  # one program: one compilation
    def all_three(a, b):
        per = [grad(a[i], b[i]) for i in range(3)]  # the reference: one matrix at a time
        return per, jax.grad(lambda a, b: jnp.sum(jax.vmap(loss)(a, b)), argnums=(0, 1))(a, b), jax.vmap(grad)(a, b)

    per, grad_vmap, vmap_grad = all_three(a, b)
    ref = [np.stack(r) for r in zip(*per)]
    for got in (grad_vmap, vmap_grad):
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-10 * np.abs(r).max())


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_single_precision_keeps_dtype_and_accuracy(name, dtype):
    a, b = inputs(name, "tall" if not FUNCTIONS[name].hermitian else "square", dtype=dtype, seed=4)
    got = FUNCTIONS[name].call(a, b, "auto")
    ref = FUNCTIONS[name].reference(a.astype(np.complex128), b.astype(np.complex128))
    if name == "matrix_rank":
        assert got.dtype == jnp.int32 and int(got) == int(ref)
        return
    assert got.dtype == dtype
    assert rel_err(got, ref) < forward_tol(dtype, 5.0, max(a.shape[-2:]))


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_errors_name_the_function_and_argument(name):
    public = name.split("_hermitian")[0].replace("lstsq_damping", "lstsq")
    arg = "input" if public == "pinverse" else "a"
    with pytest.raises(ValueError, match=rf"^{public}: argument '{arg}' must have at least 2 dimensions"):
        FUNCTIONS[name].call(jnp.ones(3), jnp.ones(3), "auto")


def test_the_registry_covers_every_public_function_and_path():
    import jaxpinv

    public = {n for n in jaxpinv.__all__ if inspect.isfunction(getattr(jaxpinv, n))}  # not the types
    named = {n.split("_hermitian")[0].replace("lstsq_damping", "lstsq") for n in FUNCTIONS}
    assert named == public, (named, public)
    assert {c.values[1] for c in cases()} == set(registry.PATHS)  # every registered path runs somewhere


# --------------------------------------------------------------------------- #
# Scale, non-finite input and 16-bit dtypes, on every function and path
# --------------------------------------------------------------------------- #

# Exact powers of two across each dtype's range (c a is exact, so a rescaled result differs from the
# unit-scale one only by rounding); the gradient is checked where its internal cotangents (~ c^-2
# times the unit ones) are representable with room: |log2 c| <= 45 (float32), 490 (float64).
SCALES = {
    np.float32: (2.0**-100, 2.0**-62, 2.0**-45, 2.0**45, 2.0**62, 2.0**100),
    np.float64: (2.0**-997, 2.0**-510, 2.0**-490, 2.0**490, 2.0**510, 2.0**997),
}
GRAD_SCALE = {np.float32: 45, np.float64: 490}


@X64
@pytest.mark.parametrize(
    "dtype,name,path,shape",
    [pytest.param(np.float32, *c.values, id=f"float32-{c.id}", marks=c.marks) for c in cases(quick="one", offset=1)]
    + [pytest.param(np.float64, *c.values, id=f"float64-{c.id}", marks=c.marks) for c in cases(quick="one", offset=2)],
)
def test_scale_invariance_on_every_path(dtype, name, path, shape):
    # f(c a), rescaled by the function's homogeneity (registry.Entry.scaled), equals f(a): forward,
    # jvp and gradient, with no overflow or underflow inside, on the path asked for. The unit-scale
    # values are checked against NumPy and central differences above; here they are the reference.
    # Tolerance: the difference of two roundings, forward O(n eps cond) and derivative
    # O(n eps cond^2) (forward_tol with cond^2; cond 5).
    entry, method = FUNCTIONS[name], method_of(path)
    rng = np.random.default_rng(5)
    a, b = (jnp.asarray(x) for x in inputs(name, shape, dtype=dtype, seed=5, path=path))
    da = jnp.asarray(rng.standard_normal(a.shape).astype(dtype))
    if entry.hermitian:
        da = (da + da.T) / 2
    n = max(a.shape)

    @jax.jit
    def value_and_tangent(c):
        f = lambda a: entry.scaled(a, b, method, c)  # noqa: E731
        return jax.jvp(f, (a,), (da,)) if entry.differentiable else (f(a), jnp.zeros(()))

    @jax.jit
    def gradient(c):
        w = jnp.cos(jnp.arange(np.prod(jax.eval_shape(lambda: entry.call(a, b, "svd")).shape), dtype=dtype))
        return jax.grad(lambda a: jnp.sum(jnp.ravel(entry.scaled(a, b, method, c)) * w))(a)

    value, tangent = value_and_tangent(dtype(1.0))
    grad = gradient(dtype(1.0)) if entry.differentiable else None
    sigma_max = float(np.linalg.norm(np.asarray(a, np.float64), 2))
    for c in SCALES[dtype]:
        if entry.method:
            # Below tiny / eps the fast paths leave the matrix to the SVD (XLA flushes subnormals).
            flushed = c * sigma_max < np.finfo(dtype).tiny / np.finfo(dtype).eps
            expected = "svd" if flushed else path
            assert path_taken(a * dtype(c), hermitian=entry.hermitian, method=method) == expected, c
        vc, tc = value_and_tangent(dtype(c))
        if not entry.differentiable:
            assert int(vc) == int(value), c
            continue
        assert rel_err(vc, value) < forward_tol(dtype, 5.0, n), c
        assert rel_err(tc, tangent) < forward_tol(dtype, 25.0, n), (c, rel_err(tc, tangent))
        if abs(np.log2(c)) <= GRAD_SCALE[dtype]:
            assert rel_err(gradient(dtype(c)), grad) < forward_tol(dtype, 25.0, n), c


def _central_gradient(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar NumPy function, entry by entry (float64 reference)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@X64
@pytest.mark.parametrize("name,path,shape", [c for c in cases(quick="one") if FUNCTIONS[c.values[0]].rhs])
def test_non_finite_column_of_b_spoils_only_its_own_solution(name, path, shape):
    # Column j of the solution (and residual) depends on column j of b alone (issue 21 #2): a NaN
    # in column 1 and an Inf in column 2 make those columns NaN; column 0 equals the float64
    # reference, and so do its derivatives in a and b (central differences of the reference,
    # h = 1e-6: good to ~1e-8 relative here; tol 1e-6). The other columns' gradient is zero.
    entry, method = FUNCTIONS[name], method_of(path)
    a, b = inputs(name, shape, seed=6, columns=3, path=path)
    b[0, 1], b[-1, 2] = np.nan, np.inf
    if entry.method:
        _assert_path(name, path, a)
    out = np.asarray(entry.call(jnp.asarray(a), jnp.asarray(b), method))
    assert np.all(np.isnan(out[..., 1:]))
    ref = entry.reference(a, b[:, 0])
    assert rel_err(out[..., 0], ref) < forward_tol(np.float64, 5.0, max(a.shape))

    w = np.cos(np.arange(ref.size))  # a loss on column 0 only

    def loss(a, b):
        return jnp.sum(entry.call(a, b, method)[..., 0] * w)

    ga, gb = jax.grad(loss, argnums=(0, 1))(jnp.asarray(a), jnp.asarray(b))
    ref_ga = _central_gradient(lambda x: np.sum(entry.reference(x, b[:, 0]) * w), a)
    ref_gb = _central_gradient(lambda y: np.sum(entry.reference(a, y) * w), b[:, 0])
    np.testing.assert_allclose(ga, ref_ga, rtol=1e-6, atol=1e-6 * np.abs(ref_ga).max())
    np.testing.assert_allclose(gb[:, 0], ref_gb, rtol=1e-6, atol=1e-6 * np.abs(ref_gb).max())
    np.testing.assert_array_equal(gb[:, 1:], 0.0)
    # Forward mode: column 0's tangent along (da, db) is finite and matches the gradient.
    rng = np.random.default_rng(7)
    da, db = rng.standard_normal(a.shape), rng.standard_normal(b.shape)
    tangent = jax.jvp(lambda a, b: entry.call(a, b, method), (jnp.asarray(a), jnp.asarray(b)), (da, db))[1]
    expected = np.sum(ref_ga * da) + np.sum(ref_gb * db[:, 0])
    np.testing.assert_allclose(np.sum(np.asarray(tangent)[..., 0] * w), expected, rtol=1e-6)


@X64
@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("name,path,shape", cases(quick="one", offset=1))
def test_non_finite_matrix_spoils_only_its_own_result(name, path, shape, bad):
    # In a batch of three, matrix 1 holds a NaN or an Inf: its result is NaN (rank -1), the others
    # equal the float64 reference, on the path asked for (a flagged matrix never sends the batch
    # elsewhere), batched and per matrix under vmap; the gradient of a loss on the other two
    # matrices is finite there and equals their per-matrix gradient (1e-10: summation order only).
    entry, method = FUNCTIONS[name], method_of(path)
    a, b = inputs(name, shape, batch=(3,), seed=8, path=path)
    a[1, -1, 0] = bad  # in the lower triangle, which hermitian=True reads
    _assert_path(name, path, a)
    for out in (entry.call(a, b, method), jax.vmap(lambda a, b: entry.call(a, b, method))(a, b)):
        out = np.asarray(out)
        if name == "matrix_rank":
            assert out.tolist() == [int(entry.reference(a[0], b[0])), -1, int(entry.reference(a[2], b[2]))]
            continue
        assert np.all(np.isnan(out[1]))
        ref = np.stack([entry.reference(a[i], b[i]) for i in (0, 2)])
        assert rel_err(out[[0, 2]], ref) < forward_tol(np.float64, 5.0, max(a.shape[-2:]))
    if not entry.differentiable:
        return
    keep = jnp.asarray([1.0, 0.0, 1.0])

    def loss(a, b):
        out = entry.call(a, b, method)
        return jnp.sum(jnp.sin(out) * keep.reshape((3,) + (1,) * (out.ndim - 1)))

    ga, gb = jax.grad(loss, argnums=(0, 1))(jnp.asarray(a), jnp.asarray(b))
    for i in (0, 2):
        ra, rb = jax.grad(lambda a, b: jnp.sum(jnp.sin(entry.call(a, b, method))), argnums=(0, 1))(a[i], b[i])
        np.testing.assert_allclose(ga[i], ra, rtol=1e-10, atol=1e-10 * np.abs(ra).max())
        np.testing.assert_allclose(gb[i], rb, rtol=1e-10, atol=1e-10 * np.abs(rb).max() + 1e-300)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name,path,shape", cases(quick="one", offset=2))
def test_half_precision_keeps_a_well_conditioned_matrix_whole(name, path, shape, dtype):
    # Issue 21 #3: 16-bit input is computed in float32, and the default rtol is max(m, n) times
    # float32's eps, the rounding the computation adds (bfloat16's own eps made rtol >= 1 from
    # 128 on). A cond-100 matrix keeps every value; the result is in the input's dtype and
    # equals the float64 reference of the rounded input up to the float32 computation
    # (forward_tol at cond 100) and the output's rounding (eps of the dtype).
    entry, method = FUNCTIONS[name], method_of(path)
    a, b = (jnp.asarray(x, dtype) for x in inputs(name, shape, dtype=np.float32, seed=9, cond=100.0, path=path))
    _assert_path(name, path, a)
    out = entry.call(a, b, method)
    ref = entry.reference(np.asarray(a, np.float64), np.asarray(b, np.float64))
    if name == "matrix_rank":
        assert out.dtype == jnp.int32 and int(out) == int(ref) == min(a.shape)
        return
    assert out.dtype == dtype
    assert rel_err(np.asarray(out, np.float64), ref) < eps(dtype) + forward_tol(np.float32, 100.0, max(a.shape))
