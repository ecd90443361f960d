"""``damped_pinv``: the Tikhonov (ridge) pseudo-inverse, differentiable in ``a`` and the damping.

The public function and its jitted implementation: the host-side check
(:mod:`jaxpinv._check`), the preamble (:mod:`jaxpinv._preamble`), then the
differentiable core and its rule (:mod:`jaxpinv._damped_core`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jaxpinv import _check, _damped_core, _preamble
from jaxpinv._linalg import h
from jaxpinv._preamble import Spec
from jaxpinv._types import ArrayLike, Damping


@_check.keywords("damped_pinv")
def damped_pinv(a: ArrayLike, damping: Damping) -> jax.Array:
    r"""Damped (Tikhonov, ridge) pseudo-inverse ``(A^H A + damping^2 I)^-1 A^H``.

    $$
    A^+_\lambda = V\,\mathrm{diag}\!\left(\frac{s_i}{s_i^2 + \lambda^2}\right) U^H
    $$

    from the thin SVD ``a = U diag(s) V^H``. For ``damping > 0`` it is smooth in
    both arguments; ``damping = 0`` gives exactly ``pinv(a)`` with its default
    tolerance, and ``damping -> 0+`` converges to it.

    **Arguments:**

    - `a`: array of shape ``(*, m, n)``, as for [`pinv`][jaxpinv.pinv].
    - `damping`: ``lambda >= 0``, a Python number or a real array broadcasting
      against the batch shape ``a.shape[:-2]``; it may be traced and **is
      differentiable**. A matrix that broadcasts against many dampings (a
      ridge path) is factored once: one SVD, then the filter factors
      ``s / (s^2 + lambda^2)`` per damping.

    **Returns:**

    Array of shape ``(*, n, m)`` in ``a``'s dtype. A matrix holding NaN or
    ±Inf, or a NaN damping, gives an all-NaN result for that matrix only.

    **Raises:** `TypeError`/`ValueError` as [`pinv`][jaxpinv.pinv] (naming
    ``damped_pinv``), and for a damping known at trace time that is negative,
    NaN or complex (a traced negative damping is used by its magnitude, since
    only ``lambda^2`` enters).

    **Example:**

    ```python
    >>> import jax, jax.numpy as jnp
    >>> import jaxpinv
    >>> a = jnp.diag(jnp.array([2.0, 0.0]))
    >>> jaxpinv.damped_pinv(a, 2.0).tolist()  # 2 / (4 + 4)
    [[0.25, 0.0], [0.0, 0.0]]
    >>> round(float(jax.grad(lambda lam: jaxpinv.damped_pinv(a, lam)[0, 0])(2.0)), 6)  # -4l/(4+l^2)^2
    -0.125

    ```
    """
    c = _check.check("damped_pinv", a, damping=damping, damped=True)
    return _damped_impl(c.a, c.damping, c.spec)


@partial(jax.jit, static_argnames=("spec",))
def _damped_impl(a: jax.Array, damping: Any, spec: Spec) -> jax.Array:
    x = _preamble.prepare(spec, a, damping=damping)
    m, n = x.a.shape[-2:]
    if x.a.size == 0:
        return jnp.zeros(spec.batch + (n, m), spec.out)
    wide = m < n  # A+_lam(A) = A+_lam(A^H)^H: the core takes m >= n
    p = _damped_core.pinv(h(x.a) if wide else x.a, x.damping, x.atol, x.rtol)
    return (h(p) if wide else p).astype(spec.out)
