# %% [markdown]
# # jaxpinv quickstart
#
# `jaxpinv.pinverse` / `jaxpinv.pinv` are `torch.pinverse` / `torch.linalg.pinv`
# for JAX: same tolerances, same batching, plus `jit`, `vmap`, `grad` and
# `hessian` with derivatives that stay finite where differentiating through an
# SVD gives NaN.
#
# This notebook reproduces the `torch.pinverse` documentation example, then
# runs the JAX transformations on it, then puts the tolerance knobs side by
# side with torch's (when torch is installed). Run it with
# `python examples/quickstart.py` (add `--fast` for the small version used in CI).

# %%
import json
import os
import pathlib
import sys

FAST = os.environ.get("JAXPINV_EXAMPLES_FAST") == "1" or "--fast" in sys.argv
# In a Jupyter kernel figures show inline (and are saved); run as a script, they are only saved.
IN_KERNEL = "ipykernel" in sys.modules


def repo_root() -> pathlib.Path:
    """The checkout's root: from this file's path, or in a kernel (which has no ``__file__``) the
    first of the working directory and its parents holding ``pyproject.toml`` and ``examples/``."""
    if "__file__" in globals():
        return pathlib.Path(__file__).resolve().parents[1]
    for folder in (pathlib.Path.cwd(), *pathlib.Path.cwd().parents):
        if (folder / "pyproject.toml").is_file() and (folder / "examples").is_dir():
            return folder
    return pathlib.Path.cwd()


OUT = pathlib.Path(os.environ.get("JAXPINV_EXAMPLES_OUT", repo_root() / "docs" / "images"))
OUT.mkdir(parents=True, exist_ok=True)
print("figures are saved to", OUT)

import jax
import jax.numpy as jnp
import numpy as np

import jaxpinv

print("jax", jax.__version__, "on", jax.default_backend(), "| jaxpinv", jaxpinv.__version__)
result: dict = {}

# %% [markdown]
# ## The `torch.pinverse` example
#
# ```python
# >>> input = torch.randn(3, 5)
# >>> torch.pinverse(input)
# >>> # Batched pinverse example
# >>> a = torch.randn(2, 6, 3)
# >>> b = torch.pinverse(a)
# >>> torch.matmul(b, a)
# ```
#
# The same in JAX (float32, JAX's default). `b @ a` is the 3×3 identity for
# each of the two matrices, because a random 6×3 matrix has full column rank.

# %%
x = jax.random.normal(jax.random.key(0), (3, 5))
print(jaxpinv.pinverse(x))

a = jax.random.normal(jax.random.key(1), (2, 6, 3))
b = jaxpinv.pinverse(a)
print(b.shape, "\n", b @ a)

eye_err = float(jnp.max(jnp.abs(b @ a - jnp.eye(3))))
# The four Penrose conditions, relative to |A| |A+| (independent of the example's scale).
p = jaxpinv.pinv(x)
penrose = max(
    float(jnp.max(jnp.abs(x @ p @ x - x)) / jnp.max(jnp.abs(x))),
    float(jnp.max(jnp.abs(p @ x @ p - p)) / jnp.max(jnp.abs(p))),
    float(jnp.max(jnp.abs((x @ p).T - x @ p))),
    float(jnp.max(jnp.abs((p @ x).T - p @ x))),
)
ref = np.linalg.pinv(np.asarray(x, np.float64))  # NumPy in float64 as the reference
numpy_err = float(np.max(np.abs(np.asarray(p, np.float64) - ref)) / np.max(np.abs(ref)))
print(f"max |b @ a - I| = {eye_err:.1e};  Penrose residual {penrose:.1e};  vs NumPy float64 {numpy_err:.1e}")
result.update(eye_err=eye_err, penrose=penrose, numpy_err=numpy_err, eps=float(jnp.finfo(jnp.float32).eps))

# %% [markdown]
# ## jit, vmap, grad, hessian
#
# `pinv` is a pure function of its input, so every transformation applies.
# Its derivative is the Golub–Pereyra formula
# `dP = -P dA P + P Pᴴ dAᴴ (I - A P) + (I - P A) dAᴴ Pᴴ P`, written as a
# `jax.custom_jvp` rule: it holds wherever the rank is locally constant, and it
# is finite at repeated singular values, e.g. at the identity, where
# differentiating through `jnp.linalg.svd` divides by `σᵢ² - σⱼ² = 0`.


# %%
def loss(m):
    return jnp.sum(jaxpinv.pinv(m) ** 2)


grads = jax.jit(jax.vmap(jax.grad(loss)))(a)  # one gradient per batch member
print("vmap(grad):", grads.shape)

at_identity = jax.grad(lambda m: jnp.sum(jaxpinv.pinv(m)))(jnp.eye(3))
print("grad at the identity (d/dA sum(A^-1) = -ones at A = I):\n", at_identity)

hess = jax.jit(jax.hessian(loss))(a[0])
print("hessian:", hess.shape, "finite:", bool(jnp.all(jnp.isfinite(hess))))

