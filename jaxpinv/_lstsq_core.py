"""``lstsq``'s differentiable core: :func:`parts` (a ``custom_jvp``) and its rule.

The forward pass solves without forming ``pinv(a)`` (the dispatch's
``solve``). The rule takes one of two forms, on the dispatch's own verdict
(:func:`jaxpinv._dispatch.factored`):

* where a path solved the whole batch and its ``linear_rule`` holds (the QR
  path above ``SMALL``), that path's ``solve_linear`` is differentiated: a
  ``lax.custom_linear_solve`` on its factors, so the tangent (and in reverse
  mode the cotangent) costs a solve with them, and ``pinv(a)`` is never
  formed;
* elsewhere (any rank, any path), Golub–Pereyra applied to ``x = A^+ b`` in
  matrix-vector form (``O(m n k)`` per tangent rather than the ``O(m n^2)``
  of differentiating ``pinv(a) @ b``), written in ``P`` from
  :func:`jaxpinv._pinv_core.parts` so that its own derivatives are stable;
  that ``P`` resumes from the same verdict instead of deciding again.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv import _dispatch, _pinv_core
from jaxpinv._batching import all_true
from jaxpinv._dispatch import Refused
from jaxpinv._kernel import Batch, Problem, SolveParts, at_batch, nan_where, sanitize, sanitize_columns
from jaxpinv._linalg import hmm, hmv, mm, zero_tangent


@partial(jax.custom_jvp, nondiff_argnums=(4,))
def parts(a: jax.Array, b: jax.Array, atol: jax.Array, rtol: jax.Array, method: str) -> SolveParts:
    """``(pinv(a) @ b, rank, singular values)`` of a non-empty batch, without forming ``pinv(a)``.

    ``rank`` and the singular values describe `a` alone, as
    :func:`jaxpinv._pinv_core.parts` gives them (the rule takes them from
    there). A non-finite column of ``b`` makes that column of ``x`` NaN.
    """
    rhs = sanitize_columns(b)
    out = _dispatch.solve(sanitize(a), rhs.a, atol, rtol, Problem.of(a, False), method)
    return out._replace(x=nan_where(rhs.bad, out.x))


@parts.defjvp
def _parts_jvp(method: str, primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    a, b, atol, rtol = primals
    da, db = tangents[:2]
    # As in the forward: a non-finite column of b makes that column of x (and of dx) NaN. The terms
    # below use the zeroed columns, so in reverse mode no NaN reaches the other columns' cotangents.
    rhs = sanitize_columns(b)
    batch = Batch.of(atol, rtol, a, b)  # the forward's batch and sharding
    fast = _dispatch.factored(sanitize(a), atol, rtol, Problem.of(a, False), method)
    if fast is None:
        out, dx = _by_pinv(a, rhs.a, atol, rtol, da, db, method, batch, None)
    else:

        def by_factors() -> tuple[SolveParts, jax.Array]:
            # The path solved the whole batch: differentiate its solve with its factors, no P formed.
            lead = a.ndim - 2
            stage = jax.tree.map(lambda x: at_batch(x, batch, x.ndim - lead), fast.stage)
            solve = partial(fast.path.solve_linear, stage)
            out, dout = jax.jvp(solve, (a, at_batch(rhs.a, batch, 2)), (da, at_batch(db, batch, 2)))
            return out, dout.x

        def by_pinv() -> tuple[SolveParts, jax.Array]:  # resuming from the same verdict
            return _by_pinv(a, rhs.a, atol, rtol, da, db, method, batch, (fast.ok, fast.stage))

        # The dispatch's own decision, batch-level under vmap too (so the cond stays a cond).
        out, dx = lax.cond(all_true(fast.ok), by_factors, by_pinv)
    out = out._replace(x=nan_where(rhs.bad, out.x))
    return out, SolveParts(nan_where(rhs.bad, dx), zero_tangent(out.rank), zero_tangent(out.values))


def _by_pinv(
    a: jax.Array,
    b: jax.Array,
    atol: jax.Array,
    rtol: jax.Array,
    da: jax.Array,
    db: jax.Array,
    method: str,
    batch: Batch,
    refused: Refused | None,
) -> tuple[SolveParts, jax.Array]:
    """The rule in ``P`` (any rank, any path): ``x = P b`` and its tangent, at the ``batch``; ``b`` sanitised."""
    m, n = a.shape[-2:]
    # P from pinv's own custom_jvp keeps higher derivatives stable; x = P b is then differentiable through it.
    pp = _pinv_core.parts(a, atol, rtol, False, method, refused)
    p, rank, scale = pp.p, pp.rank, lax.stop_gradient(pp.scale)  # a constant (see _pinv_core._tall)
    x = mm(p, b)
    # Batch-level predicates, unbatched under vmap (see _batching); a
    # non-finite matrix (rank -1) counts as full rank, its tangent is NaN.
    full_col = all_true((rank == n) | (rank < 0))  # P A = I: the third term vanishes
    full_row = all_true((rank == m) | (rank < 0))  # A P = I: the residual b - A x is zero

    # Scale: P ~ 1/c and x ~ |b|/c for c the largest singular value, so P^H x
    # ~ 1/c^2 under- or overflows where the result (~ 1/c) does not. The
    # second and third terms run in units of c: d = dA / c, cp = c P (a
    # constant c: every term is homogeneous in it).
    inv_scale = 1 / scale

    def base() -> jax.Array:  # P (db - dA x)
        return mm(p, db - mm(da, x))

    def second() -> jax.Array:  # P P^H dA^H (b - A x) = (cP) (cP)^H d^H r / c
        r = b - mm(a, x)
        cp = p * scale
        return mm(cp, hmm(cp, hmv(da * inv_scale, r))) * inv_scale

    def third() -> jax.Array:  # (I - P A) dA^H P^H x = (I - P A) d^H ((cP)^H x)
        z = hmv(da * inv_scale, hmm(p * scale, x))
        return z - mm(p, mm(a, z))

    # One switch over which terms vanish (rather than a cond per term), so
    # reverse mode materialises a single cotangent for dA.
    branches = [base, lambda: base() + third(), lambda: base() + second(), lambda: base() + second() + third()]
    index = (~full_row).astype(jnp.int32) * 2 + (~full_col).astype(jnp.int32)
    dx = at_batch(lax.switch(index, branches), batch, 2)
    return SolveParts(at_batch(x, batch, 2), at_batch(rank, batch, 0), at_batch(pp.values, batch, 1)), dx
