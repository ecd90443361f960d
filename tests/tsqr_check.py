"""One matrix sharded over 8 devices: the checks behind ``tests/test_tsqr.py``.

Run in a fresh interpreter with 8 host devices and x64 (the test sets
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` and
``JAX_ENABLE_X64=1`` before JAX starts). ``python tests/tsqr_check.py GROUP``
runs one group of checks (``values``, ``derivatives``, ``other``,
``memory``), prints one line per check (``ok`` / ``BAD``) and exits non-zero
if any failed.

References are independent of the code under test: NumPy in float64
(``numpy.linalg.pinv``/``lstsq``/``matrix_rank`` with the same cutoff), and
the same function on the unsharded matrix (one device, no TSQR). Tolerances
are ``c * eps * kappa`` of the dtype and the matrix's condition number.
"""

from __future__ import annotations

import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxpinv
from jaxpinv.internal import path_taken

failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(("ok   " if ok else "BAD  ") + name + (f"  [{detail}]" if detail else ""), flush=True)
    if not ok:
        failures.append(name)


try:
    _reshard = jax.sharding.reshard
except AttributeError:
    from jax.experimental.shard import reshard as _reshard

EXPLICIT = (jax.sharding.AxisType.Explicit,)
MESH = jax.make_mesh((8,), ("rows",), axis_types=EXPLICIT)
ROWS = NamedSharding(MESH, P("rows", None))
COLS = NamedSharding(MESH, P(None, "rows"))
NEW_JAX = tuple(int(v) for v in jax.__version__.split(".")[:2]) >= (0, 7)
rng = np.random.default_rng(0)


def matrix(m: int, n: int, kappa: float, dtype: type = np.float64, rank: int | None = None) -> np.ndarray:
    """``U diag(s) V^T`` with log-spaced singular values from 1 to 1/kappa (zeros past ``rank``)."""
    k = min(m, n)
    u = np.linalg.qr(rng.standard_normal((m, k)))[0]
    v = np.linalg.qr(rng.standard_normal((n, k)))[0]
    s = np.logspace(0, -np.log10(kappa), k)
    if rank is not None:
        s[rank:] = 0
    return ((u * s) @ v.T).astype(dtype)


def spec(x: jax.Array) -> tuple:
    t = tuple(jax.typeof(x).sharding.spec)
    return t + (None,) * (x.ndim - len(t))


def rel(x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(x, np.float64) - ref)) / max(np.max(np.abs(ref)), 1e-300))


def collectives(fn, *args) -> list[tuple[str, tuple[int, ...]]]:
    """``(kind, shape)`` of every collective in the compiled program."""
    out = []
    for line in jax.jit(fn).lower(*args).compile().as_text().splitlines():
        found = re.search(
            r"=\s*\(?(\w+)\[([\d,]*)\][^=]*?\s(all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter)(-start)?\(",
            line,
        )
        if found:
            shape = tuple(int(d) for d in found.group(2).split(",") if d)
            out.append((found.group(3), shape))
    return out


def check_collectives(name: str, fn, args, m: int, limit: int) -> None:
    """No collective moves an array with a dimension of size ``m``; each moves at most ``limit`` entries."""
    found = collectives(fn, *args)
    big = [(k, s) for k, s in found if m in s or int(np.prod(s)) > limit]
    # (jax 0.6's partitioner adds collective-permutes of n x n pieces: small, allowed.)
    check(f"{name}: collectives O(p n^2), none of size m", bool(found) and not big, f"{found}")


