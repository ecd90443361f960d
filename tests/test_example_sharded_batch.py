"""examples/sharded_batch.py: a batch sharded over 8 simulated CPU devices."""

from __future__ import annotations

import pytest

# Slow: the example runs in a fresh interpreter; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow


def test_sharded_batch(run_example):
    result, _ = run_example("sharded_batch")
    assert result["devices"] == 8 and result["backend"] == "cpu"
    # The batch stays split over the mesh: output and gradient sharded like the input.
    assert result["in_spec"].startswith("P('batch'")
    assert result["out_sharding_equals_in"] and result["out_spec"].startswith("P('batch'")
    assert result["grad_sharding_equals_in"] and result["grad_spec"].startswith("P('batch'")
    # No gather in either program; the forward's only collective is the
    # all-reduce of the batch's scalar fast-path decision (no matrix moves).
    assert result["forward_collectives"] in ([], ["all-reduce"])
    assert all(t.endswith("[]") for t in result["forward_all_reduce_types"]), result["forward_all_reduce_types"]
    assert result["grad_gathers"] == []
    # float32 against NumPy's float64 pinv: Gaussian 24x16 matrices have condition
    # numbers below ~10, so the error is a few eps * cond; 100 eps is loose but
    # fails for any wrong matrix. The sharded gradient equals the unsharded one
    # up to float32 rounding of the same operations.
    eps = result["eps"]
    assert result["forward_rel_err"] < 100 * eps
    assert result["grad_rel_diff"] < 100 * eps
