"""Sharded ``jit``: batches sharded over their leading axis stay sharded.

``pinv`` (general and ``hermitian=True``), its gradient, and ``matrix_rank``
are run under ``jax.jit`` on a batch sharded over 8 virtual CPU devices. For
each we check that the output keeps the input's sharding, that the values
match NumPy (and the gradient the unsharded gradient), and that the compiled
HLO moves no data between devices: no ``all-gather`` and no ``all-to-all``,
and every LAPACK custom call works on the local shard (2 matrices), not on
the whole batch (16).

The device count is an XLA flag that must be set before JAX initialises its
backends, so the checks run in a fresh interpreter; the script prints one line
per check and exits non-zero if any fails, and the test shows its output.
Both axis types are covered: ``jax.make_mesh``'s default (``Explicit`` in
current JAX, where shardings are part of the types) and ``Auto`` (where the
XLA partitioner propagates them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SCRIPT = r'''
import re
import sys

import numpy as np
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

import jaxpinv
import jaxpinv.internal

failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "BAD  ") + name + (f"  [{detail}]" if detail else ""), flush=True)
    if not ok:
        failures.append(name)


print("jax", jax.__version__, "x64", jax.config.jax_enable_x64, "devices", jax.devices(), flush=True)
if len(jax.devices()) != 8 or jax.default_backend() != "cpu" or not jax.config.jax_enable_x64:
    print("BAD  setup: need 8 CPU devices and x64", flush=True)
    sys.exit(2)

B = 16
rng = np.random.default_rng(0)


def spec_tuple(spec, ndim):
    """A PartitionSpec as a tuple padded with None to ndim (P('x') == P('x', None))."""
    t = tuple(spec)
    return t + (None,) * (ndim - len(t))


def check_sharding(name, out, sharding):
    got, want = spec_tuple(out.sharding.spec, out.ndim), spec_tuple(sharding.spec, out.ndim)
    equiv = out.sharding.is_equivalent_to(sharding, out.ndim)
    check(f"{name}: output sharding", equiv and got == want, f"got {got}, want {want}, equivalent={equiv}")


def check_hlo(name, fn, *args):
    txt = fn.lower(*args).compile().as_text()
    found = [op for op in ("all-gather", "all-to-all") if op in txt]
    others = sorted(set(re.findall(r"\b(all-reduce|collective-permute|reduce-scatter)\b", txt)))
    check(f"{name}: no all-gather / all-to-all in HLO", not found, f"found {found}; other collectives {others}")
    lapack = [line.strip() for line in txt.splitlines() if 'custom_call_target="lapack' in line]
    global_batch = [line for line in lapack if re.search(rf"\[{B},", line.split("custom-call(")[0])]
    check(
        f"{name}: LAPACK calls on local shards",
        bool(lapack) and not global_batch,
        f"{len(lapack)} LAPACK custom call(s), {len(global_batch)} on the global batch"
        + (f": {global_batch[0][:200]}" if global_batch else ""),
    )


def close(name, got, want, rtol=1e-9):
    got, want = np.asarray(got), np.asarray(want)
    scale = max(np.max(np.abs(want)), 1e-300)
    err = np.max(np.abs(got - want)) / scale
    check(name, got.shape == want.shape and bool(np.all(np.isfinite(got))) and err <= rtol,
          f"shape {got.shape} vs {want.shape}, max rel err {err:.2e} <= {rtol:.0e}")


def sym_from_lower(a):
    """The symmetric matrices whose lower triangles are those of a (what hermitian=True reads)."""
    low = np.tril(a)
    return low + np.swapaxes(np.tril(a, -1), -1, -2)


def run_pinv_case(tag, sharding, shape, hermitian, definite=False):
    name = f"{tag} pinv hermitian={hermitian}{' definite' if definite else ''} {shape}"
    a_np = rng.standard_normal(shape)
    if definite:  # G G^T / k + I: the Cholesky path (above 144: its blocked inverse)
        a_np = a_np @ np.swapaxes(a_np, -1, -2) / shape[-1] + np.eye(shape[-1])
        check(f"{name}: path", jaxpinv.internal.path_taken(a_np, hermitian=True) == "cholesky")
    a = jax.device_put(a_np, sharding)
    check(f"{name}: input sharding", spec_tuple(a.sharding.spec, 3) == ("batch", None, None), str(a.sharding.spec))

    fwd = jax.jit(lambda x: jaxpinv.pinv(x, hermitian=hermitian))
    out = fwd(a)
    check_sharding(f"{name} forward", out, sharding)
    ref = np.linalg.pinv(sym_from_lower(a_np), hermitian=True) if hermitian else np.linalg.pinv(a_np)
    close(f"{name} forward: values vs numpy.linalg.pinv", out, ref)
    check_hlo(f"{name} forward", fwd, a)

    c = rng.standard_normal(shape[:-2] + shape[:-3:-1])
    grad = jax.jit(jax.grad(lambda x: jnp.sum(jaxpinv.pinv(x, hermitian=hermitian) * c)))
    g = grad(a)
    check_sharding(f"{name} grad", g, sharding)
    g_ref = jax.jit(jax.grad(lambda x: jnp.sum(jaxpinv.pinv(x, hermitian=hermitian) * c)))(
        jax.device_put(a_np, jax.devices()[0])
    )
    check(f"{name} grad: unsharded reference is on one device", len(g_ref.sharding.device_set) == 1)
    close(f"{name} grad: finite, matches unsharded gradient", g, g_ref)
    check_hlo(f"{name} grad", grad, a)


def run_rank_case(tag, sharding):
    name = f"{tag} matrix_rank (16, 5, 3)"
    ranks = np.arange(B) % 4
    a_np = np.stack([
        rng.standard_normal((5, r)) @ rng.standard_normal((r, 3)) for r in ranks
    ])
    a = jax.device_put(a_np, sharding)
    fwd = jax.jit(jaxpinv.matrix_rank)
    out = fwd(a)
    check_sharding(f"{name} forward", out, sharding)
    got = np.asarray(out)
    check(f"{name} forward: values", np.array_equal(got, ranks) and np.array_equal(got, np.linalg.matrix_rank(a_np)),
          f"got {got.tolist()}, want {ranks.tolist()}")
    check_hlo(f"{name} forward", fwd, a)


def run_array_tolerance_case(tag, sharding):
    name = f"{tag} pinv with a sharded atol array"
    a_np = rng.standard_normal((B, 5, 3))
    atol_np = np.where(np.arange(B) % 2 == 0, 0.0, 1e3)  # odd matrices cut to zero
    a, atol = jax.device_put(a_np, sharding), jax.device_put(atol_np, sharding)
    fwd = jax.jit(lambda x, t: jaxpinv.pinv(x, atol=t))
    out = fwd(a, atol)
    check_sharding(f"{name} forward", out, sharding)
    ref = np.linalg.pinv(a_np) * (atol_np == 0)[:, None, None]
    close(f"{name} forward: values", out, ref)
    check_hlo(f"{name} forward", fwd, a, atol)


def run_solver_cases(tag, sharding):
    # lstsq (direct and QR-reduced) and damped_pinv: forward and gradient stay sharded
    for shape in [(B, 5, 3), (B, 12, 3)]:
        name = f"{tag} lstsq {shape}"
        a_np, b_np = rng.standard_normal(shape), rng.standard_normal(shape[:-1])
        a, b = jax.device_put(a_np, sharding), jax.device_put(b_np, sharding)
        fwd = jax.jit(jaxpinv.lstsq)
        out = fwd(a, b)
        check_sharding(f"{name} forward", out, sharding)
        close(f"{name} forward: values", out, np.einsum("bij,bj->bi", np.linalg.pinv(a_np), b_np))
        check_hlo(f"{name} forward", fwd, a, b)
        grad = jax.jit(jax.grad(lambda x, y: jnp.sum(jaxpinv.lstsq(x, y) ** 2)))
        check_sharding(f"{name} grad", grad(a, b), sharding)
        check_hlo(f"{name} grad", grad, a, b)
    name = f"{tag} damped_pinv (16, 5, 3)"
    a_np = rng.standard_normal((B, 5, 3))
    a = jax.device_put(a_np, sharding)
    fwd = jax.jit(lambda x: jaxpinv.damped_pinv(x, 0.5))
    check_sharding(f"{name} forward", fwd(a), sharding)
    check_hlo(f"{name} forward", fwd, a)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(jaxpinv.damped_pinv(x, 0.5) ** 2)))
    check_sharding(f"{name} grad", grad(a), sharding)
    check_hlo(f"{name} grad", grad, a)


meshes = [("default-axes", jax.make_mesh((8,), ("batch",)))]
AxisType = getattr(jax.sharding, "AxisType", None)
if AxisType is not None:
    meshes.append(("auto-axes", jax.make_mesh((8,), ("batch",), axis_types=(AxisType.Auto,))))
for tag, mesh in meshes:
    print(f"--- {tag}: {mesh}", flush=True)
    sharding = NamedSharding(mesh, P("batch"))
    run_pinv_case(tag, sharding, (B, 5, 3), hermitian=False)
    run_pinv_case(tag, sharding, (B, 3, 5), hermitian=False)
    run_pinv_case(tag, sharding, (B, 12, 3), hermitian=False)  # QR-reduced tall path
    run_pinv_case(tag, sharding, (B, 3, 12), hermitian=False)  # QR-reduced wide path
    run_pinv_case(tag, sharding, (B, 4, 4), hermitian=True)
    if AxisType is not None and mesh.axis_types[0] == AxisType.Explicit:
        # A fast path's size. Only on Explicit axes: on Auto ones the batch sharding is not in the
        # type at trace time, and the split of a mixed batch gathers the B verdicts (scaling-out page).
        run_pinv_case(tag, sharding, (B, 150, 150), hermitian=True, definite=True)
    run_rank_case(tag, sharding)
    run_array_tolerance_case(tag, sharding)
    run_solver_cases(tag, sharding)

print(f"{len(failures)} failed: {failures}" if failures else "all sharding checks passed", flush=True)
sys.exit(1 if failures else 0)
'''


@pytest.mark.slow  # an 8-device subprocess
@pytest.mark.timeout(300)
def test_sharded_batch_stays_sharded(tmp_path: Path, on_eight_devices) -> None:
    script = tmp_path / "sharding_check.py"
    script.write_text(SCRIPT)
    proc = on_eight_devices([str(script)])
    shown = f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, shown
    assert "all sharding checks passed" in proc.stdout, shown
    assert "BAD" not in proc.stdout, shown
