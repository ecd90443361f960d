"""examples/sharded_lstsq.py: a regression whose rows are sharded over 8 simulated CPU devices (TSQR)."""

from __future__ import annotations

import math

import pytest

# Slow: the example runs in a fresh interpreter; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow


def test_sharded_lstsq(run_example):
    result, out = run_example("sharded_lstsq")
    assert result["devices"] == 8
    m, n, eps, cond = result["m"], result["n"], result["eps"], result["cond"]
    # float32 fit against NumPy's float64 lstsq: a backward-stable solver is
    # accurate to ~ n eps cond (relative); 10x headroom.
    assert result["rank"] == n and 50 < cond < 200
    assert result["fit_rel_err"] < 10 * n * eps * cond
    assert result["solution_spec"] == "P(None, None)"  # replicated
    # What the forward communicates: no collective with m rows, and far fewer
    # bytes than X itself (the gathered R factors, p n^2, dominate).
    assert all(m not in shape for _, shape in result["forward_collectives"]), result["forward_collectives"]
    assert result["forward_bytes"] <= 8 * (8 * n * n + n + 1) and result["forward_bytes"] < result["x_bytes"] / 100
    assert all(m not in shape for _, shape in result["grad_collectives"]), result["grad_collectives"]
    # The gradient keeps X's sharding and equals the unsharded one up to the
    # conditioning of a derivative of lstsq (~ cond^2 eps), 20x headroom.
    assert result["grad_spec"].startswith("P('rows'")
    assert result["grad_rel_diff"] < 20 * cond**2 * eps
    # Memory per device at m = 2e6, n = 64, float32: the target, <= 0.25x gathering.
    assert result["memory_sizes"][-1] == 2_000_000
    assert result["memory_ratio_2e6"] <= 0.25
    assert all(t < g for t, g in zip(result["memory_tsqr"], result["memory_gathered"]))
    assert math.isclose(result["memory_ratio_2e6"], result["memory_tsqr"][-1] / result["memory_gathered"][-1])
    assert (out / "sharded_lstsq.png").stat().st_size > 10_000
