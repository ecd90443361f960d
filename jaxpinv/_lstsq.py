"""``lstsq``: minimum-norm least squares ``x = pinv(a) @ b`` without forming ``pinv(a)``.

The forward pass is one SVD and two thin products, with exactly ``pinv``'s
cutoff (or, where ``pinv`` would take its full-rank fast path, a QR solve). The derivative is Golub–Pereyra applied to ``x = A^+ b``, in
matrix-vector form (``O(m n k)`` per tangent rather than the ``O(m n^2)`` of
differentiating ``pinv(a) @ b``), written in ``P = pinv(A)`` so that its own
derivatives are stable (see ``_pinv``).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpinv import _fast, _sharding, _tolerance, _validate
from jaxpinv._batching import all_true
from jaxpinv._damped import _check_damping, _damped_impl
from jaxpinv._linalg import _h, _hmm, _mm, _zeros
from jaxpinv._pinv import (
    _QR_RATIO,
    ArrayLike,
    Tolerance,
    _check,
    _decompose,
    _fast_stage_one,
    _float_rank,
    _pinv_core,
)


class LstsqResult(NamedTuple):
    """What [`lstsq_full`][jaxpinv.lstsq_full] returns: NumPy's 4-tuple, with names."""

    solution: jax.Array
    """``x = pinv(a) @ b``, shape ``(*, n, k)`` or ``(*, n)``."""
    residuals: jax.Array
    """``sum |b - a x|^2`` over the rows, shape ``(*, k)`` or ``(*)``."""
    rank: jax.Array
    """How many singular values were kept (int32, shape ``(*)``; -1 for non-finite input)."""
    singular_values: jax.Array
    """All ``min(m, n)`` singular values, descending, shape ``(*, min(m, n))``."""


def lstsq(
    a: ArrayLike,
    b: ArrayLike,
    *,
    atol: Tolerance = None,
    rtol: Tolerance = None,
    damping: Any = None,
    method: str = "auto",
) -> jax.Array:
    r"""Minimum-norm least-squares solution ``x = pinv(a) @ b``.

    With the thin SVD ``a = U diag(s) V^H`` and [`pinv`][jaxpinv.pinv]'s cutoff,
    ``x = V diag(1/s_i if s_i > cutoff else 0) U^H b``: among the minimisers
    of ``|a x - b|`` the one of least norm. ``pinv(a)`` itself is never formed.

    **Arguments:**

    - `a`: array of shape ``(*, m, n)``.
    - `b`: array of shape ``(*, m, k)``, or a vector right-hand side: ``(m,)``,
      or ``a.shape[:-1]`` (a vector per matrix), torch.linalg.solve's rule.
      Batch dimensions broadcast between `a`, `b` and the tolerances:
      ``a (3, 1, m, n)`` with ``b (5, m, k)`` gives ``x (3, 5, n, k)``.
    - `atol`, `rtol`: [`pinv`][jaxpinv.pinv]'s tolerances, same semantics.
    - `damping`: if given, the ridge solution ``x = damped_pinv(a, damping) @ b``
      (minimises ``|a x - b|^2 + damping^2 |x|^2``), differentiable in
      `damping` too; it cannot be combined with `atol`/`rtol` (``damping=0``
      uses [`pinv`][jaxpinv.pinv]'s default cutoff). This path forms the damped
      pseudo-inverse.
    - `method`: ``"auto"`` (default) or ``"svd"``, as for [`pinv`][jaxpinv.pinv]: with
      ``"auto"``, a batch whose every matrix is clearly of full rank is solved
      by a Householder QR instead of the SVD (square and tall: ``x = R^-1
      Q^H b``; wide: the minimum-norm ``x = Q R^-H b`` from ``a^H = QR``).
      Not used with `damping`.

    **Returns:**

    ``x`` of shape ``(*, n, k)`` (or ``(*, n)``), in the promoted dtype of `a`
    and `b`. Non-finite entries in a matrix of `a` or in its right-hand side
    make that solution all-NaN, and only that one.

    **Raises:** as [`pinv`][jaxpinv.pinv] (naming ``lstsq``), and `ValueError` if `b`'s
    rows do not match `a`'s or the batch dimensions do not broadcast (with
    `damping` too), `TypeError` if `b` is not numeric.

    **Sharding:** as [`pinv`][jaxpinv.pinv]; for a tall `a` sharded along its rows
    (TSQR), `b` is sharded like `a`'s rows and ``x`` comes back replicated.

    **Derivatives:** a ``custom_jvp`` in both `a` and `b`,

    ``dx = -P dA x + P P^H dA^H (b - A x) + (I - P A) dA^H P^H x + P db``,

    evaluated with matrix-vector products; finite at the identity, the zero
    matrix and at repeated singular values, where ``jnp.linalg.lstsq``'s
    gradient is NaN. Tolerances are not differentiated.

    **Example:**

    ```python
    >>> import jax, jax.numpy as jnp
    >>> import jaxpinv
    >>> a = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> jaxpinv.lstsq(a, jnp.array([1.0, 2.0, 3.0])).tolist()
    [1.0, 2.0]
    >>> jax.grad(lambda a: jaxpinv.lstsq(a, jnp.ones(3)).sum())(jnp.eye(3)).tolist()[0]
    [-1.0, -1.0, -1.0]

    ```
    """
    fast = _validate.method("lstsq", method)
    if damping is not None:
        fname = "lstsq"
        if atol is not None or rtol is not None:
            raise ValueError(f"{fname}: pass either 'damping' or the tolerances 'atol'/'rtol', not both.")
        arr, _, _, _ = _check(fname, a, None, None, False)
        barr, vector = _check_b(fname, arr, b)
        lam = _check_damping(fname, arr, damping)
        _batch(fname, arr, barr, lam, None, ("damping", ""))
        x = _damped_lstsq_impl(arr, barr, lam)
        return x[..., 0] if vector else x
    return _solve("lstsq", a, b, atol, rtol, fast=fast)[0]


