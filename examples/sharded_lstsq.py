# %% [markdown]
# # Least squares on a data matrix sharded over devices (TSQR)
#
# A regression with many samples: the design matrix `X` (rows = samples) is
# too tall for one device, so its rows are split over a mesh axis, as a
# data-parallel program holds its data. `jax.jit(jaxpinv.lstsq)(X, y)` fits it
# where the data lives: each device factors its own rows (`X_i = Q_i R_i`),
# only the small `n x n` factors `R_i` travel, and the solution comes back
# replicated. No device ever holds more than its share of `X`.
#
# The "devices" are 8 simulated CPU devices (the XLA flag below, set before
# JAX starts); on GPUs or TPUs the mesh is built from `jax.devices()` and
# nothing else changes. The mesh axes are `Explicit` (`jax.make_mesh`'s
# default in current JAX): the sharding is part of the array's type, which is
# how jaxpinv sees it. `JAXPINV_EXAMPLES_FAST=1` runs a smaller version.

# %%
import os

# 8 simulated CPU devices (unless XLA_FLAGS is set); before JAX starts, so in a notebook
# restart the kernel if JAX was already used.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import re

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxpinv

try:
    reshard = jax.sharding.reshard
except AttributeError:  # jax 0.6
    from jax.experimental.shard import reshard

FAST = os.environ.get("JAXPINV_EXAMPLES_FAST") == "1"  # a smaller, quicker run (the tests, the docs build)
SAVE = os.environ.get("JAXPINV_EXAMPLES_SAVE")  # a folder to write the figure to, if set
print("jax", jax.__version__, "| backend", jax.default_backend(), "|", jax.device_count(), "devices")

# %% [markdown]
# ## The data: samples sharded along the rows
#
# `m` samples of `n` features, `y = X beta + noise`, in float32. The mesh has
# one axis, `"rows"`; `PartitionSpec("rows", None)` splits the rows of `X`
# (and of `y`) over it.

# %%
n_dev = jax.device_count()
m, n = (n_dev * 8192, 32) if FAST else (n_dev * 131072, 32)
mesh = jax.make_mesh((n_dev,), ("rows",), axis_types=(jax.sharding.AxisType.Explicit,))
rows = NamedSharding(mesh, P("rows", None))

rng = np.random.default_rng(0)
beta = rng.standard_normal(n)
x_host = (rng.standard_normal((m, n)) * np.logspace(0, -2, n)).astype(np.float32)  # condition ~ 100
y_host = (x_host @ beta + 0.01 * rng.standard_normal(m)).astype(np.float32)
X = jax.device_put(x_host, rows)
y = jax.device_put(y_host[:, None], rows)
print("X", X.shape, X.dtype, jax.typeof(X), "| per device", {s.data.shape for s in X.addressable_shards})

# %% [markdown]
# ## The fit
#
# `lstsq` sees the row sharding in `X`'s type and runs TSQR: one QR per
# device, the 8 small `R` factors gathered and factored again, the SVD of
# the final `32 x 32` factor, and `beta_hat = V diag(1/s) U^H y`, whose
# last product sums over the sharded rows (an all-reduce of 32 numbers).
#
# **Mind the default tolerance on tall data.** The default cutoff is torch's
# and NumPy's, `rtol = max(m, n) * eps`: with a million rows in float32 that
# is 0.125, and it would drop every singular value below an eighth of the
# largest (here: half of them). It is a worst-case bound; the rounding a
# backward-stable QR actually leaves grows like `sqrt(m) * eps`, so that is
# the `rtol` passed here (1.2e-4 at a million rows).

# %%
rtol = float(np.sqrt(m) * np.finfo(np.float32).eps)
fit = jax.jit(lambda X, y: jaxpinv.lstsq_full(X, y, rtol=rtol))
sol, residual, rank, s = fit(X, y)
beta_hat = np.asarray(sol)[:, 0]
ref = np.linalg.lstsq(x_host.astype(np.float64), y_host.astype(np.float64), rcond=None)[0]
fit_err = float(np.max(np.abs(beta_hat - ref)) / np.max(np.abs(ref)))
print("solution", jax.typeof(sol), "| rank", int(rank), "| condition", float(s[0] / s[-1]))
print(f"relative difference to numpy.linalg.lstsq in float64: {fit_err:.1e}")
print(f"relative error against the true beta: {np.max(np.abs(beta_hat - beta)) / np.max(np.abs(beta)):.1e}")
default_rank = int(jax.jit(jaxpinv.matrix_rank)(X))
print(
    f"rank with rtol = {rtol:.1e}: {int(rank)}; with the default rtol = max(m, n) eps = {max(m, n) * np.finfo(np.float32).eps:.1e}: {default_rank}"
)

# %% [markdown]
# ## What the compiled program communicates
#
# Every collective in the compiled program, with its shape: the gather of the
# `R` factors (`8 n x n` entries), the all-reduce of the solution, and a
# scalar (the non-finite check). Nothing has `m` rows.


# %%
def collectives(fn, *args):
    found = []
    for line in jax.jit(fn).lower(*args).compile().as_text().splitlines():
        hit = re.search(
            r"=\s*\(?(\w+)\[([\d,]*)\][^=]*?\s(all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter)(-start)?\(",
            line,
        )
        if hit:
            found.append((hit.group(3), hit.group(1), tuple(int(d) for d in hit.group(2).split(",") if d)))
    return found


