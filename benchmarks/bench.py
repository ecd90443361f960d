"""Side-by-side benchmark of jaxpinv.pinv against its peers and the SVD floor.

Run from the repository root:

    python benchmarks/bench.py            # full run (10-20 minutes on 2 CPU cores)
    python benchmarks/bench.py --quick    # seconds; what CI runs to keep this working
    python benchmarks/bench.py --cases 256x256,4096x8x8 --out table.md
    python benchmarks/bench.py --cores all     # use every core (noisier on shared VMs)
    python benchmarks/bench.py --latency       # compile time and first-call latency only (a few minutes)
    python benchmarks/bench.py --broadcast     # one matrix against many tolerances, dampings, right-hand sides
    python benchmarks/bench.py --mixed         # a batch with a few members the QR path turns away
    python benchmarks/bench.py --reach         # the fast path's reach: square sizes 2..1024 near its limit
    python benchmarks/bench.py --hermitian     # Hermitian positive definite input by size (the Cholesky path)

Every timing is taken in this one process, after compilation, with
``jax.block_until_ready``; the functions of a case are timed in interleaved
rounds (one call of each per round, so machine noise hits all of them alike)
and the median is reported. Each case reports the path ``method="auto"``
took (``qr``: the QR path; ``svd``; see ``jaxpinv.internal.path_taken``) with ``method="svd"`` timed beside it.
Modes: the forward pass; ``lstsq`` with one right-hand side (not for
Hermitian cases); ``value_and_grad`` of the
scalar loss ``Re sum(pinv(A) * C)``; ``jax.jvp``; and for batches, the
per-matrix function under ``jax.vmap`` against the batched call (forward,
``grad(vmap)``, ``vmap(grad)``, ``jvp``). The floor is
``jnp.linalg.svd(full_matrices=False)`` (``jnp.linalg.eigh`` for Hermitian
cases): an SVD-based pinv cannot beat it. Compile time of each jitted JAX
function is reported separately, as are each forward's max relative error
against a float64 NumPy reference and the bytes reverse mode saves
(residuals of ``jax.vjp``).

``--latency`` measures what a notebook user waits for on a new shape
instead: the compile time of ``jit(f)`` and ``jit(grad(f))`` (trace, lower
and compile from cold caches, median of three) and the first eager call of
each shape in a fresh Python process (after JAX has started), for
``jaxpinv.pinv``, its SVD path and ``jnp.linalg.pinv``, and for
``jaxpinv.lstsq`` and ``jnp.linalg.lstsq``; ratios against jnp's, with the
geometric mean over the shapes.

``--broadcast`` times the documented call forms where one matrix meets many
tolerances (``pinv(a, rtol=r)``, ``r`` of shape (64,)), dampings
(``damped_pinv(a, lam)``) or right-hand sides (``lstsq(a, b)``, ``b`` of
shape (256, m, 1)) against the per-entry function under ``jax.vmap`` and
against their floor: one ``jnp.linalg.svd`` of ``a`` plus the per-entry
products.

``--mixed`` times a batch of 32 200×200 float32 matrices of which 0, 1, 2
or 4 are rank-deficient (the QR path turns them away and the SVD redoes only
them), against the same batch with every member full rank: ``pinv`` and
``lstsq`` forward, and the gradient of a ``vmap``-ped per-example loss,
with ``method="svd"`` beside them.

``--reach`` checks the fast path's reach: one square float32 matrix of each
size 2, 4, ..., 1024 with condition ``1/(100 k eps)`` (singular values
log-spaced; the largest condition the QR path promises to take at every
size), and 128×128 at condition 1e3, timed with ``method="auto"``,
``method="qr"`` and ``method="svd"`` against the SVD floor, with the path
each took.

``--hermitian`` times ``pinv(a, hermitian=True)`` on Hermitian positive
definite matrices (eigenvalues log-spaced over [0.01, 1]) from 64×64 to
1024×1024 with ``method="auto"`` (the Cholesky path), ``"qr"`` and
``"svd"`` against the floor ``jnp.linalg.eigh``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def _pin_cores(argv: list[str]) -> str:
    """Pin this process to ``--cores N`` CPUs before JAX and torch start their threads.

    One pinned core is the default: on a small shared VM, work split over two
    vCPUs runs at full speed or at half speed depending on the neighbours, so
    two-thread timings are bimodal (seen here: the same batched SVD at 15 ms
    and 30 ms in alternating rounds); one core gives repeatable ratios.
    """
    cores = "1"
    for i, arg in enumerate(argv):
        if arg == "--cores" and i + 1 < len(argv):
            cores = argv[i + 1]
        elif arg.startswith("--cores="):
            cores = arg.split("=", 1)[1]
    if cores != "all" and hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[-int(cores) :])
    return cores


_CORES = _pin_cores(sys.argv[1:])

import jax

jax.config.update("jax_enable_x64", True)  # float64 cases; float32 ones pass dtypes explicitly

import jax.numpy as jnp
import numpy as np
import scipy.linalg

import jaxpinv
from jaxpinv.internal import path_taken

_SCIPY_BATCHES = tuple(int(v) for v in scipy.__version__.split(".")[:2]) >= (1, 16)


def _scipy_batched(fn: Any, x: np.ndarray) -> np.ndarray:
    """``fn`` over a batch of matrices: SciPy >= 1.16 batches itself (a Python
    loop over the matrices); older SciPy takes one matrix, so loop here."""
    if _SCIPY_BATCHES or x.ndim == 2:
        return fn(x)
    out = [fn(m) for m in x.reshape((-1,) + x.shape[-2:])]
    return np.stack(out).reshape(x.shape[:-2] + out[0].shape)


try:  # torch is an optional peer
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
except ImportError:  # pragma: no cover
    torch = None


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    shape: tuple[int, ...]
    dtype: Any
    hermitian: str = ""  # "", "spd" or "indefinite"
    cond: float = 100.0
    rank: str = ""  # "": full; "half": rank min(m, n) // 2; "below": smallest value at 0.5x the cutoff


def full_cases() -> list[Case]:
    cases = []
    for dt in (np.float32, np.float64):
        for shape in [(256, 256), (1024, 1024), (2048, 256), (256, 2048), (4096, 8, 8), (512, 32, 32), (64, 128, 128)]:
            cases.append(Case("x".join(map(str, shape)), shape, dt))
        cases.append(Case("herm SPD 512", (512, 512), dt, "spd"))
        cases.append(Case("herm indef 1024", (1024, 1024), dt, "indefinite"))
    cases.append(Case("512x512", (512, 512), np.complex64))
    cases.append(Case("256x32x32", (256, 32, 32), np.complex128))
    # Where the fast path must not run: rank n/2, and one value just below the cutoff.
    for rank in ("half", "below"):
        for shape, dt in [((1024, 1024), np.float32), ((2048, 256), np.float32), ((512, 32, 32), np.float64)]:
            cases.append(Case("x".join(map(str, shape)) + f" {rank}", shape, dt, rank=rank))
    # Harder conditioning: 1e3 in single, 1e8 in double precision.
    for shape in [(1024, 1024), (2048, 256), (4096, 8, 8)]:
        cases.append(Case("x".join(map(str, shape)) + " κ1e3", shape, np.float32, cond=1e3))
        cases.append(Case("x".join(map(str, shape)) + " κ1e8", shape, np.float64, cond=1e8))
    return cases


def quick_cases() -> list[Case]:
    return [
        Case("64x64", (64, 64), np.float32),
        Case("96x24", (96, 24), np.float64),
        Case("herm SPD 32", (32, 32), np.float64, "spd"),
        Case("16x16", (2, 16, 16), np.complex64),
        Case("32x32 half", (32, 32), np.float64, rank="half"),
    ]


def make_input(case: Case, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random matrix (batch) with singular values log-spaced in [1/cond, 1], and its pinv.

    The pinv ``V diag(1/s) U^H`` comes from the construction (float64), so for
    float64 inputs it is a reference independent of any SVD's rounding (off
    only by the rounding of the input itself, ~ eps * cond).

    Controlled conditioning makes every library keep every singular value
    whatever its default tolerance, so the accuracy columns compare the same
    pseudo-inverse (a Gaussian batch of 512 float32 32x32 matrices always holds
    a few with sigma_min near the cutoffs, where libraries legitimately differ).
    Hermitian cases: U diag(+-s) U^H (all positive for "spd").
    """
    complex_ = np.issubdtype(case.dtype, np.complexfloating)

    def orthonormal(*shape: int) -> np.ndarray:
        g = rng.standard_normal(shape)
        if complex_:
            g = g + 1j * rng.standard_normal(shape)
        return np.linalg.qr(g)[0]

    *batch, m, n = case.shape
    k = min(m, n)
    s = np.logspace(0, -np.log10(case.cond), k)
    if case.rank == "half":
        s[k // 2 :] = 0.0
    elif case.rank == "below":  # half of the default cutoff max(m, n) eps s_max: cut by every library
        s[-1] = 0.5 * max(m, n) * np.finfo(case.dtype).eps
    u = orthonormal(*batch, m, k)
    if case.hermitian:
        if case.hermitian == "indefinite":
            s = s * np.where(np.arange(k) % 2 == 0, 1.0, -1.0)
        v = u
    else:
        v = orthonormal(*batch, n, k)
    a = (u * s) @ np.conj(np.swapaxes(v, -1, -2))
    kept = np.abs(s) > max(m, n) * np.finfo(case.dtype).eps  # (signed eigenvalues for indefinite cases)
    pinv = (v * np.where(kept, 1 / np.where(kept, s, 1), 0)) @ np.conj(np.swapaxes(u, -1, -2))
    return a.astype(case.dtype), pinv


def median_times(
    fns: dict[str, Callable[[], Any]], budget_s: float, min_rounds: int, max_rounds: int
) -> dict[str, float]:
    """Interleaved rounds, one call of each function per round; medians in ms."""
    for f in fns.values():  # warm-up (compilation happened before)
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
        rounds += 1
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def compile_ms(f: Callable[..., Any], *args: Any, reps: int = 3) -> float:
    """Trace, lower and compile ``jax.jit(f)``: median of ``reps`` runs from cold caches."""
    times = []
    for _ in range(reps):
        jax.clear_caches()
        t0 = time.perf_counter()
        jax.jit(f).lower(*args).compile()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def residual_bytes(f: Callable[..., Any], a: jax.Array) -> int:
    """Bytes of the arrays reverse mode keeps between forward and backward."""
    _, f_vjp = jax.vjp(f, a)
    return sum(x.nbytes for x in jax.tree_util.tree_leaves(f_vjp) if hasattr(x, "nbytes"))


def rel_err(x: Any, ref: np.ndarray) -> float:
    x = np.asarray(x, dtype=ref.dtype)
    return float(np.max(np.abs(x - ref)) / max(np.max(np.abs(ref)), 1e-300))


def run_case(case: Case, args: argparse.Namespace, rng: np.random.Generator) -> dict[str, Any]:
    herm = bool(case.hermitian)
    a_np, exact = make_input(case, rng)
    c_np = rng.standard_normal(case.shape[:-2] + case.shape[-2:][::-1]).astype(case.dtype)
    a, c = jnp.asarray(a_np), jnp.asarray(c_np)
    if np.finfo(case.dtype).bits >= 64 or case.rank:  # float64 / complex128 / deficient: the constructed pinv
        ref = exact
    else:  # single precision: float64 NumPy pinv of the rounded input
        ref = np.linalg.pinv(a_np.astype(exact.dtype), hermitian=herm)

    # Every library at its default tolerance, which differs (see the README's
    # Tolerances table); on these full-rank inputs all keep every value.
    def ours(x):
        return jaxpinv.pinv(x, hermitian=herm)

    def theirs(x):
        return jnp.linalg.pinv(x, hermitian=herm)

    def svd_path(x):
        return jaxpinv.pinv(x, hermitian=herm, method="svd")

    def floor(x):
        return jnp.linalg.eigh(x) if herm else jnp.linalg.svd(x, full_matrices=False)

    def loss(f):
        return lambda x: jnp.sum(jnp.real(f(x) * c))

    jit = {
        "floor": jax.jit(floor),
        "jaxpinv": jax.jit(ours),
        "svd path": jax.jit(svd_path),
        "jnp": jax.jit(theirs),
    }
    grad = {
        "jaxpinv": jax.jit(jax.value_and_grad(loss(ours))),
        "svd path": jax.jit(jax.value_and_grad(loss(svd_path))),
        "jnp": jax.jit(jax.value_and_grad(loss(theirs))),
    }
    jvp = {
        "jaxpinv": jax.jit(lambda x, t: jax.jvp(ours, (x,), (t,))),
        "jnp": jax.jit(lambda x, t: jax.jvp(theirs, (x,), (t,))),
    }
    out: dict[str, Any] = {"case": case, "compile": {}, "err": {}, "fwd": {}, "grad": {}, "jvp": {}}
    out["path"] = path_taken(a, hermitian=herm)
    reps = 1 if args.quick else 3
    out["compile"]["pinv jaxpinv"] = compile_ms(ours, a, reps=reps)
    out["compile"]["pinv jnp"] = compile_ms(theirs, a, reps=reps)
    out["compile"]["grad jaxpinv"] = compile_ms(jax.grad(loss(ours)), a, reps=reps)
    out["compile"]["grad jnp"] = compile_ms(jax.grad(loss(theirs)), a, reps=reps)
    out["compile"]["grad svd path"] = compile_ms(jax.grad(loss(svd_path)), a, reps=reps)
    out["residual_bytes"] = {"jaxpinv": residual_bytes(ours, a), "jnp": residual_bytes(theirs, a)}

    fwd: dict[str, Callable[[], Any]] = {k: (lambda f=f: jax.block_until_ready(f(a))) for k, f in jit.items()}
    fwd["numpy"] = lambda: np.linalg.pinv(a_np, hermitian=herm)
    scipy_pinv = scipy.linalg.pinvh if herm else scipy.linalg.pinv
    fwd["scipy"] = lambda: _scipy_batched(scipy_pinv, a_np)
    if torch is not None:
        ta = torch.from_numpy(a_np)
        fwd["torch"] = lambda: torch.linalg.pinv(ta, hermitian=herm)
    out["err"] = {k: rel_err(f(), ref) for k, f in fwd.items() if k not in ("floor", "svd path")}
    out["fwd"] = median_times(fwd, args.budget, args.min_rounds, args.max_rounds)

    gfns: dict[str, Callable[[], Any]] = {k: (lambda f=f: jax.block_until_ready(f(a))) for k, f in grad.items()}
    if torch is not None:
        tc = torch.from_numpy(c_np)

        def torch_grad() -> Any:
            x = torch.from_numpy(a_np).requires_grad_(True)
            val = (torch.linalg.pinv(x, hermitian=herm) * tc).real.sum()
            val.backward()
            return x.grad

        gfns["torch"] = torch_grad
    out["grad"] = median_times(gfns, args.budget, args.min_rounds, args.max_rounds)

    if not herm:  # lstsq with one right-hand side per matrix, against the same floor
        b_np = rng.standard_normal(case.shape[:-1]).astype(case.dtype)
        b = jnp.asarray(b_np)
        lfns = {
            "floor": jit["floor"],
            "jaxpinv": jax.jit(jaxpinv.lstsq),
            "svd path": jax.jit(lambda x, y: jaxpinv.lstsq(x, y, method="svd")),
            "jnp": jax.jit(
                lambda x, y: (
                    jnp.linalg.lstsq(x, y)[0]
                    if x.ndim == 2
                    else jax.vmap(lambda xi, yi: jnp.linalg.lstsq(xi, yi)[0])(x, y)
                )
            ),
        }
        calls = {
            k: (lambda k=k, f=f: jax.block_until_ready(f(a) if k == "floor" else f(a, b))) for k, f in lfns.items()
        }
        out["lstsq"] = median_times(calls, args.budget, args.min_rounds, args.max_rounds)
        xref = np.einsum("...ij,...j->...i", ref, b_np.astype(ref.dtype))
        out["lstsq err"] = {k: rel_err(f(), xref) for k, f in calls.items() if k != "floor"}
    t = jnp.asarray(rng.standard_normal(case.shape).astype(case.dtype))
    jfns = {k: (lambda f=f: jax.block_until_ready(f(a, t))) for k, f in jvp.items()}
    out["jvp"] = median_times(jfns, args.budget, args.min_rounds, args.max_rounds)
    if len(case.shape) > 2:
        out["vmap"] = vmap_mode(ours, a, c, t, args)
    return out


def vmap_mode(
    f: Callable[[jax.Array], jax.Array], a: jax.Array, c: jax.Array, t: jax.Array, args: argparse.Namespace
) -> dict[str, float]:
    """The per-matrix function under ``jax.vmap`` against the natively batched call.

    Research code writes the per-example function and maps it; the rules'
    rank decisions must then stay batch-level ``cond``s (not ``select``s that
    run every branch). Each mode is timed side by side with its batched twin:
    forward, ``value_and_grad`` as ``grad(vmap)`` and as ``vmap(grad)``, and
    ``jvp``. Returns ``{mode: mapped / batched}`` time ratios and the times.
    """

    def loss(x: jax.Array, cm: jax.Array) -> jax.Array:
        return jnp.sum(jnp.real(f(x) * cm))

    pairs = {
        "fwd": (jax.jit(f), jax.jit(jax.vmap(f)), (a,)),
        "grad(vmap)": (
            jax.jit(jax.value_and_grad(loss)),
            jax.jit(jax.value_and_grad(lambda x, cm: jnp.sum(jax.vmap(loss)(x, cm)))),
            (a, c),
        ),
        "vmap(grad)": (jax.jit(jax.value_and_grad(loss)), jax.jit(jax.vmap(jax.value_and_grad(loss))), (a, c)),
        "jvp": (
            jax.jit(lambda x, dx: jax.jvp(f, (x,), (dx,))),
            jax.jit(jax.vmap(lambda x, dx: jax.jvp(f, (x,), (dx,)))),
            (a, t),
        ),
    }
    out: dict[str, float] = {}
    for mode, (batched, mapped, xs) in pairs.items():
        times = median_times(
            {
                "batched": lambda: jax.block_until_ready(batched(*xs)),
                "vmap": lambda: jax.block_until_ready(mapped(*xs)),
            },
            args.budget,
            args.min_rounds,
            args.max_rounds,
        )
        out[mode] = times["vmap"] / times["batched"]
        out[mode + " ms"] = times["batched"]
    return out


def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def describe_machine() -> str:
    dev = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = f"jax {jax.__version__}, numpy {np.__version__}, scipy {scipy.__version__}"
    if torch is not None:
        versions += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    used = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{dev.platform.upper()} ({dev.device_kind}); {cpu}, {used} of {os.cpu_count()} cores used; {versions}"


def tables(results: list[dict[str, Any]]) -> str:
    def name(r: dict[str, Any]) -> str:
        c = r["case"]
        return f"{c.name} {np.dtype(c.dtype).name}"

    lines = [f"Machine: {describe_machine()}", ""]
    lines += [
        '**Forward** (median ms; path: which one `method="auto"` took; ratios: jaxpinv / floor, its SVD path '
        '(`method="svd"`) / floor, jnp / floor, speed-up of jaxpinv over jnp and torch)',
        "",
        "| case | path | floor | jaxpinv | svd path | jnp | numpy | scipy | torch | ours/floor | svd path/floor | "
        "jnp/floor | vs jnp | vs torch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f = r["fwd"]
        torch_t = f.get("torch")
        lines.append(
            f"| {name(r)} | {r['path']} | {fmt(f['floor'])} | {fmt(f['jaxpinv'])} | {fmt(f['svd path'])} | {fmt(f['jnp'])} | "
            f"{fmt(f['numpy'])} | {fmt(f['scipy'])} | {fmt(torch_t)} | {fmt(f['jaxpinv'] / f['floor'])} | "
            f"{fmt(f['svd path'] / f['floor'])} | {fmt(f['jnp'] / f['floor'])} | "
            f"{fmt(f['jnp'] / f['jaxpinv'])}× | {fmt(torch_t / f['jaxpinv'] if torch_t else None)}× |"
        )
    lines += [
        "",
        "**Gradient** (`value_and_grad` of `Re Σ pinv(A)∘C`, median ms; grad/fwd is each library's own ratio)",
        "",
        "| case | jaxpinv | svd path | jnp | torch | jaxpinv/floor | jaxpinv grad/fwd | jnp grad/fwd | torch grad/fwd | "
        "vs jnp | vs torch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        g, f = r["grad"], r["fwd"]
        tg = g.get("torch")
        lines.append(
            f"| {name(r)} | {fmt(g['jaxpinv'])} | {fmt(g['svd path'])} | {fmt(g['jnp'])} | {fmt(tg)} | "
            f"{fmt(g['jaxpinv'] / f['floor'])} | {fmt(g['jaxpinv'] / f['jaxpinv'])} | "
            f"{fmt(g['jnp'] / f['jnp'])} | {fmt(tg / f['torch'] if tg else None)} | {fmt(g['jnp'] / g['jaxpinv'])}× | "
            f"{fmt(tg / g['jaxpinv'] if tg else None)}× |"
        )
    lines += [
        "",
        "**JVP, compile time, residuals** (median ms; compile of `jit(pinv)` and `jit(grad(loss))` in ms, median of 3 from cold caches; bytes saved by `jax.vjp`)",
        "",
        "| case | jvp jaxpinv | jvp jnp | compile pinv ours / jnp | compile grad ours / svd path / jnp | "
        "residuals ours / jnp |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        j, cm, rb = r["jvp"], r["compile"], r["residual_bytes"]
        lines.append(
            f"| {name(r)} | {fmt(j['jaxpinv'])} | {fmt(j['jnp'])} | {fmt(cm['pinv jaxpinv'], 0)} / {fmt(cm['pinv jnp'], 0)} | "
            f"{fmt(cm['grad jaxpinv'], 0)} / {fmt(cm['grad svd path'], 0)} / {fmt(cm['grad jnp'], 0)} | "
            f"{rb['jaxpinv'] / 1e6:.2f} MB / {rb['jnp'] / 1e6:.2f} MB |"
        )
    solved = [r for r in results if "lstsq" in r]
    if solved:
        lines += [
            "",
            "**lstsq** (one right-hand side per matrix; median ms; ratios to the forward table's floor; errors "
            "against the reference pinv times b)",
            "",
            "| case | path | floor | jaxpinv | svd path | jnp | ours/floor | svd path/floor | jnp/floor | "
            "err ours | err svd path | err jnp |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in solved:
            t, e = r["lstsq"], r["lstsq err"]
            lines.append(
                f"| {name(r)} | {r['path']} | {fmt(t['floor'])} | {fmt(t['jaxpinv'])} | {fmt(t['svd path'])} | "
                f"{fmt(t['jnp'])} | {fmt(t['jaxpinv'] / t['floor'])} | {fmt(t['svd path'] / t['floor'])} | "
                f"{fmt(t['jnp'] / t['floor'])} | {e['jaxpinv']:.1e} | {e['svd path']:.1e} | {e['jnp']:.1e} |"
            )
    mapped = [r for r in results if "vmap" in r]
    if mapped:
        modes = ["fwd", "grad(vmap)", "vmap(grad)", "jvp"]
        lines += [
            "",
            "**vmap** (jaxpinv's per-matrix function under `jax.vmap` / the natively batched call, time ratios; "
            "the batched call's median ms in brackets)",
            "",
            "| case | " + " | ".join(modes) + " |",
            "|---|" + "---|" * len(modes),
        ]
        for r in mapped:
            v = r["vmap"]
            lines.append(f"| {name(r)} | " + " | ".join(f"{fmt(v[m])} ({fmt(v[m + ' ms'])})" for m in modes) + " |")
    libs = ["jaxpinv", "jnp", "numpy", "scipy"] + (["torch"] if torch is not None else [])
    lines += [
        "",
        "**Accuracy** (max |P − P_ref| / max |P_ref|; inputs `U diag(s) V^H` with condition number 100 (or the "
        'case\'s κ; "half": rank n/2, "below": one value at half the default cutoff); P_ref: '
        "float64 NumPy pinv of the rounded input for float32/complex64, the constructed `V diag(1/s) U^H` for "
        "float64/complex128, itself off by ~eps·cond from the rounding of the input)",
        "",
        "| case | " + " | ".join(libs) + " |",
        "|---|" + "---|" * len(libs),
    ]
    for r in results:
        lines.append(f"| {name(r)} | " + " | ".join(f"{r['err'][k]:.1e}" for k in libs) + " |")
    return "\n".join(lines)


def crossover(args: argparse.Namespace, rng: np.random.Generator) -> str:
    """Does reducing a tall matrix by QR first (SVD of the small R) beat a direct SVD?"""
    n = 64 if args.quick else 256

    def direct(a: jax.Array) -> jax.Array:
        u, s, vh = jnp.linalg.svd(a, full_matrices=False)
        return jnp.matmul(jnp.conj(vh.mT) / s[..., None, :], jnp.conj(u.mT), precision="highest")

    def reduced(a: jax.Array) -> jax.Array:
        q, r = jnp.linalg.qr(a)
        u, s, vh = jnp.linalg.svd(r)
        pr = jnp.matmul(jnp.conj(vh.mT) / s[..., None, :], jnp.conj(u.mT), precision="highest")
        return jnp.matmul(pr, jnp.conj(q.mT), precision="highest")

    lines = [
        f"**QR reduction crossover** (pinv of an m x {n} float32 matrix by direct SVD vs QR then SVD of R; median ms)",
        "",
        "| m / n | direct SVD | QR + SVD(R) | QR / direct |",
        "|---|---|---|---|",
    ]
    for ratio in (1, 4) if args.quick else (1, 1.5, 2, 3, 4, 8):
        a = jnp.asarray(rng.standard_normal((int(ratio * n), n)), jnp.float32)
        fns = {k: jax.jit(f) for k, f in (("direct", direct), ("qr", reduced))}
        t = median_times(
            {k: (lambda f=f: jax.block_until_ready(f(a))) for k, f in fns.items()},
            args.budget,
            args.min_rounds,
            args.max_rounds,
        )
        lines.append(f"| {ratio} | {fmt(t['direct'])} | {fmt(t['qr'])} | {fmt(t['qr'] / t['direct'])} |")
    return "\n".join(lines)


LATENCY_SHAPES = ((8, 8), (64, 64), (256, 256), (32, 64, 64), (512, 64))
QUICK_LATENCY_SHAPES = ((8, 8), (64, 64), (4, 16, 16))


def _latency_fns() -> dict[str, Callable[..., Any]]:
    """The functions whose compile time and first call are compared (``b`` for the least-squares ones)."""

    def jnp_lstsq(a: jax.Array, b: jax.Array) -> jax.Array:
        solve = lambda x, y: jnp.linalg.lstsq(x, y)[0]  # noqa: E731
        for _ in range(a.ndim - 2):
            solve = jax.vmap(solve)
        return solve(a, b)

    return {
        "pinv jnp": jnp.linalg.pinv,
        "pinv jaxpinv": jaxpinv.pinv,
        "pinv svd path": lambda a: jaxpinv.pinv(a, method="svd"),
        "lstsq jnp": jnp_lstsq,
        "lstsq jaxpinv": jaxpinv.lstsq,
    }


_FIRST_CALL = """
import sys, time
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, {bench!r})
import jaxpinv
from bench import _latency_fns
f = _latency_fns()[{name!r}]
jax.block_until_ready(jnp.ones(3) + 1)  # start the backend: not the call's latency
rng = np.random.default_rng(0)
for shape in {shapes!r}:
    a = rng.standard_normal(shape).astype(np.float32)
    args = (a, rng.standard_normal(shape[:-1]).astype(np.float32)) if "lstsq" in {name!r} else (a,)
    t0 = time.perf_counter()
    jax.block_until_ready(f(*args))
    print(1e3 * (time.perf_counter() - t0))
"""


def first_calls(name: str, shapes: tuple[tuple[int, ...], ...]) -> list[float]:
    """ms of the first eager call of ``name`` for each shape in turn, in a fresh Python process on this core."""
    import subprocess

    code = _FIRST_CALL.format(bench=os.path.dirname(os.path.abspath(__file__)), name=name, shapes=shapes)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return [float(v) for v in out.stdout.split()]


def _geomean(xs: list[float]) -> float:
    return float(np.exp(np.mean(np.log(xs))))


def latency(args: argparse.Namespace) -> str:
    """Compile time and first-call latency on new shapes, float32, against jnp's (see the module docstring)."""
    shapes = QUICK_LATENCY_SHAPES if args.quick else LATENCY_SHAPES
    reps = 1 if args.quick else 3
    rng = np.random.default_rng(0)
    fns = _latency_fns()
    compile_t: dict[str, list[float]] = {}
    for shape in shapes:
        a = jnp.asarray(rng.standard_normal(shape), jnp.float32)
        b = jnp.asarray(rng.standard_normal(shape[:-1]), jnp.float32)
        for name, f in fns.items():
            if name.startswith("lstsq"):
                compile_t.setdefault(name, []).append(compile_ms(f, a, b, reps=reps))
                g = jax.grad(lambda x, f=f: jnp.sum(f(x, b)))
            else:
                compile_t.setdefault(name, []).append(compile_ms(f, a, reps=reps))
                g = jax.grad(lambda x, f=f: jnp.sum(f(x)))
            compile_t.setdefault(name.replace(" ", " grad ", 1), []).append(compile_ms(g, a, reps=reps))
    first = {name: first_calls(name, shapes) for name in fns}
    names = ["x".join(map(str, s)) for s in shapes]

    def rows(table: dict[str, list[float]], peer: Callable[[str], str]) -> list[str]:
        out = []
        for name, ts in table.items():
            ratio = [t / p for t, p in zip(ts, table[peer(name)])]
            cells = " | ".join(f"{fmt(t, 0)} ({fmt(r)}×)" for t, r in zip(ts, ratio))
            out.append(f"| {name} | {cells} | {fmt(_geomean(ratio))}× |")
        return out

    def jnp_of(name: str) -> str:  # "pinv grad svd path" -> "pinv grad jnp"
        words = name.split(" ")
        return " ".join(words[: 2 if words[1] == "grad" else 1] + ["jnp"])

    head = "| function | " + " | ".join(names) + " | geomean vs jnp |"
    rule = "|---|" + "---|" * (len(names) + 1)
    lines = [
        f"Machine: {describe_machine()}",
        "",
        "**Compile time** (ms to trace, lower and compile `jit(f)` / `jit(grad(sum f))` from cold caches, median of "
        f"{reps}, float32; in brackets: ratio to jnp's)",
        "",
        head,
        rule,
        *rows(compile_t, jnp_of),
        "",
        "**First call** (ms of the first eager call of each shape, in this order, in a fresh Python process; "
        "in brackets: ratio to jnp's)",
        "",
        head,
        rule,
        *rows(first, jnp_of),
    ]
    return "\n".join(lines)


def broadcast(args: argparse.Namespace) -> str:
    """Broadcast call forms against vmap and one SVD plus the products (see the module docstring)."""
    n, entries, rhs = (32, 8, 16) if args.quick else (128, 64, 256)
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((n, n)), jnp.float32)
    rtol = jnp.logspace(-6, -1, entries, dtype=jnp.float32)
    lam = jnp.logspace(-3, 1, entries, dtype=jnp.float32)
    b = jnp.asarray(rng.standard_normal((rhs, n, 1)), jnp.float32)
    hi = jax.lax.Precision.HIGHEST

    def floor_pinv(a: jax.Array, r: jax.Array) -> jax.Array:
        u, s, vh = jnp.linalg.svd(a, full_matrices=False)
        inv = jnp.where(s > r[:, None] * s[0], 1 / s, 0)
        return jnp.matmul(vh.T * inv[:, None, :], u.T, precision=hi)

    def floor_damped(a: jax.Array, lam: jax.Array) -> jax.Array:
        u, s, vh = jnp.linalg.svd(a, full_matrices=False)
        return jnp.matmul(vh.T * (s / (s**2 + lam[:, None] ** 2))[:, None, :], u.T, precision=hi)

    def floor_lstsq(a: jax.Array, b: jax.Array) -> jax.Array:
        u, s, vh = jnp.linalg.svd(a, full_matrices=False)
        cols = b[..., 0].T  # (n, rhs): one block
        return jnp.matmul(vh.T / s, jnp.matmul(u.T, cols, precision=hi), precision=hi).T[..., None]

    calls = {
        f"pinv(a, rtol=r), r: ({entries},)": (
            lambda a, r: jaxpinv.pinv(a, rtol=r),
            jax.vmap(lambda a, r: jaxpinv.pinv(a, rtol=r), in_axes=(None, 0)),
            floor_pinv,
            rtol,
        ),
        f"damped_pinv(a, lam), lam: ({entries},)": (
            jaxpinv.damped_pinv,
            jax.vmap(jaxpinv.damped_pinv, in_axes=(None, 0)),
            floor_damped,
            lam,
        ),
        f"lstsq(a, b), b: ({rhs}, {n}, 1)": (
            jaxpinv.lstsq,
            jax.vmap(jaxpinv.lstsq, in_axes=(None, 0)),
            floor_lstsq,
            b,
        ),
    }
    lines = [
        f"Machine: {describe_machine()}",
        "",
        f"**Broadcasting** ({n}×{n} float32; median ms; floor: one `jnp.linalg.svd` of `a` plus the per-entry "
        "products; vmap: the per-entry function under `jax.vmap`)",
        "",
        "| call | floor | jaxpinv | vmap | jaxpinv/floor | vmap/floor |",
        "|---|---|---|---|---|---|",
    ]
    for name, (ours, mapped, floor, x) in calls.items():
        fns = {"floor": jax.jit(floor), "jaxpinv": jax.jit(ours), "vmap": jax.jit(mapped)}
        t = median_times(
            {k: (lambda f=f: jax.block_until_ready(f(a, x))) for k, f in fns.items()},
            args.budget,
            args.min_rounds,
            args.max_rounds,
        )
        lines.append(
            f"| `{name}` | {fmt(t['floor'])} | {fmt(t['jaxpinv'])} | {fmt(t['vmap'])} | "
            f"{fmt(t['jaxpinv'] / t['floor'])} | {fmt(t['vmap'] / t['floor'])} |"
        )
    return "\n".join(lines)


def mixed(args: argparse.Namespace) -> str:
    """A batch with a few rank-deficient members against the all-full-rank batch (see the module docstring)."""
    batch, n = (8, 64) if args.quick else (32, 200)  # quick: still above the policy's threshold
    rng = np.random.default_rng(0)
    full = rng.standard_normal((batch, n, n)).astype(np.float32)
    b = jnp.asarray(rng.standard_normal((batch, n)), jnp.float32)

    def with_deficient(count: int) -> jax.Array:
        a = full.copy()
        for i in range(count):  # spread over the batch; the last tenth of the spectrum dropped
            j = i * (batch // 4) + 1
            u, s, vh = np.linalg.svd(a[j])
            s[-max(1, n // 10) :] = 0
            a[j] = (u * s) @ vh
        return jnp.asarray(a)

    def per_example(method: str) -> Callable[..., Any]:
        def loss(a: jax.Array, b: jax.Array) -> jax.Array:
            return jnp.sum(jaxpinv.lstsq(a, b, method=method) ** 2)

        return jax.grad(lambda a, b: jnp.sum(jax.vmap(loss)(a, b)))

    modes = {
        "pinv": lambda method: lambda a, b: jaxpinv.pinv(a, method=method),
        "lstsq": lambda method: lambda a, b: jaxpinv.lstsq(a, b, method=method),
        "grad of vmapped lstsq loss": per_example,
    }
    counts = (0, 1, 2, 4)
    inputs = {k: with_deficient(k) for k in counts}
    lines = [
        f"Machine: {describe_machine()}",
        "",
        f"**Mixed batches** ({batch}×{n}×{n} float32, k members rank-deficient; median ms; "
        "ratio: to the all-full-rank batch's time)",
        "",
        '| call | deficient | path | auto | ratio | `method="svd"` |',
        "|---|---|---|---|---|---|",
    ]
    for name, make in modes.items():
        fns = {(k, m): jax.jit(make(m)) for k in counts for m in ("auto", "svd")}
        t = median_times(
            {key: (lambda f=f, k=key[0]: jax.block_until_ready(f(inputs[k], b))) for key, f in fns.items()},
            args.budget,
            args.min_rounds,
            args.max_rounds,
        )
        for k in counts:
            path = path_taken(inputs[k])
            ratio = fmt(t[(k, "auto")] / t[(0, "auto")])
            lines.append(f"| {name} | {k} | {path} | {fmt(t[(k, 'auto')])} | {ratio} | {fmt(t[(k, 'svd')])} |")
    return "\n".join(lines)


REACH_SIZES = (2, 4, 8, 16, 32, 48, 64, 96, 128, 144, 145, 160, 192, 256, 384, 512, 768, 1024)


def reach(args: argparse.Namespace) -> str:
    """The fast path's reach by size at its promised condition (see the module docstring)."""
    eps = float(np.finfo(np.float32).eps)
    sizes = sorted([(k, 1 / (100 * k * eps)) for k in ((8, 64) if args.quick else REACH_SIZES)] + [(128, 1e3)])
    rng = np.random.default_rng(0)
    lines = [
        f"Machine: {describe_machine()}",
        "",
        "**Reach** (square float32, singular values log-spaced over [1/κ, 1], κ = 1/(100 k eps) unless said; "
        'median ms; path: what `method="auto"` / `method="qr"` took; ratios: to the floor `jnp.linalg.svd`)',
        "",
        '| k | κ | path auto / qr | floor | auto | `method="qr"` | `method="svd"` | auto/floor | qr/floor |',
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k, cond in sizes:
        a_np, _ = make_input(Case(f"{k}", (k, k), np.float32, cond=cond), rng)
        a = jnp.asarray(a_np)
        fns = {
            "floor": jax.jit(lambda x: jnp.linalg.svd(x, full_matrices=False)),
            **{m: jax.jit(lambda x, m=m: jaxpinv.pinv(x, method=m)) for m in ("auto", "qr", "svd")},
        }
        t = median_times(
            {name: (lambda f=f: jax.block_until_ready(f(a))) for name, f in fns.items()},
            args.budget,
            args.min_rounds,
            args.max_rounds,
        )
        paths = f"{path_taken(a)} / {path_taken(a, method='qr')}"
        lines.append(
            f"| {k} | {cond:.3g} | {paths} | {fmt(t['floor'])} | {fmt(t['auto'])} | {fmt(t['qr'])} | "
            f"{fmt(t['svd'])} | {fmt(t['auto'] / t['floor'])} | {fmt(t['qr'] / t['floor'])} |"
        )
    return "\n".join(lines)


HERMITIAN_CASES = ((64, np.float32), (145, np.float32), (200, np.float32), (512, np.float64), (1024, np.float32))


def hermitian(args: argparse.Namespace) -> str:
    """Hermitian positive definite input by size (see the module docstring)."""
    rng = np.random.default_rng(0)
    lines = [
        f"Machine: {describe_machine()}",
        "",
        "**Hermitian positive definite** (`hermitian=True`, `U diag(logspace(0, -2)) Uᵀ`; median ms; path: what "
        '`method="auto"` took; ratios: to the floor `jnp.linalg.eigh`)',
        "",
        '| k | dtype | path | floor | auto | `method="qr"` | `method="svd"` | auto/floor | qr/floor |',
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k, dtype in ((64, np.float32),) if args.quick else HERMITIAN_CASES:
        a_np, _ = make_input(Case(f"{k}", (k, k), dtype, "spd"), rng)
        a = jnp.asarray(a_np)
        fns = {
            "floor": jax.jit(jnp.linalg.eigh),
            **{m: jax.jit(lambda x, m=m: jaxpinv.pinv(x, hermitian=True, method=m)) for m in ("auto", "qr", "svd")},
        }
        t = median_times(
            {name: (lambda f=f: jax.block_until_ready(f(a))) for name, f in fns.items()},
            args.budget,
            args.min_rounds,
            args.max_rounds,
        )
        lines.append(
            f"| {k} | {np.dtype(dtype).name} | {path_taken(a, hermitian=True)} | {fmt(t['floor'])} | "
            f"{fmt(t['auto'])} | {fmt(t['qr'])} | {fmt(t['svd'])} | {fmt(t['auto'] / t['floor'])} | "
            f"{fmt(t['qr'] / t['floor'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny cases, a few rounds: a smoke test")
    parser.add_argument("--cases", default="", help="comma-separated substrings of case names to run")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timing per mode and case")
    parser.add_argument("--min-rounds", type=int, default=7)
    parser.add_argument("--max-rounds", type=int, default=51)
    parser.add_argument("--out", default="", help="also write the tables to this markdown file")
    parser.add_argument("--cores", default="1", help="CPU cores to pin to, or 'all' (default 1: repeatable)")
    parser.add_argument("--latency", action="store_true", help="compile time and first-call latency only")
    parser.add_argument("--broadcast", action="store_true", help="one matrix against many tolerances, b's")
    parser.add_argument("--mixed", action="store_true", help="a batch with a few rank-deficient members")
    parser.add_argument("--reach", action="store_true", help="the fast path's reach by size near its limit")
    parser.add_argument("--hermitian", action="store_true", help="Hermitian positive definite input by size")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.min_rounds, args.max_rounds = 0.0, 3, 3
    special = {"latency": latency, "broadcast": broadcast, "mixed": mixed, "reach": reach, "hermitian": hermitian}
    chosen = [f for name, f in special.items() if getattr(args, name)]
    if chosen:
        text = chosen[0](args)
        print(text)
        if args.out:
            with open(args.out, "w") as fh:
                fh.write(text + "\n")
        return 0
    cases = quick_cases() if args.quick else full_cases()
    if args.cases:
        wanted = [w.strip() for w in args.cases.split(",") if w.strip()]
        cases = [c for c in cases if any(w in f"{c.name} {np.dtype(c.dtype).name}" for w in wanted)]
    rng = np.random.default_rng(0)
    results = []
    for case in cases:
        t0 = time.perf_counter()
        results.append(run_case(case, args, rng))
        print(
            f"# {case.name} {np.dtype(case.dtype).name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True
        )
    text = tables(results)
    if not args.cases:
        text += "\n\n" + crossover(args, rng)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