def values() -> None:
    """pinv / lstsq / lstsq_full / matrix_rank of row-sharded tall matrices against NumPy and the unsharded call."""
    m, n = 512, 16
    eps = np.finfo(np.float64).eps
    for kappa in (1e2, 1e6):
        x = matrix(m, n, kappa)
        y = rng.standard_normal((m, 3))
        a, b = jax.device_put(x, ROWS), jax.device_put(y, ROWS)
        # A backward-stable pinv (QR + SVD) is accurate to ~ n eps kappa (relative): 8x headroom.
        tol = 8 * n * eps * kappa
        p = jax.jit(jaxpinv.pinv)(a)
        check(
            f"pinv κ={kappa:g}: vs NumPy",
            rel(p, np.linalg.pinv(x)) < tol,
            f"{rel(p, np.linalg.pinv(x)):.2e} < {tol:.1e}",
        )
        check(f"pinv κ={kappa:g}: columns sharded", spec(p) == (None, "rows"), f"{spec(p)}")
        p1 = jax.jit(jaxpinv.pinv)(jnp.asarray(x))
        check(f"pinv κ={kappa:g}: vs unsharded", rel(p, np.asarray(p1)) < tol, f"{rel(p, np.asarray(p1)):.2e}")
        sol = jax.jit(jaxpinv.lstsq)(a, b)
        ref = np.linalg.lstsq(x, y, rcond=None)[0]
        check(f"lstsq κ={kappa:g}: vs NumPy", rel(sol, ref) < tol, f"{rel(sol, ref):.2e}")
        check(f"lstsq κ={kappa:g}: x replicated", spec(sol) == (None, None), f"{spec(sol)}")
        vec = jax.jit(jaxpinv.lstsq)(a, jax.device_put(y[:, 0], NamedSharding(MESH, P("rows"))))
        check(f"lstsq κ={kappa:g}: vector b", rel(vec, ref[:, 0]) < tol, f"{rel(vec, ref[:, 0]):.2e}")
        full = jax.jit(jaxpinv.lstsq_full)(a, b)
        res_ref = np.sum((y - x @ ref) ** 2, axis=0)
        check(
            f"lstsq_full κ={kappa:g}: residuals, rank, singular values",
            rel(full.residuals, res_ref) < tol
            and int(full.rank) == n
            and rel(full.singular_values, np.linalg.svd(x, compute_uv=False)) < 20 * m * eps,
            f"res {rel(full.residuals, res_ref):.1e} rank {int(full.rank)}",
        )

        # accuracy of TSQR against the single-device QR path (both float64): Penrose residuals
        def penrose(pm: np.ndarray) -> float:
            pm = np.asarray(pm)
            return max(
                np.linalg.norm(x @ pm @ x - x) / np.linalg.norm(x),
                np.linalg.norm(pm @ x @ pm - pm) / np.linalg.norm(pm),
            )

        # (method="qr": at 512 x 16 "auto" leaves the QR path out, the static policy)
        e_tsqr, e_one = penrose(p), penrose(jax.jit(lambda a: jaxpinv.pinv(a, method="qr"))(jnp.asarray(x)))
        check(
            f"pinv κ={kappa:g}: TSQR accuracy within 2x of one device (Penrose residuals)",
            e_tsqr <= 2 * e_one + 10 * eps,
            f"TSQR {e_tsqr:.2e}, one device {e_one:.2e}",
        )
    # rank-deficient, with tolerances: the SVD's decision, as on one device
    x = matrix(m, n, 1e2, rank=10)
    a = jax.device_put(x, ROWS)
    r = jax.jit(jaxpinv.matrix_rank)(a)
    check("matrix_rank rank 10", int(r) == 10 == np.linalg.matrix_rank(x), f"{int(r)}")
    r = jax.jit(lambda a: jaxpinv.matrix_rank(a, atol=0.05))(a)
    s = np.linalg.svd(x, compute_uv=False)
    check("matrix_rank atol", int(r) == int(np.sum(s > 0.05)), f"{int(r)} vs {int(np.sum(s > 0.05))}")
    p = jax.jit(lambda a: jaxpinv.pinv(a, rtol=0.05))(a)
    ref = np.linalg.pinv(x, rcond=0.05)
    check("pinv rtol, rank-deficient", rel(p, ref) < 1e-10, f"{rel(p, ref):.2e}")
    # a non-finite entry on one device makes the whole result NaN (as unsharded)
    bad = x.copy()
    bad[300, 2] = np.inf
    p = jax.jit(jaxpinv.pinv)(jax.device_put(bad, ROWS))
    check(
        "Inf entry: all-NaN pinv, rank -1",
        bool(np.all(np.isnan(p))) and int(jax.jit(jaxpinv.matrix_rank)(jax.device_put(bad, ROWS))) == -1,
    )
    # wide, sharded along its columns: the adjoint case
    x = matrix(n, m, 1e2)
    p = jax.jit(jaxpinv.pinv)(jax.device_put(x, COLS))
    check("wide, columns sharded: vs NumPy", rel(p, np.linalg.pinv(x)) < 1e-10, f"{rel(p, np.linalg.pinv(x)):.2e}")
    check("wide, columns sharded: result rows sharded", spec(p) == ("rows", None), f"{spec(p)}")
    # a batch of row-sharded matrices, batched call and the per-matrix function under vmap
    xs = np.stack([matrix(m, n, 1e2) for _ in range(3)])
    a = jax.device_put(xs, NamedSharding(MESH, P(None, "rows", None)))
    ref = np.linalg.pinv(xs)
    for tag, fn in (("batched", jaxpinv.pinv), ("vmap", jax.vmap(jaxpinv.pinv))):
        p = jax.jit(fn)(a)
        check(
            f"batch of 3, {tag}: vs NumPy, sharded",
            rel(p, ref) < 1e-10 and spec(p) == (None, None, "rows"),
            f"{rel(p, ref):.1e} {spec(p)}",
        )
    # a 2-D mesh: the batch over one axis, the rows over the other; batched, vmap, grad(vmap)
    mesh2 = jax.make_mesh((2, 4), ("b", "r"), axis_types=EXPLICIT * 2)
    xs = np.stack([matrix(m, n, 1e2) for _ in range(4)])
    a = jax.device_put(xs, NamedSharding(mesh2, P("b", "r", None)))
    ref = np.linalg.pinv(xs)
    for tag, fn in (("batched", jaxpinv.pinv), ("vmap", jax.vmap(jaxpinv.pinv))):
        p = jax.jit(fn)(a)
        check(
            f"2-D mesh (batch x rows), {tag}: vs NumPy, sharded",
            rel(p, ref) < 1e-10 and spec(p) == ("b", None, "r"),
            f"{rel(p, ref):.1e} {spec(p)}",
        )
        check_collectives(f"2-D mesh, {tag}", fn, (a,), m, 4 * 8 * n * n)
    g = jax.jit(jax.grad(lambda a: jnp.sum(jax.vmap(jaxpinv.pinv)(a) ** 2)))(a)
    g1 = jax.jit(jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a) ** 2)))(jnp.asarray(xs))
    check(
        "2-D mesh, grad(vmap): vs unsharded, sharded like a",
        rel(g, np.asarray(g1)) < 1e-10 and spec(g) == ("b", "r", None),
        f"{rel(g, np.asarray(g1)):.1e} {spec(g)}",
    )
    # the compiled programs: nothing of size m moves
    a, b = jax.device_put(matrix(m, n, 1e2), ROWS), jax.device_put(rng.standard_normal((m, 2)), ROWS)
    limit = 8 * n * n
    check_collectives("pinv", jaxpinv.pinv, (a,), m, limit)
    check_collectives("lstsq", jaxpinv.lstsq, (a, b), m, limit)
    check_collectives("matrix_rank", jaxpinv.matrix_rank, (a,), m, limit)
    check_collectives("grad pinv", jax.grad(lambda a: jnp.sum(jnp.sin(jaxpinv.pinv(a)))), (a,), m, limit)
    check_collectives(
        "grad lstsq", jax.grad(lambda a, b: jnp.sum(jaxpinv.lstsq(a, b) ** 2), argnums=(0, 1)), (a, b), m, limit
    )


