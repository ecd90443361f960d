"""``lstsq`` and ``lstsq_full``: minimum-norm least squares ``x = pinv(a) @ b`` without forming ``pinv(a)``.

The public functions and their jitted implementations: the host-side check
(:mod:`jaxpinv._check`), the preamble (:mod:`jaxpinv._preamble`), then the
differentiable core (:mod:`jaxpinv._lstsq_core`: the dispatch's solve, with
exactly ``pinv``'s cutoff, and the matrix-vector rule). With ``damping``, the
ridge solution from :mod:`jaxpinv._damped_core`.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv import _check, _damped_core, _lstsq_core, _preamble, _svd
from jaxpinv._kernel import nan_where, rank, real_dtype, sanitize, sanitize_columns, zero_where
from jaxpinv._linalg import h, mm
from jaxpinv._preamble import Spec
from jaxpinv._types import ArrayLike, Damping, Tolerance


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


@_check.keywords("lstsq")
def lstsq(
    a: ArrayLike,
    b: ArrayLike,
    *,
    atol: Tolerance = None,
    rtol: Tolerance = None,
    damping: Damping | None = None,
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
      ``a (3, 1, m, n)`` with ``b (5, m, k)`` gives ``x (3, 5, n, k)``. Each
      matrix is factored once: ``b``'s batch dimensions that `a` and the
      tolerances lack are solved as further columns of one solve.
    - `atol`, `rtol`: [`pinv`][jaxpinv.pinv]'s tolerances, same semantics.
    - `damping`: if given, the ridge solution ``x = damped_pinv(a, damping) @ b``
      (minimises ``|a x - b|^2 + damping^2 |x|^2``), differentiable in
      `damping` too; it cannot be combined with `atol`/`rtol` (``damping=0``
      uses [`pinv`][jaxpinv.pinv]'s default cutoff). This path forms the damped
      pseudo-inverse.
    - `method`: ``"auto"`` (default), ``"qr"`` or ``"svd"`` (``"cholesky"``
      is accepted and runs the SVD: `a` is never taken as Hermitian here), as for
      [`pinv`][jaxpinv.pinv] (``"auto"`` compiles the QR path in from
      ``64**3`` on, ``"qr"`` at any size): a matrix that is clearly of full
      rank is solved by a Householder QR instead of the SVD (square and
      tall: ``x = R^-1 Q^H b``; wide: the minimum-norm ``x = Q R^-H b``
      from ``a^H = QR``), the few of a batch that are not by the SVD alone.
      Not used with `damping`.

    **Returns:**

    ``x`` of shape ``(*, n, k)`` (or ``(*, n)``), in the promoted dtype of `a`
    and `b`. A matrix of `a` holding NaN or Inf gets an all-NaN solution;
    a NaN or Inf in column ``j`` of `b` makes column ``j`` of its solution
    NaN (each column depends on its own column of `b` alone). Nothing else
    is touched, derivatives included.

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
    method = _check.method("lstsq", method)
    if damping is None:
        c = _check.check("lstsq", a, b=b, atol=atol, rtol=rtol)
        x = _lstsq_impl(c.a, c.b, c.atol, c.rtol, c.spec, method)
    else:
        if atol is not None or rtol is not None:
            raise ValueError("lstsq: pass either 'damping' or the tolerances 'atol'/'rtol', not both.")
        c = _check.check("lstsq", a, b=b, damping=damping, damped=True)
        x = _damped_lstsq_impl(c.a, c.b, c.damping, c.spec)
    return x[..., 0] if c.vector else x


@_check.keywords("lstsq_full")
def lstsq_full(a: ArrayLike, b: ArrayLike, *, atol: Tolerance = None, rtol: Tolerance = None) -> LstsqResult:
    r"""[`lstsq`][jaxpinv.lstsq] with NumPy's extra outputs: ``(solution, residuals, rank, singular_values)``.

    Unlike ``numpy.linalg.lstsq`` (which returns an empty array of residuals
    unless ``a`` has full column rank and ``m > n``), ``residuals`` is always
    ``sum |b - a x|^2`` over the rows, a fixed shape that jit and vmap need.

    **Arguments:** as [`lstsq`][jaxpinv.lstsq].

    **Returns:** an [`LstsqResult`][jaxpinv.LstsqResult] named tuple; it unpacks like NumPy's
    4-tuple. Only ``solution`` and ``residuals`` carry derivatives. ``rank``
    and ``singular_values`` describe `a` alone, from the very SVD that gives
    the solution (so ``rank`` is [`matrix_rank`][jaxpinv.matrix_rank]'s and counts exactly the
    values the solution uses); `b` does not enter them. A non-finite matrix
    of `a` (or a NaN tolerance) has rank -1 and NaN singular values; a
    non-finite column of `b` leaves them as they are and makes only that
    column's solution and residual NaN. All of this is the same under every
    transformation (``jit``, ``vmap``, ``jvp``, ``grad``).

    **Raises:** as [`lstsq`][jaxpinv.lstsq].

    **Example:**

    ```python
    >>> import jax.numpy as jnp
    >>> import jaxpinv
    >>> x, res, rank, s = jaxpinv.lstsq_full(jnp.array([[2.0], [0.0]]), jnp.array([1.0, 3.0]))
    >>> x.tolist(), res.tolist(), int(rank), s.tolist()
    ([0.5], 9.0, 1, [2.0])

    ```
    """
    c = _check.check("lstsq_full", a, b=b, atol=atol, rtol=rtol)
    out = _lstsq_full_impl(c.a, c.b, c.atol, c.rtol, c.spec)
    return out._replace(solution=out.solution[..., 0], residuals=out.residuals[..., 0]) if c.vector else out


@partial(jax.jit, static_argnames=("spec", "method"))
def _lstsq_impl(a: jax.Array, b: jax.Array, atol: Any, rtol: Any, spec: Spec, method: str) -> jax.Array:
    x = _preamble.prepare(spec, a, atol, rtol, b=b)
    assert x.b is not None  # (for the type checker)
    b = x.b
    if x.a.size == 0 or b.shape[-1] == 0:  # no singular values or no right-hand side: x = 0
        return jnp.zeros(spec.batch + (x.a.shape[-1], b.shape[-1]), spec.out)
    return x.unfold(_lstsq_core.parts(x.a, b, x.atol, x.rtol, method).x).astype(spec.out)


@partial(jax.jit, static_argnames=("spec",))
def _lstsq_full_impl(a: jax.Array, b: jax.Array, atol: Any, rtol: Any, spec: Spec) -> LstsqResult:
    """The solution, residuals, rank and singular values; only the SVD knows the singular values."""
    x = _preamble.prepare(spec, a, atol, rtol, b=b)
    assert x.b is not None  # (for the type checker)
    b = x.b
    n, k = x.a.shape[-1], b.shape[-1]
    real = real_dtype(spec.out)
    if x.a.size == 0:  # no singular values: rank 0, x = 0, residuals |b|^2
        residuals = jnp.sum(jnp.abs(b) ** 2, axis=-2).astype(real)
        return LstsqResult(
            jnp.zeros(spec.batch + (n, k), spec.out),
            residuals,
            jnp.zeros(spec.batch, jnp.int32),
            jnp.zeros(spec.batch + (0,), real),
        )
    if k == 0:  # no right-hand side: a's rank and singular values all the same
        d = _svd.decompose(sanitize(lax.stop_gradient(x.a)), x.atol, x.rtol, False)
        return LstsqResult(
            jnp.zeros(spec.batch + (n, 0), spec.out),
            jnp.zeros(spec.batch + (0,), real),
            jnp.broadcast_to(rank(d.keep, d.bad), spec.batch),
            jnp.broadcast_to(nan_where(d.bad, d.values).astype(real), spec.batch + d.values.shape[-1:]),
        )
    out = _lstsq_core.parts(x.a, b, x.atol, x.rtol, "svd")  # the singular values: only the SVD has them
    # Per column, from the finite columns only: a NaN column must not reach the others' derivatives.
    rhs = sanitize_columns(b)
    residuals = jnp.sum(jnp.abs(rhs.a - mm(x.a, zero_where(rhs.bad, out.x))) ** 2, axis=-2)
    residuals = x.unfold(nan_where(rhs.bad, residuals[..., None, :]))[..., 0, :]
    values = spec.batch + out.values.shape[-1:]
    return LstsqResult(
        x.unfold(out.x).astype(spec.out),
        residuals.astype(real),
        jnp.broadcast_to(out.rank.astype(jnp.int32), spec.batch),
        jnp.broadcast_to(out.values.astype(real), values),
    )


@partial(jax.jit, static_argnames=("spec",))
def _damped_lstsq_impl(a: jax.Array, b: jax.Array, damping: Any, spec: Spec) -> jax.Array:
    """``damped_pinv(a, damping) @ b``; ``a`` is factored at its own batch, not ``b``'s."""
    x = _preamble.prepare(spec, a, b=b, damping=damping)
    assert x.b is not None  # (for the type checker)
    b = x.b
    m, n = x.a.shape[-2:]
    if x.a.size == 0 or b.shape[-1] == 0:
        return jnp.zeros(spec.batch + (n, b.shape[-1]), spec.out)
    wide = m < n
    p = _damped_core.pinv(h(x.a) if wide else x.a, x.damping, x.atol, x.rtol)
    rhs = sanitize_columns(b)  # a non-finite column of b makes that column of x NaN, as in lstsq
    return x.unfold(nan_where(rhs.bad, mm(h(p) if wide else p, rhs.a))).astype(spec.out)
