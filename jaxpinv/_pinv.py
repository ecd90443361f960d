"""``pinv``, ``pinverse`` and ``matrix_rank``: the forward pass and its ``custom_jvp`` rule.

The forward pass is one SVD (one ``eigh`` for ``hermitian=True``) with the
singular values at or below the cutoff masked out, or, where every matrix of
the batch is clearly of full rank, a Householder QR that gives the same
result up to rounding (:mod:`jaxpinv._fast`). The derivative is the
Golub–Pereyra formula, written in terms of ``P = pinv(A)`` itself so that the
rule only calls functions with stable derivatives (``pinv`` again, and
matmuls): second and higher derivatives never differentiate through ``svd``,
whose own rule divides by ``s_i**2 - s_j**2`` and is NaN at repeated singular
values.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv import _fast, _sharding, _tolerance, _validate
from jaxpinv._batching import all_true
from jaxpinv._linalg import _h, _hmm, _mm, _mm_h, _zeros

ArrayLike = Any  # jax.typing.ArrayLike, kept loose for NumPy arrays and lists
Tolerance = Any  # None, a Python float or a real array broadcasting against the batch

# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #


def pinv(
    a: ArrayLike,
    *,
    atol: Tolerance = None,
    rtol: Tolerance = None,
    hermitian: bool = False,
    method: str = "auto",
) -> jax.Array:
    r"""Moore–Penrose pseudo-inverse of a matrix or a batch of matrices.

    With the thin SVD ``a = U diag(s) V^H`` and ``s[0]`` the largest singular
    value of each matrix,

    $$
    \mathrm{cutoff} = \max(\mathrm{atol},\ \mathrm{rtol}\cdot s_0), \qquad
    \mathrm{pinv}(a) = V\,\mathrm{diag}(1/s_i \text{ if } s_i > \mathrm{cutoff}
    \text{ else } 0)\,U^H .
    $$

    The comparison is strict, so the zero matrix maps to the zero matrix. These
    are the semantics of ``torch.linalg.pinv``.

    **Arguments:**

    - `a`: array of shape ``(*, m, n)``, real or complex. Integers and bools are
      promoted to JAX's default float dtype; float16 and bfloat16 are computed
      in float32 and returned in their own dtype.
    - `atol`: absolute tolerance, ``None`` (meaning 0), a non-negative Python
      number, or a real array broadcasting against the batch shape
      ``a.shape[:-2]`` (extra leading dimensions enlarge the output, as in
      torch). It may be traced (a jit argument, vmapped). It is not
      differentiated: its gradient is zero.
    - `rtol`: relative tolerance, same forms as `atol`. ``None`` means
      ``max(m, n) * eps`` of the input dtype where `atol` is ``None`` or 0, and
      0 where ``atol > 0``.
    - `hermitian`: if ``True``, `a` must be square and is taken to be
      Hermitian (symmetric if real): only its **lower triangle** is read (the
      strictly upper part is ignored and so is the imaginary part of the
      diagonal), as in torch, NumPy and SciPy. ``eigh`` replaces the SVD and
      ``|eigenvalues|`` play the part of singular values. The derivative is
      that of exactly this function: it is zero with respect to the upper
      triangle.
    - `method`: ``"auto"`` (default) or ``"svd"``. The result is defined by
      the SVD; ``"auto"`` computes it from a Householder QR (``R^-1 Q^H``)
      when every matrix of the batch is clearly of full rank
      (its smallest singular value estimated above 8 times the cutoff), which
      gives the same result up to rounding at a fraction of the cost.
      ``"svd"`` always runs the SVD (for bit-level comparison with
      ``torch.linalg.pinv`` or ``jnp.linalg.pinv``). See the documentation:
      [Which path runs][which-path-runs].

    **Returns:**

    The pseudo-inverse, shape ``(*, n, m)`` (with ``*`` broadcast against the
    tolerances' shapes), in the input's dtype. A matrix holding any NaN or
    ±Inf entry (for ``hermitian=True``: in its lower triangle), or whose
    tolerance is NaN, gives an all-NaN pseudo-inverse; the other matrices of
    the batch, and their derivatives, are unaffected.

    **Raises:**

    - `TypeError`: `a` is not numeric; a tolerance is complex or not numeric;
      `hermitian` is not a Python bool.
    - `ValueError`: `method` is not ``"auto"`` or ``"svd"``; ``a.ndim < 2``;
      ``hermitian=True`` with non-square
      matrices; a tolerance known at trace time is negative or NaN (traced
      negative tolerances are treated as 0); the tolerances do not broadcast
      against the batch shape.

    **Sharding:** a batch sharded over its leading axes stays so, each
    device factoring its own matrices. A tall matrix sharded along its rows
    over ``Explicit`` mesh axes (wide: along its columns) is factored in place
    by TSQR, nothing with ``m`` rows moving between devices; the result comes
    back sharded along its columns. Any other sharding of the matrix
    dimensions is first gathered whole onto each device. See
    [Scaling out][scaling-out].

    **Derivatives:** a ``jax.custom_jvp`` rule (Golub and Pereyra, 1973),
    valid wherever the rank after the cutoff is locally constant::

        dP = -P dA P + P P^H dA^H (I - A P) + (I - P A) dA^H P^H P

    Reverse mode, ``hessian`` and higher orders follow; all are finite for
    finite input, including at repeated singular values.

    **Example:**

    ```python
    >>> import jax, jax.numpy as jnp
    >>> import jaxpinv
    >>> a = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> p = jaxpinv.pinv(a)
    >>> p.shape
    (2, 3)
    >>> bool(jnp.allclose(p @ a, jnp.eye(2), atol=1e-5))
    True
    >>> jaxpinv.pinv(jnp.diag(jnp.array([1.0, 1e-3])), atol=1e-2).tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    >>> g = jax.grad(lambda a: jaxpinv.pinv(a).sum())(jnp.eye(2))  # finite at repeated s
    >>> g.tolist()
    [[-1.0, -1.0], [-1.0, -1.0]]

    ```
    """
    fname = "pinv"
    fast = _validate.method(fname, method)
    arr, hermitian, atol, rtol = _check(fname, a, atol, rtol, hermitian)
    return _pinv_impl(arr, atol, rtol, hermitian, fast)


def pinverse(input: ArrayLike, rcond: float = 1e-15, *, method: str = "auto") -> jax.Array:
    r"""``torch.pinverse``: the pseudo-inverse with a relative cutoff ``rcond``.

    Exactly ``pinv(input, rtol=rcond)``: singular values ``s_i > rcond * s_0``
    are inverted, the others are set to zero.

    The default ``rcond=1e-15`` is torch's, and it is a poor choice in single
    precision: float32's machine epsilon is about 1.2e-7, so singular values
    that are pure rounding noise (around ``1e-7 * s_0``) pass the cutoff and get
    inverted into huge entries. Prefer :func:`pinv`, whose default
    ``rtol = max(m, n) * eps`` adapts to the dtype.

    **Arguments:**

    - `input`: array of shape ``(*, m, n)``, as for :func:`pinv`.
    - `rcond`: the relative tolerance, a non-negative Python number or a real
      array broadcasting against the batch shape.
    - `method`: ``"auto"`` or ``"svd"``, as for :func:`pinv`.

    **Returns:**

    The pseudo-inverse of shape ``(*, n, m)``, as for :func:`pinv`.

    **Raises:** as :func:`pinv` (naming ``pinverse`` and ``rcond``).

    **Example:**

    ```python
    >>> import jax.numpy as jnp
    >>> import jaxpinv
    >>> a = jnp.array([[2.0, 0.0], [0.0, 1e-20]])
    >>> jaxpinv.pinverse(a).tolist()
    [[0.5, 0.0], [0.0, 0.0]]

    ```
    """
    fname = "pinverse"
    fast = _validate.method(fname, method)
    arr, _, _, rcond = _check(fname, input, None, rcond, False, names=("input", "rcond"))
    return _pinv_impl(arr, None, rcond, False, fast)


def matrix_rank(
    a: ArrayLike,
    *,
    atol: Tolerance = None,
    rtol: Tolerance = None,
    hermitian: bool = False,
) -> jax.Array:
    r"""Numerical rank: how many singular values :func:`pinv` keeps.

    With the same arguments, ``matrix_rank(a)`` is exactly the number of
    singular values ``s_i > max(atol, rtol * s_0)`` that :func:`pinv` inverts,
    so the two always agree (``jnp.linalg.matrix_rank`` uses a different
    default tolerance and a non-strict comparison).

    **Arguments:** as :func:`pinv`.

    **Returns:**

    An integer array of shape ``*`` (the batch shape, broadcast against the
    tolerances' shapes). A matrix holding NaN or ±Inf (or with a NaN
    tolerance) has no rank: it gets ``-1``, which cannot be mistaken for one.

    **Raises:** as :func:`pinv`.

    **Example:**

    ```python
    >>> import jax.numpy as jnp
    >>> import jaxpinv
    >>> a = jnp.array([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]])
    >>> int(jaxpinv.matrix_rank(a))
    1
    >>> jaxpinv.matrix_rank(jnp.diag(jnp.array([1.0, 1e-3])), atol=jnp.array([1e-4, 1e-2])).tolist()
    [2, 1]

    ```
    """
    fname = "matrix_rank"
    arr, hermitian, atol, rtol = _check(fname, a, atol, rtol, hermitian)
    return _rank_impl(arr, atol, rtol, hermitian)


def _check(
    fname: str,
    a: Any,
    atol: Any,
    rtol: Any,
    hermitian: Any,
    names: tuple[str, str] = ("a", "rtol"),
    dtype: Any = None,
) -> tuple[jax.Array, bool, Any, Any]:
    """All trace-time checks shared by the public functions.

    ``dtype`` is the dtype whose eps sets the default rtol (that of `a` if None).
    """
    arr, _, out_dtype = _validate.matrix_dtypes(fname, names[0], a)
    hermitian = _validate.static_bool(fname, "hermitian", hermitian)
    if hermitian:
        _validate.square(fname, names[0], arr)
    atol = _validate.tolerance(fname, "atol", atol)
    rtol = _validate.tolerance(fname, names[1], rtol)
    _validate.batch_shape(fname, arr.shape, atol, rtol, ("atol", names[1]))
    m, n = arr.shape[-2:]
    atol, rtol = _tolerance.host_pair(atol, rtol, m, n, out_dtype if dtype is None else dtype)
    return arr, hermitian, atol, rtol


# --------------------------------------------------------------------------- #
# Jitted implementations (inputs already validated)
# --------------------------------------------------------------------------- #


def _prepare(a: jax.Array, atol: Any, rtol: Any, hermitian: bool) -> tuple[jax.Array, jax.Array, jax.Array, Any]:
    """Broadcast, cast to the compute dtype, read the lower triangle if Hermitian."""
    _, compute_dtype, out_dtype = _validate.matrix_dtypes("pinv", "a", a)
    m, n = a.shape[-2:]
    batch = _validate.batch_shape("pinv", a.shape, atol, rtol)
    # out_dtype is the input's inexact dtype: its eps sets the default rtol.
    atol_b, rtol_b = _tolerance.resolve(atol, rtol, batch, m, n, out_dtype)
    a = jnp.broadcast_to(a.astype(compute_dtype), batch + (m, n))
    # One batch sharding for a and the tolerances; matrix dimensions sharded in a
    # way TSQR does not take are gathered (see _sharding).
    a, atol_b, rtol_b = _sharding.align_batch([a, atol_b, rtol_b], len(batch))
    a = _sharding.prepare(a)
    if hermitian and a.size:
        a = jax.checkpoint(_hermitian_from_lower)(a)
    return a, atol_b, rtol_b, out_dtype


@partial(jax.jit, static_argnames=("hermitian", "fast"))
def _pinv_impl(a: jax.Array, atol: Any, rtol: Any, hermitian: bool, fast: bool = True) -> jax.Array:
    a, atol, rtol, out_dtype = _prepare(a, atol, rtol, hermitian)
    if a.size == 0:
        return jnp.zeros(a.shape[:-2] + a.shape[-2:][::-1], out_dtype)
    return _pinv_core(a, atol, rtol, hermitian, fast)[0].astype(out_dtype)


@partial(jax.jit, static_argnames=("hermitian",))
def _rank_impl(a: jax.Array, atol: Any, rtol: Any, hermitian: bool) -> jax.Array:
    a, atol, rtol, _ = _prepare(lax.stop_gradient(a), atol, rtol, hermitian)
    if a.size == 0:
        return jnp.zeros(a.shape[:-2], jnp.int32)
    # The very decomposition pinv uses, vectors included: LAPACK's values-only
    # SVD (eigvalsh) rounds differently by a few ULPs, so a singular value tied
    # with the cutoff could be counted by one and dropped by the other.
    _, keep, bad, _ = _decompose(a, atol, rtol, hermitian)
    return _rank(keep, bad)


@partial(jax.jit, static_argnames=("hermitian",))
def _fast_path_taken(a: jax.Array, atol: Any = None, rtol: Any = None, hermitian: bool = False) -> jax.Array:
    """Would ``pinv(a, atol=atol, rtol=rtol, hermitian=hermitian)`` take the fast path? (tests, benchmarks)"""
    a, atol, rtol, _ = _prepare(a, atol, rtol, hermitian)
    if _sharding.native(a):
        return jnp.asarray(False)
    return all_true(_fast_stage_one(a, atol, rtol, hermitian)[0])


def _rank(keep: jax.Array, bad: jax.Array) -> jax.Array:
    """How many values are kept, per matrix; -1 for a matrix with no rank (non-finite)."""
    return jnp.where(bad, jnp.int32(-1), jnp.sum(keep, axis=-1, dtype=jnp.int32))


def _float_rank(keep: jax.Array, bad: jax.Array, dtype: Any) -> jax.Array:
    """:func:`_rank` as a count in a real float dtype: the form a ``custom_jvp`` outputs.

    An integer output needs a ``float0`` tangent, a NumPy array that carries no
    sharding, and jax 0.5.1-0.7.1 reject it against a batch-sharded rank under
    ``jit(grad)``; a float count takes ``zeros_like`` as its tangent, which
    carries the primal's sharding. Counts are exact in any float dtype here.
    """
    return _rank(keep, bad).astype(dtype)


def _non_finite(a: jax.Array) -> jax.Array:
    """Per matrix: does it hold NaN or Inf? One fused and-reduction.

    (Not ``isfinite(max |a|)``: XLA's CPU max-reduction drops a NaN from
    64 x 64 up unless it sits in the last lane.)
    """
    return ~jnp.all(jnp.isfinite(a), axis=(-2, -1))


def _hermitian_from_lower(a: jax.Array) -> jax.Array:
    """The Hermitian matrix whose lower triangle is that of ``a`` (diagonal made real).

    This is what LAPACK's ``*heevd`` with ``UPLO='L'`` reads, so forward and
    derivative describe the same function. It is linear in ``a``.
    """
    # (A jnp.where over iota masks with a transposed operand crashed XLA's CPU
    # compiler, a segfault, for n >= 1024 in jax 0.10.2; tril does not.)
    lower = jnp.tril(a, -1)
    diag = jnp.real(jnp.diagonal(a, axis1=-2, axis2=-1)).astype(a.dtype)
    return lower + _h(lower) + diag[..., None] * jnp.eye(a.shape[-1], dtype=a.dtype)


# Reduce by QR first when one side is at least this many times the other:
# A = Q R, then the SVD of the small square R (Chan's R-SVD). Measured on one
# CPU core (benchmarks/bench.py, crossover table): 1.1-1.3x faster than a
# direct SVD from m = 2n up, slower at m = 1.5n. (pinv(A) = (R^H R)^+ A^H
# would skip forming Q, 1.3-1.8x faster still, but its error reached 3x a
# direct SVD's on small tall matrices: not adopted.)
_QR_RATIO = 2

Factors = tuple[jax.Array, jax.Array, "jax.Array | None", "jax.Array | None"]


def _sanitize(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(a', bad)``: the per-matrix non-finite flags, and ``a`` with those matrices replaced by zeros."""
    bad = _non_finite(a)
    return jnp.where(bad[..., None, None], jnp.zeros((), a.dtype), a), bad


def _decompose(
    a: jax.Array,
    atol: jax.Array,
    rtol: jax.Array,
    hermitian: bool,
    qr: tuple[jax.Array, jax.Array] | None = None,
    clean: tuple[jax.Array, jax.Array] | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array, Factors]:
    """SVD (or eigh) with the cutoff applied.

    Returns ``(values, keep, bad, factors)``: the singular values (signed
    eigenvalues if Hermitian), the mask of kept ones, the per-matrix mask of
    matrices whose result must be NaN, and ``(left, right_h, q_left, q_right)``
    with ``a = [q_left] left diag(values) right_h [q_right^H]`` (the bracketed
    orthonormal factors of a QR reduction, or ``None``). Hermitian input is
    read as it is (``eigh`` without symmetrising, which would overflow at
    entries near the dtype's maximum).

    Non-finite matrices are replaced by zeros *before* the decomposition:
    LAPACK's SVD can loop forever on a matrix holding Inf.

    ``qr``, for input reduced by QR first, is that QR if already computed (by
    the fast path, of the same sanitised matrices); ``clean`` is
    :func:`_sanitize`'s result if already computed.
    """
    a, bad = _sanitize(a) if clean is None else clean
    m, n = a.shape[-2:]
    factors: Factors
    if hermitian:
        values, u = jnp.linalg.eigh(a, symmetrize_input=False)
        factors = (u, _h(u), None, None)
        magnitude = jnp.abs(values)
    else:
        tall, wide = m >= _QR_RATIO * n, n >= _QR_RATIO * m
        # Wide: A^H = Q R, so A = R^H Q^H and the SVD is that of R^H.
        core = _h(a) if wide else a
        q = None
        if tall or wide:
            q, core = _sharding.qr(core) if qr is None else qr  # TSQR if row-sharded
            core = _h(core) if wide else core
        u, values, vh = jnp.linalg.svd(core, full_matrices=False)
        factors = (u, vh, q if tall else None, q if wide else None)
        magnitude = values
    keep, nan_tol = _tolerance.keep(magnitude, _largest(values, hermitian), atol, rtol)
    return values, keep, bad | nan_tol, factors


# --------------------------------------------------------------------------- #
# The differentiable core: custom_jvp
# --------------------------------------------------------------------------- #


Outputs = tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]


@partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _pinv_core(a: jax.Array, atol: jax.Array, rtol: jax.Array, hermitian: bool, fast: bool) -> Outputs:
    """``(pinv(a), gram, rank, scale, values)`` of a non-empty batch ``a``; see :func:`_svd_outputs`.

    With ``fast``, the full-rank fast path (:mod:`jaxpinv._fast`) computes
    them when the whole batch qualifies (``values`` are then NaN: unknown
    without the SVD), else the SVD does, reusing the fast path's QR where
    the SVD path reduces by the same QR. The decision is one batch-level
    ``cond`` (unbatched under ``vmap``, see :mod:`jaxpinv._batching`).
    """
    if not fast or _sharding.native(a):  # a row-sharded matrix: TSQR and the SVD (see _sharding)
        return _svd_outputs(a, atol, rtol, hermitian)
    ok, (a, bad), factors, s_hi = _fast_stage_one(a, atol, rtol, hermitian)
    m, n = a.shape[-2:]
    reuse = not hermitian and max(m, n) >= _QR_RATIO * min(m, n)
    return lax.cond(
        all_true(ok),
        lambda: _fast_outputs(a, factors, bad, s_hi, hermitian),
        lambda: _svd_outputs(a, atol, rtol, hermitian, _fast.qr_of(factors) if reuse else None, (a, bad)),
    )


