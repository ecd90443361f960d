"""Reverse mode *through* ``vmap``: how research code calls us.

A per-matrix function, ``jax.vmap``-ped, then differentiated (``grad``,
``jacrev``, ``vjp``, ``grad(jit(vmap))``, ``vmap(grad(vmap))``,
``hessian(vmap)``), for every public function, on batches at full rank and
batches mixing full-rank and rank-deficient matrices. The reference is the
unbatched derivative of each matrix, taken one at a time (itself checked
against central differences in test_derivatives.py / test_lstsq.py /
test_damped.py), and for the full-rank batches central finite differences of
the vmapped function directly (``check_grads``).

The rank decisions in the rules are ``lax.cond``s on batch-level predicates;
under ``vmap`` they must stay ``cond``s (one branch for the whole batch), not
become ``select``s that run every branch: the jaxprs are compared with those of
the natively batched call.

Tolerances: float64 throughout, well-conditioned factors (cond <= 10), so the
batched and unbatched derivatives differ only by rounding in a different
summation order, ``O(n eps cond^2)`` relative: 1e-10 holds with margin.
"""

from __future__ import annotations

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_matrix

import jaxpinv

RTOL = 1e-10  # see the module docstring
B = 3


def _stack(shape, ranks, seed, dtype=np.float64, hermitian=False):
    rng = np.random.default_rng(seed)
    mats = []
    for r in ranks:
        a = random_matrix(rng, shape, dtype, rank=r, cond=10.0)
        if hermitian:
            a = a + np.conj(a.T)  # rank <= 2r, full rank when r = n
        mats.append(a)
    return jnp.asarray(np.stack(mats))


# name -> (per-matrix function of (a, b, t), shape of a, needs b, hermitian)
# t is a per-matrix scalar (tolerance / damping) that the function may use.
FUNCS = {
    "pinv": (lambda a, b, t: jaxpinv.pinv(a), (5, 3), False),
    "pinv_wide": (lambda a, b, t: jaxpinv.pinv(a), (3, 5), False),
    "pinverse": (lambda a, b, t: jaxpinv.pinverse(a, rcond=1e-10), (4, 4), False),  # square
    "pinv_hermitian": (lambda a, b, t: jaxpinv.pinv(a, hermitian=True), (4, 4), True),
    "pinv_atol": (lambda a, b, t: jaxpinv.pinv(a, atol=t * 1e-3), (5, 3), False),
    "lstsq": (lambda a, b, t: jaxpinv.lstsq(a, b), (5, 3), False),
    "lstsq_wide": (lambda a, b, t: jaxpinv.lstsq(a, b, rtol=t * 1e-6), (3, 5), False),
    "lstsq_full": (lambda a, b, t: jnp.append(*jaxpinv.lstsq_full(a, b)[:2]), (5, 3), False),
    "lstsq_damping": (lambda a, b, t: jaxpinv.lstsq(a, b, damping=0.1 * t), (5, 3), False),
    "damped_pinv": (lambda a, b, t: jaxpinv.damped_pinv(a, 0.1 * t), (4, 4), False),
    "damped_pinv_zero": (lambda a, b, t: jaxpinv.damped_pinv(a, (t - 1) * (t - 2)), (5, 3), False),  # 0, 0, .75
}
# "mixed" sends the whole batch down the rank-deficient branches (a batch-level
# decision) while its other members are full rank.
RANKS = {"full": (None, None, None), "mixed": (None, 2, 1)}


def _inputs(name, ranks):
    f, shape, hermitian = FUNCS[name]
    k = min(shape)
    rs = [k if r is None else r for r in RANKS[ranks]]
    if hermitian:
        rs = [shape[0] if r == k else 1 for r in rs]
    a = _stack(shape, rs, seed=len(name), hermitian=hermitian)
    rng = np.random.default_rng(7)
    b = jnp.asarray(rng.standard_normal((B, shape[0])))
    t = jnp.asarray([1.0, 2.0, 0.5])
    w = jnp.asarray(rng.standard_normal(jax.eval_shape(f, a[0], b[0], t[0]).shape))
    return f, a, b, t, w


def _loss(f, w):
    return lambda a, b, t: jnp.sum(jnp.tanh(f(a, b, t) * w))


