"""The one place that chooses a path: the registry, the order, and the batch-level decision.

``PATHS`` lists the paths that may stand in for the SVD, most preferred
first; each is a unit (:class:`jaxpinv._kernel.Path`) with its static
eligibility, its per-matrix verdict and its compute. The SVD
(:mod:`jaxpinv._svd`) is the definition and the last resort. For a batch, the
eligible paths are tried in order: each decides per matrix, and one
``lax.cond`` on "every matrix qualifies" takes it or moves on, handing a QR
it already has to the SVD. The last path before the SVD may split a mixed
batch: if at most :func:`capacity` members fail (an eighth of a batch of 8 or more),
they are gathered into a buffer of that fixed size (static shapes, dynamic
contents), the SVD redoes them and they are scattered back into the path's
result. Under ``vmap`` all of this runs once on the whole mapped batch
(:func:`jaxpinv._batching.whole_batch`), so the policy counts the mapped
matrices and the gather reaches across the mapped axis. :func:`taken`
answers which path runs by the very same cascade.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv import _cholesky, _qr, _sharding, _svd
from jaxpinv._batching import all_true, whole_batch
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


Refused = tuple[jax.Array, Any]
"""The first path's ``(ok, stage)`` (:func:`factored`, ``ok`` at the cutoffs' batch, the stage at
``a``'s), where that path is already known not to take the whole batch."""

Patch = Callable[[T, jax.Array, jax.Array], T]
"""``patch(result, ok, failed)``: a path's ``result`` with its ``failed`` members (``~ok``) redone by the SVD."""


def _cascade(
    paths: tuple[Path, ...],
    clean: Clean,
    atol: jax.Array,
    rtol: jax.Array,
    problem: Problem,
    finish: Callable[[Path, Any], T],
    fallback: Callable[[_svd.Reduction | None], T],
    mixed: tuple[int, Patch[T]] | None,
    reduction: _svd.Reduction | None = None,
    refused: Refused | None = None,
) -> T:
    if not paths:
        return fallback(reduction)
    path, rest = paths[0], paths[1:]
    split = None if rest else mixed  # the last path before the SVD, on a batch that may be split
    if refused is None:
        verdict = path.decide(clean, atol, rtol, problem._replace(spare=split[0] if split else 0))
    else:
        verdict = path.resume(*refused)
        if split is None:  # known not to take the whole batch: its finish is not compiled in
            return _cascade(rest, clean, atol, rtol, problem, finish, fallback, mixed, verdict.reduction or reduction)

    def later() -> T:
        return _cascade(rest, clean, atol, rtol, problem, finish, fallback, mixed, verdict.reduction or reduction)

    if split is None:
        return lax.cond(all_true(verdict.ok), lambda: finish(path, verdict.stage), later)
    # Up to ``capacity`` members that failed are gathered for the SVD and scattered back; more, and
    # the whole batch takes the SVD.
    capacity, patch = split
    failed = jnp.sum(~verdict.ok, dtype=jnp.int32)  # unbatched: the dispatch sees the whole batch

    def some() -> T:
        result = finish(path, verdict.stage)
        return lax.cond(failed > 0, lambda: patch(result, verdict.ok, failed), lambda: result)

    return lax.cond(failed <= capacity, some, later)


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
    mixed: tuple[int, Patch[T]] | None,
    refused: Refused | None = None,
) -> T:
    return _cascade(chosen(problem, method), clean, atol, rtol, problem, finish, fallback, mixed, None, refused)


# The split of a mixed batch adds its own kernels (the buffer's SVD, gather and scatter: about
# 0.4 s to jit(pinv) at 32 x 64 x 64 on a CPU core); a buffer of this share of the batch saves at
# least 7/8 of the batch's SVD on a mixed call, and there is none below 8 matrices (the performance page).
SHARE = 8


def capacity(problem: Problem, batch: Batch, *arrays: jax.Array) -> int:
    """How many members a path turned away the SVD redoes on their own; 0: the whole batch moves on.

    A :data:`SHARE`-th of the batch (none below that many matrices): the SVD
    of the few then costs at most that share of the whole batch's. Only
    where the batch is ``a``'s own (no tolerance or right-hand side
    broadcasts it) and no array is explicitly sharded (the gather would move
    members between devices).
    """
    if batch.shape != arrays[0].shape[:-2] or any(_sharding.explicitly_sharded(x) for x in arrays):
        return 0
    return problem.matrices // SHARE


