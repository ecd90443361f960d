"""Hooks for jaxpinv's own tests and benchmarks (as ``lineax.internal``): no stability promise.

They ask the places that decide (the host check, the preamble, the dispatch)
rather than mirroring them, so what they report is what runs.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jaxpinv import _check, _dispatch, _estimate, _preamble, _svd
from jaxpinv._kernel import Problem, non_finite, sanitize

__all__ = ["QR_MARGIN", "QR_RATIO", "QR_SMALL", "QR_STEPS", "non_finite", "path_names", "path_taken"]

QR_MARGIN = _estimate.MARGIN
"""The QR path takes a matrix only if its smallest singular value is estimated above this times the cutoff."""
QR_SMALL = _estimate.SMALL
"""Up to this ``min(m, n)`` the QR path decides by Schatten 4-norm bounds; above, by the power method."""
QR_STEPS = _estimate.STEPS
"""Power-method steps above ``QR_SMALL``."""
QR_RATIO = _svd.QR_RATIO
"""The SVD path reduces a matrix by QR first when one side is at least this many times the other."""


def path_names() -> tuple[str, ...]:
    """The registered paths, most preferred first; ``"svd"`` last."""
    return _dispatch.names()


def path_taken(a: Any, *, atol: Any = None, rtol: Any = None, hermitian: bool = False, method: str = "auto") -> str:
    """Which path ``pinv(a, atol=atol, rtol=rtol, hermitian=hermitian, method=method)`` takes (``lstsq`` alike).

    A path's name (``"svd"``: the whole batch); ``"qr+svd"`` where the QR
    path took the batch but the SVD redid the few members it turned away;
    ``"none"`` for an empty batch (nothing is factored).
    """
    method = _check.method("path_taken", method)
    c = _check.check("path_taken", a, atol=atol, rtol=rtol, hermitian=hermitian)
    index, redone = (int(x) for x in _taken(c.a, c.atol, c.rtol, c.spec, method))
    if index < 0:
        return "none"
    name = _dispatch.names()[index]
    return f"{name}+svd" if redone and name != "svd" else name


@partial(jax.jit, static_argnames=("spec", "method"))
def _taken(a: jax.Array, atol: Any, rtol: Any, spec: _preamble.Spec, method: str) -> tuple[jax.Array, jax.Array]:
    x = _preamble.prepare(spec, a, atol, rtol)
    if x.a.size == 0:
        return jnp.int32(-1), jnp.int32(0)
    return _dispatch.taken(sanitize(x.a), x.atol, x.rtol, Problem.of(x.a, spec.hermitian), method)
