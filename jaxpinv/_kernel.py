"""Kernel: the idioms every path and rule shares, and the intermediates they pass, as named tuples.

A path (:mod:`jaxpinv._svd`, :mod:`jaxpinv._qr`) fills :class:`PinvParts` or
:class:`SolveParts` the same way, so a ``custom_jvp`` rule never asks which
path ran. The idioms here each exist once: the non-finite flags and the zeroed
stand-in a factorization sees (LAPACK's SVD can loop forever on a matrix
holding Inf), the NaN a flagged matrix's result becomes, the masked
reciprocal (divide only by kept values), the unit scale the rules compute in,
and the NaN placeholders that stand for values a path does not compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jaxpinv import _sharding


class Problem(NamedTuple):
    """What is known about a batch at trace time: all a path's static eligibility may look at."""

    m: int
    n: int
    dtype: Any
    hermitian: bool
    in_place: bool
    """A matrix that TSQR factors where it lives (:func:`jaxpinv._sharding.factored_in_place`)."""
    matrices: int
    """How many matrices the batch holds (each factored once)."""
    spare: int = 0
    """How many members may fail a path's test and be redone by the SVD alone (set by the dispatch)."""

    @classmethod
    def of(cls, a: jax.Array, hermitian: bool) -> Problem:
        m, n = a.shape[-2:]
        return cls(m, n, a.dtype, hermitian, _sharding.factored_in_place(a), math.prod(a.shape[:-2]))


class Clean(NamedTuple):
    """A batch with its non-finite matrices (or right-hand sides) replaced by zeros, and the flags."""

    a: jax.Array
    bad: jax.Array
    """Per matrix ``(...)``, or per column ``(..., 1, k)`` of right-hand sides: did it hold NaN or Inf?
    Its result must be NaN."""


class PinvParts(NamedTuple):
    """``pinv``'s core output: the pseudo-inverse and what its derivative rule needs.

    Only ``p`` and ``gram`` are differentiated; ``rank``, ``scale`` and
    ``values`` are constants for the rule.
    """

    p: jax.Array
    """``pinv(a)``, ``(..., n, m)``; all-NaN for a flagged matrix."""
    gram: jax.Array
    """``c^2`` times ``(A^H A)^+`` (tall) or ``(A A^H)^+`` (wide): it neither over- nor
    underflows; an empty ``(..., 0, 0)`` array for square or Hermitian input."""
    rank: jax.Array
    """Kept values per matrix, in a real float dtype (see :func:`float_rank`); -1 if flagged."""
    scale: jax.Array
    """``c``, the largest singular value (``|eigenvalue|``) per matrix, ``(..., 1, 1)``; 1 where
    that is 0 or not finite (:func:`unit_scale`)."""
    values: jax.Array
    """The singular values (signed eigenvalues if Hermitian); NaN where unknown or flagged."""


class SolveParts(NamedTuple):
    """``lstsq``'s core output: ``x = pinv(a) @ b`` and ``a``'s rank and singular values (as in :class:`PinvParts`)."""

    x: jax.Array
    rank: jax.Array
    values: jax.Array


class Verdict(NamedTuple):
    """A path's per-matrix decision and what its result (or the SVD after it) needs."""

    ok: jax.Array
    """Per matrix: may this path's result stand for the SVD's? (True for flagged matrices.)"""
    stage: Any
    """The path's own state (a pytree), handed to its ``pinv`` or ``solve``."""
    reduction: Callable[[], tuple[jax.Array, jax.Array]] | None
    """A thin ``(Q, R)`` of ``a`` (tall) or ``a^H`` (wide) this path already has, for the SVD to
    reuse; formed only if called (inside the SVD's branch)."""


class Path(Protocol):
    """A way to compute ``pinv``/``lstsq`` that the SVD's result may be replaced by (:mod:`jaxpinv._dispatch`).

    ``eligible`` (may it run here at all?) and ``repays`` (does its gain
    repay its compile time at this size?) are static, decided at trace time
    from the :class:`Problem`; ``decide`` is the sound per-matrix verdict from
    the path's own first stage; ``pinv``/``solve`` finish where the whole
    batch qualified, and ``solve_linear`` is ``solve`` for ``lstsq``'s rule.
    """

    name: str

    def eligible(self, problem: Problem) -> bool: ...

    def repays(self, problem: Problem) -> bool: ...

    def decide(self, clean: Clean, atol: jax.Array, rtol: jax.Array, problem: Problem) -> Verdict: ...

    def resume(self, ok: jax.Array, stage: Any) -> Verdict:
        """The :class:`Verdict` that :meth:`decide` gave as ``ok`` and ``stage`` (computed once, used twice)."""
        ...

    def linear_rule(self, problem: Problem) -> bool:
        """Does ``lstsq``'s rule differentiate :meth:`solve_linear` here, rather than the rule in ``P``?"""
        ...

    def pinv(self, stage: Any, problem: Problem) -> PinvParts: ...

    def solve(self, stage: Any, b: jax.Array, problem: Problem) -> SolveParts: ...

    def solve_linear(self, stage: Any, a: jax.Array, b: jax.Array) -> SolveParts:
        """:meth:`solve`'s parts with ``x`` a function of ``a`` and ``b`` whose derivatives are exact.

        For ``lstsq``'s rule where the whole batch qualified: the stage is a
        constant, every derivative comes through ``a`` and ``b``.
        """
        ...


