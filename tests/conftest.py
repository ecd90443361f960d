"""Shared test setup: the x64 configuration, hypothesis profile, reference helpers.

The suite runs in both of JAX's configurations. ``JAXPINV_TEST_X64=1`` (the
default of this variable) enables x64, so float64/complex128 inputs,
references and finite differences are available; float32 cases pass explicit
dtypes. ``JAXPINV_TEST_X64=0`` runs in JAX's default configuration (x64 off,
what users run): host tolerances are rounded to float32, default dtypes are
float32. Tests that need float64 carry the ``x64`` marker (a module's
``pytestmark`` or the test's own) and are deselected there with
``-m "not x64"``; CI runs both (see the README's Tests section).
"""

from __future__ import annotations

import os
import re

import jax

X64 = os.environ.get("JAXPINV_TEST_X64", "1") != "0"
jax.config.update("jax_enable_x64", X64)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("JAXPINV_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci")


def random_matrix(rng, shape, dtype=np.float64, rank=None, cond=None):
    """A random ``(*, m, n)`` matrix ``U diag(s) V^H`` with chosen rank and condition.

    Singular values are log-spaced from 1 down to ``1/cond`` over the first
    ``rank`` positions and exactly zero after, so the reference float64 pinv
    is well defined and tests can size their tolerances from ``cond``.
    """
    *batch, m, n = shape
    k = min(m, n)
    rank = k if rank is None else rank
    cond = 10.0 if cond is None else cond
    complex_ = np.issubdtype(np.dtype(dtype), np.complexfloating)

    def gauss(*s):
        x = rng.standard_normal(s)
        if complex_:
            x = x + 1j * rng.standard_normal(s)
        return x

    u, _ = np.linalg.qr(gauss(*batch, m, k))
    v, _ = np.linalg.qr(gauss(*batch, n, k))
    s = np.zeros(k)
    if rank:
        s[:rank] = np.logspace(0, -np.log10(cond), rank)
    a = (u * s[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))
    return a.astype(dtype)


def eps(dtype) -> float:
    """Machine epsilon of the real dtype underlying ``dtype``."""
    return float(jnp.finfo(dtype).eps)


def forward_tol(dtype, cond, n) -> float:
    """Relative forward error allowed for an SVD-based pinv/lstsq of an ``n``-sized matrix.

    A backward-stable SVD perturbs ``A`` by ``O(n eps |A|)``, which moves the
    pseudo-inverse (or solution) of the kept part by ``O(n eps cond)``
    relative; ``10`` is the margin constant, the same everywhere.
    """
    return 10 * n * eps(dtype) * cond


def rel_err(x, ref) -> float:
    """``max |x - ref| / max |ref|`` (elementwise max norm), in float64/complex128."""
    ref = np.asarray(ref)
    return float(np.max(np.abs(np.asarray(x) - ref)) / max(np.max(np.abs(ref)), 1e-300))


def low_rank_factors(rng, batch, m, n, r, dtype):
    """``(X, Y)`` with ``X Y^H`` an ``(*batch, m, n)`` matrix of rank ``r`` (cond of each factor 3).

    Differentiating through the factors keeps the rank fixed, so central
    differences are a valid reference at rank-deficient points too.
    """
    x = random_matrix(rng, batch + (m, r), dtype, cond=3.0)
    y = random_matrix(rng, batch + (n, r), dtype, cond=3.0)
    return jnp.asarray(x), jnp.asarray(y)


def product(x, y):
    """``X Y^H`` over the last two axes."""
    return x @ jnp.conj(jnp.swapaxes(y, -1, -2))


def special_matrices() -> dict[str, np.ndarray]:
    """Points where the SVD-based derivative rule divides by zero (gaps, zeros)."""
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    u = rng.standard_normal((30, 1))
    return {
        "zero": np.zeros((4, 3)),
        "identity": np.eye(4),
        "orthogonal": q,
        "repeated": np.diag([2.0, 2.0, 1.0, 1.0]) @ q[:4, :4],
        "repeated_deficient": np.diag([3.0, 3.0, 0.0]),
        "rank1_30x30": u @ u.T,
        "wide_repeated": np.eye(3, 5),
    }


def check_grads_per_entry(f, args, order, tol):
    """``jax.test_util.check_grads`` fwd+rev with ``tol`` meaning per entry.

    jax's ``check_close`` multiplies atol/rtol by the number of compared
    entries; dividing by the output size undoes that.
    """
    from jax.test_util import check_grads

    size = max(jax.eval_shape(f, *args).size, 1)
    check_grads(f, args, order=order, modes=("fwd", "rev"), atol=tol / size, rtol=tol / size, eps=1e-5)


# --------------------------------------------------------------------------- #
# Examples (examples/*.py): run as a user would, in fast mode, in a subprocess
# --------------------------------------------------------------------------- #