def _fast_stage_one(
    a: jax.Array, atol: jax.Array, rtol: jax.Array, hermitian: bool
) -> tuple[jax.Array, tuple[jax.Array, jax.Array], _fast.Factors, jax.Array]:
    """``(ok, (a', bad), factors, s_hi)``: the fast path's factorization and per-matrix decision.

    ``(a', bad)`` is :func:`_sanitize`'s: a non-finite matrix is replaced by
    zeros before any factorization, as on the SVD path (which reuses
    ``a'``); its ``R`` is singular, so its candidate is NaN or Inf, replaced
    by NaN as on the SVD path. It does not hold the batch back from the fast
    path (``ok`` is true for it).
    """
    a, bad = _sanitize(a)
    factors, s_hi, ok = _fast.factor(a, bad, atol, rtol)
    return ok, (a, bad), factors, s_hi


def _fast_outputs(a: jax.Array, factors: _fast.Factors, bad: jax.Array, s_hi: jax.Array, hermitian: bool) -> Outputs:
    """:func:`_pinv_core`'s outputs from the fast path's factors (every matrix qualified)."""
    m, n = a.shape[-2:]
    real = jnp.finfo(a.dtype).dtype
    x, g = _fast.finish(a, factors, gram=m != n)
    if hermitian:
        x = (x + _h(x)) / 2
    p = jnp.where(bad[..., None, None], jnp.nan, x)
    scale = jnp.where((s_hi > 0) & jnp.isfinite(s_hi), s_hi, 1).astype(a.dtype)[..., None, None]
    # gram: (A^H A)^-1 (tall) or (A A^H)^-1 (wide), times c^2; empty if square
    gram = _zeros(a[..., :0, :0]) if g is None else g * (scale * jnp.conj(scale))
    k = min(m, n)
    rank = jnp.where(bad, -1, k).astype(real)
    # NaN values (unknown without the SVD), derived from the result so that inside a user's
    # shard_map they vary over the same mesh axes as the SVD branch's values.
    values = jnp.real(p[..., 0, :1]).astype(real) * 0 + jnp.full((k,), jnp.nan, real)
    return p, gram, rank, scale, values


