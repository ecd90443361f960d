"""The registry: every public function x every path x shape classes, for the cross-cutting tests.

A new public function or a new path is added here once; ``tests/test_registry.py``
then runs the derivative, reverse-through-``vmap``, dtype and error checks on
it. Each entry is a per-matrix function of ``(a, b, method)`` (``b`` a vector
right-hand side, ignored by the functions that take none) and its float64
NumPy reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest

import jaxpinv
from jaxpinv.internal import path_names

SHAPES = {"square": (4, 4), "tall": (6, 3), "wide": (3, 6)}  # tall/wide: m >= 2n, reduced by QR first
PATHS = path_names()  # every registered path, the SVD last
DAMPING = 0.3
RCOND = 1e-10


def _damped_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return (np.conj(vh.T) * (s / (s**2 + DAMPING**2))) @ np.conj(u.T)


def _lstsq_full_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = np.linalg.pinv(a) @ b
    return np.concatenate([x, np.sum(np.abs(b - a @ x) ** 2, axis=0)[None]])  # one more row (entry)


def _lstsq_full(a: Any, b: Any, scale: Any = 1.0) -> Any:
    """The solution with the residuals as one more row (one more entry for a vector ``b``), so that
    column ``j`` of the output depends on column ``j`` of ``b`` alone; at ``scale``, ``x(c a) c``."""
    x, residuals = jaxpinv.lstsq_full(a * scale, b)[:2]
    if jnp.ndim(b) == jnp.ndim(a) - 1:  # vector right-hand sides: x (*, n), residuals (*)
        return jnp.concatenate([x * scale, residuals[..., None]], axis=-1)
    return jnp.concatenate([x * scale, residuals[..., None, :]], axis=-2)


@dataclass(frozen=True)
class Entry:
    """One public function as the cross-cutting tests call it."""

    call: Callable[[Any, Any, str], Any]
    reference: Callable[[np.ndarray, np.ndarray], np.ndarray]
    method: bool = True
    """Does it take ``method`` (so every path may run), or is it the SVD's only?"""
    hermitian: bool = False
    differentiable: bool = True
    rhs: bool = False
    """Does it take a right-hand side ``b`` (the output's last axis then runs over ``b``'s columns)?"""
    at_scale: Callable[[Any, Any, str, Any], Any] | None = None
    """``(a, b, method, c)``: the function of ``c a`` rescaled to equal ``call(a, b, method)``
    (homogeneity: ``pinv(c a) c = pinv(a)``); None means ``call(c a, b, method) * c``."""

    def scaled(self, a: Any, b: Any, method: str, c: Any) -> Any:
        """The function computed at ``c a`` and rescaled: equal to ``call(a, b, method)`` for every ``c``."""
        if self.at_scale is None:
            return self.call(a * c, b, method) * c
        return self.at_scale(a, b, method, c)

    def shapes(self) -> list[str]:
        return ["square"] if self.hermitian else list(SHAPES)

    def paths(self) -> tuple[str, ...]:
        return PATHS if self.method else ("svd",)


# Which path takes the registry's inputs (full rank, cond <= 5) for a function and shape class, given
# that the path was asked for (method="qr": the QR path at any size; "svd" is forced with method="svd"). A new path is added
# here once; a path missing here fails every registry test with a KeyError naming it.
TAKES: dict[str, Callable[[Entry, str], bool]] = {
    "cholesky": lambda entry, shape: entry.hermitian,
    "qr": lambda entry, shape: True,
    "svd": lambda entry, shape: True,
}


