# %% [markdown]
# # Learning the ridge penalty by gradient descent
#
# Ridge regression solves
#
# $$ w(\lambda) = \arg\min_w \|X w - y\|^2 + \lambda^2 \|w\|^2
#    = V\,\mathrm{diag}\!\left(\frac{\sigma_i}{\sigma_i^2 + \lambda^2}\right) U^\top y ,$$
#
# which is `jaxpinv.lstsq(X, y, damping=lam)` (the damping enters squared). The
# solution is differentiable in the damping too, so the one hyperparameter of
# ridge regression can be *learned*: take the gradient of the validation error
# with respect to $\log\lambda$ and descend. This notebook
#
# 1. draws an ill-conditioned regression problem and explains why $\lambda$ matters,
# 2. traces the regularization path $w(\lambda)$ and the train/validation error
#    over a log grid of $\lambda$ (one `vmap`),
# 3. learns $\log\lambda$ by gradient descent on the validation error and
#    compares it with the best grid point and with no damping at all.
#
# `JAXPINV_EXAMPLES_FAST=1` runs a coarser grid and fewer steps.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import optax

import jaxpinv

FAST = os.environ.get("JAXPINV_EXAMPLES_FAST") == "1"  # a smaller, quicker run (the tests, the docs build)
SAVE = os.environ.get("JAXPINV_EXAMPLES_SAVE")  # a folder to write the figure to, if set

# %% [markdown]
# ## The problem: noisy targets, features on very different scales
#
# $d = 20$ features whose scales are log-spaced over three decades (from 1 down
# to $10^{-3}$), only $n = 25$ training rows, targets with noise of standard
# deviation 0.1, and separate validation and test sets from the same
# distribution.

# %%
rng = np.random.default_rng(0)
d, n_train, n_val, n_test, noise = 20, 25, 500, 5000, 0.1
scales = np.logspace(0, -3, d)
w_true = rng.standard_normal(d)


def draw(n):
    x = rng.standard_normal((n, d)) * scales
    return x, x @ w_true + noise * rng.standard_normal(n)


x_train, y_train = draw(n_train)
x_val, y_val = draw(n_val)
x_test, y_test = draw(n_test)
sigma = np.linalg.svd(x_train, compute_uv=False)
print(
    f"train {x_train.shape}, singular values {sigma[0]:.3g} ... {sigma[-1]:.3g} "
    f"(condition number {sigma[0] / sigma[-1]:.3g})"
)

# %% [markdown]
# ## Why the damping matters
#
# With $X = U\,\mathrm{diag}(\sigma)\,V^\top$ and $y = X w_\star + \varepsilon$,
#
# $$ w(\lambda) = \sum_i f_i\, v_i \left( v_i^\top w_\star + \frac{u_i^\top \varepsilon}{\sigma_i} \right),
#    \qquad f_i = \frac{\sigma_i^2}{\sigma_i^2 + \lambda^2} . $$
#
# At $\lambda = 0$ every filter factor is 1 and the noise in direction $i$ is
# amplified by $1/\sigma_i$: with $\sigma_{\min} \approx 10^{-3}$ a noise of
# 0.1 becomes coefficients of size ~100 along the weak directions, which
# carry almost no signal ($\sigma_i v_i^\top w_\star$ is tiny there) but
# ruin predictions on new data. A damping $\lambda$ switches off the
# directions with $\sigma_i \ll \lambda$ ($f_i \approx \sigma_i^2/\lambda^2$)
# and keeps those with $\sigma_i \gg \lambda$ ($f_i \approx 1$). Too small a
# $\lambda$ keeps the noise, too large a one throws away signal: the best
# $\lambda$ sits in between, and it depends on the noise level and on $w_\star$,
# which we do not know. Hence: tune it on held-out data.


# %%
def mse(x, y, w):
    return jnp.mean((x @ w - y) ** 2)


w_pinv = jaxpinv.lstsq(x_train, y_train)  # lambda -> 0: the minimum-norm least-squares fit
w_zero = jaxpinv.lstsq(x_train, y_train, damping=0.0)  # damping = 0 is exactly the plain solution
zero_diff = float(jnp.max(jnp.abs(w_zero - w_pinv)))
val_at_zero = float(mse(x_val, y_val, w_pinv))
print(
    f"damping=0 vs plain lstsq: max |difference| = {zero_diff:.1e}; "
    f"|w| = {float(jnp.linalg.norm(w_pinv)):.3g} (true |w| = {np.linalg.norm(w_true):.3g})"
)
print(
    f"lambda = 0: train MSE {float(mse(x_train, y_train, w_pinv)):.3g}, validation MSE {val_at_zero:.4g} "
    f"(noise floor {noise**2:.3g})"
)