class Batch(NamedTuple):
    """The batch a core's outputs come out at: its shape, and zeros that carry the tolerances' sharding."""

    shape: tuple[int, ...]
    zeros: jax.Array

    @classmethod
    def of(cls, atol: jax.Array, rtol: jax.Array, *stacks: jax.Array) -> Batch:
        """The batch of the tolerances (at the cutoffs' batch) and the ``stacks`` of matrices."""
        shape = jnp.broadcast_shapes(atol.shape, rtol.shape, *(x.shape[:-2] for x in stacks))
        return cls(tuple(shape), jnp.zeros_like(atol) + jnp.zeros_like(rtol))


def at_batch(x: jax.Array, batch: Batch, core: int) -> jax.Array:
    """``x`` (with ``core`` trailing non-batch dimensions) broadcast to ``batch``.

    A core's outputs are at its cutoffs' batch (``a``'s, broadcast with the
    tolerances'), also where a path computed one of them per matrix only:
    the branches of a ``cond`` must agree in shape and, under explicit
    sharding, in sharding: adding the zeros carries a sharded tolerance's
    over to a result computed without it.
    """
    if x.shape[: x.ndim - core] == batch.shape:
        return x
    zeros = batch.zeros.reshape(batch.zeros.shape + (1,) * core).astype(x.dtype)
    return jnp.broadcast_to(x, batch.shape + x.shape[x.ndim - core :]) + zeros


def _poisoned(x: jax.Array, axis: tuple[int, ...]) -> jax.Array:
    """Does ``x`` hold NaN or Inf along ``axis``? ``sum(x * 0)`` is 0 for finite entries, NaN otherwise.

    One float sum-reduction: XLA's CPU backend compiles an and-reduction of
    ``isfinite`` as three kernels (about 40 ms more per program), and its
    max-reduction drops a NaN from 64 x 64 up unless it sits in the last lane
    (jax 0.10.2), so not ``isfinite(max |x|)`` either.
    """
    return ~jnp.isfinite(jnp.sum(x * 0, axis=axis))


def non_finite(x: jax.Array) -> jax.Array:
    """Per matrix: does it hold NaN or Inf?"""
    return _poisoned(x, (-2, -1))


def _expand(flags: jax.Array, x: jax.Array) -> jax.Array:
    """Per-matrix flags ``(...)`` broadcastable against ``x`` (``(..., k)`` or ``(..., i, j)``)."""
    return flags.reshape(flags.shape + (1,) * (x.ndim - flags.ndim))


def zero_where(flags: jax.Array, x: jax.Array) -> jax.Array:
    """``x`` with the flagged matrices (or vectors) replaced by zeros."""
    return jnp.where(_expand(flags, x), jnp.zeros((), x.dtype), x)


def nan_where(flags: jax.Array, x: jax.Array) -> jax.Array:
    """``x`` with the flagged matrices (or vectors) replaced by NaN."""
    return jnp.where(_expand(flags, x), jnp.nan, x).astype(x.dtype)


def sanitize(a: jax.Array) -> Clean:
    """The per-matrix non-finite flags, and ``a`` with those matrices replaced by zeros."""
    bad = non_finite(a)
    return Clean(zero_where(bad, a), bad)


def sanitize_columns(b: jax.Array) -> Clean:
    """Per column of right-hand sides ``(..., m, k)``: the flags ``(..., 1, k)``, and ``b`` with those columns zeroed.

    Column ``j`` of a solution depends on column ``j`` of ``b`` alone, so a
    non-finite entry spoils its own column and nothing else.
    """
    bad = _poisoned(b, (-2,))[..., None, :]
    return Clean(zero_where(bad, b), bad)


def masked_reciprocal(values: jax.Array, keep: jax.Array) -> jax.Array:
    """``1 / values`` where kept, 0 elsewhere: the safe where (never a division by a dropped value)."""
    return jnp.where(keep, 1 / jnp.where(keep, values, 1), 0)


def unit_scale(largest: jax.Array) -> jax.Array:
    """The unit ``c`` a rule computes in: ``largest`` per matrix, 1 where that is 0 or not finite."""
    return jnp.where((largest > 0) & jnp.isfinite(largest), largest, 1)


def nan_placeholder(like: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """NaN of shape ``like.shape[:-2] + shape``, for values a path does not compute.

    Derived from the batch ``like`` (not a fresh constant): inside a user's
    ``shard_map`` the branches of a ``cond`` must agree on which mesh axes
    their outputs vary over.
    """
    zero = jnp.real(like[..., 0, 0]).astype(dtype) * 0
    return zero.reshape(zero.shape + (1,) * len(shape)) + jnp.full(shape, jnp.nan, dtype)


def rank(keep: jax.Array, bad: jax.Array) -> jax.Array:
    """How many values are kept, per matrix (int32); -1 for a matrix with no rank (non-finite)."""
    return jnp.where(bad, jnp.int32(-1), jnp.sum(keep, axis=-1, dtype=jnp.int32))


def float_rank(count: jax.Array, dtype: Any) -> jax.Array:
    """A rank count in a real float dtype: the form a ``custom_jvp`` outputs (exact in any float dtype here)."""
    # jax<0.7.2: an integer output needs a float0 tangent, a NumPy array without sharding, which
    # jax 0.5.1-0.7.1 reject against a batch-sharded rank under jit(grad); a float count takes
    # zeros_like as its tangent, which carries the primal's sharding.
    return count.astype(dtype)


def real_dtype(dtype: Any) -> Any:
    """The real dtype of a (possibly complex) inexact dtype."""
    return jnp.finfo(dtype).dtype
