"""The host-side check of every public function: each argument validated once, errors naming the function called.

Its result carries the arrays and a static :class:`jaxpinv._preamble.Spec`
(dtypes, batch shapes) that the jitted implementation's preamble is fed, so
nothing is validated twice.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxpinv import _dispatch, _sharding, _tolerance, _validate
from jaxpinv._preamble import Spec

F = TypeVar("F", bound=Callable[..., Any])


def _foreign(fname: str, name: str, params: tuple[str, ...], kwargs: dict[str, Any]) -> str | None:
    """What to use instead of a keyword another library's function takes, or None for an unknown name."""
    if name in ("rcond", "cond") and "rtol" in params:
        pinverse = " (or jaxpinv.pinverse(a, rcond), torch.pinverse's form)" if fname == "pinv" else ""
        return f"a cutoff relative to the largest singular value is rtol= here{pinverse}"
    if name == "tol" and "atol" in params:
        return "an absolute cutoff is atol= here (NumPy's matrix_rank tol)"
    if name in ("atol", "rtol", "tol", "cond") and "rcond" in params:
        return f"{fname} (torch.pinverse's form) takes rcond=; pinv takes atol= and rtol="
    if name in ("rcond", "cond", "tol", "atol", "rtol"):
        return f"{fname} takes no tolerances; pinv, matrix_rank, lstsq and lstsq_full take atol= and rtol="
    if name == "hermitian":
        return f"{fname} reads the whole matrix; hermitian=True is for pinv and matrix_rank"
    if name in ("driver", "lapack_driver", "method"):
        if "method" in params:
            return "jaxpinv runs the SVD (or a QR where the result is the same): method='svd' forces the SVD"
        return f"{fname} always runs the SVD"
    if name == "damping":
        return "use damped_pinv(a, damping), or lstsq(a, b, damping=...)"
    if name == "out":
        return "JAX arrays are immutable: use the returned array"
    if name in ("A", "M", "input", "x", "a") and params[0] not in kwargs:
        return f"pass the matrix positionally or as {params[0]}="
    return None


def keywords(fname: str) -> Callable[[F], F]:
    """The host boundary of a public function: keyword hints, and eager arrays on ``Auto`` mesh axes made explicit.

    Positional arrays of an eager call sharded over ``Auto`` mesh axes move to
    the same devices' ``Explicit`` twin mesh for the call and the results back
    (:func:`jaxpinv._sharding.on_explicit_axes`), so that TSQR sees a
    row-sharded matrix.

    NumPy's, JAX's, torch's and SciPy's names (``rcond``, ``tol``, ``driver``,
    ``hermitian`` where there is none, ``out``...) raise a ``TypeError`` naming
    the function, the argument and this library's equivalent; other unknown
    names keep Python's message. Nothing is checked on a call that binds.
    """

    def decorate(f: F) -> F:
        params = tuple(inspect.signature(f).parameters)

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # An eager call's arrays on Auto mesh axes go to their Explicit twin (TSQR can then see the sharding).
            moved, mesh = _sharding.on_explicit_axes(fname, args + tuple(kwargs.values()))
            args, kwargs = moved[: len(args)], dict(zip(kwargs, moved[len(args) :]))
            try:
                return _sharding.back_on(mesh, f(*args, **kwargs))
            except TypeError:
                for name in kwargs:
                    hint = None if name in params else _foreign(fname, name, params, kwargs)
                    if hint is not None:
                        raise TypeError(f"{fname}: unexpected keyword argument '{name}'; {hint}.") from None
                raise

        return wrapper  # type: ignore[return-value]

    return decorate


class Checked(NamedTuple):
    """The validated arguments of one call."""

    a: jax.Array
    atol: Any
    rtol: Any
    spec: Spec
    b: jax.Array | None = None
    """``b`` as a stack of matrices ``(*, m, k)``."""
    vector: bool = False
    """Was ``b`` a (batch of) vector(s)? The result drops its last axis then."""
    damping: Any = None


def rhs(fname: str, a: jax.Array, b: Any) -> tuple[jax.Array, bool]:
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


def _joint_batch(fname: str, a: jax.Array, b: jax.Array) -> tuple[int, ...]:
    """The broadcast batch shape of `a` and `b` (as ``(*, m, k)``), or a clear error."""
    try:
        return tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    except ValueError:
        raise ValueError(
            f"{fname}: the batch dimensions of 'a' and 'b' must broadcast; got a.shape={a.shape} "
            f"(batch {a.shape[:-2]}) and b.shape={b.shape} (batch {b.shape[:-2]}, as a stack of (m, k) matrices)."
        ) from None


def method(fname: str, value: Any) -> str:
    """Validate ``method``: ``"auto"`` or a path's name (:func:`jaxpinv._dispatch.names`)."""
    return _validate.method(fname, value, _dispatch.names())


def check(
    fname: str,
    a: Any,
    *,
    atol: Any = None,
    rtol: Any = None,
    hermitian: Any = False,
    b: Any = None,
    damping: Any = None,
    damped: bool = False,
    names: tuple[str, str] = ("a", "rtol"),
) -> Checked:
    """Validate one call's arguments (``names``: what the call names `a` and `rtol`, e.g. ``input``, ``rcond``).

    With `b`, the dtypes are those `a` and `b` promote to. With ``damped``,
    `damping` is required and the tolerances are the defaults.
    """
    arr, compute, out = _validate.matrix_dtypes(fname, names[0], a)
    hermitian = _validate.static_bool(fname, "hermitian", hermitian)
    if hermitian:
        _validate.square(fname, names[0], arr)
    barr, vector = (None, False) if b is None else rhs(fname, arr, b)
    if barr is not None:
        compute, out = _validate.dtypes(fname, "a", jnp.result_type(arr, barr))
    lam = None
    if damped:
        lam = _validate.tolerance(fname, "damping", damping)
        if lam is None:
            raise TypeError(f"{fname}: argument 'damping' is required (a number >= 0); got None.")
        tols, tol_names = (lam, None), ("damping", "")
    else:
        atol = _validate.tolerance(fname, "atol", atol)
        rtol = _validate.tolerance(fname, names[1], rtol)
        tols, tol_names = (atol, rtol), ("atol", names[1])
    joint = arr.shape[:-2] if barr is None else _joint_batch(fname, arr, barr)
    batch = _validate.batch_shape(fname, joint + (0, 0), *tols, tol_names)
    # Broadcasting is not batching: a is factored at its own batch shape, the cutoffs (or filter
    # factors) apply at its batch with the tolerances' (or the damping's), and b's further batch
    # dimensions are solved as more columns (see _preamble).
    cut = _validate.batch_shape(fname, arr.shape, *tols, tol_names)
    lead = len(batch)
    a_batch = (1,) * (lead - arr.ndim + 2) + arr.shape[:-2]
    cut_batch = (1,) * (lead - len(cut)) + cut
    m, n = arr.shape[-2:]
    atol, rtol = _tolerance.host_pair(atol, rtol, m, n, compute)
    return Checked(arr, atol, rtol, Spec(compute, out, batch, a_batch, cut_batch, hermitian), barr, vector, lam)