def readme() -> None:
    """The TSQR snippet of the docs' "Scaling out" page (its second python block) runs as printed, with the shardings it states."""
    import pathlib

    section = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "topics" / "scaling-out.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    ns: dict = {"X": matrix(1024, 16, 1e2), "y": rng.standard_normal((1024, 2))}
    exec("import jax, jax.numpy as jnp, jaxpinv\n" + blocks[1], ns)
    check(
        "docs snippet: beta replicated, P sharded along its columns, g like X",
        spec(ns["beta"]) == (None, None) and spec(ns["P"]) == (None, "rows") and spec(ns["g"]) == ("rows", None),
        f"{spec(ns['beta'])} {spec(ns['P'])} {spec(ns['g'])}",
    )
    ref = np.linalg.lstsq(np.asarray(ns["X"]), np.asarray(ns["y"]), rcond=None)[0]
    check("docs snippet: beta vs NumPy", rel(ns["beta"], ref) < 1e-10, f"{rel(ns['beta'], ref):.1e}")


def derivatives() -> None:
    """grad / jvp / jacrev of pinv and lstsq with respect to a row-sharded a (and b): equal to unsharded, sharded like the input."""
    m, n = 128, 8
    x = matrix(m, n, 1e2)
    y = rng.standard_normal((m, 2))
    a, b = jax.device_put(x, ROWS), jax.device_put(y, ROWS)
    c = rng.standard_normal((n, m))
    tol = 1e-10

    def loss_p(a):
        return jnp.sum(jnp.sin(jaxpinv.pinv(a)) * c)

    def loss_x(a, b):
        return jnp.sum(jaxpinv.lstsq(a, b) ** 2)

    def loss_full(a, b):
        return jnp.sum(jaxpinv.lstsq_full(a, b).residuals)

    cases = [
        ("grad pinv", jax.grad(loss_p), (a,), (jnp.asarray(x),)),
        ("grad lstsq (a, b)", jax.grad(loss_x, argnums=(0, 1)), (a, b), (jnp.asarray(x), jnp.asarray(y))),
        ("grad lstsq_full residuals", jax.grad(loss_full, argnums=(0, 1)), (a, b), (jnp.asarray(x), jnp.asarray(y))),
        ("jvp pinv", lambda a: jax.jvp(jaxpinv.pinv, (a,), (a * 0.5,))[1], (a,), (jnp.asarray(x),)),
        (
            "jvp lstsq",
            lambda a, b: jax.jvp(jaxpinv.lstsq, (a, b), (a * 0.5, b))[1],
            (a, b),
            (jnp.asarray(x), jnp.asarray(y)),
        ),
        ("jacrev pinv", jax.jacrev(jaxpinv.pinv), (a,), (jnp.asarray(x),)),
        ("jacrev lstsq", jax.jacrev(jaxpinv.lstsq), (a, b), (jnp.asarray(x), jnp.asarray(y))),
        (
            "grad(vmap(pinv)) of a batch",
            jax.grad(lambda a: jnp.sum(jnp.sin(jax.vmap(jaxpinv.pinv)(a)))),
            (jax.device_put(np.stack([x, 2 * x]), NamedSharding(MESH, P(None, "rows", None))),),
            (jnp.asarray(np.stack([x, 2 * x])),),
        ),
    ]
    for name, fn, sharded_args, plain_args in cases:
        got = jax.jit(fn)(*sharded_args)
        want = jax.jit(fn)(*plain_args)
        errs = [rel(g, np.asarray(w)) for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want))]
        check(f"{name}: equals unsharded", max(errs) < tol, f"{max(errs):.1e}")
        if name.startswith("grad"):
            specs = [spec(g) for g in jax.tree.leaves(got)]
            wanted = [spec(s) for s in sharded_args]
            check(f"{name}: cotangent sharded like the input", specs == wanted, f"{specs} vs {wanted}")
    # central differences on the sharded matrix (order 1, both modes)
    from jax.test_util import check_grads

    try:
        check_grads(lambda a: jaxpinv.pinv(a), (a,), order=1, modes=("fwd", "rev"), eps=1e-6)
        check_grads(lambda a, b: jaxpinv.lstsq(a, b), (a, b), order=1, modes=("fwd", "rev"), eps=1e-6)
        check("pinv, lstsq: check_grads (central differences) on sharded input", True)
    except AssertionError as err:
        check("pinv, lstsq: check_grads (central differences) on sharded input", False, str(err)[:300])