def lstsq_full(a: ArrayLike, b: ArrayLike, *, atol: Tolerance = None, rtol: Tolerance = None) -> LstsqResult:
    r""":func:`lstsq` with NumPy's extra outputs: ``(solution, residuals, rank, singular_values)``.

    Unlike ``numpy.linalg.lstsq`` (which returns an empty array of residuals
    unless ``a`` has full column rank and ``m > n``), ``residuals`` is always
    ``sum |b - a x|^2`` over the rows, a fixed shape that jit and vmap need.

    **Arguments:** as :func:`lstsq`.

    **Returns:** an :class:`LstsqResult` named tuple; it unpacks like NumPy's
    4-tuple. Only ``solution`` and ``residuals`` carry derivatives. ``rank``
    and ``singular_values`` describe `a` alone, from the very SVD that gives
    the solution (so ``rank`` is :func:`matrix_rank`'s and counts exactly the
    values the solution uses); `b` does not enter them. A non-finite matrix
    of `a` (or a NaN tolerance) has rank -1 and NaN singular values; a
    non-finite right-hand side leaves them as they are and makes only that
    solution and its residuals NaN. All of this is the same under every
    transformation (``jit``, ``vmap``, ``jvp``, ``grad``).

    **Raises:** as :func:`lstsq`.

    **Example:**

    ```python
    >>> import jax.numpy as jnp
    >>> import jaxpinv
    >>> x, res, rank, s = jaxpinv.lstsq_full(jnp.array([[2.0], [0.0]]), jnp.array([1.0, 3.0]))
    >>> x.tolist(), res.tolist(), int(rank), s.tolist()
    ([0.5], 9.0, 1, [2.0])

    ```
    """
    x, residuals, rank, s = _solve("lstsq_full", a, b, atol, rtol, full=True)
    return LstsqResult(x, residuals, rank, s)


