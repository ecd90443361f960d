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

from jaxpinv import _cholesky, _qr, _svd
from jaxpinv._batching import all_true
from jaxpinv._kernel import Batch, Clean, Path, PinvParts, Problem, SolveParts, at_batch

PATHS: tuple[Path, ...] = (_cholesky.PATH, _qr.PATH)
"""The registry: paths that may replace the SVD, most preferred first."""

SVD = "svd"

PINV_CORES = (2, 2, 0, 2, 1)
"""The non-batch dimensions of :class:`PinvParts`' fields."""
SOLVE_CORES = (2, 0, 1)
"""The non-batch dimensions of :class:`SolveParts`' fields."""

T = TypeVar("T")
Parts = TypeVar("Parts", PinvParts, SolveParts)


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


def chosen(problem: Problem, method: str) -> tuple[Path, ...]:
    """The paths compiled in, most preferred first (the SVD always follows): the static policy.

    ``method="auto"``: each path that may run here (``eligible``) and whose
    gain repays its compile time at this size (``repays``); a path's own name
    (``method="qr"``): that path wherever it may run, whatever the size;
    ``"svd"``: none.
    """
    return tuple(
        p for p in PATHS if p.eligible(problem) and (method == p.name or (method == "auto" and p.repays(problem)))
    )


def _run(
    clean: Clean,
    atol: jax.Array,
    rtol: jax.Array,
    problem: Problem,
    method: str,
    finish: Callable[[Path, Any], T],
    fallback: Callable[[_svd.Reduction | None], T],
) -> T:
    return _cascade(chosen(problem, method), clean, atol, rtol, problem, finish, fallback)


def _at(parts: Parts, batch: Batch, cores: tuple[int, ...]) -> Parts:
    """Every field of ``parts`` broadcast to ``batch`` (``cores``: each field's non-batch dimensions).

    ``a`` is factored at its own batch; a path computes what does not depend on
    the cutoff (the QR path's ``X``) once per matrix, so every path's parts
    are brought to one shape here, as both branches of a ``cond`` must be.
    """
    return type(parts)(*(at_batch(x, batch, core) for x, core in zip(parts, cores)))


def pinv(clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem, method: str) -> PinvParts:
    """:class:`PinvParts` of a sanitised, non-empty batch, by the paths :func:`chosen` for ``method``.

    ``clean.a`` is at its own batch shape, the parts at that shape broadcast with the tolerances'.
    """
    batch = Batch.of(atol, rtol, clean.a)

    def svd(reduction: _svd.Reduction | None) -> PinvParts:
        return _at(_svd.pinv(clean, atol, rtol, problem.hermitian, reduction), batch, PINV_CORES)

    def fast(path: Path, stage: Any) -> PinvParts:
        return _at(path.pinv(stage, problem), batch, PINV_CORES)

    return _run(clean, atol, rtol, problem, method, fast, svd)


def solve(clean: Clean, b: jax.Array, atol: jax.Array, rtol: jax.Array, problem: Problem, method: str) -> SolveParts:
    """:class:`SolveParts` of a sanitised, non-empty batch and right-hand sides ``b`` (non-finite ones zeroed).

    The parts come out at the batch shapes of ``a``, ``b`` and the tolerances broadcast.
    """
    batch = Batch.of(atol, rtol, clean.a, b)

    def svd(reduction: _svd.Reduction | None) -> SolveParts:
        return _at(_svd.solve(clean, b, atol, rtol, reduction), batch, SOLVE_CORES)

    def fast(path: Path, stage: Any) -> SolveParts:
        return _at(path.solve(stage, b, problem), batch, SOLVE_CORES)

    return _run(clean, atol, rtol, problem, method, fast, svd)


def taken(clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem, method: str) -> jax.Array:
    """Which path :func:`pinv` and :func:`solve` take for this batch: an index into :func:`names`."""
    index = {p.name: i for i, p in enumerate(PATHS)}
    return _run(
        clean, atol, rtol, problem, method, lambda p, _: jnp.int32(index[p.name]), lambda _: jnp.int32(len(PATHS))
    )