def other() -> None:
    """Every other sharding works (gathered): values against NumPy, no crash."""
    mesh2 = jax.make_mesh((4, 2), ("r", "c"), axis_types=EXPLICIT * 2)
    x = matrix(64, 8, 1e2)
    cases = [
        ("both dimensions sharded", x, NamedSharding(mesh2, P("r", "c"))),
        ("tall, columns sharded", matrix(64, 16, 1e2), COLS),
        ("square, rows sharded", matrix(16, 16, 1e2), ROWS),
        ("local blocks short (m/p < n)", matrix(64, 16, 1e2), ROWS),
        ("uneven rows (m % p != 0)", matrix(60, 4, 1e2), ROWS),
    ]
    for name, xm, sharding in cases:
        try:
            a = jax.device_put(xm, sharding)
        except Exception as err:  # an uneven sharding device_put refuses is not ours to handle
            check(f"{name}: (device_put refuses)", True, type(err).__name__)
            continue
        p = jax.jit(jaxpinv.pinv)(a)
        g = jax.jit(jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a) ** 2)))(a)
        g1 = jax.jit(jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a) ** 2)))(jnp.asarray(xm))
        check(
            f"{name}: pinv vs NumPy, grad vs unsharded",
            rel(p, np.linalg.pinv(xm)) < 1e-10 and rel(g, np.asarray(g1)) < 1e-10,
            f"{rel(p, np.linalg.pinv(xm)):.1e} {rel(g, np.asarray(g1)):.1e}",
        )
    sq = matrix(16, 16, 1e2)
    sym = (sq + sq.T) / 2
    p = jax.jit(lambda a: jaxpinv.pinv(a, hermitian=True))(jax.device_put(sym, ROWS))
    check("hermitian, rows sharded", rel(p, np.linalg.pinv(sym)) < 1e-10, f"{rel(p, np.linalg.pinv(sym)):.1e}")
    r = jax.jit(jaxpinv.matrix_rank)(jax.device_put(x, NamedSharding(mesh2, P("r", "c"))))
    check("matrix_rank, both dimensions sharded", int(r) == 8)
    d = jax.jit(lambda a: jaxpinv.damped_pinv(a, 0.1))(jax.device_put(x, ROWS))
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    check("damped_pinv, rows sharded", rel(d, (vt.T * (s / (s**2 + 0.01))) @ u.T) < 1e-10)
    y = rng.standard_normal((64, 2))
    b = jax.device_put(y, ROWS)
    ref = np.linalg.lstsq(x, y, rcond=None)[0]
    for name, a in (
        ("replicated on the mesh", jax.device_put(x, NamedSharding(MESH, P()))),
        ("without a mesh", jnp.asarray(x)),
    ):
        sol = jax.jit(jaxpinv.lstsq)(a, b)
        check(f"lstsq, b sharded, a {name}", rel(sol, ref) < 1e-10, f"{rel(sol, ref):.1e}")
        if NEW_JAX or "without" not in name:  # jax 0.6 cannot transpose the placement of a mesh-less a
            g = jax.jit(jax.grad(lambda a, b: jnp.sum(jaxpinv.lstsq(a, b) ** 2), argnums=(0, 1)))(a, b)
            g1 = jax.grad(lambda a, b: jnp.sum(jaxpinv.lstsq(a, b) ** 2), argnums=(0, 1))(
                jnp.asarray(x), jnp.asarray(y)
            )
            check(f"lstsq grad, b sharded, a {name}", max(rel(u, np.asarray(v)) for u, v in zip(g, g1)) < 1e-10)
    xs = np.stack([matrix(5, 4, 1e2) for _ in range(8)])
    tol = np.full(8, 1e-3)
    p = jax.jit(lambda a, t: jaxpinv.pinv(a, atol=t))(
        jax.device_put(xs, ROWS), jax.device_put(tol, NamedSharding(MESH, P("rows")))
    )
    check("sharded tolerance array", rel(p, np.linalg.pinv(xs)) < 1e-10 and spec(p)[0] == "rows", f"{spec(p)}")