fwd = collectives(lambda X, y: jaxpinv.lstsq(X, y, rtol=rtol), X, y)
for kind, dtype, shape in fwd:
    print(f"  {kind:12s} {dtype}{list(shape)}")
ITEMSIZE = {"pred": 1, "s32": 4, "f32": 4, "f64": 8, "c64": 8, "c128": 16}
x_bytes = m * n * 4
moved = sum(int(np.prod(shape)) * ITEMSIZE.get(dtype, 8) for _, dtype, shape in fwd)
print(f"bytes moved by the collectives: {moved:,}, against X's {x_bytes:,} bytes")

# %% [markdown]
# ## The gradient stays sharded
#
# Differentiating the fit with respect to the data: a validation loss of
# `beta_hat(X, y)`, differentiated with respect to `X`. The cotangent has
# `X`'s sharding; the backward pass adds all-reduces of `n x n` products.

# %%
x_val = jnp.asarray(rng.standard_normal((256, n)).astype(np.float32))
y_val = x_val @ jnp.asarray(beta, jnp.float32)


def validation_loss(X, y):
    return jnp.mean((x_val @ jaxpinv.lstsq(X, y, rtol=rtol)[:, 0] - y_val) ** 2)


grad = jax.jit(jax.grad(validation_loss))
g = grad(X, y)
g_ref = jax.jit(jax.grad(validation_loss))(jnp.asarray(x_host), jnp.asarray(y_host[:, None]))
grad_diff = float(jnp.max(jnp.abs(np.asarray(g) - np.asarray(g_ref))) / jnp.max(jnp.abs(np.asarray(g_ref))))
bwd = collectives(jax.grad(validation_loss), X, y)
print("gradient", jax.typeof(g), f"| relative difference to the unsharded gradient: {grad_diff:.1e}")
print("gradient program's collectives:", sorted({(k, sh) for k, _, sh in bwd}))

# %% [markdown]
# ## Memory per device: TSQR against gathering the matrix
#
# What each device needs, from XLA's own accounting
# (`compiled.memory_analysis()`: arguments + outputs + temporaries) of the
# compiled programs — no need to run them, so the sizes can go past what this
# machine holds. "Gathered" is what happens without TSQR (e.g. with `Auto`
# mesh axes, where XLA's partitioner all-gathers `X` for the factorization):
# every device holds all of `X`.


# %%
def peak_bytes(fn, *args):
    mem = jax.jit(fn).lower(*args).compile().memory_analysis()
    return mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes - mem.alias_size_in_bytes


def gathered(X, y):
    full = NamedSharding(mesh, P())
    return jaxpinv.lstsq(reshard(X, full), reshard(y, full))


sizes = [n_dev * 2**k for k in (range(10, 17, 3) if FAST else range(10, 18, 2))] + [2_000_000]
peaks = {"TSQR (jaxpinv)": [], "gathered": []}
for rows_m in sizes:
    xs = jax.ShapeDtypeStruct((rows_m, n * 2), jnp.float32, sharding=rows)
    ys = jax.ShapeDtypeStruct((rows_m, 1), jnp.float32, sharding=rows)
    peaks["TSQR (jaxpinv)"].append(peak_bytes(jaxpinv.lstsq, xs, ys))
    peaks["gathered"].append(peak_bytes(gathered, xs, ys))
    print(
        f"m = {rows_m:>9,}, n = {2 * n}: TSQR {peaks['TSQR (jaxpinv)'][-1] / 2**20:8.1f} MiB   "
        f"gathered {peaks['gathered'][-1] / 2**20:8.1f} MiB per device"
    )
ratio = peaks["TSQR (jaxpinv)"][-1] / peaks["gathered"][-1]
print(f"at m = 2e6, n = 64, float32: {ratio:.2f}x the memory of gathering")

fig, ax = plt.subplots(1, 2, figsize=(11, 4))
for label, values in peaks.items():
    ax[0].loglog(sizes, np.array(values) / 2**20, "o-", label=label)
ax[0].loglog(sizes, np.array(sizes) * 2 * n * 4 / n_dev / 2**20, "k:", label="X's share (m n / p)")
ax[0].set(
    xlabel="rows m (n = 64, float32)",
    ylabel="peak memory per device (MiB)",
    title=f"{n_dev} devices: memory per device",
)
ax[0].legend()
kinds = [f"{k}\n{list(sh)}" for k, _, sh in fwd]
ax[1].bar(range(len(fwd)), [int(np.prod(sh)) * ITEMSIZE.get(dt, 8) for _, dt, sh in fwd], color="C0")
ax[1].axhline(x_bytes, color="C1", linestyle="--", label=f"X itself ({x_bytes / 2**20:.0f} MiB)")
ax[1].set_yscale("log")
ax[1].set_xticks(range(len(fwd)), kinds, fontsize=8)
ax[1].set(ylabel="bytes", title=f"what lstsq communicates (m = {m:,}, n = {n})")
ax[1].legend()
fig.tight_layout()
if SAVE:
    fig.savefig(os.path.join(SAVE, "sharded_lstsq.png"), dpi=110, bbox_inches="tight")
plt.show()