# %% [markdown]
# ## (1) The regularization path
#
# All solutions on a log grid of $\lambda$ in one batched call: `vmap` over
# the damping.

# %%
grid = jnp.logspace(-5, 1.5, 27 if FAST else 66)
path = jax.vmap(lambda lam: jaxpinv.lstsq(x_train, y_train, damping=lam))(grid)  # (len(grid), d)
train_err = jnp.mean((path @ x_train.T - y_train) ** 2, axis=1)
val_err = jnp.mean((path @ x_val.T - y_val) ** 2, axis=1)
i_best = int(jnp.argmin(val_err))
grid_best_lam, grid_best_val = float(grid[i_best]), float(val_err[i_best])
print(f"grid ({len(grid)} points): best lambda {grid_best_lam:.4g}, validation MSE {grid_best_val:.4g}")

# %% [markdown]
# ## (2) Learning $\log\lambda$ by gradient descent
#
# For $\lambda > 0$ the validation error is a smooth function of
# $\log\lambda$, and `jaxpinv.lstsq` differentiates through the damping. We
# optimise $\log\lambda$ (so $\lambda$ stays positive and steps are
# scale-free) with Adam, starting from an almost undamped $\lambda_0 = 10^{-4}$.
# Adam suits this: below $\sigma_{\min}$ the validation curve is nearly flat
# (the filter factors barely move), so the raw gradient is tiny there, while
# Adam's steps are normalised by the gradient's size. The step size decays
# from 0.2 to 0.01 so the iterates settle, and the momentum is light
# (`b1=0.5`) so they do not coast past the nearest minimum.


# %%
def val_loss(log_lam):
    w = jaxpinv.lstsq(x_train, y_train, damping=jnp.exp(log_lam))
    return mse(x_val, y_val, w)


steps = 150 if FAST else 250
opt = optax.adam(optax.exponential_decay(0.2, transition_steps=steps, decay_rate=0.05), b1=0.5)


@jax.jit
def step(log_lam, state):
    loss, g = jax.value_and_grad(val_loss)(log_lam)
    updates, state = opt.update(g, state)
    return optax.apply_updates(log_lam, updates), state, loss


def descend(lam0):
    """Adam on log(lambda) from lam0: the iterates' lambdas, their validation MSEs, the final lambda."""
    log_lam = jnp.asarray(np.log(lam0))
    state = opt.init(log_lam)
    lams, losses = [], []
    for _ in range(steps):
        lams.append(float(jnp.exp(log_lam)))
        log_lam, state, loss = step(log_lam, state)
        losses.append(float(loss))
    return np.array(lams), np.array(losses), float(jnp.exp(log_lam))


lam0 = 1e-4
lams, losses, learned_lam = descend(lam0)
initial_val, learned_val = float(losses[0]), float(val_loss(np.log(learned_lam)))
print(
    f"gradient descent ({steps} Adam steps): lambda {lam0:.0e} -> {learned_lam:.4g}, "
    f"validation MSE {initial_val:.4g} -> {learned_val:.4g} (grid best {grid_best_val:.4g})"
)

# %% [markdown]
# The validation set was used to pick $\lambda$, so its error is a little
# optimistic; a fresh test set from the same distribution gives the honest
# comparison with the unregularised fit.

# %%
w_learned = jaxpinv.lstsq(x_train, y_train, damping=learned_lam)
test_at_zero = float(mse(x_test, y_test, w_pinv))
test_learned = float(mse(x_test, y_test, w_learned))
print(f"test MSE: lambda=0 {test_at_zero:.4g}, learned lambda {test_learned:.4g}")

# %% [markdown]
# ### A caveat: the validation curve need not be convex in $\log\lambda$
#
# The validation error is the sum of many filtered noise terms, and with 25
# training rows it can have more than one shallow basin. Here it does: started
# from a heavily damped $\lambda_0 = 1$ instead, the same optimiser walks down
# into the basin on the right and stops there, about 2% above the other one.
# Both are far better than no damping, but gradient descent only finds a local
# minimum. In practice: start it from the best point of a coarse grid, or from
# a few starts.

# %%
lam0_b = 1.0
lams_b, losses_b, learned_lam_b = descend(lam0_b)
learned_val_b = float(val_loss(np.log(learned_lam_b)))
print(f"from lambda={lam0_b:g}: -> {learned_lam_b:.4g}, validation MSE {losses_b[0]:.4g} -> {learned_val_b:.4g}")