def _svd_outputs(
    a: jax.Array,
    atol: jax.Array,
    rtol: jax.Array,
    hermitian: bool,
    qr: tuple[jax.Array, jax.Array] | None = None,
    clean: tuple[jax.Array, jax.Array] | None = None,
) -> Outputs:
    """``(pinv(a), gram, rank, scale, values)`` of a non-empty batch ``a`` (Hermitian already formed if ``hermitian``).

    ``scale`` is ``c``, the largest singular value (``|eigenvalue|``) of each
    matrix, shape ``(..., 1, 1)`` (1 where that is zero or not finite): a
    constant for the derivative. ``gram`` is ``c^2`` times the pseudo-inverse
    of the small Gram matrix, ``P P^H = (A^H A)^+`` if ``m > n``,
    ``P^H P = (A A^H)^+`` if ``m < n``, so it neither over- nor underflows,
    formed from the small SVD factor: ``n^3`` flops instead of the
    derivative's ``m n^2``. It is an empty ``(..., 0, 0)`` array for square or
    Hermitian input, whose rule does not need it. The rank (int32, per
    matrix, -1 for a non-finite matrix) lets the derivative skip the
    Golub–Pereyra terms that vanish at full rank. ``values`` are the singular
    values (signed eigenvalues if Hermitian), NaN for a non-finite matrix;
    like ``rank`` and ``scale`` they are not differentiated.
    """
    values, keep, bad, factors = _decompose(a, atol, rtol, hermitian, qr, clean)
    left, right_h, q_left, q_right = factors
    # Safe where: divide only by kept values, so nothing is inf or NaN. A bad
    # matrix gets NaN reciprocals, which the product spreads to all of its
    # pinv (NaN * 0 is NaN): cheaper than a select on the full output.
    inv = jnp.where(keep, 1 / jnp.where(keep, values, 1), 0)
    inv = jnp.where(bad[..., None], jnp.nan, inv).astype(a.dtype)
    p = _mm(_h(right_h) * inv[..., None, :], _h(left))
    m, n = a.shape[-2:]
    largest = _largest(values, hermitian)
    scale = jnp.where((largest > 0) & jnp.isfinite(largest), largest, 1).astype(a.dtype)[..., None, None]
    cinv = inv * scale[..., 0]
    inv2 = (cinv * jnp.conj(cinv))[..., None, :]
    if hermitian or m == n:
        gram = _zeros(a[..., :0, :0])  # empty; derived from a so it varies like a in a shard_map
    elif m > n:  # V diag(1/s^2) V^H
        gram = _mm(_h(right_h) * inv2, right_h)
    else:  # U diag(1/s^2) U^H
        gram = _mm(left * inv2, _h(left))
    if q_left is not None:  # tall, A = Q R: pinv(A) = pinv(R) Q^H
        p = _mm_h(p, q_left)
    if q_right is not None:  # wide, A = R^H Q^H: pinv(A) = Q pinv(R^H)
        p = _mm(q_right, p)
    values = jnp.where(bad[..., None], jnp.nan, values)
    return p, gram, _float_rank(keep, bad, values.dtype), scale, values


