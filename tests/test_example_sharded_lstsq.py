"""examples/sharded_lstsq.py: a regression whose rows are sharded over 8 simulated CPU devices (TSQR).

The test reads the run's results (script and Jupyter kernel) and checks them against NumPy in
float64. The data matrix (65536 x 32 in fast mode) is rebuilt here from the example's seeded
recipe, and checked against samples of the run's; so are the rows of the gradient that come
back, and its contraction with a random direction (computed in the run by the test's expression).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import run_example_checked

# Slow: the example runs in a fresh interpreter or kernel; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow

EPS = float(np.finfo(np.float32).eps)
STRIDE = 4096  # the rows of X and of the gradient that come back from the run
ITEMSIZE = {"pred": 1, "s32": 4, "u32": 4, "f32": 4, "f64": 8, "c64": 8, "c128": 16}
DIRECTION = "np.random.default_rng(7).standard_normal(g.shape)"

VALUES = [
    "jax.device_count()",
    "m",
    "n",
    f"x_host[::{STRIDE}]",
    f"y_host[::{STRIDE}]",
    "np.asarray(beta)",
    "np.asarray(x_val)",
    "np.asarray(y_val)",
    "rtol",
    "beta_hat",
    "int(rank)",
    "default_rank",
    "sol.sharding.is_fully_replicated",
    "fwd",
    "bwd",
    "tuple(jax.typeof(g).sharding.spec)",
    f"np.asarray(g)[::{STRIDE}]",
    f"float(np.sum(np.asarray(g, np.float64) * {DIRECTION}))",
    "sizes",
    "peaks",
    "ratio",
]


def _data(m, n):
    """The example's data, rebuilt with NumPy from its recipe (seed 0, column scales 1 .. 1e-2)."""
    rng = np.random.default_rng(0)
    beta = rng.standard_normal(n)
    x = (rng.standard_normal((m, n)) * np.logspace(0, -2, n)).astype(np.float32)
    y = (x @ beta + 0.01 * rng.standard_normal(m)).astype(np.float32)
    return x.astype(np.float64), y.astype(np.float64)


@pytest.mark.parametrize("mode", ["script", "kernel"])
@pytest.mark.timeout(420)
def test_sharded_lstsq(mode, tmp_path):
    pytest.importorskip("matplotlib")
    v = run_example_checked("sharded_lstsq", mode, VALUES, tmp_path, figures=["sharded_lstsq"])
    assert v["jax.device_count()"] == 8
    m, n = v["m"], v["n"]
    x, y = _data(m, n)
    np.testing.assert_array_equal(v[f"x_host[::{STRIDE}]"], x[::STRIDE])
    np.testing.assert_array_equal(v[f"y_host[::{STRIDE}]"], y[::STRIDE])

    # The fit, float32 TSQR against NumPy's float64 lstsq: a backward-stable solver
    # is accurate to ~ n eps cond (relative); 10x headroom.
    s = np.linalg.svd(x, compute_uv=False)
    cond = s[0] / s[-1]
    assert 50 < cond < 200
    ref = np.linalg.lstsq(x, y, rcond=None)[0]
    assert np.max(np.abs(np.asarray(v["beta_hat"]) - ref)) / np.max(np.abs(ref)) < 10 * n * EPS * cond
    assert v["sol.sharding.is_fully_replicated"]
    # The ranks: every singular value is above the example's rtol = sqrt(m) eps; the
    # default rtol = max(m, n) eps keeps those above it (NumPy's singular values).
    assert math.isclose(v["rtol"], math.sqrt(m) * EPS)
    assert v["int(rank)"] == int(np.sum(s > v["rtol"] * s[0])) == n
    assert v["default_rank"] == int(np.sum(s > max(m, n) * EPS * s[0]))

    # What the forward communicates: no collective with m rows, and far fewer
    # bytes than X itself (the gathered R factors, p n^2, dominate).
    fwd = v["fwd"]
    assert fwd and all(m not in shape for _, _, shape in fwd), fwd
    moved = sum(int(np.prod(shape)) * ITEMSIZE.get(dtype, 8) for _, dtype, shape in fwd)
    assert moved <= 8 * (8 * n * n + n + 1) and moved < m * n * 4 / 100, moved
    assert all(m not in shape for _, _, shape in v["bwd"]), v["bwd"]

    # The gradient of the validation loss mean((x_val beta_hat(X) - y_val)^2) with
    # respect to X keeps X's sharding. Against the closed form in float64 (X has
    # full column rank): G = -P^T g b^T + r (P P^T g)^T with P = X^+, b = P y,
    # r = y - X b and g = 2/k x_val^T (x_val b - y_val). A derivative of lstsq is
    # conditioned like cond^2 eps; 20x headroom.
    assert v["tuple(jax.typeof(g).sharding.spec)"][0] == "rows"
    x_val, y_val = np.asarray(v["np.asarray(x_val)"], np.float64), np.asarray(v["np.asarray(y_val)"], np.float64)
    b = ref
    g_b = 2 / len(y_val) * x_val.T @ (x_val @ b - y_val)
    gram_inv = np.linalg.inv(x.T @ x)
    grad = -(x @ (gram_inv @ g_b))[:, None] * b[None, :] + (y - x @ b)[:, None] * (gram_inv @ g_b)[None, :]
    rows = np.asarray(v[f"np.asarray(g)[::{STRIDE}]"])
    scale = np.max(np.abs(grad))
    assert np.max(np.abs(rows - grad[::STRIDE])) < 20 * cond**2 * EPS * scale
    contraction = np.sum(grad * np.random.default_rng(7).standard_normal((m, n)))
    got = v[f"float(np.sum(np.asarray(g, np.float64) * {DIRECTION}))"]
    assert abs(got - contraction) < 20 * cond**2 * EPS * scale * math.sqrt(m * n)

    # Memory per device at m = 2e6, n = 64, float32: the target, <= 0.25x gathering.
    sizes, tsqr, gathered = v["sizes"], v["peaks"]["TSQR (jaxpinv)"], v["peaks"]["gathered"]
    assert sizes[-1] == 2_000_000 and len(tsqr) == len(gathered) == len(sizes)
    assert all(t < g for t, g in zip(tsqr, gathered))
    assert math.isclose(v["ratio"], tsqr[-1] / gathered[-1]) and v["ratio"] <= 0.25