def _solve(fname: str, a: Any, b: Any, atol: Any, rtol: Any, full: bool = False, fast: bool = False) -> tuple[Any, ...]:
    arr, _, _ = _validate.matrix_dtypes(fname, "a", a)
    barr, vector = _check_b(fname, arr, b)
    # the default rtol uses the eps of the dtype a and b promote to
    _, out_dtype = _validate.dtypes(fname, "a", jnp.result_type(arr, barr))
    arr, _, atol, rtol = _check(fname, arr, atol, rtol, False, dtype=out_dtype)
    _batch(fname, arr, barr, atol, rtol)
    out = _lstsq_impl(arr, barr, atol, rtol, full, fast)
    if vector:
        out = (out[0][..., 0], None if out[1] is None else out[1][..., 0]) + tuple(out[2:])
    return out


def _check_b(fname: str, a: jax.Array, b: Any) -> tuple[jax.Array, bool]:
    """``b`` as a stack of matrices ``(*, m, k)``, and whether it was a (batch of) vector(s).

    torch.linalg.solve's rule: `b` is a vector right-hand side if it is 1-D, or
    if ``b.shape == a.shape[:-1]``; otherwise a matrix ``(*, m, k)``.
    """
    barr, _, _ = _validate.matrix_dtypes(fname, "b", b, min_ndim=1)
    vector = barr.ndim == 1 or barr.shape == a.shape[:-1]
    if vector:
        barr = barr[..., None]
    if barr.ndim < 2 or barr.shape[-2] != a.shape[-2]:
        raise ValueError(
            f"{fname}: argument 'b' must have shape (*, m, k), or (m,) or a.shape[:-1] for a "
            f"vector right-hand side, with m = a.shape[-2] = {a.shape[-2]}; got a.shape={a.shape}, "
            f"b.shape={np.shape(b)}."
        )
    return barr, vector


def _batch(
    fname: str, a: jax.Array, b: jax.Array, atol: Any, rtol: Any, names: tuple[str, str] = ("atol", "rtol")
) -> tuple[int, ...]:
    """The broadcast batch shape of `a`, `b` (as ``(*, m, k)``) and the tolerances, or a clear error."""
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{fname}: the batch dimensions of 'a' and 'b' must broadcast; got a.shape={a.shape} "
            f"(batch {a.shape[:-2]}) and b.shape={b.shape} (batch {b.shape[:-2]}, as a stack of (m, k) matrices)."
        ) from None
    return _validate.batch_shape(fname, batch + (0, 0), atol, rtol, names)


@partial(jax.jit, static_argnames=("full", "fast"))
def _lstsq_impl(a: jax.Array, b: jax.Array, atol: Any, rtol: Any, full: bool, fast: bool) -> tuple[Any, ...]:
    compute_dtype, out_dtype = _validate.dtypes("lstsq", "a", jnp.result_type(a, b))
    m, n = a.shape[-2:]
    k = b.shape[-1]
    batch = _validate.batch_shape("lstsq", np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (m, n), atol, rtol)
    atol, rtol = _tolerance.resolve(atol, rtol, batch, m, n, out_dtype)
    a = jnp.broadcast_to(a.astype(compute_dtype), batch + (m, n))
    b = jnp.broadcast_to(b.astype(compute_dtype), batch + (m, k))
    # One mesh and one batch sharding for a, b and the tolerances; TSQR for a row-sharded a
    # (b sharded like its rows); other matrix shardings gathered (see _sharding).
    a, b = _sharding.on_common_mesh(a, b), _sharding.on_common_mesh(b, a)
    a, b, atol, rtol = _sharding.align_batch([a, b, atol, rtol], len(batch))
    a = _sharding.prepare(a)
    b = _sharding.like_rows(b, a)
    real = jnp.finfo(out_dtype).dtype
    if a.size == 0:  # no singular values: rank 0, x = 0, residuals |b|^2
        x = jnp.zeros(batch + (n, k), out_dtype)
        res = jnp.sum(jnp.abs(b) ** 2, axis=-2).astype(real)
        return x, res, jnp.zeros(batch, jnp.int32), jnp.zeros(batch + (0,), real)
    if k == 0:  # no right-hand side: a's rank and singular values all the same
        _, _, rank, _, s = _pinv_core(lax.stop_gradient(a), atol, rtol, False, False)
        return (
            jnp.zeros(batch + (n, 0), out_dtype),
            jnp.zeros(batch + (0,), real),
            rank.astype(jnp.int32),
            s.astype(real),
        )
    # lstsq_full reports the singular values: only the SVD knows them.
    x, rank, s = _lstsq_core(a, b, atol, rtol, fast and not full)
    if not full:
        return x.astype(out_dtype), None, None, None
    r = b - _mm(a, x)
    residuals = jnp.sum(jnp.abs(r) ** 2, axis=-2)
    return x.astype(out_dtype), residuals.astype(real), rank.astype(jnp.int32), s.astype(real)


