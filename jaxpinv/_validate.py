"""Argument checks with clear messages, raised at trace time.

Every error names the public function, the argument and what was expected, so
a user deep inside a jitted, vmapped program sees at once which call is wrong.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpinv import _tolerance


def matrix_dtypes(fname: str, argname: str, a: Any, min_ndim: int = 2) -> tuple[jax.Array, Any, Any]:
    """Return ``(a, compute_dtype, out_dtype)`` for a stack of matrices ``a``.

    ``a`` must be array-like with a numeric (or boolean) dtype and at least two
    dimensions. Integers and booleans promote to JAX's default float dtype like
    ``jnp.linalg`` does; float16 and bfloat16 are computed in float32 and
    returned in their own dtype; 8-bit and narrower floats (float8_*,
    float4_*) are rejected.
    """
    a = native_byte_order(a)
    compute_dtype, out_dtype = dtypes(fname, argname, _dtype_of(fname, argname, a))
    arr = jnp.asarray(a)
    if arr.ndim < min_ndim:
        what = (
            "a matrix or a batch of matrices of shape (*, m, n)"
            if min_ndim == 2
            else "a vector of shape (m,) or right-hand sides of shape (*, m, k)"
        )
        raise ValueError(
            f"{fname}: argument '{argname}' must have at least {min_ndim} dimension"
            f"{'s' if min_ndim > 1 else ''}, {what}; got shape {arr.shape}."
        )
    return arr, compute_dtype, out_dtype


def dtypes(fname: str, argname: str, dtype: Any) -> tuple[Any, Any]:
    """``(compute_dtype, out_dtype)`` for an input dtype (see :func:`matrix_dtypes`)."""
    if dtype == np.bool_ or jnp.issubdtype(dtype, jnp.integer):
        dtype = _tolerance.wide_dtype()  # float64 under x64, else float32
        return dtype, dtype
    if jnp.issubdtype(dtype, jnp.inexact):
        if jnp.issubdtype(dtype, jnp.floating) and jnp.dtype(dtype).itemsize < 2:
            raise TypeError(
                f"{fname}: argument '{argname}' has dtype {jnp.dtype(dtype).name}, narrower than 16 bits: its 1-4 "
                "significant bits cannot hold a pseudo-inverse or a solution. Cast it to float16, bfloat16 or "
                "float32 first."
            )
        if jnp.issubdtype(dtype, jnp.floating) and jnp.dtype(dtype).itemsize < 4:
            return jnp.dtype(jnp.float32), dtype
        # With x64 off, float64 (complex128) input runs and returns in float32 (complex64), as
        # jnp.asarray gives it, rather than asking JAX for a dtype it would truncate with a warning.
        dtype = jax.dtypes.canonicalize_dtype(dtype)
        return dtype, dtype
    raise TypeError(
        f"{fname}: argument '{argname}' must be a numeric array (float, complex, integer or bool); got dtype {dtype}."
    )


def native_byte_order(a: Any) -> Any:
    """A NumPy array in non-native byte order (e.g. big-endian ``'>f8'``) in native order.

    ``jnp.asarray`` accepts such arrays but ``jax.jit`` rejects them; anything
    else passes through unchanged.
    """
    if isinstance(a, (np.ndarray, np.generic)) and not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


def _dtype_of(fname: str, argname: str, a: Any) -> Any:
    dtype = getattr(a, "dtype", None)
    if dtype is not None and not isinstance(dtype, np.dtype) and not isinstance(a, jax.Array):
        # Another library's array (a torch tensor, ...): its dtype is not a
        # NumPy dtype, but JAX converts it (DLPack / __array__) as jnp.asarray would.
        try:
            dtype = jnp.asarray(a).dtype
        except Exception:
            pass
    if dtype is None:
        try:
            dtype = np.asarray(a).dtype
        except Exception as e:  # ragged lists and other non-arrays
            raise TypeError(
                f"{fname}: argument '{argname}' must be an array of numbers; got {type(a).__name__} ({e})."
            ) from None
    try:
        return jnp.dtype(dtype)
    except TypeError:
        # PRNG key arrays and other extended dtypes.
        raise TypeError(
            f"{fname}: argument '{argname}' must be a numeric array (float, complex, "
            f"integer or bool); got dtype {dtype}."
        ) from None


def square(fname: str, argname: str, a: jax.Array) -> None:
    """Require square matrices (``hermitian=True``)."""
    m, n = a.shape[-2:]
    if m != n:
        raise ValueError(
            f"{fname}: with hermitian=True argument '{argname}' must hold square "
            f"matrices; got shape {a.shape} ({m} x {n})."
        )


def method(fname: str, value: Any, paths: tuple[str, ...]) -> str:
    """Check ``method``: ``"auto"`` or one of the ``paths``' names (the SVD's last); return it."""
    if isinstance(value, str) and value in ("auto", *paths):
        return value
    names = ", ".join(repr(p) for p in ("auto", *paths[:-1]))
    raise ValueError(f"{fname}: argument 'method' must be {names} or {paths[-1]!r}; got {value!r}.")


def static_bool(fname: str, argname: str, value: Any) -> bool:
    """Require a Python bool (it selects the algorithm, so it cannot be traced)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(
        f"{fname}: argument '{argname}' must be a Python bool (it selects the "
        f"algorithm at trace time); got {type(value).__name__}."
    )


