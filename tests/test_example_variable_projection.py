"""examples/variable_projection.py: the sum-of-exponentials fit recovers the rates.

The example runs in fast mode (m = 100 points, noise sigma = 1e-3, fixed seed),
as a script and in a Jupyter kernel. The test reads its data recipe and results
afterwards and checks the fit against NumPy alone: the data rebuilt from the
seed, ``numpy.linalg.lstsq`` on the fitted rates must give the fitted
amplitudes and final loss, the fitted rates must be a local minimum of the
reduced loss, and the standard errors are recomputed from the Jacobian.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_example_checked

# Slow: the example runs in a fresh interpreter or kernel; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow

VALUES = ["SEED", "SIGMA", "M", "K_TRUE", "C_TRUE", "t_np", "y_np", "k_fit", "c_fit", "stderr_k", "stderr_c"]
VALUES += ["vp_losses", "joint_losses", "k_joint", "MAX_ITERS", "NOISE_FLOOR"]


def _data(v):
    """The example's data, rebuilt with NumPy from its recipe: m points on [0, 6], seeded noise."""
    t = np.linspace(0.0, 6.0, v["M"])
    clean = np.exp(-np.outer(t, v["K_TRUE"])) @ np.asarray(v["C_TRUE"])
    noise = v["SIGMA"] * np.random.default_rng(v["SEED"]).standard_normal(v["M"])
    return t, clean + noise


def _reduced_loss(t, y, rates):
    phi = np.exp(-np.outer(t, rates))
    c = np.linalg.lstsq(phi, y, rcond=None)[0]
    r = y - phi @ c
    return 0.5 * r @ r, c


def _iters_to_converge(losses, target):
    """First iteration whose loss is within 0.1 % of ``target``."""
    return next(i for i, value in enumerate(losses) if value <= target * (1 + 1e-3))


def _stderr(t, c, k, loss):
    """Linearised standard errors of (c, k): sigma_hat^2 (J^T J)^-1 with the analytic Jacobian of the residual."""
    e = np.exp(-np.outer(t, k))
    jac = np.hstack([-e, c * t[:, None] * e])
    sigma2 = 2 * loss / (len(t) - 4)
    return np.sqrt(sigma2 * np.diag(np.linalg.inv(jac.T @ jac)))


@pytest.mark.parametrize("mode", ["script", "kernel"])
@pytest.mark.timeout(420)
def test_variable_projection(mode, tmp_path):
    pytest.importorskip("optax")  # the example's optimiser: the examples extra installs it
    pytest.importorskip("matplotlib")
    v = run_example_checked("variable_projection", mode, VALUES, tmp_path, figures=["variable_projection"])
    t, y = _data(v)
    assert v["M"] == 100 and v["SIGMA"] == 1e-3
    np.testing.assert_array_equal(v["t_np"], t)
    np.testing.assert_array_equal(v["y_np"], y)
    vp_losses, joint_losses = v["vp_losses"], v["joint_losses"]
    best = min(vp_losses[-1], joint_losses[-1])
    vp_iters, joint_iters = _iters_to_converge(vp_losses, best), _iters_to_converge(joint_losses, best)

    true_k = np.sort(v["K_TRUE"])
    fit_k = np.sort(v["k_fit"])
    # The docs' claims, at the precision they are stated: "the rates come
    # back to 0.2%" (measured 0.14% in fast mode) "in half the iterations of
    # fitting c and k jointly" (measured 11 against 22; 7 against 16 to converge).
    np.testing.assert_array_less(np.abs(fit_k - true_k) / true_k, 0.002)
    assert 2 * (len(vp_losses) - 1) <= len(joint_losses) - 1, (vp_losses, joint_losses)
    assert 2 * vp_iters <= joint_iters, (vp_iters, joint_iters)

    # The loss fell by orders of magnitude (~7e4x) and stopped at the noise
    # floor 1/2 (m - 4) sigma^2: the residual is noise, not misfit. The ratio is
    # chi-square / dof with ~96 dof, so 0.6..1.4 is a > 2.5-sigma band.
    assert np.isclose(v["NOISE_FLOOR"], 0.5 * (v["M"] - 4) * v["SIGMA"] ** 2)
    assert vp_losses[-1] < 1e-3 * vp_losses[0]
    assert 0.6 < vp_losses[-1] / v["NOISE_FLOOR"] < 1.4
    assert len(vp_losses) - 1 < v["MAX_ITERS"]  # converged, not out of budget

    # Amplitudes: with sigma = 1e-3 and m = 100 the linearised standard error of
    # each c_j is ~1.3e-3 (sigma times O(1/sqrt(m)) times the ill-conditioning of
    # the two correlated exponentials; recomputed here from the Jacobian).
    # 1e-2 is about 8 standard errors, so the check is robust to the seed yet
    # still an order of magnitude tighter than c ~ 1.
    order = np.argsort(v["k_fit"])
    fit_c = np.asarray(v["c_fit"])[order]
    true_c = np.asarray(v["C_TRUE"])[np.argsort(v["K_TRUE"])]
    np.testing.assert_allclose(fit_c, true_c, atol=1e-2)
    stderr = _stderr(t, fit_c, fit_k, vp_losses[-1])
    np.testing.assert_allclose(
        np.concatenate([np.asarray(v["stderr_c"])[order], np.asarray(v["stderr_k"])[order]]), stderr, rtol=1e-6
    )
    assert max(stderr[:2]) < 2.5e-3
    # The errors are consistent with the standard errors.
    np.testing.assert_array_less(np.abs(fit_c - true_c), 5 * stderr[:2])
    np.testing.assert_array_less(np.abs(fit_k - true_k), 5 * stderr[2:])

    # Independent reference: NumPy's lstsq at the fitted rates reproduces the
    # fitted amplitudes and final loss, and nudging any rate by 0.1 % (about
    # one standard error) raises the reduced loss: the rates are a minimum.
    k = np.asarray(v["k_fit"])
    loss, c = _reduced_loss(t, y, k)
    np.testing.assert_allclose(c, v["c_fit"], rtol=1e-8)
    np.testing.assert_allclose(loss, vp_losses[-1], rtol=1e-6)
    for j in range(len(k)):
        for factor in (1 - 1e-3, 1 + 1e-3):
            nudged = k.copy()
            nudged[j] *= factor
            assert _reduced_loss(t, y, nudged)[0] > loss

    # The comparison: the joint (c, k) fit reaches the same minimum, more slowly.
    np.testing.assert_allclose(np.sort(v["k_joint"]), fit_k, rtol=1e-6)
    np.testing.assert_allclose(joint_losses[-1], vp_losses[-1], rtol=1e-6)
    assert vp_iters < joint_iters
