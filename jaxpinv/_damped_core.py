"""``damped_pinv``'s differentiable core: :func:`parts` (a ``custom_jvp``) and its rule.

    A+_lam = (A^H A + lam^2 I)^-1 A^H = V diag(s / (s^2 + lam^2)) U^H

computed from the SVD (never by forming ``A^H A``, which squares the
condition number). For ``lam > 0`` it is a smooth function of ``A`` and
``lam`` everywhere, across rank changes too. With ``M^-1 = (A^H A + lam^2)^-1``
(``m >= n``; wide matrices use ``A+_lam(A) = A+_lam(A^H)^H``)::

    dX    = M^-1 (dA^H - dM X),      dM = dA^H A + A^H dA + 2 lam dlam I
          = S - (X dA + S A + 2 lam dlam M^-1) X,      S = M^-1 dA^H
    dM^-1 = -M^-1 dM M^-1

Both are written in ``X`` and ``M^-1`` as :func:`parts` returns them, so every
order of derivative stays on this stable rule. Two ``custom_jvp``s, not
:func:`jaxpinv._pinv_core.parts`' one: :func:`pinv` outputs ``X`` alone, so
reverse mode transposes only ``dX``; with ``M^-1`` among the outputs it also
carried ``M^-1``'s tangent (measured: ``grad`` 1.5x slower at 200 x 100,
compile time +15%). Its rule takes ``M^-1`` from :func:`parts`, whose own rule
makes the higher orders. ``lam = 0`` gives
exactly :func:`jaxpinv.pinv` (default cutoff); there ``M^-1`` is
``(A^H A)^+`` and the rule adds Golub–Pereyra's ``(I - X A) dA^H X^H X`` term
to ``dX`` and the Hermitian Golub–Pereyra terms ``T + T^H``,
``T = M^+^2 dM (I - X A)``, to ``dM^+`` (all zero at full column rank), so
derivatives of every order are pinv's (on rank-preserving paths, as for pinv).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv import _svd
from jaxpinv._batching import any_true
from jaxpinv._kernel import masked_reciprocal, nan_where, sanitize, unit_scale
from jaxpinv._linalg import h, hmm, mm, mm_h, zero_tangent


class DampedParts(NamedTuple):
    """:func:`parts`' outputs (for a tall or square ``a``)."""

    x: jax.Array
    """The damped pseudo-inverse ``X``."""
    minv: jax.Array
    """``c^2 M^-1`` (``M^-1 ~ 1/c^2`` would over- or underflow where ``X ~ 1/c`` does not)."""
    scale: jax.Array
    """``c = max(sigma_max, lam)`` per matrix, ``(..., 1, 1)``; 1 where that is 0 or not finite. A constant."""


@jax.custom_jvp
def pinv(a: jax.Array, lam: jax.Array, atol: jax.Array, rtol: jax.Array) -> jax.Array:
    """The damped pseudo-inverse ``X`` of a non-empty batch of tall or square ``a`` (``m >= n``)."""
    return _factors(a, lam, atol, rtol).x


@jax.custom_jvp
def parts(a: jax.Array, lam: jax.Array, atol: jax.Array, rtol: jax.Array) -> DampedParts:
    """:class:`DampedParts` of a non-empty batch of tall or square ``a`` (``m >= n``): what :func:`pinv`'s rule needs."""
    return _factors(a, lam, atol, rtol)


def _factors(a: jax.Array, lam: jax.Array, atol: jax.Array, rtol: jax.Array) -> DampedParts:
    d = _svd.decompose(sanitize(a), atol, rtol, False)
    f = d.factors
    bad = d.bad | jnp.isnan(lam)
    c = unit_scale(jnp.maximum(d.values[..., 0], lam))
    sh = d.values / c[..., None]  # singular values and damping in units of c, <= 1
    lam2 = ((lam / c) ** 2)[..., None]
    damped = lam2 > 0
    safe = jnp.where(damped, sh**2 + lam2, 1)
    inv = masked_reciprocal(sh, d.keep)  # c / s: pinv's 1/s in units of c
    gain = nan_where(bad, jnp.where(damped, sh / safe, inv) / c[..., None]).astype(a.dtype)  # s/(s^2+lam^2), or 1/s
    x = mm(h(f.right_h) * gain[..., None, :], h(f.left))
    if f.q_left is not None:
        x = mm_h(x, f.q_left)
    w = nan_where(bad, jnp.where(damped, 1 / safe, inv**2)).astype(a.dtype)  # c^2/(s^2+lam^2), or c^2 (A^H A)^+
    return DampedParts(x, mm(h(f.right_h) * w[..., None, :], f.right_h), c.astype(a.dtype)[..., None, None])


