"""``python -m jaxpinv``: environment report, self-check and a small benchmark.

This module holds the command-line entry point :func:`main`. It prints the
jaxpinv and JAX versions, the default backend and its devices, then runs a
self-check of :func:`jaxpinv.pinv` on that backend, one ``PASS``/``FAIL`` line
per check:

(a) the four Penrose conditions on a random 6x4 float32 matrix and on a
    rank-deficient complex64 matrix;
(b) the derivative along a rank-preserving path ``A(t) = (X + t dX)(Y + t dY)^T``
    in float32 (``jax.test_util.check_grads``, forward and reverse mode);
(c) ``jit(vmap(grad(...)))`` on a batch against a non-jitted per-matrix loop;
(d) a batched ``pinv`` against ``numpy.linalg.pinv``;
(s) the semantics, each against a value known exactly: the zero matrix maps
    to zero with rank 0 (the strict cutoff); a float32 3x8 matrix with a
    singular value between ``min(m, n)*eps`` and ``max(m, n)*eps`` loses it
    (the default rtol), and ``atol`` equal to a singular value drops it; a
    NaN matrix in a batch makes only its own pinv NaN and rank -1; the
    derivative at the identity is ``-dA`` and the gradient at the zero
    matrix is exactly 0 (Golub-Pereyra's closed forms);

and finally (e) a timing table of ``jaxpinv.pinv`` against
``jnp.linalg.pinv`` (skipped with ``--no-timing``). The exit status is 1 if
any check fails (or the timing raises), 0 otherwise.

Everything runs in the dtype JAX gives by default (float32 unless the user
enabled x64): the module never flips ``jax_enable_x64`` itself, so it checks
the configuration it is run in, and float64 references are computed in NumPy.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_RESULTS: list[bool] = []


def _report(name: str, ok: bool, detail: str = "") -> None:
    _RESULTS.append(bool(ok))
    tag = "PASS" if ok else "FAIL"
    print(f"  {tag}  {name}" + (f"  ({detail})" if detail else ""), flush=True)


def _run_check(name: str, fn: Callable[[], tuple[bool, str]]) -> None:
    """Run one check; an exception counts as a failure and is printed."""
    try:
        ok, detail = fn()
    except Exception as exc:
        _report(name, False, f"raised {type(exc).__name__}: {_one_line(exc)}")
        traceback.print_exc(file=sys.stdout)
        return
    _report(name, ok, detail)


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _h(x: np.ndarray) -> np.ndarray:
    return np.conj(np.swapaxes(x, -1, -2))


def _rel(x: np.ndarray, ref: np.ndarray) -> float:
    """Relative Frobenius-norm error, per matrix, worst over the batch."""
    x = np.asarray(x, np.complex128)
    ref = np.asarray(ref, np.complex128)
    num = np.linalg.norm(x - ref, axis=(-2, -1))
    den = np.maximum(np.linalg.norm(ref, axis=(-2, -1)), np.finfo(np.float64).tiny)
    return float(np.max(num / den))


def _cond(a: np.ndarray, rank: int) -> float:
    """Worst ``s_0 / s_{rank-1}`` over the batch, from a float64 SVD."""
    s = np.linalg.svd(np.asarray(a, np.complex128), compute_uv=False)
    return float(np.max(s[..., 0] / s[..., rank - 1]))


def _low_rank(rng: np.random.Generator, m: int, n: int, rank: int, complex_: bool) -> np.ndarray:
    """``X @ Y^H`` with Gaussian ``X`` (m x rank) and ``Y`` (n x rank)."""

    def gauss(*shape: int) -> np.ndarray:
        z = rng.standard_normal(shape)
        return z + 1j * rng.standard_normal(shape) if complex_ else z

    return gauss(m, rank) @ _h(gauss(n, rank))


# --------------------------------------------------------------------------- #
# Checks
# --------------------------------------------------------------------------- #


def _check_penrose(label: str, a: np.ndarray, rank: int) -> None:
    import jax.numpy as jnp

    import jaxpinv

    dtype = a.dtype
    eps = float(np.finfo(dtype).eps)
    m, n = a.shape
    cond = _cond(a, rank)
    # Tolerance from backward-error analysis: an SVD-based pinv in precision
    # eps has relative residuals of order eps * cond(A) (cond over the kept
    # singular values), times a modest dimension-dependent factor; 10 * max(m, n)
    # leaves head-room for rounding in the products that form the residuals.
    tol = 10 * max(m, n) * eps * cond
    p = np.asarray(jaxpinv.pinv(jnp.asarray(a)))
    if p.dtype != dtype or p.shape != (n, m):
        _report(f"penrose {label}", False, f"got {p.dtype}{p.shape}, want {dtype}{(n, m)}")
        return
    # Residuals in float64/complex128 so that only pinv's own error shows.
    a64 = a.astype(np.complex128)
    p64 = p.astype(np.complex128)
    ap, pa = a64 @ p64, p64 @ a64
    conds = {
        "A P A = A": _rel(ap @ a64, a64),
        "P A P = P": _rel(pa @ p64, p64),
        "(A P)^H = A P": _rel(_h(ap), ap),
        "(P A)^H = P A": _rel(_h(pa), pa),
    }
    rank_got = int(jaxpinv.matrix_rank(jnp.asarray(a)))
    for name, err in conds.items():
        _report(
            f"penrose {label}: {name}",
            err <= tol,
            f"rel err {err:.2e} <= tol {tol:.2e}, cond {cond:.1f}",
        )
    _report(f"penrose {label}: matrix_rank", rank_got == rank, f"rank {rank_got}, expected {rank}")


def _check_semantics() -> list[tuple[str, Callable[[], tuple[bool, str]]]]:
    """Checks against exact values: what a broken cutoff, default rtol, NaN isolation or rule would change."""
    import jax
    import jax.numpy as jnp

    import jaxpinv

    f32 = np.float32
    eps = float(np.finfo(f32).eps)

    def zero() -> tuple[bool, str]:
        p = np.asarray(jaxpinv.pinv(jnp.zeros((3, 2), f32)))
        r = int(jaxpinv.matrix_rank(jnp.zeros((3, 2), f32)))
        return bool(np.all(p == 0)) and r == 0, f"pinv(0) max |entry| {np.abs(p).max():.1e}, rank {r}"

    def default_rtol() -> tuple[bool, str]:
        # Exactly representable singular values 1, 0.5, 5 eps (a diagonal
        # matrix): the default cutoff max(3, 8) * eps drops 5 eps, a
        # min(3, 8) * eps cutoff would keep it.
        a = np.zeros((3, 8), f32)
        a[0, 0], a[1, 1], a[2, 2] = 1.0, 0.5, 5 * eps
        r = int(jaxpinv.matrix_rank(jnp.asarray(a)))
        p = np.asarray(jaxpinv.pinv(jnp.asarray(a)))
        return r == 2 and p[2, 2] == 0 and p[1, 1] == 2.0, f"rank {r} (want 2), pinv[2, 2] = {p[2, 2]:.3g}"

    def strict_atol() -> tuple[bool, str]:
        a = jnp.asarray(np.diag([1.0, 0.5]).astype(f32))
        r = int(jaxpinv.matrix_rank(a, atol=0.5))
        p = np.asarray(jaxpinv.pinv(a, atol=0.5))
        return r == 1 and p[1, 1] == 0, f"atol = 0.5 = sigma_2: rank {r} (want 1)"

    def nan_isolation() -> tuple[bool, str]:
        a = np.stack([np.eye(2), np.full((2, 2), np.nan), 2 * np.eye(2)]).astype(f32)
        p = np.asarray(jaxpinv.pinv(jnp.asarray(a)))
        r = np.asarray(jaxpinv.matrix_rank(jnp.asarray(a))).tolist()
        ok = np.all(p[0] == np.eye(2)) and np.all(p[2] == 0.5 * np.eye(2)) and np.isnan(p[1]).all()
        return bool(ok) and r == [2, -1, 2], f"ranks {r} (want [2, -1, 2])"

    def closed_forms() -> tuple[bool, str]:
        rng = np.random.default_rng(1)
        da = jnp.asarray(rng.standard_normal((3, 3)), f32)
        c = jnp.asarray(rng.standard_normal((3, 3)), f32)
        _, t = jax.jvp(jaxpinv.pinv, (jnp.eye(3, dtype=f32),), (da,))  # d pinv(I) = -dA
        err = float(jnp.max(jnp.abs(t + da)))
        g0 = np.asarray(jax.grad(lambda m: jnp.sum(jaxpinv.pinv(m) * c.T))(jnp.zeros((3, 3), f32)))
        tol = 10 * eps
        return err <= tol and bool(
            np.all(g0 == 0)
        ), f"|jvp(I) + dA| {err:.1e} <= {tol:.1e}; grad at 0: max {np.abs(g0).max():.1e}"

    return [
        ("pinv(0) = 0, rank 0 (strict cutoff)", zero),
        ("default rtol is max(m, n) * eps", default_rtol),
        ("atol equal to a singular value drops it", strict_atol),
        ("a NaN matrix leaves the rest of the batch alone", nan_isolation),
        ("derivative at I is -dA, at 0 is 0", closed_forms),
    ]


def _check_derivative(rng: np.random.Generator) -> tuple[bool, str]:
    import jax.numpy as jnp

    import jaxpinv

    m, n, k = 5, 4, 2
    x, dx, y, dy = (jnp.asarray(rng.standard_normal(shape), jnp.float32) for shape in [(m, k), (m, k), (n, k), (n, k)])

    def path(t: Any) -> Any:
        # Rank k for every t near 0, so pinv is differentiable along the path.
        # HIGHEST precision: on GPU/TPU the default float32 matmul may run in
        # TF32/bfloat16, whose rounding would swamp the finite differences.
        a = jnp.matmul(x + t * dx, (y + t * dy).T, precision="highest")
        return jaxpinv.pinv(a)

    t0 = jnp.asarray(0.0, jnp.float32)
    # float32 central differences: truncation error O(eps^2 * f''') against
    # rounding error O(eps_f32 * |f| / eps). eps = 1e-3 keeps both near 1e-4
    # here (measured over 30 random paths: median 6e-5, worst 1.4e-3, on
    # entries of size ~1), so tol = 3e-3 passes reliably yet catches a
    # derivative that is 2% off. check_grads multiplies atol and rtol by the
    # size of what it compares: the whole m x n JVP in "fwd" mode but a scalar
    # projection in "rev" mode, so the forward tolerances are divided by m * n
    # to make both effectively 3e-3.
    eps, tol = 1e-3, 3e-3
    from jax.test_util import check_grads

    fwd_tol = tol / (m * n)
    check_grads(path, (t0,), order=1, modes=("fwd",), atol=fwd_tol, rtol=fwd_tol, eps=eps)
    check_grads(path, (t0,), order=1, modes=("rev",), atol=tol, rtol=tol, eps=eps)
    return True, f"check_grads fwd+rev order 1, eps={eps}, atol=rtol={tol} per entry"


def _check_composition(rng: np.random.Generator) -> tuple[bool, str]:
    import jax
    import jax.numpy as jnp

    import jaxpinv

    b, m, n = 8, 5, 3
    a = rng.standard_normal((b, m, n)).astype(np.float32)
    c = jnp.asarray(rng.standard_normal((n, m)), jnp.float32)

    def loss(mat: Any) -> Any:
        return jnp.sum(jaxpinv.pinv(mat) * c)

    batched = np.asarray(jax.jit(jax.vmap(jax.grad(loss)))(jnp.asarray(a)))
    looped = np.stack([np.asarray(jax.grad(loss)(jnp.asarray(a[i]))) for i in range(b)])
    if not np.all(np.isfinite(batched)):
        return False, "non-finite gradient"
    # Same float32 arithmetic on both sides, up to operation order (jit may
    # fuse and reorder): the gradient is a product of P with P and with A, so
    # rounding differences grow like eps * cond^2 at worst.
    cond = _cond(a, n)
    eps = float(np.finfo(np.float32).eps)
    err = _rel(batched, looped)
    tol = 100 * eps * cond**2
    return err <= tol, f"batch {b}x{m}x{n}, rel err {err:.2e} <= tol {tol:.2e}, cond {cond:.1f}"


def _check_numpy(rng: np.random.Generator) -> tuple[bool, str]:
    import jax.numpy as jnp

    import jaxpinv

    b, m, n = 16, 7, 4
    a = rng.standard_normal((b, m, n)).astype(np.float32)
    got = np.asarray(jaxpinv.pinv(jnp.asarray(a)))
    ref = np.linalg.pinv(a.astype(np.float64))  # float64 reference
    cond = _cond(a, n)
    eps = float(np.finfo(np.float32).eps)
    # Forward error of a backward-stable pinv: O(eps * cond) relative.
    tol = 10 * max(m, n) * eps * cond
    err = _rel(got, ref)
    return err <= tol, f"batch {b}x{m}x{n}, rel err {err:.2e} <= tol {tol:.2e}, cond {cond:.1f}"


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #


def _median_ms(fn: Callable[[Any], Any], x: Any, repeats: int, budget_s: float) -> tuple[float, int]:
    """Median wall time in ms of ``fn(x)`` after a warm-up call, and the run count.

    Stops early (after at least 3 runs) once ``budget_s`` seconds are spent, so
    that a loaded machine cannot stretch the table to minutes.
    """
    import jax

    jax.block_until_ready(fn(x))  # compile and warm up
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(x))
        times.append(time.perf_counter() - t)
        if len(times) >= 3 and time.perf_counter() - start > budget_s:
            break
    return 1e3 * statistics.median(times), len(times)


def _timing(rng: np.random.Generator, repeats: int, budget_s: float = 2.0) -> None:
    import jax
    import jax.numpy as jnp

    import jaxpinv

    ours = jax.jit(jaxpinv.pinv)
    theirs = jax.jit(jnp.linalg.pinv)
    cases = [
        ("256x256 float32", (256, 256)),
        ("512x16x16 float32", (512, 16, 16)),
    ]
    print(f"\nTiming (median of up to {repeats} runs after compilation, milliseconds):")
    print(f"  {'case':<20} {'jaxpinv.pinv':>13} {'jnp.linalg.pinv':>16} {'ratio':>7} {'runs':>9}")
    for label, shape in cases:
        x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
        t_ours, n_ours = _median_ms(ours, x, repeats, budget_s)
        t_theirs, n_theirs = _median_ms(theirs, x, repeats, budget_s)
        print(f"  {label:<20} {t_ours:>13.3f} {t_theirs:>16.3f} {t_ours / t_theirs:>7.2f} {f'{n_ours}/{n_theirs}':>9}")
    print("  (ratio = jaxpinv / jnp.linalg; below 1 means jaxpinv is faster)")


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def _print_environment() -> None:
    import jax

    import jaxpinv

    print(f"jaxpinv {jaxpinv.__version__}")
    print(f"jax     {jax.__version__}  (jaxlib {getattr(jax.lib, '__version__', '?')})")
    print(f"python  {platform.python_version()}, numpy {np.__version__}")
    print(f"backend {jax.default_backend()}")
    print(f"devices {jax.devices()}")
    print(f"x64     {bool(jax.config.read('jax_enable_x64'))}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report, self-check and (unless ``--no-timing``) the benchmark.

    Returns the exit status: 1 if any check failed, else 0.
    """
    parser = argparse.ArgumentParser(
        prog="python -m jaxpinv",
        description="Print versions and devices, self-check jaxpinv on the default "
        "backend and time it against jnp.linalg.pinv.",
        epilog="Exit status: 0 if every check passed, 1 if any failed (the timing table never fails "
        "the run unless it raises), 2 for bad arguments.",
    )
    parser.add_argument("--no-timing", action="store_true", help="skip the timing table")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case (default: 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args(argv)

    _RESULTS.clear()
    _print_environment()

    rng = np.random.default_rng(args.seed)
    print("\nSelf-check:")

    def penrose_real() -> None:
        _check_penrose("6x4 float32", rng.standard_normal((6, 4)).astype(np.float32), 4)

    def penrose_complex() -> None:
        a = _low_rank(rng, 5, 4, 2, complex_=True).astype(np.complex64)
        _check_penrose("5x4 complex64 rank 2", a, 2)

    # The Penrose helpers report their own lines; wrap them only so that an
    # exception becomes a FAIL line instead of a crash.
    for name, fn in [("penrose 6x4 float32", penrose_real), ("penrose complex64", penrose_complex)]:
        n_before = len(_RESULTS)
        try:
            fn()
        except Exception as exc:
            del _RESULTS[n_before:]
            _report(name, False, f"raised {type(exc).__name__}: {_one_line(exc)}")
            traceback.print_exc(file=sys.stdout)
    _run_check("derivative along a rank-2 path, float32", lambda: _check_derivative(rng))
    _run_check("jit(vmap(grad)) vs per-matrix loop", lambda: _check_composition(rng))
    _run_check("batched pinv vs numpy.linalg.pinv", lambda: _check_numpy(rng))
    for name, check in _check_semantics():
        _run_check(name, check)

    failed = _RESULTS.count(False)
    total = len(_RESULTS)
    if failed:
        print(f"\n{failed} of {total} checks FAILED")
    else:
        print(f"\nall {total} checks passed")

    if not args.no_timing:
        try:
            _timing(rng, max(1, args.repeats))
        except Exception as exc:
            _report("timing", False, f"raised {type(exc).__name__}: {_one_line(exc)}")
            traceback.print_exc(file=sys.stdout)
            failed += 1

    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
