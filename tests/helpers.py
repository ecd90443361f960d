"""Reference helpers for the tests: matrix builders, tolerances, gradient checks, a subprocess runner.

Test modules import these (``from helpers import random_matrix``); pytest's
default import mode puts ``tests/`` on ``sys.path``. ``conftest.py`` holds only
configuration and fixtures: it sets ``jax_enable_x64`` (``JAXPINV_TEST_X64``)
before any test module, and so before this module, is imported.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


# --------------------------------------------------------------------------- #
# Matrices
# --------------------------------------------------------------------------- #


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


def exact_svd(rng, m, n, cond, values=None):
    """``(Q, s, V)``: ``A = Q diag(s) V^T`` and its pseudo-inverse ``V diag(1/s) Q^T`` exact in float32 and float64.

    ``m`` and ``n`` are powers of 4 (so that the Hadamard matrices over their norms are exact).

    ``Q``: ``n`` random columns of the ``m x m`` Hadamard matrix over ``sqrt(m)`` (rows with
    random signs), ``V``: the ``n x n`` one over ``sqrt(n)`` (columns with random signs), ``s``:
    powers of two from 1 down to about ``1 / cond`` (or ``values``, powers of two): every entry is
    a short sum of powers of two, so a reference built from them is free of the ``eps cond`` a
    computed pseudo-inverse would bring.
    """
    import scipy.linalg

    q = scipy.linalg.hadamard(m) / np.sqrt(m)
    q = q[:, rng.choice(m, n, replace=False)] * rng.choice([-1.0, 1.0], (m, 1))
    v = scipy.linalg.hadamard(n) / np.sqrt(n) * rng.choice([-1.0, 1.0], (1, n))
    s = 2.0 ** -np.round(np.linspace(0, np.log2(cond), n)) if values is None else np.asarray(values, float)
    return q, s, v


def adjoint(x):
    """``x^H`` over the last two axes, in NumPy."""
    return np.conj(np.swapaxes(x, -1, -2))


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


# --------------------------------------------------------------------------- #
# Tolerances and errors
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# Derivatives and configuration
# --------------------------------------------------------------------------- #


def jaxpr_eqns(f, *args):
    """Every equation of the jaxpr of ``f(*args)``, those of its sub-jaxprs (cond branches, loops, rules) included."""

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            yield eqn
            for param in eqn.params.values():
                for sub in param if isinstance(param, (tuple, list)) else (param,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        yield from walk(inner)

    yield from walk(jax.make_jaxpr(f)(*args).jaxpr)


def check_grads_per_entry(f, args, order, tol):
    """``jax.test_util.check_grads`` fwd+rev with ``tol`` meaning per entry.

    jax's ``check_close`` multiplies atol/rtol by the number of compared
    entries; dividing by the output size undoes that.
    """
    from jax.test_util import check_grads

    size = max(jax.eval_shape(f, *args).size, 1)
    check_grads(f, args, order=order, modes=("fwd", "rev"), atol=tol / size, rtol=tol / size, eps=1e-5)


def x64(enabled: bool):
    """A context with ``jax_enable_x64`` set to ``enabled`` (jax.enable_x64, or the older experimental names)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(enabled)
    from jax import experimental

    return experimental.enable_x64() if enabled else experimental.disable_x64()


# --------------------------------------------------------------------------- #
# Fresh interpreters
# --------------------------------------------------------------------------- #


def run_python(
    args: Sequence[str],
    *,
    timeout: float,
    env_extra: Mapping[str, str | None] | None = None,
    devices: int | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS...`` in a fresh interpreter; return the completed process (output captured as text).

    The child inherits this process's environment with the repository first on
    ``PYTHONPATH`` (so the checkout under test is the ``jaxpinv`` it imports);
    then ``env_extra`` is applied (a value of ``None`` removes the variable, so
    ``{"XLA_FLAGS": None}`` drops the flags and ``{"PYTHONPATH": dir}`` replaces
    the path). ``devices=N`` appends ``--xla_force_host_platform_device_count=N``
    to ``XLA_FLAGS`` and sets ``JAX_PLATFORMS=cpu``: N simulated CPU devices (an
    XLA flag the child reads before it starts JAX). ``cwd`` defaults to this
    process's. ``timeout`` is required: a hang fails instead of stalling the suite.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for key, value in (env_extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if devices is not None:
        env["XLA_FLAGS"] = " ".join(
            filter(None, [env.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={devices}"])
        )
        env["JAX_PLATFORMS"] = "cpu"
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
