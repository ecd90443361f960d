# %% [markdown]
# # jaxpinv quickstart
#
# `jaxpinv.pinverse` / `jaxpinv.pinv` are `torch.pinverse` / `torch.linalg.pinv`
# for JAX: same tolerances, same batching, plus `jit`, `vmap`, `grad` and
# `hessian`, with derivatives that stay finite where differentiating through an
# SVD gives NaN.
#
# This notebook reproduces the `torch.pinverse` documentation example, applies
# the JAX transformations to it, and then shows what the tolerances `rtol` and
# `atol` do: which singular values each setting keeps, side by side with torch
# (when torch is installed).

# %%
import jax
import jax.numpy as jnp
import numpy as np

import jaxpinv

print("jax", jax.__version__, "on", jax.default_backend(), "| jaxpinv", jaxpinv.__version__)

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

p = jaxpinv.pinv(x)
ref = np.linalg.pinv(np.asarray(x, np.float64))  # NumPy, in float64
print(f"max |b @ a - I| = {float(jnp.max(jnp.abs(b @ a - jnp.eye(3)))):.1e}")
print(f"relative difference to numpy.linalg.pinv in float64: {np.max(np.abs(p - ref)) / np.max(np.abs(ref)):.1e}")

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

# %% [markdown]
# A check against central finite differences of the same loss computed with
# NumPy in float64, in a random direction:

# %%
a64 = np.asarray(a[0], np.float64)
direction = np.random.default_rng(0).standard_normal(a64.shape)
h = 1e-6


def np_loss(m):
    return np.sum(np.linalg.pinv(m) ** 2)


fd = (np_loss(a64 + h * direction) - np_loss(a64 - h * direction)) / (2 * h)
ad = float(jnp.sum(jax.grad(loss)(a[0]) * direction))
print(
    f"directional derivative: autodiff {ad:.6f}, finite differences {fd:.6f}, rel. error {abs(ad - fd) / abs(fd):.1e}"
)

# %% [markdown]
# ## Tolerances: which singular values count as zero
#
# `pinv` inverts the singular values above the cutoff `max(atol, rtol * σ_max)`
# and treats the others as zero. `rtol` is relative to the matrix's largest
# singular value and defaults to `max(m, n) * eps` when `atol` is not given (0
# when it is); `atol` is absolute. This is `torch.linalg.pinv`'s rule.
# Tolerances may be arrays that broadcast over the batch, and may be traced;
# `matrix_rank` counts exactly the singular values `pinv` keeps.
#
# The batch below holds one 6×3 matrix at two scales, with singular values
# (1, 10⁻², 10⁻⁵) and 100 times that. Each setting keeps a different set, which
# shows in the rank and in the size of the pseudo-inverse: its largest singular
# value is 1 / (the smallest kept one).

# %%
rng = np.random.default_rng(2)
u, _ = np.linalg.qr(rng.standard_normal((6, 3)))
v, _ = np.linalg.qr(rng.standard_normal((3, 3)))
s = np.array([1.0, 1e-2, 1e-5])
m = np.stack([(u * s) @ v.T, (u * 100 * s) @ v.T]).astype(np.float32)  # U diag(s) V^T, scaled 1 and 100

settings = {
    "default": {},
    "rtol=1e-3": {"rtol": 1e-3},  # relative: the same singular values at both scales
    "atol=0.5": {"atol": 0.5},  # absolute: depends on the scale
    "rtol=[1e-6, 1e-1]": {"rtol": np.array([1e-6, 1e-1])},  # one per matrix of the batch
}
try:
    import torch
except ImportError:
    torch = None

ranks, pinvs, torch_ranks = {}, {}, {}
print(f"{'setting':20s} {'rank':8s} {'|pinv|_2':20s}" + ("torch rank" if torch is not None else ""))
for name, kw in settings.items():
    ranks[name] = jaxpinv.matrix_rank(m, **kw)
    pinvs[name] = jaxpinv.pinv(m, **kw)
    norm = np.linalg.norm(pinvs[name], ord=2, axis=(-2, -1))
    line = f"{name:20s} {str(ranks[name].tolist()):8s} {', '.join(f'{v:.3g}' for v in norm):20s}"
    if torch is not None:
        tkw = {k: torch.from_numpy(np.asarray(val, np.float32)) if np.ndim(val) else val for k, val in kw.items()}
        torch_ranks[name] = torch.linalg.matrix_rank(torch.from_numpy(m), **tkw).numpy()
        line += str(torch_ranks[name].tolist())
    print(line)

# %% [markdown]
# The default keeps all three singular values of both matrices in float32
# (`rtol = 6 eps ≈ 7·10⁻⁷`), so the first matrix's pseudo-inverse carries the
# 10⁵ gain of its smallest one, and with it the float32 rounding of the input
# amplified 10⁵ times. A tolerance asks for a better-conditioned, truncated inverse instead:
# `rtol=1e-3` drops 10⁻⁵ at both scales, `atol=0.5` keeps only what exceeds 0.5
# (one singular value of the first matrix, two of the second), and an array
# gives each matrix of the batch its own `rtol`.
#
# `jaxpinv.damped_pinv` is the smooth alternative to a cutoff, and
# `jaxpinv.lstsq` solves least-squares problems without forming the
# pseudo-inverse (see the ridge-path and variable-projection examples).
