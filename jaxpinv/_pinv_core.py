"""``pinv``'s differentiable core: :func:`parts` (a ``custom_jvp``) and the Golub–Pereyra rule.

The rule is written in ``P = pinv(A)`` itself (and the parts the paths fill
alike, :class:`jaxpinv._kernel.PinvParts`), so it never asks which path ran
and only calls functions with stable derivatives (``parts`` again, and
matmuls): second and higher derivatives never differentiate through
``svd``, whose own rule divides by ``s_i**2 - s_j**2`` and is NaN at repeated
singular values.
"""

from __future__ import annotations

from functools import partial

import jax
from jax import lax

from jaxpinv import _dispatch
from jaxpinv._batching import all_true
from jaxpinv._dispatch import Refused
from jaxpinv._kernel import PinvParts, Problem, sanitize
from jaxpinv._linalg import complement, h, hmm, mm, mm_h, zero_tangent


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def parts(
    a: jax.Array, atol: jax.Array, rtol: jax.Array, hermitian: bool, method: str, refused: Refused | None = None
) -> PinvParts:
    """:class:`PinvParts` of a non-empty batch ``a`` (Hermitian already formed if ``hermitian``).

    ``a`` is factored at its own batch shape; the parts come out at that
    shape broadcast with the tolerances'.

    ``method`` is the user's (``"auto"`` or a path's name): a path the
    dispatch prefers (:mod:`jaxpinv._dispatch`) may compute them where the
    whole batch qualifies; else the SVD does. ``refused``: that path's verdict,
    where ``lstsq``'s rule has it and it did not take the whole batch
    (:func:`jaxpinv._dispatch.factored`).
    """
    return _dispatch.pinv(sanitize(a), atol, rtol, Problem.of(a, hermitian), method, refused)


@parts.defjvp
def _parts_jvp(
    hermitian: bool, method: str, primals: tuple[jax.Array, ...], tangents: tuple[jax.Array, ...]
) -> tuple[PinvParts, PinvParts]:
    a, atol, rtol, refused = primals
    da = tangents[0]  # the tolerances' (and the verdict's) tangents are ignored: not differentiable
    # Calling the custom_jvp function itself (not the factors) keeps every
    # derivative of this rule on stable ground: P's own derivative is this rule.
    out = parts(a, atol, rtol, hermitian, method, refused)
    dp = tangent(a, out, da, hermitian)
    m, n = a.shape[-2:]
    if out.gram.size == 0:
        dgram = zero_tangent(out.gram)
    elif m > n:  # c^2 P P^H
        dgram = mm_h(out.scale * dp, out.scale * out.p)
        dgram = dgram + h(dgram)
    else:  # c^2 P^H P
        dgram = hmm(out.scale * out.p, out.scale * dp)
        dgram = dgram + h(dgram)
    return out, PinvParts(dp, dgram, zero_tangent(out.rank), zero_tangent(out.scale), zero_tangent(out.values))


def _square(a: jax.Array, p: jax.Array, da: jax.Array, full_col: jax.Array, hermitian: bool) -> jax.Array:
    """The square (or Hermitian) case of :func:`tangent`."""

    def full() -> jax.Array:  # A P = P A = I: dP = -P dA P, two matmuls
        return -mm(mm(p, da), p)

    def square_deficient() -> jax.Array:
        # -X P + (I - P A) X^H P + P Z^H (I - A P), with X = P dA and
        # Z = dA P (dA^H P^H = X^H and P^H dA^H = Z^H).
        x = mm(p, da)
        left = mm(complement(mm(p, a)), h(x)) - x
        right = mm(h(mm(da, p)), complement(mm(a, p)))
        return mm(left, p) + mm(p, right)

    def hermitian_deficient() -> jax.Array:
        # P = P^H and dA = dA^H: Z = X^H, and the last two terms are each
        # other's adjoint, t = (I - P A) X^H P.
        x = mm(p, da)
        t = mm(mm(complement(mm(p, a)), h(x)), p)
        return t + h(t) - mm(x, p)

    # One cond per case (not one per term): reverse mode materialises a single cotangent for dA and
    # saves only what the branches share; the deficient branch is rematerialised, not its projectors saved.
    deficient = hermitian_deficient if hermitian else square_deficient
    return lax.cond(full_col, full, jax.checkpoint(deficient))