def _tangents(
    a: jax.Array, lam: jax.Array, out: DampedParts, da: jax.Array, dlam: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(dX, d(c^2 M^-1))`` from the primal parts (see the module docstring).

    In units of ``c``: ``d = dA / c``, ``a_ = A / c``, ``xs = c X``, ``l = lam / c``,
    ``dl = dlam / c`` and ``dM_ = dM / c^2 = d^H a_ + a_^H d + 2 l dl I``; then, with
    ``s_ = minv d^H``, ``dX = (s_ - (xs d + s_ a_ + 2 l dl minv) xs) / c`` and
    ``d(c^2 M^-1) = -minv dM_ minv``, every intermediate of the size of its result.
    """
    x, minv, c = out
    eye = jnp.eye(a.shape[-1], dtype=a.dtype)
    # c is a constant of the rule: its (zero) tangent must not meet 1/c^2 in a higher-order derivative,
    # where c^2 underflows and 0 * inf would make NaN.
    c = lax.stop_gradient(c)
    inv_c = 1 / c
    d, a_, xs = da * inv_c, a * inv_c, x * c
    inv_c0 = inv_c[..., 0, 0]
    two_l_dl = (2 * (lam * inv_c0) * (dlam * inv_c0)).astype(a.dtype)[..., None, None]  # 2 l dl
    # dM_ (n x n) first, then dM_ xs: n^2 m flops and no m x m intermediate (the
    # products A X or dA X would be m x m, and illegal for a matrix sharded along its rows).
    dm = hmm(d, a_) + hmm(a_, d) + two_l_dl * eye
    # dX = M^-1 (dA^H - dM X) = S - (X dA + S A + 2 lam dlam M^-1) X with S = M^-1 dA^H (X = M^-1 A^H), as
    # pinv's tall rule: S meets A only once formed, so along dA ~ A the terms cancel to eps cond, not
    # eps cond^2 (dM X would form A^H A). In units of c: s_ = c S = minv d^H.
    s_ = mm(minv, h(d))
    dx = (s_ - mm(mm(xs, d) + mm(s_, a_) + two_l_dl * minv, xs)) * inv_c
    dminv = -mm(mm(minv, dm), minv)

    # lam = 0 (pinv): X = A^+ and M^-1 = (A^H A)^+, whose Golub-Pereyra
    # derivatives have terms with the projector I - X A onto the null space of
    # A; they vanish at full column rank, and for lam > 0 they do not belong
    # (M is invertible). A cond skips them unless some lam is 0 (a batch-level
    # predicate, unbatched under vmap: see _batching).
    def at_zero() -> tuple[jax.Array, jax.Array]:
        zero = (lam == 0)[..., None, None]
        null = eye - mm(x, a)  # I - X A, Hermitian
        extra_x = mm(mm_h(mm(null, h(d)), xs), xs) * inv_c  # (I - X A) dA^H X^H X
        t = mm(mm(minv, minv), mm(dm, null))  # c^2 M^+^2 dM (I - M M^+)
        return jnp.where(zero, extra_x, 0), jnp.where(zero, t + h(t), 0)

    def none() -> tuple[jax.Array, jax.Array]:
        return dx * 0, dminv * 0  # tangents: a linear zero (transposable), varying like them

    extra_x, extra_minv = lax.cond(any_true(lam == 0), at_zero, none)
    return dx + extra_x, dminv + extra_minv


@pinv.defjvp
def _pinv_jvp(primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]) -> tuple[jax.Array, jax.Array]:
    a, lam, atol, rtol = primals
    out = parts(a, lam, atol, rtol)
    return out.x, _tangents(a, lam, out, tangents[0], tangents[1])[0]


@parts.defjvp
def _parts_jvp(primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]) -> tuple[DampedParts, DampedParts]:
    a, lam, atol, rtol = primals
    out = parts(a, lam, atol, rtol)
    dx, dminv = _tangents(a, lam, out, tangents[0], tangents[1])
    return out, DampedParts(dx, dminv, zero_tangent(out.scale))