# %% [markdown]
# ## Plot
#
# Left: the coefficient paths, coloured by the scale of their feature. The
# weak features' coefficients are the noise-amplified ones at small $\lambda$;
# damping pulls them to 0 first. Middle: training error falls monotonically
# as $\lambda \to 0$ while the validation error has a minimum; the Adam
# iterates (dots, light to dark) walk down to it, from either side. Right:
# validation error per Adam step.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15.5, 4.4), gridspec_kw={"width_ratios": [1.15, 1, 0.8]})
ax = axes[0]
cmap = plt.get_cmap("viridis")
colour = (np.log10(scales) + 3) / 3  # 1 for the strongest feature, 0 for the weakest
for j in range(d):
    ax.plot(grid, path[:, j], color=cmap(colour[j]), lw=1.2)
ax.set_xscale("log")
ax.set_yscale("symlog", linthresh=1)
ax.axvline(learned_lam, color="crimson", ls="--", lw=1.2, label=rf"learned $\lambda$ = {learned_lam:.3g}")
ax.set_xlabel(r"damping $\lambda$")
ax.set_ylabel(r"coefficient $w_j(\lambda)$ (symlog)")
ax.set_title("Regularization path")
ax.legend(loc="upper right", fontsize=8)
sm = plt.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(-3, 0))
fig.colorbar(sm, ax=ax, label=r"$\log_{10}$ feature scale", pad=0.01)

ax = axes[1]
ax.plot(grid, train_err, color="0.4", label="training")
ax.plot(grid, val_err, color="C0", lw=2, label="validation")
ax.axhline(val_at_zero, color="C0", ls=":", lw=1, label=rf"validation at $\lambda$ = 0: {val_at_zero:.3g}")
ax.axhline(noise**2, color="0.6", ls="-.", lw=1, label=rf"noise floor $\sigma_\varepsilon^2$ = {noise**2:.3g}")
order = np.arange(steps)
ax.scatter(
    lams,
    losses,
    c=order,
    cmap="Oranges",
    vmin=-steps // 2,
    s=14,
    zorder=3,
    label=rf"Adam from $\lambda_0$ = {lam0:.0e}",
)
ax.scatter(
    lams_b,
    losses_b,
    c=order,
    cmap="Purples",
    vmin=-steps // 2,
    s=14,
    zorder=3,
    label=rf"Adam from $\lambda_0$ = {lam0_b:g} (ends at {learned_lam_b:.3g}: val {learned_val_b:.3g})",
)
ax.axvline(
    learned_lam,
    color="crimson",
    ls="--",
    lw=1.2,
    label=rf"learned $\lambda$ = {learned_lam:.3g}: val {learned_val:.3g} (grid best {grid_best_val:.3g})",
)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(r"damping $\lambda$")
ax.set_ylabel("mean squared error")
ax.set_title("Error vs damping")
ax.legend(fontsize=7, loc="upper left")

ax = axes[2]
ax.plot(order, losses, color="C1", label=rf"from $\lambda_0$ = {lam0:.0e}")
ax.plot(order, losses_b, color="indigo", label=rf"from $\lambda_0$ = {lam0_b:g}")
ax.axhline(grid_best_val, color="0.5", ls="--", lw=1, label="grid minimum")
ax.set_ylim(0.9 * grid_best_val, 1.05 * max(losses[0], losses_b[0]))
ax.set_xlabel("Adam step")
ax.set_ylabel("validation MSE")
ax.set_title(r"Learning $\log\lambda$")
ax.legend(fontsize=8)
fig.tight_layout()
if SAVE:
    fig.savefig(os.path.join(SAVE, "ridge_path.png"), dpi=110, bbox_inches="tight")
plt.show()

# %% [markdown]
# ## Summary

# %%
excess_ratio = (val_at_zero - noise**2) / (learned_val - noise**2)  # error above the irreducible noise
print(
    f"validation MSE: lambda=0 {val_at_zero:.4g} | start lambda={lam0:.0e} {initial_val:.4g} | "
    f"learned lambda={learned_lam:.4g} {learned_val:.4g} | grid best lambda={grid_best_lam:.4g} {grid_best_val:.4g}"
)
print(
    f"learned / grid best = {learned_val / grid_best_val:.4f}; lambda=0 / learned = {val_at_zero / learned_val:.2f}x "
    f"(excess over the noise floor {excess_ratio:.1f}x)"
)
print(
    f"second start lambda={lam0_b:g} -> {learned_lam_b:.4g}: {learned_val_b:.4g} "
    f"({learned_val_b / grid_best_val:.4f} x grid best)"
)