def _members(x: jax.Array, batch: Batch, core: int, index: jax.Array) -> jax.Array:
    """The members ``index`` (into the flattened ``batch``) of ``x`` broadcast to ``batch``."""
    tail = x.shape[x.ndim - core :]
    return jnp.broadcast_to(x, batch.shape + tail).reshape((math.prod(batch.shape), *tail))[index]


def _patch(redo: Callable[[jax.Array], Parts], cores: tuple[int, ...], capacity: int) -> Patch[Parts]:
    """A :data:`Patch` that gathers up to ``capacity`` failed members, ``redo``-es them and scatters them back."""

    def patch(parts: Parts, ok: jax.Array, failed: jax.Array) -> Parts:
        index = jnp.nonzero(~ok.reshape(-1), size=capacity, fill_value=0)[0]
        index = jnp.where(jnp.arange(capacity) < failed, index, index[0])  # pad with a failed member
        redone = redo(index)

        def put(x: jax.Array, y: jax.Array, core: int) -> jax.Array:
            members = math.prod(x.shape[: x.ndim - core])
            return x.reshape((members, *x.shape[x.ndim - core :])).at[index].set(y).reshape(x.shape)

        return type(parts)(*(put(x, y, core) for x, y, core in zip(parts, redone, cores)))

    return patch


def _whole(problem: Problem, a: jax.Array) -> Problem:
    """``problem`` with the batch as the dispatch sees it (under ``vmap``, the mapped axes too)."""
    return problem._replace(matrices=math.prod(a.shape[:-2]))


def _at(parts: Parts, batch: Batch, cores: tuple[int, ...]) -> Parts:
    """Every field of ``parts`` broadcast to ``batch`` (``cores``: each field's non-batch dimensions).

    ``a`` is factored at its own batch; a path computes what does not depend on
    the cutoff (the QR path's ``X``) once per matrix, so every path's parts
    are brought to one shape here, as both branches of a ``cond`` must be.
    """
    return type(parts)(*(at_batch(x, batch, core) for x, core in zip(parts, cores)))


def pinv(
    clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem, method: str, refused: Refused | None = None
) -> PinvParts:
    """:class:`PinvParts` of a sanitised, non-empty batch, by the paths :func:`chosen` for ``method``.

    ``clean.a`` is at its own batch shape, the parts at that shape broadcast
    with the tolerances'. Under ``vmap`` it runs once on the whole batch
    (:func:`jaxpinv._batching.whole_batch`). ``refused``: the first path's
    verdict where :func:`factored` has it already and it did not take the
    whole batch (so only the split of a mixed batch or the later paths run).
    """
    # The verdict travels into whole_batch as arguments: ok per cutoff, the stage's leaves per matrix.
    leaves, tree = jax.tree.flatten(refused)
    lead = clean.a.ndim - 2

    def run(a: jax.Array, bad: jax.Array, atol: jax.Array, rtol: jax.Array, *leaves: jax.Array) -> PinvParts:
        clean, whole, refused = Clean(a, bad), _whole(problem, a), jax.tree.unflatten(tree, leaves)
        batch = Batch.of(atol, rtol, a)

        def svd(reduction: _svd.Reduction | None) -> PinvParts:
            return _at(_svd.pinv(clean, atol, rtol, problem.hermitian, reduction), batch, PINV_CORES)

        def fast(path: Path, stage: Any) -> PinvParts:
            return _at(path.pinv(stage, whole), batch, PINV_CORES)

        def redo(index: jax.Array) -> PinvParts:
            few = Clean(_members(a, batch, 2, index), _members(bad, batch, 0, index))
            return _svd.pinv(few, _members(atol, batch, 0, index), _members(rtol, batch, 0, index), problem.hermitian)

        cap = capacity(whole, batch, a, atol, rtol)
        mixed = (cap, _patch(redo, PINV_CORES, cap)) if cap else None
        return _run(clean, atol, rtol, whole, method, fast, svd, mixed, refused)

    cores = (2, 0, 0, 0, *(0 if i == 0 else x.ndim - lead for i, x in enumerate(leaves)))  # ok first
    return whole_batch(run, (clean.a, clean.bad, atol, rtol, *leaves), cores)


