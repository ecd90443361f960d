"""examples/sharded_batch.py: a batch sharded over 8 simulated CPU devices.

The test reads the shardings, the collectives of the compiled programs and the arrays from the
run (script and Jupyter kernel), and checks the numbers against NumPy in float64: the forward
against ``numpy.linalg.pinv``, the gradient against the closed form of the derivative.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_example_checked

# Slow: the example runs in a fresh interpreter or kernel; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow

EPS = float(np.finfo(np.float32).eps)

VALUES = [
    "jax.device_count()",
    "jax.default_backend()",
    "tuple(a.sharding.spec)",
    "tuple(p.sharding.spec)",
    "p.sharding.is_equivalent_to(a.sharding, p.ndim)",
    "tuple(g.sharding.spec)",
    "g.sharding.is_equivalent_to(a.sharding, g.ndim)",
    "collectives",
    "reduced",
    "grad_collectives",
    "a_host",
    "np.asarray(c)",
    "np.asarray(p)",
    "np.asarray(g)",
]


def _grad(a, c):
    """d/dA sum(pinv(A) * C) for A of full column rank, in float64: -P^T C P^T + (I - A P) C^T P P^T."""
    p = np.linalg.pinv(a)
    q = np.eye(a.shape[-2]) - a @ p
    pt = np.swapaxes(p, -1, -2)
    return -pt @ c @ pt + q @ np.swapaxes(c, -1, -2) @ p @ pt


@pytest.mark.parametrize("mode", ["script", "kernel"])
@pytest.mark.timeout(420)
def test_sharded_batch(mode, tmp_path):
    v = run_example_checked("sharded_batch", mode, VALUES, tmp_path)
    assert v["jax.device_count()"] == 8 and v["jax.default_backend()"] == "cpu"
    # The batch stays split over the mesh: output and gradient sharded like the input.
    assert v["tuple(a.sharding.spec)"][0] == "batch"
    assert v["p.sharding.is_equivalent_to(a.sharding, p.ndim)"]
    assert v["tuple(p.sharding.spec)"][0] == "batch"
    assert v["g.sharding.is_equivalent_to(a.sharding, g.ndim)"]
    assert v["tuple(g.sharding.spec)"][0] == "batch"
    # No gather in either program; the forward's only collective is the
    # all-reduce of the batch's scalar fast-path decision (no matrix moves).
    assert v["collectives"] in ([], ["all-reduce"])
    assert all(t.endswith("[]") for t in v["reduced"]), v["reduced"]
    assert v["grad_collectives"] == []
    # float32 against NumPy's float64 pinv: Gaussian 24x16 matrices have condition
    # numbers below ~10, so the error is a few eps * cond; 100 eps is loose but
    # fails for any wrong matrix.
    a = np.asarray(v["a_host"], np.float64)
    assert a.shape == (64, 24, 16)
    ref = np.linalg.pinv(a)
    assert np.max(np.abs(np.asarray(v["np.asarray(p)"]) - ref)) / np.max(np.abs(ref)) < 100 * EPS
    # The sharded gradient against the closed form in float64: a derivative
    # carries ~eps * cond^2 (cond <~ 10), so 1000 eps; a wrong rule is off by O(1).
    ref = _grad(a, np.asarray(v["np.asarray(c)"], np.float64))
    assert np.max(np.abs(np.asarray(v["np.asarray(g)"]) - ref)) / np.max(np.abs(ref)) < 1000 * EPS
