"""Reference helpers for the tests: matrix builders, tolerances, gradient checks, a subprocess runner.

Test modules import these (``from helpers import random_matrix``); pytest's
default import mode puts ``tests/`` on ``sys.path``. ``conftest.py`` holds only
configuration and fixtures: it sets ``jax_enable_x64`` (``JAXPINV_TEST_X64``)
before any test module, and so before this module, is imported.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence

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


@contextlib.contextmanager
def multi_device_slot() -> Iterator[None]:
    """Hold the one slot for a process with simulated devices, across pytest-xdist workers.

    Two such processes on a 2-core machine starve each other's device threads
    past XLA's collective rendezvous timeout (40 s, then the process aborts:
    seen in CI, jax 0.10.2), so they take turns (a file lock in the temporary
    directory; all of them together run in about 2.5 minutes).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as before
        yield
        return
    with open(pathlib.Path(tempfile.gettempdir()) / "jaxpinv-multi-device.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
    XLA flag the child reads before it starts JAX), one such process at a time
    (:func:`multi_device_slot`). ``cwd`` defaults to this
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
    slot = multi_device_slot() if devices is not None else contextlib.nullcontext()
    with slot:
        return subprocess.run(
            [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )


# --------------------------------------------------------------------------- #
# Examples
# --------------------------------------------------------------------------- #

_VALUES = "JAXPINV-TEST-VALUES "

# What the test appends to a run (a cell of its own in a kernel, the tail of the script's driver):
# evaluate expressions in the example's namespace and print them as one JSON line. Arrays become
# nested lists, NaN stays NaN (Python's json reads it back), anything else JSON lacks its str().
_REPORT = """
import json as _json
import numpy as _np


def _plain(x):
    if isinstance(x, (set, frozenset)):
        return sorted(x, key=str)
    if isinstance(x, _np.generic) or hasattr(x, "__array__"):
        return _np.asarray(x).tolist()
    return str(x)


print({marker!r} + _json.dumps({{e: eval(e, _ns) for e in {exprs!r}}}, default=_plain))
"""

# The script run: ``python -c _DRIVER PATH``, the example executed by runpy as ``__main__``.
_DRIVER = "import runpy, sys\n_ns = runpy.run_path(sys.argv[1], run_name='__main__')\n"


def _example_env(save: str | os.PathLike[str] | None) -> dict[str, str]:
    """The environment of an example run: fast mode, figures to ``save`` (or nowhere), no display.

    The examples set their own XLA flags and plot with the default backend: the kernel's inline one,
    or in a script without a display (none here) the one matplotlib falls back to (Agg).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["JAXPINV_EXAMPLES_FAST"] = "1"
    for key in ("JAXPINV_EXAMPLES_SAVE", "MPLBACKEND", "XLA_FLAGS", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(key, None)
    if save is not None:
        env["JAXPINV_EXAMPLES_SAVE"] = str(save)
    return env


def _parse_values(text: str) -> dict:
    import json

    lines = [line for line in text.splitlines() if line.startswith(_VALUES)]
    assert len(lines) == 1, text[-3000:]
    return json.loads(lines[0][len(_VALUES) :])


def execute_example(
    name: str,
    mode: str,
    exprs: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    save: str | os.PathLike[str] | None = None,
    timeout: float = 300,
) -> tuple[dict, list]:
    """Run ``examples/NAME.py`` in fast mode and read ``exprs`` from its namespace afterwards.

    ``mode="script"``: in a fresh interpreter, as ``python examples/NAME.py`` would run it (by
    ``runpy``, which returns its globals). ``mode="kernel"``: as a notebook (jupytext reads the
    ``# %%`` cells) in a fresh ``python3`` Jupyter kernel, with one cell added at the end. Either way
    the example's file is not changed, the process starts in ``cwd``, and ``save`` is the
    ``JAXPINV_EXAMPLES_SAVE`` folder (``None``: the variable is unset). Returns the values (JSON:
    arrays as lists) keyed by expression, and for a kernel its executed code cells (else ``[]``).
    A hang fails after ``timeout`` seconds; an exception in the example fails the run.
    """
    path = EXAMPLES / f"{name}.py"
    env = _example_env(save)
    report = _REPORT.format(marker=_VALUES, exprs=list(exprs))
    if "xla_force_host_platform_device_count" in path.read_text():  # simulated devices: take turns
        with multi_device_slot():
            return _execute(path, mode, env, report, cwd, timeout)
    return _execute(path, mode, env, report, cwd, timeout)


def _execute(
    path: pathlib.Path, mode: str, env: dict[str, str], report: str, cwd: str | os.PathLike[str], timeout: float
) -> tuple[dict, list]:
    """:func:`execute_example`'s run."""
    if mode == "script":
        proc = subprocess.run(
            [sys.executable, "-c", _DRIVER + report, str(path)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return _parse_values(proc.stdout), []
    assert mode == "kernel", mode
    import jupytext
    import nbclient
    import nbformat

    nb = jupytext.read(path)
    nb.cells.append(nbformat.v4.new_code_cell("_ns = globals()\n" + report))
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3")
    client.execute(cwd=str(cwd), env=env)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.get("output_type") == "error"]
    assert not errors, errors
    text = "".join(out.get("text", "") for out in code[-1].outputs)
    return _parse_values(text), code[:-1]


def checkout_files() -> dict[str, tuple[int, int] | None]:
    """What an example could write to in the checkout: compare a snapshot before and after a run.

    The paths of the files under ``examples/`` and ``docs/`` (without caches and hidden files and
    folders) and of the figures at the root, with size and modification time for the committed
    figures (``docs/images``): a run may add no file and touch no figure (while someone may edit
    the text, or add files elsewhere, meanwhile).
    """
    found: dict[str, tuple[int, int] | None] = {}
    for entry in REPO.iterdir():
        if entry.suffix in (".png", ".pdf", ".svg"):  # a figure written to the working directory
            found[entry.name] = None
    for top in ("examples", "docs"):
        for folder, dirs, files in os.walk(REPO / top):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            for file in files:
                if not file.startswith("."):
                    found[os.path.relpath(pathlib.Path(folder) / file, REPO)] = None
    for png in (REPO / "docs" / "images").iterdir():
        found[os.path.relpath(png, REPO)] = (png.stat().st_size, png.stat().st_mtime_ns)
    return found


def run_example_checked(
    name: str,
    mode: str,
    exprs: Sequence[str],
    tmp_path: pathlib.Path,
    figures: Sequence[str] = (),
    timeout: float = 300,
) -> dict:
    """``execute_example`` as users run it, and what it leaves behind checked; returns the values.

    As a script: started in an empty folder outside the checkout with ``JAXPINV_EXAMPLES_SAVE``
    naming another, it writes exactly ``figures`` (PNG files of a real plot's size) there and nothing
    in its working folder (no ``./docs/images``). In a kernel: started in ``examples/`` (where Jupyter
    starts it) without the variable, every cell that calls ``plt.show()`` shows its figure inline,
    one per name in ``figures``. In both, no file of the checkout is added or changed.
    """
    before = checkout_files()
    if mode == "script":
        cwd, save = tmp_path / "cwd", tmp_path / "figures"
        cwd.mkdir()
        save.mkdir()
        values, _ = execute_example(name, mode, exprs, cwd=cwd, save=save, timeout=timeout)
        assert list(cwd.iterdir()) == []
        assert sorted(p.name for p in save.iterdir()) == sorted(f"{f}.png" for f in figures)
        for png in save.iterdir():
            assert png.stat().st_size > 10_000, png
    else:
        values, cells = execute_example(name, mode, exprs, cwd=EXAMPLES, timeout=timeout)
        plotting = [cell for cell in cells if "plt.show()" in cell.source]
        assert len(plotting) == len(figures), [cell.source[:80] for cell in plotting]
        for cell in plotting:
            shown = [out for out in cell.outputs if "image/png" in out.get("data", {})]
            assert shown, f"{name}: a plotting cell shows no figure:\n{cell.source[:300]}"
    after = checkout_files()
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), {"added": added, "removed": removed, "changed": changed}
    return values