import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture
def run_example(tmp_path):
    """Run ``examples/NAME.py`` in fast mode; return its ``RESULT`` dict and output dir.

    The example runs in a fresh interpreter (as ``python examples/NAME.py``
    would, so its own XLA flags and x64 choice apply), writes its PNGs to
    ``tmp_path`` instead of docs/images, and reports the numbers behind its
    claims on a last line ``RESULT {json}``. A hang fails after ``timeout`` s.
    """
    pytest.importorskip("matplotlib")

    def run(name: str, timeout: float = 240) -> tuple[dict, pathlib.Path]:
        env = dict(os.environ, JAXPINV_EXAMPLES_FAST="1", JAXPINV_EXAMPLES_OUT=str(tmp_path), MPLBACKEND="Agg")
        env.pop("XLA_FLAGS", None)
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / f"{name}.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        assert len(lines) == 1, proc.stdout[-3000:]
        return json.loads(lines[0][len("RESULT ") :]), tmp_path

    return run


@pytest.fixture
def on_eight_devices():
    """Run ``python ARGS...`` in a fresh interpreter with 8 simulated CPU devices and x64 on.

    The device count is an XLA flag that must be in the environment before the
    child imports JAX; the repository goes first on its path. Returns the
    completed process (stdout and stderr captured); a hang fails at ``timeout``.
    """

    def run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env["XLA_FLAGS"] = " ".join(
            filter(None, [env.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"])
        )
        env["JAX_ENABLE_X64"] = "1"
        env["JAX_PLATFORMS"] = "cpu"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return subprocess.run(
            [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )

    return run


def x64(enabled: bool):
    """A context with ``jax_enable_x64`` set to ``enabled`` (jax.enable_x64, or the older experimental names)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(enabled)
    from jax import experimental

    return experimental.enable_x64() if enabled else experimental.disable_x64()


# --------------------------------------------------------------------------- #
# The slow marker: what CI's floor run (-m "not slow") leaves out. Whole
# modules that run subprocesses at size (the examples, the benchmark's quick
# mode, the 1024x1024 Hermitian case) and the self-check's timing table; the
# newest-versions run executes everything.
# --------------------------------------------------------------------------- #

SLOW_MODULES = ("test_example_", "test_large", "test_benchmarks", "test_docs")
# Slow single tests (seconds each; CI runs them in its "-m slow" command): the
# self-check in a subprocess (CI also runs it directly), and second-order
# checks whose first-order and unbatched twins stay in the quick suite.
SLOW_TESTS = (
    "test_self_check_with_timing",
    "test_self_check_no_timing",
    "test_hessian_through_vmap_matches_unbatched",
    "test_zero_damping_second_derivative_on_rank_preserving_paths",
    "test_check_grads_batch_mixing_full_rank_and_deficient",
)


# Slow parametrizations ("module::test[params]", where "*" in the params
# matches anything and "a|b" lists alternatives): the
# costliest cases of the parametrized derivative checks (each compiles a dozen
# programs), the 8-device sharding subprocess, and reverse-through-vmap
# variants whose siblings (pinv, lstsq, wide, Hermitian, damped) stay quick.
# Every one runs in CI's "-m slow" command.
SLOW_PARAMS = (
    "test_sharding::test_sharded_batch_stays_sharded",
    "test_vmap_reverse::test_reverse_through_vmap_matches_unbatched[lstsq_damping-*]",
    "test_vmap_reverse::test_reverse_through_vmap_matches_unbatched[lstsq_full-*]",
    "test_vmap_reverse::test_reverse_through_vmap_matches_unbatched[pinverse-*]",
    "test_vmap_reverse::test_reverse_through_vmap_matches_unbatched[damped_pinv-full]",
    "test_vmap_reverse::test_reverse_through_vmap_matches_unbatched[pinv_hermitian-full]",
    "test_vmap_reverse::test_reverse_through_vmap_matches_unbatched[pinv_atol-mixed]",
    "test_derivatives::test_check_grads_rank_preserving[2|5|6|9]",
    "test_derivatives::test_derivatives_finite_where_svd_rule_is_not[rank1_30x30-*]",
    "test_derivatives::test_derivatives_finite_where_svd_rule_is_not[wide_repeated-*]",
    "test_derivatives::test_derivatives_finite_where_svd_rule_is_not[orthogonal-False]",
    "test_derivatives::test_check_grads_hermitian_rank_preserving[*-complex128]",
    "test_lstsq::test_check_grads_rank_preserving[4-4-4-2-complex128]",
    "test_lstsq::test_check_grads_rank_preserving[6-4-2-2-float64]",
    "test_fast_path::test_derivatives_on_the_fast_path_match_finite_differences[shape1|shape2]",
    "test_damped::test_check_grads_random_directions_across_rank[*-shape2-1]",
    "test_residuals::test_reverse_mode_saves_a_p_and_the_small_gram_matrix[complex64-*]",
)


_SLOW_PARAMS_RE = re.compile(
    "|".join(
        re.escape(p.split("[")[0])
        + (
            ""
            if "[" not in p
            else r"\[(?:"
            + "|".join(re.escape(alt).replace(r"\*", ".*") for alt in p.split("[", 1)[1][:-1].split("|"))
            + r")\]"
        )
        for p in SLOW_PARAMS
    )
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        slow = module.startswith(SLOW_MODULES) or item.originalname in SLOW_TESTS
        if slow or _SLOW_PARAMS_RE.fullmatch(f"{module}::{item.name}"):
            item.add_marker(pytest.mark.slow)
