"""Bad input: clear trace-time errors, and NaN/Inf isolated per matrix (never a hang)."""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import run_python

import jaxpinv


@pytest.mark.parametrize(
    "call,exc,words",
    [
        (
            lambda: jaxpinv.pinv(jnp.ones(3)),
            ValueError,
            ["pinv", "'a'", "at least 2 dimensions", "(3,)", "a matrix or a batch of matrices"],
        ),
        (
            lambda: jaxpinv.lstsq(jnp.eye(2), jnp.float32(1)),
            ValueError,
            ["lstsq", "'b'", "at least 1 dimension,", "a vector", "()"],
        ),
        (lambda: jaxpinv.pinv(jnp.float32(1)), ValueError, ["pinv", "'a'", "()"]),
        (lambda: jaxpinv.matrix_rank(jnp.ones(3)), ValueError, ["matrix_rank", "'a'"]),
        (lambda: jaxpinv.pinverse(jnp.ones(3)), ValueError, ["pinverse", "'input'"]),
        (lambda: jaxpinv.pinv(jnp.ones((3, 4)), hermitian=True), ValueError, ["pinv", "hermitian", "square", "3 x 4"]),
        (lambda: jaxpinv.pinv(np.array([["a", "b"], ["c", "d"]])), TypeError, ["pinv", "'a'", "numeric", "<U1"]),
        (lambda: jaxpinv.pinv(jax.random.key(0)[None, None]), TypeError, ["pinv", "'a'", "numeric", "key"]),
        (lambda: jaxpinv.pinv(jnp.eye(2), atol=1j), TypeError, ["pinv", "'atol'", "real"]),
        (lambda: jaxpinv.pinv(jnp.eye(2), rtol=jnp.array([1j])), TypeError, ["pinv", "'rtol'", "real", "complex"]),
        (lambda: jaxpinv.pinv(jnp.eye(2), atol=-1.0), ValueError, ["pinv", "'atol'", "non-negative", "-1.0"]),
        (lambda: jaxpinv.pinv(jnp.eye(2), rtol=float("nan")), ValueError, ["pinv", "'rtol'", "nan"]),
        (lambda: jaxpinv.pinv(jnp.eye(2), atol=np.array([0.1, -0.1])), ValueError, ["pinv", "'atol'", "non-negative"]),
        (lambda: jaxpinv.pinverse(jnp.eye(2), rcond=-1e-3), ValueError, ["pinverse", "'rcond'"]),
        (lambda: jaxpinv.matrix_rank(jnp.eye(2), atol="x"), TypeError, ["matrix_rank", "'atol'"]),
        (
            lambda: jaxpinv.pinv(jnp.ones((2, 3, 3)), atol=jnp.ones(4)),
            ValueError,
            ["pinv: atol must broadcast", "(2,)", "atol=(4,)"],
        ),
        (
            lambda: jaxpinv.pinv(jnp.ones((2, 3, 3)), rtol=jnp.ones(4)),
            ValueError,
            ["pinv: rtol must broadcast", "rtol=(4,)"],
        ),
        (
            lambda: jaxpinv.pinverse(jnp.ones((2, 3, 3)), rcond=jnp.ones(4)),
            ValueError,
            ["pinverse: rcond must broadcast", "rcond=(4,)"],
        ),
        (
            lambda: jaxpinv.pinv(jnp.eye(2), hermitian=jnp.array(True)),
            TypeError,
            ["pinv", "'hermitian'", "Python bool"],
        ),
        (lambda: jax.jit(jaxpinv.pinv)(jnp.ones(4)), ValueError, ["pinv", "at least 2 dimensions"]),
    ],
)
def test_clear_errors(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_traced_negative_tolerance_is_zero_never_inf():
    a = jnp.asarray(np.diag([1.0, 1e-3, 0.0]))
    p = jax.jit(lambda t: jaxpinv.pinv(a, atol=t, rtol=t))(-1.0)
    np.testing.assert_array_equal(p, np.diag([1.0, 1e3, 0.0]))
    r = jax.jit(lambda t: jaxpinv.matrix_rank(a, atol=t))(-5.0)
    assert int(r) == 2


def test_traced_nan_tolerance_gives_nan_for_that_matrix_only():
    a = jnp.stack([jnp.eye(2), 2 * jnp.eye(2)])
    p = jax.jit(lambda t: jaxpinv.pinv(a, atol=t))(jnp.array([jnp.nan, 0.0]))
    assert np.all(np.isnan(p[0]))
    np.testing.assert_array_equal(p[1], 0.5 * np.eye(2))
    np.testing.assert_array_equal(jax.jit(lambda t: jaxpinv.matrix_rank(a, atol=t))(jnp.array([jnp.nan, 0.0])), [-1, 2])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("hermitian", [False, True])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_non_finite_matrix_is_nan_others_untouched(bad, hermitian):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4, 4))
    if hermitian:
        a = a + np.swapaxes(a, -1, -2)
    a[1, 3, 0] = bad  # lower triangle: read in both modes
    p = jaxpinv.pinv(a, hermitian=hermitian)
    assert np.all(np.isnan(p[1]))
    for i in (0, 2):
        np.testing.assert_allclose(p[i], np.linalg.pinv(a[i], hermitian=hermitian), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(jaxpinv.matrix_rank(a, hermitian=hermitian), [4, -1, 4])

    c = rng.standard_normal((3, 4, 4))

    def loss(a):
        p = jaxpinv.pinv(a, hermitian=hermitian)
        return jnp.sum(jnp.where(jnp.isnan(p), 0.0, p) * c)  # a loss that masks the bad member

    g = jax.grad(loss)(jnp.asarray(a))
    clean = a.copy()
    clean[1] = np.eye(4)
    g_clean = jax.grad(loss)(jnp.asarray(clean))
    for i in (0, 2):  # other members' gradients unchanged, bit for bit
        np.testing.assert_array_equal(g[i], g_clean[i])
    # The gradient of a loss that sees the NaN is NaN for the bad member only.
    g_nan = jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a, hermitian=hermitian)[1]))(jnp.asarray(a))
    assert np.isnan(np.asarray(g_nan[1])).any()
    np.testing.assert_array_equal(np.asarray(g_nan)[[0, 2]], 0.0)


