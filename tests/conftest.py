"""Shared test configuration: the x64 setting, the hypothesis profile, fixtures.

The suite runs in both of JAX's configurations. ``JAXPINV_TEST_X64=1`` (the
default of this variable) enables x64, so float64/complex128 inputs,
references and finite differences are available; float32 cases pass explicit
dtypes. ``JAXPINV_TEST_X64=0`` runs in JAX's default configuration (x64 off,
what users run): host tolerances are rounded to float32, default dtypes are
float32. Tests that need float64 carry the ``x64`` marker (a module's
``pytestmark`` or the test's own) and are deselected there with
``-m "not x64"``; CI runs both (see the README's Tests section).

Tests that take more than a few seconds carry the ``slow`` marker where they
are defined (a module's ``pytestmark``, the test's decorator, or a
``pytest.param(..., marks=pytest.mark.slow)``); CI's floor run leaves them out
with ``-m "not slow"`` and runs them in its ``-m slow`` command.

The reference helpers (matrix builders, tolerances, the subprocess runner)
live in ``helpers.py``; this module sets x64 before anything imports them.
"""

from __future__ import annotations

import os

import jax

X64 = os.environ.get("JAXPINV_TEST_X64", "1") != "0"
jax.config.update("jax_enable_x64", X64)

import subprocess  # noqa: E402

import pytest  # noqa: E402
from helpers import REPO, run_python  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("JAXPINV_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci")


@pytest.fixture
def on_eight_devices():
    """Run ``python ARGS...`` in a fresh interpreter with 8 simulated CPU devices and x64 on.

    The device count is an XLA flag that must be in the environment before the
    child imports JAX; the repository goes first on its path. Returns the
    completed process (stdout and stderr captured); a hang fails at ``timeout``.
    """

    def run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
        return run_python(args, devices=8, env_extra={"JAX_ENABLE_X64": "1"}, cwd=REPO, timeout=timeout)

    return run