def layouts() -> None:
    """Batch and rows sharded over a 2-D mesh (the products name either operand's batch sharding), a mesh-less
    a with a batch-sharded b, and lstsq of a wide matrix sharded along its columns (b replicated)."""
    mesh_x = jax.make_mesh((8,), ("x",), axis_types=EXPLICIT)
    x16 = matrix(16, 4, 1e2)
    b8 = jax.device_put(np.ones((8, 16, 1)), NamedSharding(mesh_x, P("x")))
    sol = jax.jit(jaxpinv.lstsq)(jnp.asarray(x16), b8)
    check("b sharded along its batch, a without a mesh", rel(sol, np.linalg.pinv(x16) @ np.ones((8, 16, 1))) < 1e-10)
    x = matrix(64, 4, 1e2)
    sol = jax.jit(jaxpinv.lstsq)(jax.device_put(x.T, COLS), jnp.ones(4))
    check("wide, columns sharded: lstsq", rel(sol, np.linalg.pinv(x.T) @ np.ones(4)) < 1e-10)
    mesh2 = jax.make_mesh((2, 4), ("b", "r"), axis_types=EXPLICIT * 2)
    x128 = matrix(128, 8, 1e2)
    sol = jax.jit(jaxpinv.lstsq)(
        jax.device_put(x128, NamedSharding(mesh2, P("r", None))),
        jax.device_put(np.ones((2, 128, 1)), NamedSharding(mesh2, P("b"))),
    )
    check(
        "2-D mesh: a rows, b batch",
        rel(sol, np.broadcast_to(np.linalg.pinv(x128) @ np.ones((128, 1)), (2, 8, 1))) < 1e-10,
    )
    a3 = jax.device_put(np.stack([x128, 2 * x128]), NamedSharding(mesh2, P("b", "r", None)))
    sol = jax.jit(jaxpinv.lstsq)(a3, jax.device_put(np.ones(128), NamedSharding(mesh2, P("r"))))
    check(
        "batch of row-sharded a, one shared b",
        rel(sol, np.linalg.pinv(np.stack([x128, 2 * x128])) @ np.ones(128)) < 1e-10,
    )
    # A batch sharded along its batch axis is not split (the gather would move members between
    # devices): one rank-deficient member of 16 sends the whole batch to the SVD, each value right.
    batch = np.stack([matrix(32, 32, 1e2) for _ in range(16)])
    batch[5] = matrix(32, 32, 1e2, rank=30)
    placed = jax.device_put(batch, NamedSharding(mesh_x, P("x")))
    sol = jax.jit(jaxpinv.pinv)(placed)
    paths = (path_taken(batch), path_taken(placed))  # unsharded, it is split
    check(
        "batch-sharded mixed batch: not split, values",
        paths == ("qr+svd", "svd") and rel(sol, np.linalg.pinv(batch, rcond=1e-10)) < 1e-10,
        str(paths),
    )