def _hmv(x: jax.Array, v: jax.Array) -> jax.Array:
    """``x^H v``; a multiply-and-sum over the rows when ``v`` is one column.

    Under ``jax.jacfwd`` the tangent ``x`` carries a batch of basis
    directions, and the matmul form contracts a non-minor axis of that batch,
    which XLA's CPU backend ran about 20x slower than this reduction (300x20
    tangents of a 300x20 matrix: 117 ms against 6 ms).
    """
    if v.shape[-1] == 1:
        return jnp.sum(jnp.conj(x) * v, axis=-2)[..., None]
    return _hmm(x, v)


def _bad_rhs(b: jax.Array) -> jax.Array:
    """Per matrix: does the right-hand side hold NaN or Inf? (One and-reduction, as in ``_decompose``.)"""
    return ~jnp.all(jnp.isfinite(b), axis=(-2, -1))


@partial(jax.custom_jvp, nondiff_argnums=(4,))
def _lstsq_core(
    a: jax.Array, b: jax.Array, atol: jax.Array, rtol: jax.Array, fast: bool
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(pinv(a) @ b, rank, singular values)`` from the factors, without forming ``pinv(a)``.

    ``rank`` and the singular values are ``_pinv_core``'s (of `a` alone), so
    the rule, which gets them from ``_pinv_core``, returns the same primal.
    With ``fast``, the full-rank fast path solves where the whole batch
    qualifies (by the same decision as ``_pinv_core``'s; the singular values
    are then NaN, unknown without the SVD), else the SVD does, reusing its QR.
    """
    if not fast or _sharding.native(a):
        return _svd_solve(a, b, atol, rtol)
    ok, (fast_a, bad_a), factors, _ = _fast_stage_one(a, atol, rtol, False)
    m, n = a.shape[-2:]
    reuse = max(m, n) >= _QR_RATIO * min(m, n)

    def fast_solve() -> tuple[jax.Array, jax.Array, jax.Array]:
        bad = bad_a | _bad_rhs(b)
        x = _fast.solve(fast_a, factors, jnp.where(bad[..., None, None], jnp.zeros((), b.dtype), b))
        x = jnp.where(bad[..., None, None], jnp.nan, x)
        real = jnp.finfo(a.dtype).dtype
        rank = jnp.where(bad_a, -1, min(m, n)).astype(real)
        # NaN values derived from the batch (varying like the SVD branch's inside a user's shard_map)
        return x, rank, jnp.real(fast_a[..., 0, :1]).astype(real) * 0 + jnp.full((min(m, n),), jnp.nan, real)

    def svd_solve() -> tuple[jax.Array, jax.Array, jax.Array]:
        return _svd_solve(fast_a, b, atol, rtol, _fast.qr_of(factors) if reuse else None, (fast_a, bad_a))

    return lax.cond(all_true(ok), fast_solve, svd_solve)


def _svd_solve(
    a: jax.Array, b: jax.Array, atol: jax.Array, rtol: jax.Array, qr: Any = None, clean: Any = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """:func:`_lstsq_core`'s outputs from the SVD (reusing ``qr`` and ``clean`` if given, see ``_decompose``)."""
    values, keep, bad_a, factors = _decompose(a, atol, rtol, False, qr, clean)
    left, right_h, q_left, q_right = factors
    bad = bad_a | _bad_rhs(b)
    b = jnp.where(bad[..., None, None], jnp.zeros((), b.dtype), b)
    inv = jnp.where(keep, 1 / jnp.where(keep, values, 1), 0)
    inv = jnp.where(bad[..., None], jnp.nan, inv).astype(a.dtype)
    y = _hmm(q_left, b) if q_left is not None else b
    y = _hmm(left, y) * inv[..., :, None]  # diag(1/s) U^H b
    x = _mm(_h(right_h), y)
    if q_right is not None:
        x = _mm(q_right, x)
    return x, _float_rank(keep, bad_a, values.dtype), jnp.where(bad_a[..., None], jnp.nan, values)


@_lstsq_core.defjvp
def _lstsq_core_jvp(fast: bool, primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
    a, b, atol, rtol = primals
    da, db = tangents[:2]
    m, n = a.shape[-2:]
    # P from pinv's own custom_jvp keeps higher derivatives stable; x = P b is
    # then differentiable through it.
    p, _, rank, scale, values = _pinv_core(a, atol, rtol, False, fast)
    # As in the forward: a non-finite right-hand side makes that solution NaN.
    bad_b = _bad_rhs(b)[..., None, None]
    b = jnp.where(bad_b, jnp.zeros((), b.dtype), b)
    x = jnp.where(bad_b, jnp.nan, _mm(p, b))
    # Batch-level predicates, unbatched under vmap (see _batching); a
    # non-finite matrix (rank -1) counts as full rank, its tangent is NaN.
    full_col = all_true((rank == n) | (rank < 0))  # P A = I: the third term vanishes
    full_row = all_true((rank == m) | (rank < 0))  # A P = I: the residual b - A x is zero

    # Scale: P ~ 1/c and x ~ |b|/c for c the largest singular value, so P^H x
    # ~ 1/c^2 under- or overflows where the result (~ 1/c) does not. The
    # second and third terms run in units of c: d = dA / c, cp = c P (a
    # constant c: every term is homogeneous in it).
    s = 1 / scale

    def base() -> jax.Array:  # P (db - dA x)
        return _mm(p, db - _mm(da, x))

    def second() -> jax.Array:  # P P^H dA^H (b - A x) = (cP) (cP)^H d^H r / c
        r = b - _mm(a, x)
        cp = p * scale
        return _mm(cp, _hmm(cp, _hmv(da * s, r))) * s

    def third() -> jax.Array:  # (I - P A) dA^H P^H x = (I - P A) d^H ((cP)^H x)
        z = _hmv(da * s, _hmm(p * scale, x))
        return z - _mm(p, _mm(a, z))

    # One switch over which terms vanish (rather than a cond per term), so
    # reverse mode materialises a single cotangent for dA.
    branches = [base, lambda: base() + third(), lambda: base() + second(), lambda: base() + second() + third()]
    index = (~full_row).astype(jnp.int32) * 2 + (~full_col).astype(jnp.int32)
    dx = lax.switch(index, branches)
    return (x, rank, values), (dx, _zeros(rank), _zeros(values))


@jax.jit
def _damped_lstsq_impl(a: jax.Array, b: jax.Array, lam: Any) -> jax.Array:
    """``damped_pinv(a, lam) @ b`` for validated `a`, `b` (a stack of matrices) and `lam`.

    A non-finite right-hand side makes its solution all-NaN, as in :func:`lstsq`.
    """
    x = _damped_impl(a, lam)
    b = _sharding.on_common_mesh(b.astype(jnp.result_type(x, b)), x)
    bad_b = _bad_rhs(b)[..., None, None]
    return jnp.where(bad_b, jnp.nan, _mm(x, jnp.where(bad_b, jnp.zeros((), b.dtype), b)))
