# %% [markdown]
# # Pseudo-inverting a sharded batch
#
# A large batch of matrices, split over devices along its leading axis, goes
# through `jax.jit(jaxpinv.pinv)` unchanged: JAX's SPMD partitioner runs each
# device's share of the SVDs locally and the result comes back sharded the same
# way, with no gather of the batch. The gradient does the same.
#
# Here the "devices" are 8 simulated CPU devices (the XLA flag below, which has
# to be set before JAX starts). On a machine with GPUs or TPUs, delete nothing:
# the flag only affects the CPU backend, and the mesh is built from whatever
# `jax.devices()` returns. `JAXPINV_EXAMPLES_FAST=1` runs a smaller batch.

# %%
import os

# 8 simulated CPU devices (unless XLA_FLAGS is set); before JAX starts, so in a notebook
# restart the kernel if JAX was already used.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import re
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxpinv

FAST = os.environ.get("JAXPINV_EXAMPLES_FAST") == "1"  # a smaller, quicker run (the tests, the docs build)
print("jax", jax.__version__, "| backend", jax.default_backend(), "|", jax.device_count(), "devices")

# %% [markdown]
# ## A batch sharded over a 1-D mesh
#
# `jax.make_mesh` lays the devices out on a named axis `"batch"`; a
# `NamedSharding` with `PartitionSpec("batch")` splits the leading axis of the
# array over it (the matrix axes stay whole on each device).

# %%
n_dev = jax.device_count()
batch, m, n = (8 * n_dev, 24, 16) if FAST else (32 * n_dev, 48, 32)
mesh = jax.make_mesh((n_dev,), ("batch",))
sharding = NamedSharding(mesh, P("batch"))

a_host = np.random.default_rng(0).standard_normal((batch, m, n)).astype(np.float32)
a = jax.device_put(a_host, sharding)
print("input  ", a.shape, a.dtype, a.sharding.spec)
for shard in a.addressable_shards[:3]:
    print("  ", shard.device, "holds rows", shard.index[0], "shape", shard.data.shape)
print("   ...")

# %% [markdown]
# ## Forward: `jit(pinv)` keeps the sharding
#
# Nothing about the call changes. The compiled program holds one batched QR
# (and, if some matrix is not clearly of full rank, one batched SVD) per
# device, on that device's `batch / n_dev` matrices. The only communication is
# one all-reduce of a scalar: whether every matrix of the batch may take the
# full-rank path (a batch-level decision; see "Which path runs" on the
# documentation's Performance page).

# %%
pinv = jax.jit(jaxpinv.pinv)
p = pinv(a)
print("output ", p.shape, p.dtype, p.sharding.spec)
print("   per device:", {shard.data.shape for shard in p.addressable_shards})
hlo = pinv.lower(a).compile().as_text()
collectives = sorted({op for op in ("all-gather", "all-to-all", "all-reduce", "collective-permute") if op in hlo})
print("collectives in the compiled program:", collectives or "none")
# The result type of each all-reduce, e.g. "pred[]": a scalar moves, no matrix.
reduced = re.findall(r"= (\w+\[[\d,]*\])\S* all-reduce(?:-start)?\(", hlo)
print("all-reduce results:", reduced or "none")

# The same numbers as NumPy's float64 pinv, matrix by matrix.
ref = np.linalg.pinv(a_host.astype(np.float64))
fwd_err = float(np.max(np.abs(np.asarray(p, np.float64) - ref)) / np.max(np.abs(ref)))
print(f"max relative difference to numpy.linalg.pinv (float64): {fwd_err:.1e}")

# %% [markdown]
# ## Gradient: also sharded
#
# A scalar loss sums over the batch, so its value needs one all-reduce of a
# scalar; the gradient with respect to `a` is per matrix and stays where `a`
# lives.


# %%
def loss(a, c):
    return jnp.sum(jaxpinv.pinv(a) * c)


c = jax.device_put(np.random.default_rng(1).standard_normal((batch, n, m)).astype(np.float32), sharding)
value_and_grad = jax.jit(jax.value_and_grad(loss))
value, g = value_and_grad(a, c)
print("gradient", g.shape, g.sharding.spec)
hlo = value_and_grad.lower(a, c).compile().as_text()
grad_collectives = sorted({op for op in ("all-gather", "all-to-all") if op in hlo})
print("gathers in the gradient program:", grad_collectives or "none")

# Reference: the same gradient on one device, unsharded.
single = jax.devices()[0]
g_ref = jax.jit(jax.grad(loss))(jax.device_put(a_host, single), jax.device_put(np.asarray(c), single))
grad_diff = float(jnp.max(jnp.abs(np.asarray(g) - np.asarray(g_ref))) / jnp.max(jnp.abs(np.asarray(g_ref))))
print(f"max relative difference to the unsharded gradient: {grad_diff:.1e}")

# %% [markdown]
# ## Timing (informative only)
#
# On simulated CPU devices the 8 "devices" share the host's cores (and XLA's
# CPU runtime is much slower in this mode than with one device), so this is
# not a speed-up measurement; on real accelerators each device works on its
# own share.

# %%
for name, fn, args in [("pinv", pinv, (a,)), ("value_and_grad", value_and_grad, (a, c))]:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(3 if FAST else 10):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    print(f"{name:15s} median {1e3 * np.median(times):8.2f} ms for {batch} matrices {m}x{n}")