def test_upper_triangle_inf_is_ignored_with_hermitian():
    a = np.eye(3)
    a[0, 2] = np.inf  # upper triangle: not read with hermitian=True
    np.testing.assert_array_equal(jaxpinv.pinv(a, hermitian=True), np.eye(3))
    assert np.all(np.isnan(jaxpinv.pinv(a)))


@pytest.mark.timeout(90)
def test_inf_input_returns_instead_of_hanging():
    # numpy.linalg.pinv and jnp.linalg.pinv hang forever in LAPACK on this input
    # (4x3 float64 with one Inf); jaxpinv must return, all-NaN. Run in a
    # subprocess with a timeout so a regression fails instead of hanging.
    script = textwrap.dedent(
        """
        import jax
        jax.config.update("jax_enable_x64", True)
        import numpy as np, jaxpinv
        for shape in [(4, 3), (3, 4), (2, 2), (5, 5), (2, 4, 3)]:
            a = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) + 1.0
            a[..., 0, 0] = np.inf
            p = np.asarray(jaxpinv.pinv(a))
            assert np.isnan(p).all(), shape
            g = jax.grad(lambda a: jaxpinv.pinv(a).sum())(a)
            assert g.shape == a.shape
            assert (np.asarray(jaxpinv.matrix_rank(a)) == -1).all()
        print("returned")
        """
    )
    # It returns in ~7 s on 2 busy cores (import, five compiles); a hang fails at 60 s.
    out = run_python(["-c", script], timeout=60)
    assert out.returncode == 0, out.stderr
    assert "returned" in out.stdout


