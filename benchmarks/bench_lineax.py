"""Full-rank least squares against lineax's solvers: jaxpinv.lstsq vs lineax QR / SVD vs jnp.linalg.lstsq.

    python benchmarks/bench_lineax.py           # a minute or two, one pinned core
    python benchmarks/bench_lineax.py --quick   # seconds

lineax is an optional peer (``pip install lineax``; not a dependency of
jaxpinv): without it its columns are left out. ``lx.QR()`` has no cutoff and no
rank check; ``jaxpinv.lstsq`` keeps ``pinv``'s semantics (the SVD's cutoff)
and decides per batch whether the QR may stand for the SVD. Float32,
Gaussian full-rank input, ``b`` one column; the forward, ``grad`` of
``sum(x**2)`` with respect to ``a``, ``jax.jacrev`` with respect to ``a``, and
the gradient of a ``vmap``-ped per-example loss. Median ms of interleaved
rounds after compilation (``bench.median_times``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from bench import _CORES, describe_machine, fmt, median_times  # noqa: F401  (pins cores first)

import jaxpinv

try:  # an optional peer
    import lineax as lx
except ImportError:  # pragma: no cover
    lx = None


def solvers() -> dict[str, Callable[[jax.Array, jax.Array], jax.Array]]:
    """``solve(a, b)`` for one matrix and one right-hand side, per library."""
    out: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
        "jaxpinv": jaxpinv.lstsq,
        "jnp": lambda a, b: jnp.linalg.lstsq(a, b)[0],
    }
    if lx is not None:
        out["lineax QR"] = lambda a, b: lx.linear_solve(lx.MatrixLinearOperator(a), b, solver=lx.QR()).value
        out["lineax SVD"] = lambda a, b: lx.linear_solve(lx.MatrixLinearOperator(a), b, solver=lx.SVD()).value
    return out


def modes(solve: Callable[[jax.Array, jax.Array], jax.Array]) -> dict[str, Callable[..., Any]]:
    def loss(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.sum(solve(a, b) ** 2)

    def batch_loss(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.sum(jax.vmap(loss)(a, b))

    return {
        "forward": jax.jit(solve),
        "grad": jax.jit(jax.grad(loss)),
        "jacrev": jax.jit(jax.jacrev(solve)),
        "grad of vmap": jax.jit(jax.grad(batch_loss)),
    }


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    cases = (
        [((16, 16), ("forward", "grad", "jacrev")), ((4, 16, 16), ("grad of vmap",))]
        if quick
        else [
            ((200, 200), ("forward", "grad", "jacrev")),
            ((32, 200, 200), ("grad of vmap",)),
            ((1000, 50), ("forward", "grad")),
            ((64, 64), ("forward", "grad")),
            ((512, 256), ("forward", "grad")),  # above the QR path's SMALL: the rule on the factors
        ]
    )
    budget, rounds = (0.0, 3) if quick else (2.0, 7)
    rng = np.random.default_rng(0)
    libs = solvers()
    names = list(libs)
    print(f"Machine: {describe_machine()}\n")
    print("| case | mode | " + " | ".join(names) + " | jaxpinv / lineax QR |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for shape, wanted in cases:
        a = jnp.asarray(rng.standard_normal(shape), jnp.float32)
        b = jnp.asarray(rng.standard_normal(shape[:-1]), jnp.float32)
        for mode in wanted:
            fns = {name: modes(f)[mode] for name, f in libs.items()}
            t = median_times(
                {k: (lambda f=f: jax.block_until_ready(f(a, b))) for k, f in fns.items()}, budget, rounds, 51
            )
            ratio = fmt(t["jaxpinv"] / t["lineax QR"]) if "lineax QR" in t else "-"
            name = "x".join(map(str, shape))
            print(f"| {name} | {mode} | " + " | ".join(fmt(t[k]) for k in names) + f" | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
