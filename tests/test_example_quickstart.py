"""examples/quickstart.py: the torch.pinverse example, transformations, tolerances."""

from __future__ import annotations

import numpy as np
import pytest

# Slow: the example runs in a fresh interpreter; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow


def test_quickstart(run_example):
    result, _ = run_example("quickstart")
    eps = result["eps"]  # float32: the example runs in JAX's default dtype
    # Random 3x5 / 6x3 Gaussian matrices have condition numbers of a few units;
    # rounding costs O(eps * cond) relative error, so 100 eps is a loose bound
    # that a wrong pinv (or a wrong batch member) cannot meet.
    assert result["eye_err"] < 100 * eps
    assert result["penrose"] < 100 * eps
    assert result["numpy_err"] < 100 * eps
    # d/dA sum(A^-1) = -A^-T 1 1^T A^-T = -ones at A = I (float32 exact here).
    np.testing.assert_allclose(result["grad_at_identity"], -np.ones((3, 3)), atol=4 * eps)
    assert result["vmap_grad_shape"] == [2, 6, 3]
    assert result["hessian_shape"] == [6, 3, 6, 3] and result["hessian_finite"]
    # float32 autodiff against float64 central differences (step 1e-6, error
    # ~1e-12): the float32 gradient carries ~eps * cond^2 ~ 1e-5 relative error.
    assert result["grad_rel_err"] < 1e-4

    # Tolerances: singular values (1, 1e-2, 1e-5); kept iff s > max(atol, rtol * s_max),
    # rtol defaulting to max(m, n) * eps = 6 eps without atol, else 0.
    s = np.array([1.0, 1e-2, 1e-5])
    settings = {
        "default": (0.0, 6 * eps),
        "atol=1e-3": (1e-3, 0.0),
        "rtol=1e-6": (0.0, 1e-6),
        "rtol=[1e-6, 1e-1]": (0.0, np.array([1e-6, 1e-1])),
        "atol=1e-3, rtol=1e-1": (1e-3, 1e-1),
    }
    rows = {row["setting"]: row for row in result["tolerances"]}
    assert set(rows) == set(settings)
    for name, (atol, rtol) in settings.items():
        cut = np.broadcast_to(np.maximum(atol, np.asarray(rtol) * s[0]), (2,))
        expected = [int(np.sum(s > c)) for c in cut]
        row = rows[name]
        assert row["rank"] == expected, name
        # Error against the exact pinv: float32 rounding of the input, amplified
        # by the largest kept 1/s (1e5 when 1e-5 is kept): eps * s_max / s_min_kept.
        kept_min = min(s[s > c].min() for c in cut)
        assert row["err"] < 30 * eps / kept_min, (name, row["err"])
        if result["torch"]:
            assert row["torch_rank"] == expected, name