FUNCTIONS: dict[str, Entry] = {
    "pinv": Entry(lambda a, b, method: jaxpinv.pinv(a, method=method), lambda a, b: np.linalg.pinv(a)),
    "pinverse": Entry(
        lambda a, b, method: jaxpinv.pinverse(a, rcond=RCOND, method=method), lambda a, b: np.linalg.pinv(a)
    ),
    "pinv_hermitian": Entry(
        lambda a, b, method: jaxpinv.pinv(a, hermitian=True, method=method),
        lambda a, b: np.linalg.pinv(np.tril(a) + np.conj(np.tril(a, -1).T), hermitian=True),
        hermitian=True,
    ),
    "matrix_rank": Entry(
        lambda a, b, method: jaxpinv.matrix_rank(a),
        lambda a, b: np.asarray(np.linalg.matrix_rank(a)),
        method=False,
        differentiable=False,
        at_scale=lambda a, b, method, c: jaxpinv.matrix_rank(a * c),
    ),
    "lstsq": Entry(
        lambda a, b, method: jaxpinv.lstsq(a, b, method=method), lambda a, b: np.linalg.pinv(a) @ b, rhs=True
    ),
    "lstsq_full": Entry(
        lambda a, b, method: _lstsq_full(a, b),
        _lstsq_full_ref,
        method=False,
        rhs=True,
        at_scale=lambda a, b, method, c: _lstsq_full(a, b, c),
    ),
    "lstsq_damping": Entry(
        lambda a, b, method: jaxpinv.lstsq(a, b, damping=DAMPING),
        lambda a, b: _damped_ref(a, b) @ b,
        method=False,
        rhs=True,
        at_scale=lambda a, b, method, c: jaxpinv.lstsq(a * c, b, damping=DAMPING * c) * c,
    ),
    "damped_pinv": Entry(
        lambda a, b, method: jaxpinv.damped_pinv(a, DAMPING),
        _damped_ref,
        method=False,
        at_scale=lambda a, b, method, c: jaxpinv.damped_pinv(a * c, DAMPING * c) * c,
    ),
}


def method_of(path: str) -> str:
    """The ``method`` argument that runs ``path`` whatever the size: its own name (``"svd"`` forces the SVD).

    ``method="auto"`` leaves the fast paths out below 64 x 64 (the static policy, tests/test_policy.py).
    """
    return path


def cases(differentiable: bool = False, quick: str = "all", offset: int = 0) -> list[Any]:
    """``pytest.param(name, path, shape)`` for every function x path x shape class.

    ``quick="one"``: each function x path runs one shape class in the quick
    suite (rotating, so every class appears; ``offset`` shifts the rotation, so
    that two tests together cover two classes) and the others under ``-m slow``.
    """
    out = []
    for i, (name, entry) in enumerate(FUNCTIONS.items()):
        if differentiable and not entry.differentiable:
            continue
        for j, path in enumerate(entry.paths()):
            shapes = [shape for shape in entry.shapes() if TAKES[path](entry, shape)]
            for shape in shapes:
                slow = quick == "one" and shape != shapes[(i + j + offset) % len(shapes)]
                marks = [pytest.mark.slow] if slow else []
                out.append(pytest.param(name, path, shape, id=f"{name}-{path}-{shape}", marks=marks))
    return out


def inputs(
    name: str,
    shape: str,
    dtype: Any = np.float64,
    batch: tuple[int, ...] = (),
    seed: int = 0,
    cond: float = 5.0,
    columns: int | None = None,
    path: str = "svd",
) -> tuple[Any, Any]:
    """A full-rank ``a`` (cond 5 by default: every path may take it) and a vector right-hand side ``b``
    (a matrix of ``columns`` right-hand sides if given). Hermitian input is indefinite, except for the
    Cholesky ``path`` (positive definite: what it takes)."""
    from helpers import random_matrix

    rng = np.random.default_rng(seed)
    m, n = SHAPES[shape]
    a = random_matrix(rng, batch + (m, n), dtype, cond=cond)
    if FUNCTIONS[name].hermitian:  # Q diag(+-s) Q^H, |eigenvalues| from 1 down to 1/cond, indefinite
        q = random_matrix(rng, batch + (m, m), np.complex128 if np.iscomplexobj(a) else np.float64, cond=1.0)
        values = np.logspace(0, -np.log10(cond), m) * (1.0 if path == "cholesky" else (-1.0) ** np.arange(m))
        a = ((q * values) @ np.conj(np.swapaxes(q, -1, -2))).astype(dtype)
    b = random_matrix(rng, batch + (m, columns or 1), dtype, cond=1.0)
    return a, (b if columns else b[..., 0])