# A check against central finite differences, in a random direction, in float64.
a64 = np.asarray(a[0], np.float64)
direction = np.random.default_rng(0).standard_normal(a64.shape)
h = 1e-6


def np_loss(m):
    return np.sum(np.linalg.pinv(m) ** 2)


fd = (np_loss(a64 + h * direction) - np_loss(a64 - h * direction)) / (2 * h)
ad = float(jnp.sum(jax.grad(loss)(jnp.asarray(a[0])) * direction))
grad_rel_err = abs(ad - fd) / abs(fd)
print(f"directional derivative: autodiff {ad:.6f}, finite differences {fd:.6f}, rel. error {grad_rel_err:.1e}")
result.update(
    vmap_grad_shape=list(grads.shape),
    grad_at_identity=np.asarray(at_identity).tolist(),
    hessian_shape=list(hess.shape),
    hessian_finite=bool(jnp.all(jnp.isfinite(hess))),
    grad_rel_err=grad_rel_err,
)

# %% [markdown]
# ## Tolerances, side by side with torch
#
# Singular values at or below `max(atol, rtol * σ_max)` are treated as zero.
# `rtol` defaults to `max(m, n) * eps` when `atol` is not given (and to 0 when
# it is), exactly as in `torch.linalg.pinv`; tolerances may be arrays that
# broadcast over the batch, and may be traced. `matrix_rank` counts exactly
# the singular values `pinv` keeps.
#
# Below, a batch of two 6×3 matrices with singular values (1, 1e-2, 1e-5): each
# setting keeps a different number of them.

# %%
rng = np.random.default_rng(2)
u, _ = np.linalg.qr(rng.standard_normal((2, 6, 3)))
v, _ = np.linalg.qr(rng.standard_normal((2, 3, 3)))
s = np.array([1.0, 1e-2, 1e-5])
m = (u * s) @ np.swapaxes(v, -1, -2)  # U diag(s) V^T, float64 in NumPy

settings = {
    "default": {},
    "atol=1e-3": {"atol": 1e-3},
    "rtol=1e-6": {"rtol": 1e-6},
    "rtol=[1e-6, 1e-1]": {"rtol": np.array([1e-6, 1e-1])},
    "atol=1e-3, rtol=1e-1": {"atol": 1e-3, "rtol": 1e-1},
}
try:
    import torch
except ImportError:
    torch = None


def exact_pinv(kw):
    """V diag(1/s) U^T over the kept singular values: m was built from its SVD."""
    atol = np.asarray(kw.get("atol", 0.0))
    default_rtol = 6 * np.finfo(np.float32).eps if "atol" not in kw else 0.0
    rtol = np.asarray(kw.get("rtol", default_rtol))
    cut = np.maximum(atol, rtol * s[0])[..., None]  # per matrix (rtol may be an array)
    inv = np.where(s > cut, 1 / s, 0.0)
    return (v * inv[..., None, :]) @ np.swapaxes(u, -1, -2)


def rel_err(p, kw):
    ref = exact_pinv(kw)
    return float(np.max(np.abs(p - ref)) / np.max(np.abs(ref)))


rows = []
m32 = jnp.asarray(m, jnp.float32)
for name, kw in settings.items():
    row = {"setting": name, "rank": np.asarray(jaxpinv.matrix_rank(m32, **kw)).tolist()}
    row["err"] = rel_err(np.asarray(jaxpinv.pinv(m32, **kw), np.float64), kw)
    if torch is not None:
        tkw = {
            k: torch.from_numpy(np.asarray(val, np.float32)) if isinstance(val, np.ndarray) else val
            for k, val in kw.items()
        }
        tm = torch.from_numpy(m.astype(np.float32))
        row["torch_rank"] = torch.linalg.matrix_rank(tm, **tkw).tolist()
        row["torch_err"] = rel_err(torch.linalg.pinv(tm, **tkw).double().numpy(), kw)
    rows.append(row)

print("relative error against the exact pseudo-inverse V diag(1/s) U^T of the kept values:")
print(f"{'setting':22s} {'jaxpinv rank':13s} {'error':8s}" + (" torch rank    error" if torch is not None else ""))
for row in rows:
    line = f"{row['setting']:22s} {str(row['rank']):13s} {row['err']:.1e}"
    if torch is not None:
        line += f"  {str(row['torch_rank']):13s} {row['torch_err']:.1e}"
    print(line)
result["tolerances"] = rows
result["torch"] = torch is not None

# %% [markdown]
# The default keeps all three singular values in float32 (`rtol = 6 * eps ≈
# 7e-7` is below 1e-5), so the pseudo-inverse carries the 1e5 gain of the
# smallest one, and float32 rounding of the input costs about `eps * 1e5 ≈ 1e-2`
# relative accuracy, for torch as for jaxpinv. A tolerance is how to ask for a
# better-conditioned, truncated inverse instead.
# `jaxpinv.damped_pinv` is the smooth alternative, and `jaxpinv.lstsq` solves
# least-squares problems without forming the pseudo-inverse (see
# `examples/ridge_path.py` and `examples/variable_projection.py`).

# %%
print("RESULT " + json.dumps(result))