@_pinv_core.defjvp  # type: ignore[arg-type]  # jax types the rule by the primal's exact tuple type
def _pinv_core_jvp(
    hermitian: bool, fast: bool, primals: tuple[jax.Array, ...], tangents: tuple[jax.Array, ...]
) -> tuple[tuple[jax.Array, ...], tuple[Any, ...]]:
    a, atol, rtol = primals
    da = tangents[0]  # the tolerances' tangents are ignored: not differentiable
    # Calling the custom_jvp function itself (not the factors) keeps every
    # derivative of this rule on stable ground: P's own derivative is this rule.
    out = p, gram, rank, scale, values = _pinv_core(a, atol, rtol, hermitian, fast)
    dp = _pinv_tangent(a, p, gram, rank, scale, da, hermitian)
    m, n = a.shape[-2:]
    if gram.size == 0:
        dgram = _zeros(gram)
    elif m > n:  # c^2 P P^H
        dgram = _mm_h(scale * dp, scale * p)
        dgram = dgram + _h(dgram)
    else:  # c^2 P^H P
        dgram = _hmm(scale * p, scale * dp)
        dgram = dgram + _h(dgram)
    return out, (dp, dgram, _zeros(rank), _zeros(scale), _zeros(values))


def _largest(values: jax.Array, hermitian: bool) -> jax.Array:
    """The largest magnitude of the sorted ``values`` (descending singular values, ascending eigenvalues)."""
    if hermitian:
        return jnp.maximum(jnp.abs(values[..., 0]), jnp.abs(values[..., -1]))
    return values[..., 0]