def tolerance(fname: str, argname: str, value: Any) -> Any:
    """Check a tolerance and return it (``None``, a Python float or an array).

    Complex tolerances are rejected. A tolerance whose value is known at trace
    time (a Python number, a NumPy array, a concrete JAX array) must not be
    negative or NaN. A traced tolerance cannot be checked: negative values are
    treated as 0 downstream and NaN makes the affected results NaN.
    """
    if value is None:
        return None
    if isinstance(value, numbers.Number) and not isinstance(value, np.generic):
        if isinstance(value, complex):
            raise TypeError(f"{fname}: argument '{argname}' must be real; got the complex number {value!r}.")
        try:
            value = float(value)  # type: ignore[arg-type]  # a real Number here
        except OverflowError:
            raise ValueError(
                f"{fname}: argument '{argname}' must be representable as a float; got an "
                f"integer of {len(str(abs(value)))} digits."
            ) from None
        if math.isnan(value) or value < 0:
            raise ValueError(f"{fname}: argument '{argname}' must be a non-negative number; got {value!r}.")
        return value
    value = native_byte_order(value)
    if isinstance(value, (list, tuple)):
        try:  # a nested sequence of numbers: a NumPy array from here on
            value = np.asarray(value)
        except (OverflowError, ValueError, TypeError) as e:
            raise TypeError(
                f"{fname}: argument '{argname}' must be a number or an array of real "
                f"numbers; got {type(value).__name__} ({e})."
            ) from None
    dtype = _dtype_of(fname, argname, value)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"{fname}: argument '{argname}' must be real; got an array of dtype {dtype}.")
    if not (dtype == np.bool_ or jnp.issubdtype(dtype, jnp.number)):
        raise TypeError(f"{fname}: argument '{argname}' must be a real number or array; got dtype {dtype}.")
    if not isinstance(value, jax.core.Tracer):
        concrete = np.asarray(value, dtype=np.float64)
        if np.isnan(concrete).any() or (concrete < 0).any():
            raise ValueError(f"{fname}: argument '{argname}' must be non-negative and not NaN; got {concrete!r}.")
    return value


def batch_shape(
    fname: str, a_shape: tuple[int, ...], atol: Any, rtol: Any, tol_names: tuple[str, str] = ("atol", "rtol")
) -> tuple[int, ...]:
    """Broadcast the matrix batch shape with the tolerances' shapes (torch's rule)."""
    shapes = [tuple(a_shape[:-2])]
    names = ["a.shape[:-2]"]
    for name, tol in zip(tol_names, (atol, rtol)):
        if tol is not None:
            shapes.append(tuple(np.shape(tol)))
            names.append(name)
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        got = ", ".join(f"{n}={s}" for n, s in zip(names, shapes))
        raise ValueError(
            f"{fname}: {' and '.join(n for n, t in zip(tol_names, (atol, rtol)) if t is not None)} "
            f"must broadcast against the batch shape of the input; got {got}."
        ) from None