# Every public function at full rank and at rank deficiency; the shape and
# tolerance variants (wide, vmapped atol/rtol, damping 0 in part of the batch)
# only on the mixed batch, which takes the rank-deficient branches.
VARIANTS = ("pinv_wide", "pinv_atol", "lstsq_wide", "damped_pinv_zero")
# Slow (CI's "-m slow" run): variants whose siblings (pinv, lstsq, wide, Hermitian, damped) stay quick,
# and every full-rank batch (the quick suite has grad(vmap) and vmap(grad) of every public function at
# full rank on every path in test_registry.py; the mixed batches here take the rank-deficient branches).
SLOW_CASES = {
    ("pinv", "full"),
    ("lstsq", "full"),
    ("pinverse", "full"),
    ("pinverse", "mixed"),
    ("pinv_hermitian", "full"),
    ("pinv_atol", "mixed"),
    ("lstsq_full", "full"),
    ("lstsq_full", "mixed"),
    ("lstsq_damping", "full"),
    ("lstsq_damping", "mixed"),
    ("damped_pinv", "full"),
}
CASES = [
    pytest.param(name, ranks, marks=pytest.mark.slow if (name, ranks) in SLOW_CASES else ())
    for name in FUNCS
    for ranks in RANKS
    if ranks == "mixed" or name not in VARIANTS
]


@pytest.mark.parametrize("name,ranks", CASES)
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_reverse_through_vmap_matches_unbatched(name, ranks):
    f, a, b, t, w = _inputs(name, ranks)
    loss = _loss(f, w)
    per = jax.jit(jax.grad(loss, argnums=(0, 1)))  # one matrix at a time
    refs = [per(a[i], b[i], t[i]) for i in range(B)]
    ref_a = np.stack([r[0] for r in refs])
    ref_b = np.stack([r[1] for r in refs])
    ct = jnp.asarray(np.random.default_rng(3).standard_normal(jax.eval_shape(jax.vmap(f), a, b, t).shape))
    vjp_one = jax.jit(lambda a, b, t, ct: jax.vjp(lambda m: f(m, b, t), a)[1](ct)[0])
    ref_vjp = np.stack([vjp_one(a[i], b[i], t[i], ct[i]) for i in range(B)])

    def total(a, b, t):
        return jnp.sum(jax.vmap(loss)(a, b, t))

    @jax.jit  # every pattern in one program: one compilation
    def patterns(a, b, t, ct):
        a2, b2, t2 = (x[None].repeat(2, 0) for x in (a, b, t))
        return {
            "grad": jax.grad(total, argnums=(0, 1))(a, b, t),
            "grad(jit)": jax.grad(jax.jit(total))(a, b, t),
            # jacrev of the vmapped per-matrix loss: block diagonal, blocks = the grads
            "jacrev": jax.jacrev(jax.vmap(loss))(a, b, t),
            # vjp of the mapped output itself, a cotangent per matrix
            "vjp": jax.vjp(lambda a: jax.vmap(f)(a, b, t), a)[1](ct)[0],
            "vmap(grad(vmap))": jax.vmap(jax.grad(total))(a2, b2, t2),
            "grad(vmap(vmap))": jax.grad(lambda a: jnp.sum(jax.vmap(jax.vmap(loss))(a, b2, t2)))(a2),
        }

    got = patterns(a, b, t, ct)

    def close(key, got, ref):
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=RTOL * np.abs(ref).max(), err_msg=key)

    close("grad a", got["grad"][0], ref_a)
    close("grad b", got["grad"][1], ref_b)
    close("grad(jit)", got["grad(jit)"], ref_a)
    close("jacrev", np.stack([got["jacrev"][i, i] for i in range(B)]), ref_a)
    close("vjp", got["vjp"], ref_vjp)
    close("vmap(grad(vmap))", got["vmap(grad(vmap))"], np.stack([ref_a, ref_a]))
    close("grad(vmap(vmap))", got["grad(vmap(vmap))"], np.stack([ref_a, ref_a]))


@pytest.mark.slow  # second order; the first-order checks above stay quick
@pytest.mark.parametrize("name", ["pinv", "pinv_hermitian", "lstsq", "damped_pinv_zero"])
@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_hessian_through_vmap_matches_unbatched(name):
    f, a, b, t, w = _inputs(name, "mixed")
    loss = _loss(f, w)
    h = jax.hessian(lambda a: jnp.sum(jax.vmap(loss)(a, b, t)))(a)
    for i in range(B):
        ref = jax.hessian(lambda m: loss(m, b[i], t[i]))(a[i])
        np.testing.assert_allclose(h[i, ..., i, :, :], ref, rtol=RTOL, atol=RTOL * np.abs(ref).max())