def test_big_endian_input_and_tolerances_are_accepted():
    a = np.array([[2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
    ref = np.linalg.pinv(a)
    for dt in (">f8", ">f4"):
        np.testing.assert_allclose(jaxpinv.pinv(a.astype(dt)), ref, rtol=1e-6)
        np.testing.assert_allclose(jaxpinv.lstsq(a.astype(dt), np.ones(3).astype(dt)), ref @ np.ones(3), rtol=1e-6)
        assert int(jaxpinv.matrix_rank(a, atol=np.array(3.0).astype(dt))) == 1
        np.testing.assert_allclose(jaxpinv.damped_pinv(a.astype(dt), np.array([0.0]).astype(dt))[0], ref, rtol=1e-6)


def test_torch_tensor_is_accepted_like_jnp_asarray():
    torch = pytest.importorskip("torch")
    a = torch.tensor([[2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
    np.testing.assert_allclose(jaxpinv.pinv(a), np.linalg.pinv(a.numpy()), rtol=1e-6)
    assert jaxpinv.pinv(a).dtype == jnp.float32
    assert int(jaxpinv.matrix_rank(a, atol=torch.tensor(3.0))) == 1


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda: jaxpinv.pinv(jnp.eye(2), atol=10**400), ["pinv", "'atol'", "float"]),
        (lambda: jaxpinv.pinverse(jnp.eye(2), rcond=10**400), ["pinverse", "'rcond'", "float"]),
        (lambda: jaxpinv.damped_pinv(jnp.eye(2), 10**400), ["damped_pinv", "'damping'", "float"]),
        (lambda: jaxpinv.damped_pinv(jnp.ones((2, 2, 2)), [1.0, 2.0, 3.0]), ["damped_pinv", "damping", "broadcast"]),
    ],
)
def test_huge_integer_and_mismatched_damping_errors(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for w in words:
        assert w.lower() in str(info.value).lower(), (w, str(info.value))


class _Foreign:
    """An array-like of another library whose dtype JAX cannot read (nor convert the object)."""

    dtype = "not-a-dtype"
    shape = (2, 2)


@pytest.mark.parametrize(
    "call,exc,words",
    [
        (lambda: jaxpinv.damped_pinv(jnp.eye(2), None), TypeError, ["damped_pinv", "'damping'", "required"]),
        (lambda: jaxpinv.pinv([[1.0, 2.0], [3.0]]), TypeError, ["pinv", "'a'", "array of numbers"]),
        (
            lambda: jaxpinv.pinv(jnp.eye(2), atol=[[1.0], [1.0, 2.0]]),
            TypeError,
            ["pinv", "'atol'", "number or an array"],
        ),
        (lambda: jaxpinv.pinv(_Foreign()), TypeError, ["pinv", "'a'", "numeric"]),
    ],
)
def test_malformed_arguments_name_the_function(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_non_finite_flags_do_not_rely_on_a_nan_propagating_max():
    # XLA's CPU max-reduction drops a NaN from 64 x 64 up unless it sits in the
    # last lane (jit(max |x|) of such a matrix came back finite), so
    # "isfinite(max |x|)" missed it; the flags are an and-reduction of isfinite.
    from jaxpinv.internal import non_finite

    b = np.ones((3, 64, 64))
    b[1, 5, 2] = np.nan
    b[2, 0, 0] = np.inf
    np.testing.assert_array_equal(jax.jit(non_finite)(b), [False, True, True])
    # The contract it serves, per column of b: a non-finite column gives a NaN solution column.
    x = np.asarray(jaxpinv.lstsq(np.eye(64), b))
    spoiled = np.zeros(x.shape, bool)
    spoiled[1, :, 2] = spoiled[2, :, 0] = True
    assert np.isnan(x[spoiled]).all() and np.isfinite(x[~spoiled]).all()
    a = np.stack([np.eye(64), np.eye(64)])
    a[1, 5, 2] = np.nan
    np.testing.assert_array_equal(jaxpinv.matrix_rank(a), [64, -1])
    assert np.isnan(np.asarray(jaxpinv.pinv(a))[1]).all()


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda a: jaxpinv.pinv(a, rcond=1e-3), r"^pinv: unexpected keyword argument 'rcond'; .*rtol=.*pinverse"),
        (lambda a: jaxpinv.pinv(a, tol=1e-3), r"^pinv: unexpected keyword argument 'tol'; .*atol="),
        (lambda a: jaxpinv.matrix_rank(a, tol=1e-3), r"^matrix_rank: unexpected keyword argument 'tol'; .*atol="),
        (lambda a: jaxpinv.lstsq(a, a, rcond=None), r"^lstsq: unexpected keyword argument 'rcond'; .*rtol="),
        (lambda a: jaxpinv.lstsq(a, a, hermitian=True), r"^lstsq: unexpected keyword argument 'hermitian'; .*pinv"),
        (
            lambda a: jaxpinv.lstsq(a, a, driver="gelsd"),
            r"^lstsq: unexpected keyword argument 'driver'; .*method='svd'",
        ),
        (
            lambda a: jaxpinv.lstsq_full(a, a, driver="gelsd"),
            r"^lstsq_full: .*'driver'; lstsq_full always runs the SVD",
        ),
        (lambda a: jaxpinv.lstsq_full(a, a, hermitian=True), r"^lstsq_full: unexpected keyword argument 'hermitian'"),
        (lambda a: jaxpinv.pinverse(a, rtol=0.1), r"^pinverse: unexpected keyword argument 'rtol'; .*rcond="),
        (
            lambda a: jaxpinv.damped_pinv(a, 0.1, rtol=0.1),
            r"^damped_pinv: unexpected keyword argument 'rtol'; .*no tol",
        ),
        (lambda a: jaxpinv.pinv(A=a), r"^pinv: unexpected keyword argument 'A'; .*a="),
        (lambda a: jaxpinv.pinv(a, out=a), r"^pinv: unexpected keyword argument 'out'; .*immutable"),
        (lambda a: jaxpinv.pinv(a, damping=0.1), r"^pinv: unexpected keyword argument 'damping'; .*damped_pinv"),
    ],
)
def test_keywords_from_other_libraries_say_what_to_use(call, message):
    # Issue 21 #6: Python's bare "got an unexpected keyword argument" named neither the fix nor,
    # for these, this library's equivalent (NumPy's/JAX's rcond and tol, torch's driver and out).
    with pytest.raises(TypeError, match=message):
        call(np.eye(3))


def test_other_unknown_keywords_keep_pythons_message():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'foo'"):
        jaxpinv.pinv(np.eye(3), foo=1)
