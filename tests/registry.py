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
    return np.append(x, np.sum(np.abs(b - a @ x) ** 2))


@dataclass(frozen=True)
class Entry:
    """One public function as the cross-cutting tests call it."""

    call: Callable[[Any, Any, str], Any]
    reference: Callable[[np.ndarray, np.ndarray], np.ndarray]
    method: bool = True
    """Does it take ``method`` (so every path may run), or is it the SVD's only?"""
    hermitian: bool = False
    differentiable: bool = True
    error_call: Callable[[Any], Any] | None = None
    """Called with a 1-D array: must raise naming the function."""

    def shapes(self) -> list[str]:
        return ["square"] if self.hermitian else list(SHAPES)

    def paths(self) -> tuple[str, ...]:
        return PATHS if self.method else ("svd",)


# Which path takes the registry's inputs (full rank, cond <= 5) for a function and shape class, given
# that the path was asked for (method="auto"; "svd" is forced with method="svd"). A new path is added
# here once; a path missing here fails every registry test with a KeyError naming it.
TAKES: dict[str, Callable[[Entry, str], bool]] = {
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
    ),
    "lstsq": Entry(lambda a, b, method: jaxpinv.lstsq(a, b, method=method), lambda a, b: np.linalg.pinv(a) @ b),
    "lstsq_full": Entry(lambda a, b, method: jnp.append(*jaxpinv.lstsq_full(a, b)[:2]), _lstsq_full_ref, method=False),
    "lstsq_damping": Entry(
        lambda a, b, method: jaxpinv.lstsq(a, b, damping=DAMPING), lambda a, b: _damped_ref(a, b) @ b, method=False
    ),
    "damped_pinv": Entry(lambda a, b, method: jaxpinv.damped_pinv(a, DAMPING), _damped_ref, method=False),
}


def method_of(path: str) -> str:
    """The ``method`` argument under which ``path`` may run (``"svd"`` forces the SVD)."""
    return "svd" if path == "svd" else "auto"


def cases(differentiable: bool = False, quick: str = "all") -> list[Any]:
    """``pytest.param(name, path, shape)`` for every function x path x shape class.

    ``quick="one"``: each function x path runs one shape class in the quick
    suite (rotating, so every class appears) and the others under ``-m slow``.
    """
    out = []
    for i, (name, entry) in enumerate(FUNCTIONS.items()):
        if differentiable and not entry.differentiable:
            continue
        for j, path in enumerate(entry.paths()):
            shapes = [shape for shape in entry.shapes() if TAKES[path](entry, shape)]
            for shape in shapes:
                slow = quick == "one" and shape != shapes[(i + j) % len(shapes)]
                marks = [pytest.mark.slow] if slow else []
                out.append(pytest.param(name, path, shape, id=f"{name}-{path}-{shape}", marks=marks))
    return out


def inputs(
    name: str, shape: str, dtype: Any = np.float64, batch: tuple[int, ...] = (), seed: int = 0
) -> tuple[Any, Any]:
    """A full-rank, well-conditioned ``a`` (cond 5: every path may take it) and a right-hand side ``b``."""
    from helpers import random_matrix

    rng = np.random.default_rng(seed)
    m, n = SHAPES[shape]
    a = random_matrix(rng, batch + (m, n), dtype, cond=5.0)
    if FUNCTIONS[name].hermitian:
        a = a + np.conj(np.swapaxes(a, -1, -2))
        a = (a + 4 * np.eye(m)).astype(dtype)  # eigenvalues in [2, 6]: full rank, cond <= 3
    b = random_matrix(rng, batch + (m, 1), dtype, cond=1.0)[..., 0]
    return a, b