@pytest.mark.x64  # float64 inputs or references (see conftest)
def test_gradient_through_vmapped_tolerance_and_damping():
    # The tolerance / damping is mapped too: the cond predicate is batched by
    # the tolerance alone when a is not mapped.
    a = _stack((5, 3), [3], seed=1)[0]
    ts = jnp.asarray([1e-3, 0.5, 2.0])  # atol: keeps 3, 2 or 0 singular values (s in [0.1, 1])
    w = jnp.asarray(np.random.default_rng(2).standard_normal((3, 5)))

    def loss(a, t):
        return jnp.sum(jaxpinv.pinv(a, atol=t) * w)

    g = jax.grad(lambda a: jnp.sum(jax.vmap(loss, in_axes=(None, 0))(a, ts)))(a)
    ref = sum(jax.grad(loss)(a, t) for t in ts)
    np.testing.assert_allclose(g, ref, rtol=RTOL, atol=RTOL * np.abs(ref).max())
    lams = jnp.asarray([0.0, 0.1, 1.0])

    def dloss(a, lam):
        return jnp.sum(jaxpinv.damped_pinv(a, lam) * w)

    g = jax.grad(lambda a: jnp.sum(jax.vmap(dloss, in_axes=(None, 0))(a, lams)))(a)
    ref = sum(jax.grad(dloss)(a, lam) for lam in lams)
    np.testing.assert_allclose(g, ref, rtol=RTOL, atol=RTOL * np.abs(ref).max())
    # and the damping's own gradient through vmap
    glam = jax.grad(lambda lams: jnp.sum(jax.vmap(dloss, in_axes=(None, 0))(a, lams)))(lams)
    np.testing.assert_allclose(glam, [jax.grad(dloss, 1)(a, lam) for lam in lams], rtol=RTOL, atol=1e-12)


def test_vmap_matrix_rank_and_forward_match_batched():
    a = _stack((5, 3), [3, 2, 1], seed=4)
    np.testing.assert_array_equal(jax.vmap(jaxpinv.matrix_rank)(a), [3, 2, 1])
    b = jnp.ones((B, 5))
    np.testing.assert_allclose(jax.vmap(jaxpinv.lstsq)(a, b), jaxpinv.lstsq(a, b), rtol=1e-12, atol=1e-13)
    full = jax.vmap(jaxpinv.lstsq_full)(a, b)
    np.testing.assert_array_equal(full.rank, [3, 2, 1])


# --------------------------------------------------------------------------- #
# The conds stay conds: vmap of the per-matrix function traces to the same
# program as the natively batched call (no select in place of a rank branch).
# --------------------------------------------------------------------------- #


def _primitives(jaxpr) -> Counter:
    """Primitive names in a (closed) jaxpr, counting inside sub-jaxprs too.

    A ``cond`` that dispatches on the platform (``jnp.diagonal``'s, for
    instance) is not a data decision: it counts as ``platform_cond``.
    """
    counts: Counter = Counter()
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        counts["platform_cond" if name == "cond" and eqn.params.get("branches_platforms") else name] += 1
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    counts += _primitives(sub)
    return counts


BATCHED = {
    "pinv": (lambda a, b: jaxpinv.pinv(a), (5, 3)),
    "pinv_square": (lambda a, b: jaxpinv.pinv(a), (4, 4)),
    "pinv_hermitian": (lambda a, b: jaxpinv.pinv(a, hermitian=True), (4, 4)),
    "lstsq": (lambda a, b: jaxpinv.lstsq(a, b), (5, 3)),
    "damped_pinv": (lambda a, b: jaxpinv.damped_pinv(a, 0.1), (5, 3)),
    # a damping per matrix: mapped with the matrix under vmap
    "damped_pinv_mapped": (lambda a, b: jaxpinv.damped_pinv(a, b[..., 0] - 1), (5, 3)),
}


@pytest.mark.parametrize("mode", ["grad", "jvp"])
@pytest.mark.parametrize("name", list(BATCHED))
def test_vmap_keeps_the_rank_conds(name, mode):
    f, shape = BATCHED[name]
    a = _stack(shape, [min(shape)] * B, seed=0)
    b = jnp.ones((B, shape[0]))

    def program(fa):
        if mode == "grad":
            return jax.make_jaxpr(jax.grad(lambda a: jnp.sum(fa(a, b))))(a)
        return jax.make_jaxpr(lambda a: jax.jvp(lambda a: fa(a, b), (a,), (a,)))(a)

    batched, mapped = _primitives(program(f)), _primitives(program(jax.vmap(f)))
    assert batched["cond"] >= 1
    assert mapped["cond"] == batched["cond"], (mapped, batched)
    assert mapped["select_n"] <= batched["select_n"], (mapped["select_n"], batched["select_n"])
    # No unbatching by stop_gradient under vmap: the rules' own (the unit scale, a constant of the
    # rule) appear in the batched program as well, and no more than there.
    assert mapped["stop_gradient"] == batched["stop_gradient"], (mapped["stop_gradient"], batched["stop_gradient"])
