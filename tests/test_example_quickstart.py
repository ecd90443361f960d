"""examples/quickstart.py: the torch.pinverse example, transformations, tolerances.

The example runs as a script and in a Jupyter kernel (fast mode); the test reads its arrays
afterwards and checks them against NumPy in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_example_checked

# Slow: the example runs in a fresh interpreter or kernel; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow

EPS = float(np.finfo(np.float32).eps)  # the example runs in JAX's default dtype

VALUES = [
    "np.asarray(x)",
    "np.asarray(p)",
    "np.asarray(a)",
    "np.asarray(b)",
    "grads",
    "at_identity",
    "hess",
    "m",
    "settings",
    "ranks",
    "pinvs",
    "torch_ranks",
    "torch is not None",
]


def _loss(m):
    return np.sum(np.linalg.pinv(m) ** 2)


def _central_difference(f, m, direction, h=1e-6):
    return (f(m + h * direction) - f(m - h * direction)) / (2 * h)


@pytest.mark.parametrize("mode", ["script", "kernel"])
@pytest.mark.timeout(420)
def test_quickstart(mode, tmp_path):
    pytest.importorskip("matplotlib")
    v = run_example_checked("quickstart", mode, VALUES, tmp_path)
    x, p, a, b = (
        np.asarray(v[k], np.float64) for k in ("np.asarray(x)", "np.asarray(p)", "np.asarray(a)", "np.asarray(b)")
    )
    assert x.shape == (3, 5) and a.shape == (2, 6, 3)
    # Random 3x5 / 6x3 Gaussian matrices have condition numbers of a few units;
    # rounding costs O(eps * cond) relative error, so 100 eps is a loose bound
    # that a wrong pinv (or a wrong batch member) cannot meet.
    ref_p, ref_b = np.linalg.pinv(x), np.linalg.pinv(a)
    assert np.max(np.abs(p - ref_p)) / np.max(np.abs(ref_p)) < 100 * EPS
    assert np.max(np.abs(b - ref_b)) / np.max(np.abs(ref_b)) < 100 * EPS
    assert np.max(np.abs(b @ a - np.eye(3))) < 100 * EPS
    # The Penrose conditions of the float32 result, in float64.
    assert np.max(np.abs(x @ p @ x - x)) / np.max(np.abs(x)) < 100 * EPS
    assert np.max(np.abs(p @ x @ p - p)) / np.max(np.abs(p)) < 100 * EPS
    assert np.max(np.abs((x @ p).T - x @ p)) < 100 * EPS and np.max(np.abs((p @ x).T - p @ x)) < 100 * EPS

    # d/dA sum(A^-1) = -A^-T 1 1^T A^-T = -ones at A = I (float32 exact here).
    np.testing.assert_allclose(v["at_identity"], -np.ones((3, 3)), atol=4 * EPS)
    # vmap(grad) against float64 central differences (step 1e-6, error ~1e-12)
    # of NumPy's pinv, per batch member, in random directions: the float32
    # gradient carries ~eps * cond^2 ~ 1e-5 relative error.
    grads = np.asarray(v["grads"])
    assert grads.shape == (2, 6, 3)
    rng = np.random.default_rng(0)
    for i in range(2):
        for _ in range(3):
            direction = rng.standard_normal((6, 3))
            fd = _central_difference(_loss, a[i], direction)
            assert abs(np.sum(grads[i] * direction) - fd) < 1e-4 * abs(fd)
    hess = np.asarray(v["hess"])
    assert hess.shape == (6, 3, 6, 3) and np.all(np.isfinite(hess))
    # The Hessian against central differences of NumPy's gradient-free loss: a second difference.
    d1, d2 = rng.standard_normal((2, 6, 3))
    h = 1e-4
    second = (
        _loss(a[0] + h * d1 + h * d2)
        - _loss(a[0] + h * d1 - h * d2)
        - _loss(a[0] - h * d1 + h * d2)
        + _loss(a[0] - h * d1 - h * d2)
    ) / (4 * h * h)
    assert abs(np.einsum("ij,ijkl,kl->", d1, hess, d2) - second) < 1e-3 * max(abs(second), 1.0)

    # Tolerances: a singular value is kept iff s > max(atol, rtol * s_max), rtol
    # defaulting to max(m, n) * eps = 6 eps without atol, else 0 (torch's rule);
    # the singular values from NumPy's SVD of the example's float32 batch.
    m = np.asarray(v["m"], np.float64)
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    np.testing.assert_allclose(s / s[:, :1], [[1, 1e-2, 1e-5]] * 2, rtol=1e-3)
    np.testing.assert_allclose(s[:, 0], [1, 100], rtol=1e-5)
    expected_ranks = {"default": [3, 3], "rtol=1e-3": [2, 2], "atol=0.5": [1, 2], "rtol=[1e-6, 1e-1]": [3, 1]}
    assert set(v["settings"]) == set(expected_ranks)
    for name, kw in v["settings"].items():
        atol = np.asarray(kw.get("atol", 0.0))
        rtol = np.asarray(kw.get("rtol", 6 * EPS if "atol" not in kw else 0.0))
        cut = np.broadcast_to(np.maximum(atol, rtol * s[:, 0]), (2,))
        keep = s > cut[:, None]
        assert keep.sum(axis=1).tolist() == expected_ranks[name] == v["ranks"][name], name
        if v["torch is not None"]:
            assert v["torch_ranks"][name] == expected_ranks[name], name
        # The truncated pseudo-inverse V diag(1/s) U^T over the kept values, per
        # matrix; float32 rounding of the input, amplified by s_max / s_min_kept.
        got = np.asarray(v["pinvs"][name])
        for i in range(2):
            ref = (vt[i].T[:, keep[i]] / s[i, keep[i]]) @ u[i][:, keep[i]].T
            bound = 30 * EPS * s[i, 0] / s[i, keep[i]].min()
            assert np.max(np.abs(got[i] - ref)) / np.max(np.abs(ref)) < bound, (name, i)
