"""``pinv``, ``pinverse`` and ``matrix_rank``: the public functions and their jitted implementations.

Each is a host-side check (:mod:`jaxpinv._check`), then a jitted
implementation: the preamble (:mod:`jaxpinv._preamble`), then the
differentiable core (:mod:`jaxpinv._pinv_core`: the dispatch between the
paths, and the Golub–Pereyra rule). ``matrix_rank`` counts what the SVD keeps
(:mod:`jaxpinv._svd`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxpinv import _check, _pinv_core, _preamble, _svd
from jaxpinv._kernel import rank, sanitize
from jaxpinv._preamble import Spec
from jaxpinv._types import ArrayLike, Tolerance


@_check.keywords("pinv")
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
      differentiated: its gradient is zero. A matrix that broadcasts against
      many tolerances is factored once (a tolerance sweep costs one SVD plus
      the products).
    - `rtol`: relative tolerance, same forms as `atol`. ``None`` means
      ``max(m, n) * eps`` of the dtype the computation runs in (the input's;
      float32 for float16/bfloat16) where `atol` is ``None`` or 0, and
      0 where ``atol > 0``.
    - `hermitian`: if ``True``, `a` must be square and is taken to be
      Hermitian (symmetric if real): only its **lower triangle** is read (the
      strictly upper part is ignored and so is the imaginary part of the
      diagonal), as in torch, NumPy and SciPy. ``eigh`` replaces the SVD and
      ``|eigenvalues|`` play the part of singular values. The derivative is
      that of exactly this function: it is zero with respect to the upper
      triangle.
    - `method`: ``"auto"`` (default), ``"cholesky"``, ``"qr"`` or ``"svd"``.
      The result is defined by the SVD (``eigh``); ``"auto"`` computes it
      from a Householder QR (``R^-1 Q^H``), or for ``hermitian=True`` and
      positive definite input from a Cholesky factor (``L^-H L^-1``), when
      a matrix is clearly of full rank (its smallest singular value
      estimated above 8 times the cutoff), which gives the same result up
      to rounding at a fraction of the cost; the few matrices of a batch
      (of 8 or more) that are not, up to an eighth, take the SVD alone;
      more send the whole batch there. It compiles those paths in only where they can
      repay their compile time (from ``matrices * m * n * min(m, n) >=
      64**3`` on: one 64 x 64 matrix, a batch of 512 8 x 8; under
      ``jax.vmap`` the mapped matrices count too). ``"qr"`` or
      ``"cholesky"`` compiles that path in at any size (a small matrix
      inverted many times). ``"svd"`` always runs
      the SVD (for bit-level comparison with ``torch.linalg.pinv`` or
      ``jnp.linalg.pinv``). See the documentation: [Which path
      runs][which-path-runs].

    **Returns:**

    The pseudo-inverse, shape ``(*, n, m)`` (with ``*`` broadcast against the
    tolerances' shapes), in the input's dtype. A matrix holding any NaN or
    ±Inf entry (for ``hermitian=True``: in its lower triangle), or whose
    tolerance is NaN, gives an all-NaN pseudo-inverse; the other matrices of
    the batch, and their derivatives, are unaffected.

    **Raises:**

    - `TypeError`: `a` is not numeric; a tolerance is complex or not numeric;
      `hermitian` is not a Python bool.
    - `ValueError`: `method` is not ``"auto"``, ``"cholesky"``, ``"qr"`` or ``"svd"``; ``a.ndim < 2``;
      ``hermitian=True`` with non-square
      matrices; a tolerance known at trace time is negative or NaN (traced
      negative tolerances are treated as 0); the tolerances do not broadcast
      against the batch shape.

    **Sharding:** a batch sharded over its leading axes stays so, each
    device factoring its own matrices. A tall matrix sharded along its rows
    over ``Explicit`` mesh axes (wide: along its columns) is factored in place
    by TSQR, nothing with ``m`` rows moving between devices; the result comes
    back sharded along its columns. On ``Auto`` mesh axes an eager call does
    the same (under ``jit`` XLA gathers the matrix). Any other sharding of the
    matrix dimensions is first gathered whole onto each device (an eager call
    on ``Auto`` axes warns). See
    [Scaling out][scaling-out].

    **Derivatives:** a ``jax.custom_jvp`` rule (Golub and Pereyra, 1973),
    valid wherever the rank after the cutoff is locally constant:

    $$
    dP = -P\,dA\,P + P P^H dA^H (I - A P) + (I - P A)\, dA^H P^H P .
    $$

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
    method = _check.method("pinv", method)
    c = _check.check("pinv", a, atol=atol, rtol=rtol, hermitian=hermitian)
    return _pinv_impl(c.a, c.atol, c.rtol, c.spec, method)


@_check.keywords("pinverse")
def pinverse(input: ArrayLike, rcond: float = 1e-15, *, method: str = "auto") -> jax.Array:
    r"""``torch.pinverse``: the pseudo-inverse with a relative cutoff ``rcond``.

    Exactly ``pinv(input, rtol=rcond)``: singular values ``s_i > rcond * s_0``
    are inverted, the others are set to zero.

    The default ``rcond=1e-15`` is torch's, and it is a poor choice in single
    precision: float32's machine epsilon is about 1.2e-7, so singular values
    that are pure rounding noise (around ``1e-7 * s_0``) pass the cutoff and get
    inverted into huge entries. Prefer [`pinv`][jaxpinv.pinv], whose default
    ``rtol = max(m, n) * eps`` adapts to the dtype.

    **Arguments:**

    - `input`: array of shape ``(*, m, n)``, as for [`pinv`][jaxpinv.pinv].
    - `rcond`: the relative tolerance, a non-negative Python number or a real
      array broadcasting against the batch shape.
    - `method`: ``"auto"``, ``"cholesky"``, ``"qr"`` or ``"svd"``, as for [`pinv`][jaxpinv.pinv].

    **Returns:**

    The pseudo-inverse of shape ``(*, n, m)``, as for [`pinv`][jaxpinv.pinv].

    **Raises:** as [`pinv`][jaxpinv.pinv] (naming ``pinverse`` and ``rcond``).

    **Example:**

    ```python
    >>> import jax.numpy as jnp
    >>> import jaxpinv
    >>> a = jnp.array([[2.0, 0.0], [0.0, 1e-20]])
    >>> jaxpinv.pinverse(a).tolist()
    [[0.5, 0.0], [0.0, 0.0]]

    ```
    """
    method = _check.method("pinverse", method)
    c = _check.check("pinverse", input, rtol=rcond, names=("input", "rcond"))
    return _pinv_impl(c.a, c.atol, c.rtol, c.spec, method)


@_check.keywords("matrix_rank")
def matrix_rank(
    a: ArrayLike,
    *,
    atol: Tolerance = None,
    rtol: Tolerance = None,
    hermitian: bool = False,
) -> jax.Array:
    r"""Numerical rank: how many singular values [`pinv`][jaxpinv.pinv] keeps.

    With the same arguments, ``matrix_rank(a)`` is exactly the number of
    singular values ``s_i > max(atol, rtol * s_0)`` that [`pinv`][jaxpinv.pinv] inverts,
    so the two always agree (``jnp.linalg.matrix_rank`` uses a different
    default tolerance and a non-strict comparison).

    **Arguments:** as [`pinv`][jaxpinv.pinv].

    **Returns:**

    An integer array of shape ``*`` (the batch shape, broadcast against the
    tolerances' shapes). A matrix holding NaN or ±Inf (or with a NaN
    tolerance) has no rank: it gets ``-1``, which cannot be mistaken for one.

    **Raises:** as [`pinv`][jaxpinv.pinv].

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
    c = _check.check("matrix_rank", a, atol=atol, rtol=rtol, hermitian=hermitian)
    return _rank_impl(c.a, c.atol, c.rtol, c.spec)


@partial(jax.jit, static_argnames=("spec", "method"))
def _pinv_impl(a: jax.Array, atol: Any, rtol: Any, spec: Spec, method: str) -> jax.Array:
    x = _preamble.prepare(spec, a, atol, rtol)
    if x.a.size == 0:
        return jnp.zeros(spec.batch + x.a.shape[-2:][::-1], spec.out)
    return _pinv_core.parts(x.a, x.atol, x.rtol, spec.hermitian, method).p.astype(spec.out)


@partial(jax.jit, static_argnames=("spec",))
def _rank_impl(a: jax.Array, atol: Any, rtol: Any, spec: Spec) -> jax.Array:
    x = _preamble.prepare(spec, lax.stop_gradient(a), atol, rtol)
    if x.a.size == 0:
        return jnp.zeros(spec.batch, jnp.int32)
    # The very decomposition pinv uses, vectors included: LAPACK's values-only
    # SVD (eigvalsh) rounds differently by a few ULPs, so a singular value tied
    # with the cutoff could be counted by one and dropped by the other.
    d = _svd.decompose(sanitize(x.a), x.atol, x.rtol, spec.hermitian)
    return rank(d.keep, d.bad)
