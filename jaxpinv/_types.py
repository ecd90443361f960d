"""The argument types of the public functions, named once (and shown so in the API reference)."""

from __future__ import annotations

from typing import Any, TypeAlias

ArrayLike: TypeAlias = Any
"""A matrix or a batch of matrices: a JAX or NumPy array, a nested list, anything ``jnp.asarray`` takes.

(``jax.typing.ArrayLike``, kept loose so that static checkers accept NumPy
arrays and lists alike.)
"""

Tolerance: TypeAlias = Any
"""A cutoff tolerance (`atol`, `rtol`): one of

- ``None``: the default (see each function);
- a non-negative Python ``int`` or ``float``;
- a real array (JAX or NumPy, any real dtype) that broadcasts against the batch
  shape ``a.shape[:-2]``: one tolerance per matrix; extra leading dimensions
  enlarge the output (torch's rule), and the matrix is factored once for all
  of them. It may be traced (a ``jit`` argument, ``vmap``-ped); it is not
  differentiated (its gradient is zero).

Complex, NaN or negative values known at trace time raise; a traced negative
tolerance counts as 0.
"""

Damping: TypeAlias = Any
"""The Tikhonov (ridge) damping ``λ`` of `damped_pinv` and `lstsq`: one of

- a non-negative Python ``int`` or ``float``;
- a real array broadcasting against the batch shape ``a.shape[:-2]`` (one
  damping per matrix; extra leading dimensions enlarge the output: a ridge
  path over many ``λ`` factors the matrix once).

It enters squared (``A^H A + λ^2 I``), may be traced, and is differentiable:
``jax.grad`` with respect to it is the derivative of the ridge solution.
``λ = 0`` gives exactly `pinv` with its default tolerance. Negative, NaN or
complex values known at trace time raise; a traced negative damping is used
by its magnitude.
"""
