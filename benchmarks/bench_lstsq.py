"""Jacobians of least-squares solutions: jaxpinv.lstsq vs pinv(a) @ b vs jnp.linalg.lstsq.

    python benchmarks/bench_lstsq.py           # full run (a minute or two), one pinned core
    python benchmarks/bench_lstsq.py --quick   # seconds; CI's smoke test
    python benchmarks/bench_lstsq.py --big     # + jacfwd at 200x200 and 1000x50 (~11 GB, minutes)

``jax.jacrev`` and ``jax.jacfwd`` of ``x(a) = solve(a, b)`` with respect to
``a``, jitted, median of interleaved rounds after compilation (the same
harness as ``bench.py``). ``jacfwd`` with respect to a 200x200 ``a`` pushes
40,000 tangents of 40,000 entries each (6.4 GB of float32 for the basis
alone; 10 GB at 1000x50): ``pinv(a) @ b`` then asks XLA for 32 GB (40 GB at
1000x50), more than this 24 GB machine has, so forward-mode rows use smaller
matrices, and ``--big`` adds the 200x200 and 1000x50 rows without
``pinv(a) @ b`` and ``jnp.linalg.lstsq``.

The floor is the same Jacobian of the linear map ``a -> a^T b`` (same input
and output sizes): what ``jax.jacfwd`` pays to build and push its basis, and
``jax.jacrev`` its cotangents, before any linear algebra.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from bench import _CORES, describe_machine, fmt, median_times  # noqa: F401  (pins cores first)

import jaxpinv


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    cases = (
        [(20, 20, "jacrev"), (40, 8, "jacrev"), (12, 12, "jacfwd")]
        if quick
        else [(200, 200, "jacrev"), (1000, 50, "jacrev"), (60, 60, "jacfwd"), (300, 20, "jacfwd")]
    )
    if "--big" in argv:
        cases += [(200, 200, "jacfwd"), (1000, 50, "jacfwd")]
    rounds = (3, 3) if quick else (5, 21)
    rng = np.random.default_rng(0)
    lines = [
        f"Machine: {describe_machine()}",
        "",
        "**Jacobian of x = solve(a, b) w.r.t. a** (float32, b a vector; median ms)",
        "",
        "| a | mode | floor | jaxpinv.lstsq | pinv(a) @ b | jnp.linalg.lstsq | lstsq / floor "
        "| speed-up vs pinv @ b | vs jnp.lstsq |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, n, mode in cases:
        a = jnp.asarray(rng.standard_normal((m, n)), jnp.float32)
        b = jnp.asarray(rng.standard_normal(m), jnp.float32)
        jac = {"jacrev": jax.jacrev, "jacfwd": jax.jacfwd}[mode]
        fns = {
            "floor": jax.jit(jac(lambda a: a.T @ b)),
            "lstsq": jax.jit(jac(lambda a: jaxpinv.lstsq(a, b))),
            "pinv": jax.jit(jac(lambda a: jaxpinv.pinv(a) @ b)),
            "jnp": jax.jit(jac(lambda a: jnp.linalg.lstsq(a, b)[0])),
        }
        big = mode == "jacfwd" and m * n > 20_000  # the basis alone is m n x m n
        if big:
            del fns["pinv"], fns["jnp"]
        t = median_times({k: (lambda f=f: jax.block_until_ready(f(a))) for k, f in fns.items()}, 2.0, *rounds)
        if big:
            lines.append(
                f"| {m}x{n} | {mode} | {fmt(t['floor'])} | {fmt(t['lstsq'])} | out of memory | not run | "
                f"{fmt(t['lstsq'] / t['floor'])} | — | — |"
            )
            continue
        lines.append(
            f"| {m}x{n} | {mode} | {fmt(t['floor'])} | {fmt(t['lstsq'])} | {fmt(t['pinv'])} | {fmt(t['jnp'])} | "
            f"{fmt(t['lstsq'] / t['floor'])} | {fmt(t['pinv'] / t['lstsq'])}× | {fmt(t['jnp'] / t['lstsq'])}× |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