def solve(clean: Clean, b: jax.Array, atol: jax.Array, rtol: jax.Array, problem: Problem, method: str) -> SolveParts:
    """:class:`SolveParts` of a sanitised, non-empty batch and right-hand sides ``b`` (non-finite ones zeroed).

    The parts come out at the batch shapes of ``a``, ``b`` and the tolerances
    broadcast. Under ``vmap`` it runs once on the whole batch, as :func:`pinv`.
    """

    def run(a: jax.Array, bad: jax.Array, b: jax.Array, atol: jax.Array, rtol: jax.Array) -> SolveParts:
        clean, whole = Clean(a, bad), _whole(problem, a)
        batch = Batch.of(atol, rtol, a, b)

        def svd(reduction: _svd.Reduction | None) -> SolveParts:
            return _at(_svd.solve(clean, b, atol, rtol, reduction), batch, SOLVE_CORES)

        def fast(path: Path, stage: Any) -> SolveParts:
            return _at(path.solve(stage, b, whole), batch, SOLVE_CORES)

        def redo(index: jax.Array) -> SolveParts:
            few = Clean(_members(a, batch, 2, index), _members(bad, batch, 0, index))
            cut_lo, cut_rel = (_members(x, batch, 0, index) for x in (atol, rtol))
            return _svd.solve(few, _members(b, batch, 2, index), cut_lo, cut_rel)

        cap = capacity(whole, batch, a, b, atol, rtol)
        return _run(clean, atol, rtol, whole, method, fast, svd, (cap, _patch(redo, SOLVE_CORES, cap)) if cap else None)

    return whole_batch(run, (clean.a, clean.bad, b, atol, rtol), (2, 0, 2, 0, 0))


class Factored(NamedTuple):
    """:func:`factored`'s answer: the path, its per-matrix verdict and its stage."""

    path: Path
    ok: jax.Array
    stage: Any


def factored(clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem, method: str) -> Factored | None:
    """``lstsq``'s rule: the first path :func:`chosen` for ``method``, with its verdict as :func:`pinv` reaches it.

    None where only the SVD is compiled in, or where the path's
    ``linear_rule`` declines this size. Where every matrix qualifies
    (``all_true(ok)``), :func:`solve` takes the path for the whole batch, and
    the rule differentiates its ``solve_linear`` on the stage instead of
    forming ``pinv(a)``; elsewhere the rule's :func:`pinv` resumes from this
    verdict (``refused``) rather than deciding again. ``ok`` is at the batch
    of ``a`` and the tolerances, the stage at ``a``'s; under ``vmap`` the
    verdict runs once on the whole batch, as the dispatch does. Constants of
    the rule (the Householder kernels have no derivative rules).
    """
    paths = chosen(problem, method)
    if not paths or not paths[0].linear_rule(problem):
        return None
    path = paths[0]

    def run(a: jax.Array, bad: jax.Array, atol: jax.Array, rtol: jax.Array) -> Refused:
        whole = _whole(problem, a)
        # The spare :func:`pinv`'s cascade gives this path: then ok and the stage are the ones it would compute.
        spare = capacity(whole, Batch.of(atol, rtol, a), a, atol, rtol) if len(paths) == 1 else 0
        verdict = path.decide(Clean(a, bad), atol, rtol, whole._replace(spare=spare))
        return verdict.ok, verdict.stage

    args = [lax.stop_gradient(x) for x in (clean.a, clean.bad, atol, rtol)]
    ok, stage = whole_batch(run, args, (2, 0, 0, 0))
    return Factored(path, ok, stage)


def taken(clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem, method: str) -> tuple[jax.Array, jax.Array]:
    """Which path :func:`pinv` (and :func:`solve`) takes for this batch, by the same cascade.

    ``(path, redone)``: an index into :func:`names`, and how many members the
    SVD redid after that path turned them away (0 if none; every matrix's
    count where the whole batch took the SVD).
    """
    index = {p.name: i for i, p in enumerate(PATHS)}
    batch = Batch.of(atol, rtol, clean.a)
    cap = capacity(problem, batch, clean.a, atol, rtol)
    none = jnp.int32(0)

    def patch(result: tuple[jax.Array, jax.Array], ok: jax.Array, failed: jax.Array) -> tuple[jax.Array, jax.Array]:
        return result[0], failed

    return _run(
        clean,
        atol,
        rtol,
        problem,
        method,
        lambda p, _: (jnp.int32(index[p.name]), none),
        lambda _: (jnp.int32(len(PATHS)), jnp.int32(problem.matrices)),
        (cap, patch) if cap else None,
    )