def edges() -> None:
    """What a hostile review found: damped derivatives, batch shardings that differ between a, b and the
    tolerances, a mesh-less b, and jaxpinv inside a user's shard_map (values against NumPy / unsharded)."""
    x = matrix(64, 4, 1e2)
    a = jax.device_put(x, ROWS)
    for name, fn in (
        ("damped_pinv grad, rows sharded", lambda a: jnp.sum(jaxpinv.damped_pinv(a, 0.1) ** 2)),
        ("damped_pinv grad at damping 0", lambda a: jnp.sum(jaxpinv.damped_pinv(a, 0.0) ** 2)),
        ("lstsq(damping) grad", lambda a: jnp.sum(jaxpinv.lstsq(a, jnp.ones((64, 2)), damping=0.1) ** 2)),
    ):
        g = jax.jit(jax.grad(fn))(a)
        g1 = jax.jit(jax.grad(fn))(jnp.asarray(x))
        check(f"{name}: vs unsharded, sharded like a", rel(g, np.asarray(g1)) < 1e-10 and spec(g) == ("rows", None))
    g = jax.jit(jax.grad(lambda a: jnp.sum(jaxpinv.damped_pinv(a, 0.1) ** 2)))(jax.device_put(x.T, COLS))
    g1 = jax.grad(lambda a: jnp.sum(jaxpinv.damped_pinv(a, 0.1) ** 2))(jnp.asarray(x.T))
    check("damped_pinv grad, wide, columns sharded", rel(g, np.asarray(g1)) < 1e-10)
    # a tolerance or b sharded along a batch dimension that a (broadcast) does not have
    mesh_x = jax.make_mesh((8,), ("x",), axis_types=EXPLICIT)
    x16 = matrix(16, 4, 1e2)
    tol = jax.device_put(np.full(8, 1e-3), NamedSharding(mesh_x, P("x")))
    b8 = jax.device_put(np.ones((8, 16, 1)), NamedSharding(mesh_x, P("x")))
    ref_p = np.broadcast_to(np.linalg.pinv(x16), (8, 4, 16))
    for tag, a16 in (
        ("replicated on the mesh", jax.device_put(x16, NamedSharding(mesh_x, P()))),
        ("without a mesh", jnp.asarray(x16)),
    ):
        p = jax.jit(lambda a, t: jaxpinv.pinv(a, atol=t))(a16, tol)
        check(f"sharded atol array, a {tag}", rel(p, ref_p) < 1e-10 and spec(p)[0] == "x", f"{spec(p)}")
        d = jax.jit(lambda a, t: jaxpinv.damped_pinv(a, t))(a16, tol)
        check(f"sharded damping array, a {tag}", d.shape == (8, 4, 16))
        sol = jax.jit(jaxpinv.lstsq)(a16, b8)
        check(f"b sharded along its batch, a {tag}", rel(sol, ref_p @ np.ones((8, 16, 1))) < 1e-10)
    sol = jax.jit(jaxpinv.lstsq)(a, jax.device_put(np.ones((8, 64, 2)), ROWS))  # b's batch on a's row axis
    check(
        "b's batch sharded on a's row axis",
        rel(sol, np.broadcast_to(np.linalg.pinv(x) @ np.ones((64, 2)), (8, 4, 2))) < 1e-10,
    )
    g = jax.jit(jax.grad(lambda a: jnp.sum(jaxpinv.lstsq(a, jnp.ones(4)) ** 2)))(jax.device_put(x.T, COLS))
    g1 = jax.grad(lambda a: jnp.sum(jaxpinv.lstsq(a, jnp.ones(4)) ** 2))(jnp.asarray(x.T))
    check("wide, columns sharded, b without a mesh: grad", rel(g, np.asarray(g1)) < 1e-10)
    # jaxpinv inside a user's shard_map (a batch split by hand), every path incl. the power method
    mesh_b = jax.make_mesh((8,), ("b",))
    for shape in ((8, 6, 3), (8, 3, 6), (8, 4, 4), (8, 200, 150)):
        xs = rng.standard_normal(shape)
        ab = jax.device_put(xs, NamedSharding(mesh_b, P("b")))
        for name, fn in (("pinv", jaxpinv.pinv), ("grad", jax.grad(lambda a: jnp.sum(jaxpinv.pinv(a) ** 2)))):
            out = jax.jit(jax.shard_map(fn, mesh=mesh_b, in_specs=P("b"), out_specs=P("b")))(ab)
            check(f"inside shard_map: {name} {shape}", rel(out, np.asarray(jax.jit(fn)(jnp.asarray(xs)))) < 1e-10)