def _tall(a: jax.Array, out: PinvParts, da: jax.Array, full_col: jax.Array) -> jax.Array:
    """The tall case of :func:`tangent` (``A P != I`` always; ``P A = I`` at full column rank)."""
    # The scale is a constant of the rule: its (zero) tangent must not meet 1/c^2 in a higher-order
    # derivative, where c^2 underflows and 0 * inf would make NaN.
    p, gram, scale = out.p, out.gram, lax.stop_gradient(out.scale)

    def first_two() -> jax.Array:
        # With G = P P^H = (A^H A)^+ (n x n) and S = G dA^H, the first two terms regroup (at any rank) as
        #   -P dA P + G dA^H (I - A P) = S - (P dA + S A) P,
        # four m n^2 products (one fewer than term by term; the transpose, reverse mode, the same four).
        # S meets A only after it is formed, so along dA ~ A (where S A ~ I and dP ~ -P) the terms
        # cancel to eps cond; the three-product G (dA^H - (A^H dA + dA^H A) P) formed A^H dA, which
        # G then amplified: eps cond^2. In units of c: gram = c^2 G, so S = gram (dA / c)^H / c.
        inv_scale = 1 / scale
        s = mm(gram, h(da * inv_scale)) * inv_scale
        return s - mm(mm(p, da) + mm(s, a), p)

    def all_three() -> jax.Array:
        # + (I - P A) dA^H P^H P, zero when P A = I; each product's size is that of the term.
        return first_two() + mm(mm_h(mm(complement(mm(p, a)), h(da)), p), p)

    return lax.cond(full_col, first_two, jax.checkpoint(all_three))


def tangent(a: jax.Array, out: PinvParts, da: jax.Array, hermitian: bool) -> jax.Array:
    """Golub–Pereyra: ``dP = -P dA P + P P^H dA^H (I - A P) + (I - P A) dA^H P^H P``.

    The second term vanishes where ``rank == m`` (then ``A P = I``), the third
    where ``rank == n`` (``P A = I``): a ``lax.cond`` on the batch's ranks skips
    them, so a full-rank square matrix costs two matmuls. The predicate is
    batch-level (:func:`jaxpinv._batching.all_true`): under ``vmap`` too it
    picks one branch for the whole batch, as for the batched call.

    **Scale.** Square and Hermitian matrices need no scaling: every product
    pairs ``P`` with ``dA`` (of size ``|dA| / sigma``) or with ``A`` (the
    projectors, of norm 1). The tall branch uses ``G = P P^H`` (``~ 1/sigma^2``)
    to save an ``m n^2`` product; there ``G`` comes pre-scaled by ``c^2`` and
    ``dA`` is divided by ``c`` (a constant: the formula is homogeneous in
    it), so nothing under- or overflows where the result is representable. Wide matrices use
    ``dP(A, dA) = dP(A^H, dA^H)^H``.
    """
    m, n = a.shape[-2:]
    if not hermitian and m < n:
        return h(tangent(h(a), out._replace(p=h(out.p)), h(da), False))
    # P A = I (and A P = I when square), for the whole batch; unbatched under vmap, so the cond stays
    # a cond. A non-finite matrix (rank -1) counts as full rank: its derivative is NaN anyway, and it
    # must not send the rest of the batch down the rank-deficient path.
    full_col = all_true((out.rank == n) | (out.rank < 0))
    if m == n:
        return _square(a, out.p, da, full_col, hermitian)
    return _tall(a, out, da, full_col)