def _complement(x: jax.Array) -> jax.Array:
    """``I - x`` for a square ``x``.

    Built inside each branch that needs it (not once outside): a constant
    closed over by a ``jax.checkpoint``-ed branch is saved for reverse mode.
    """
    return jnp.eye(x.shape[-1], dtype=x.dtype) - x


def _pinv_tangent(
    a: jax.Array,
    p: jax.Array,
    gram: jax.Array,
    rank: jax.Array,
    scale: jax.Array,
    da: jax.Array,
    hermitian: bool,
) -> jax.Array:
    """Golub–Pereyra: ``dP = -P dA P + P P^H dA^H (I - A P) + (I - P A) dA^H P^H P``.

    The second term vanishes where ``rank == m`` (then ``A P = I``), the third
    where ``rank == n`` (``P A = I``): a ``lax.cond`` on the batch's ranks skips
    them, so a full-rank square matrix costs two matmuls. The predicate is
    batch-level (:func:`jaxpinv._batching.all_true`): under ``vmap`` too it
    picks one branch for the whole batch, as for the batched call.

    **Scale.** Square and Hermitian matrices need no scaling: every product
    pairs ``P`` with ``dA`` (``P dA``, ``dA P``, of size ``|dA| / sigma``) or
    with ``A`` (the projectors ``P A`` and ``A P``, of norm 1), so no
    intermediate is larger or smaller than the terms themselves. The tall
    (``m > n``) branch uses ``G = P P^H`` (``~ 1/sigma^2``) and ``A^H dA``
    (``~ sigma |dA|``) to save two ``m n^2`` products; there ``G`` comes
    pre-scaled by ``c^2`` and ``dA`` is divided by ``c`` (the largest singular
    value, a constant: the formula is homogeneous in it), so nothing under-
    or overflows where the result is representable. Wide matrices use
    ``dP(A, dA) = dP(A^H, dA^H)^H``.
    """
    m, n = a.shape[-2:]
    if not hermitian and m < n:
        return _h(_pinv_tangent(_h(a), _h(p), gram, rank, scale, _h(da), False))
    # P A = I (and A P = I when square), for the whole batch; unbatched under
    # vmap, so the cond stays a cond (see _batching). A non-finite matrix
    # (rank -1) counts as full rank: its derivative is NaN anyway, and it must
    # not send the rest of the batch down the rank-deficient path.
    full_col = all_true((rank == n) | (rank < 0))

    if m == n:  # square or Hermitian

        def full() -> jax.Array:  # A P = P A = I: dP = -P dA P, two matmuls
            return -_mm(_mm(p, da), p)

        def square_deficient() -> jax.Array:
            # -X P + (I - P A) X^H P + P Z^H (I - A P), with X = P dA and
            # Z = dA P (dA^H P^H = X^H and P^H dA^H = Z^H).
            x = _mm(p, da)
            left = _mm(_complement(_mm(p, a)), _h(x)) - x
            right = _mm(_h(_mm(da, p)), _complement(_mm(a, p)))
            return _mm(left, p) + _mm(p, right)

        def hermitian_deficient() -> jax.Array:
            # P = P^H and dA = dA^H: Z = X^H, and the last two terms are each
            # other's adjoint, t = (I - P A) X^H P.
            x = _mm(p, da)
            t = _mm(_mm(_complement(_mm(p, a)), _h(x)), p)
            return t + _h(t) - _mm(x, p)

        # One cond per case (not one per term), so that reverse mode
        # materialises a single cotangent for dA and saves only what the
        # branches share (X = P dA outside the cond made reverse mode save P
        # twice); the deficient branch is rematerialised there rather than
        # saving its projectors.
        deficient = hermitian_deficient if hermitian else square_deficient
        return lax.cond(full_col, full, jax.checkpoint(deficient))

    def first_two() -> jax.Array:
        # With G = P P^H = (A^H A)^+ (n x n), P = G A^H at any rank, so the
        # first two terms regroup as
        #   -P dA P + G dA^H (I - A P) = G (dA^H - (A^H dA + dA^H A) P),
        # three m n^2 matmuls (two fewer than term by term), and the same
        # three in the transpose (reverse mode). In units of c: gram = c^2 G
        # and d = dA / c.
        s = 1 / scale
        d = da * s
        y = _hmm(a, d)
        return _mm(gram, _h(d) - _mm(y + _h(y), p)) * s

    def all_three() -> jax.Array:
        # + (I - P A) dA^H P^H P, zero when P A = I; each product's size is
        # that of the term.
        return first_two() + _mm(_mm_h(_mm(_complement(_mm(p, a)), _h(da)), p), p)

    # tall: A P != I always; P A = I at full column rank
    return lax.cond(full_col, first_two, jax.checkpoint(all_three))