def auto() -> None:
    """Issue 22 #7: an eager call on Auto mesh axes factors a row-sharded matrix in place too."""
    import io
    import logging
    import warnings

    auto_mesh = jax.make_mesh((8,), ("rows",), axis_types=(jax.sharding.AxisType.Auto,))
    rows = NamedSharding(auto_mesh, P("rows", None))
    m, n = 512, 16
    x, y = matrix(m, n, 1e2), rng.standard_normal((m, 2))
    a, b = jax.device_put(x, rows), jax.device_put(y, rows)
    tol = 8 * n * np.finfo(np.float64).eps * 1e2  # backward stable: n eps kappa, 8x headroom
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("jax").addHandler(handler)
    jax.config.update("jax_log_compiles", True)
    try:
        p = jaxpinv.pinv(a)
    finally:
        jax.config.update("jax_log_compiles", False)
        logging.getLogger("jax").removeHandler(handler)
    compiled = [line for line in log.getvalue().splitlines() if "Compiling" in line and "_pinv_impl" in line]
    check(
        "eager pinv, Auto axes: the program sees the row sharding (TSQR)",
        bool(compiled) and all(f"{m}@rows" in line for line in compiled),
        compiled[0][:120] if compiled else "no compile logged",
    )
    check("eager pinv, Auto axes: vs NumPy", rel(p, np.linalg.pinv(x)) < tol, f"{rel(p, np.linalg.pinv(x)):.1e}")
    check(
        "eager pinv, Auto axes: result back on the Auto mesh, columns sharded",
        p.sharding.mesh == auto_mesh and tuple(p.sharding.spec) == (None, "rows"),
        f"{p.sharding}",
    )
    sol = jaxpinv.lstsq(a, b)
    check(
        "eager lstsq, Auto axes: vs NumPy",
        rel(sol, np.linalg.pinv(x) @ y) < tol,
        f"{rel(sol, np.linalg.pinv(x) @ y):.1e}",
    )
    sol = jaxpinv.lstsq(a, y)  # b a NumPy array, on no mesh: it stays so
    check("eager lstsq, Auto axes, b without a mesh", rel(sol, np.linalg.pinv(x) @ y) < tol)
    vec = jaxpinv.lstsq(a, jax.device_put(y[:, 0], NamedSharding(auto_mesh, P("rows"))))  # a vector b, rows sharded
    check("eager lstsq, Auto axes, vector b", rel(vec, np.linalg.pinv(x) @ y[:, 0]) < tol)
    full = jaxpinv.lstsq_full(a, b)
    check("eager lstsq_full and matrix_rank, Auto axes", int(full.rank) == n and int(jaxpinv.matrix_rank(a)) == n)
    check("jit(pinv), Auto axes (gathered by XLA): vs NumPy", rel(jax.jit(jaxpinv.pinv)(a), np.linalg.pinv(x)) < tol)
    # What TSQR cannot factor in place (a square matrix's rows) is gathered, with a warning saying so.
    sq = matrix(64, 64, 1e2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p_sq = jaxpinv.pinv(jax.device_put(sq, rows))
    check(
        "eager pinv, Auto axes, square rows: a warning, then the right value",
        any("gathered whole" in str(w.message) and "pinv" in str(w.message) for w in caught)
        and rel(p_sq, np.linalg.pinv(sq)) < 8 * 64 * np.finfo(np.float64).eps * 1e2,
        f"{[str(w.message)[:60] for w in caught]}",
    )
    # The program an eager call compiles is the Explicit one: 200000 x 64 float32 moves no m-sized array.
    twin = jax.sharding.Mesh(auto_mesh.devices, ("rows",), axis_types=EXPLICIT)
    big = jax.ShapeDtypeStruct((200_000, 64), jnp.float32, sharding=NamedSharding(twin, P("rows", None)))
    check_collectives("pinv 200000 x 64 on the Explicit twin", jaxpinv.pinv, (big,), 200_000, 8 * 64 * 64)


def memory() -> None:
    """Peak memory per device, m = 2e6, n = 64, float32, 8 devices: TSQR against gathering the matrix (compiled only)."""
    m, n = 2_000_000, 64
    a = jax.ShapeDtypeStruct((m, n), jnp.float32, sharding=ROWS)
    b = jax.ShapeDtypeStruct((m, 1), jnp.float32, sharding=ROWS)

    def peak(fn, *args) -> int:
        mem = jax.jit(fn).lower(*args).compile().memory_analysis()
        return mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes - mem.alias_size_in_bytes

    def gathered(f):
        return lambda a, *rest: f(_reshard(a, NamedSharding(MESH, P())), *rest)

    for name, fn, args in (("pinv", jaxpinv.pinv, (a,)), ("lstsq", jaxpinv.lstsq, (a, b))):
        ours, theirs = peak(fn, *args), peak(gathered(fn), *args)
        check(
            f"{name} m=2e6 n=64 f32: peak per device <= 0.25x gathering",
            ours <= 0.25 * theirs,
            f"{ours / 2**20:.0f} MiB against {theirs / 2**20:.0f} MiB ({ours / theirs:.2f}x)",
        )


if __name__ == "__main__":
    print("jax", jax.__version__, "devices", len(jax.devices()), "x64", jax.config.jax_enable_x64, flush=True)
    if len(jax.devices()) != 8 or not jax.config.jax_enable_x64:
        print("BAD  setup: need 8 devices and x64", flush=True)
        sys.exit(2)
    for group in sys.argv[1:] or ["values", "layouts", "readme", "derivatives", "other", "edges", "memory", "auto"]:
        print(f"--- {group}", flush=True)
        globals()[group]()
    print(f"{len(failures)} failed: {failures}" if failures else "all checks passed", flush=True)
    sys.exit(1 if failures else 0)
