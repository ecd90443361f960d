"""The one place that chooses a path: the registry, the order, and the batch-level decision.

``PATHS`` lists the paths that may stand in for the SVD, most preferred
first; each is a unit (:class:`jaxpinv._kernel.Path`) with its static
eligibility, its per-matrix verdict and its compute. The SVD
(:mod:`jaxpinv._svd`) is the definition and the last resort. For a batch, the
eligible paths are tried in order: each decides per matrix, and one
``lax.cond`` on "every matrix qualifies" (unbatched under ``vmap``, see
:mod:`jaxpinv._batching`) takes it or moves on, handing a QR it already has to
the SVD. :func:`taken` answers which path runs by the very same cascade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv import _qr, _svd
from jaxpinv._batching import all_true
from jaxpinv._kernel import Clean, Path, PinvParts, Problem, SolveParts

PATHS: tuple[Path, ...] = (_qr.PATH,)
"""The registry: paths that may replace the SVD, most preferred first."""

SVD = "svd"

T = TypeVar("T")


def names() -> tuple[str, ...]:
    """Every path's name, in :func:`taken`'s numbering (the SVD last)."""
    return (*(p.name for p in PATHS), SVD)


def _cascade(
    paths: tuple[Path, ...],
    clean: Clean,
    atol: jax.Array,
    rtol: jax.Array,
    problem: Problem,
    finish: Callable[[Path, Any], T],
    fallback: Callable[[_svd.Reduction | None], T],
    reduction: _svd.Reduction | None = None,
) -> T:
    if not paths:
        return fallback(reduction)
    path, rest = paths[0], paths[1:]
    verdict = path.decide(clean, atol, rtol, problem)
    return lax.cond(
        all_true(verdict.ok),
        lambda: finish(path, verdict.stage),
        lambda: _cascade(rest, clean, atol, rtol, problem, finish, fallback, verdict.reduction or reduction),
    )


def _run(
    clean: Clean,
    atol: jax.Array,
    rtol: jax.Array,
    problem: Problem,
    auto: bool,
    finish: Callable[[Path, Any], T],
    fallback: Callable[[_svd.Reduction | None], T],
) -> T:
    paths = tuple(p for p in PATHS if p.eligible(problem)) if auto else ()
    return _cascade(paths, clean, atol, rtol, problem, finish, fallback)


def pinv(clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem, auto: bool) -> PinvParts:
    """:class:`PinvParts` of a sanitised, non-empty batch; ``auto=False`` (``method="svd"``): the SVD only."""

    def svd(reduction: _svd.Reduction | None) -> PinvParts:
        return _svd.pinv(clean, atol, rtol, problem.hermitian, reduction)

    return _run(clean, atol, rtol, problem, auto, lambda path, stage: path.pinv(stage, problem), svd)


def solve(clean: Clean, b: jax.Array, atol: jax.Array, rtol: jax.Array, problem: Problem, auto: bool) -> SolveParts:
    """:class:`SolveParts` of a sanitised, non-empty batch and right-hand sides ``b`` (non-finite ones zeroed)."""

    def svd(reduction: _svd.Reduction | None) -> SolveParts:
        return _svd.solve(clean, b, atol, rtol, reduction)

    return _run(clean, atol, rtol, problem, auto, lambda path, stage: path.solve(stage, b, problem), svd)


def taken(clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem, auto: bool) -> jax.Array:
    """Which path :func:`pinv` and :func:`solve` take for this batch: an index into :func:`names`."""
    index = {p.name: i for i, p in enumerate(PATHS)}
    return _run(
        clean, atol, rtol, problem, auto, lambda p, _: jnp.int32(index[p.name]), lambda _: jnp.int32(len(PATHS))
    )
