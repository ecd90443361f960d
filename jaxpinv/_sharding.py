"""One matrix over many devices: TSQR for row-sharded tall input, and any other sharding made safe.

Batches shard for free: every matrix is factored where it lives. A single
matrix whose *rows* are sharded over a mesh axis (a data matrix holding its
samples on several devices) needs a communication-avoiding factorization,
TSQR (Demmel, Grigori, Hoemmen, Langou 2012):

1. each device factors its own rows, ``A_i = Q_i R_i`` (``m/p x n`` and
   ``n x n``), in ``jax.shard_map``;
2. the ``p`` small factors are gathered, ``p n^2`` entries, and factored
   once more, ``[R_1; ...; R_p] = Q' R``, on every device;
3. each device forms its rows of ``Q`` as ``Q_i Q'_i`` (``Q'_i`` its own
   ``n`` rows of ``Q'``: a slice, no communication).

``A = Q R`` with ``Q`` sharded like ``A``, and the SVD path proceeds as for
any tall matrix (``A = Q R``, SVD of the small ``R``: Chan's R-SVD), so
``pinv``, ``matrix_rank``, ``lstsq`` and ``lstsq_full`` keep their exact
semantics. Nothing of size ``m`` moves: the forward gathers ``p n^2``
entries per matrix, and every product that contracts over the sharded rows
(``A^H dA``, ``P b``, ...) ends in an all-reduce of an ``n x n`` (or
``n x k``) result (:func:`jaxpinv._linalg.mm` and its siblings pass the
output sharding that JAX's explicit sharding asks for there).

This applies where JAX can see the sharding at trace time: mesh axes of type
``Explicit`` (``jax.make_mesh``'s default in current JAX), where the sharding is
part of the array's type. A matrix qualifies (:func:`factored_in_place`) when one matrix
dimension is sharded over mesh axes of total size ``p >= 2``, the other is
not, and each device's block is itself tall: ``m`` divisible by ``p`` and
``m / p >= n`` for sharded rows (wide input sharded along its columns is the
adjoint case, ``n / p >= m``). Every other explicit sharding of the matrix
dimensions (both, rows of a square or short matrix, uneven blocks) is
resharded so that each matrix lives whole on the devices that hold it
(:func:`prepare`): an all-gather of the matrix, ``O(m n)`` bytes per device,
and then the single-device algorithm. The batch dimensions keep their
sharding throughout. With ``Auto`` mesh axes the sharding is the compiler's
business, not the type's: under ``jit`` XLA's partitioner gathers the matrix
for the factorizations (the documented cost; use ``Explicit`` axes for TSQR);
an eager call moves its arrays to the mesh's ``Explicit`` twin first
(:func:`on_explicit_axes`), so TSQR applies there too.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from jaxpinv import _householder

try:
    _reshard = jax.sharding.reshard
except AttributeError:  # pragma: no cover - jax<0.7: reshard lives in jax.experimental.shard (the floor run takes this)
    from jax.experimental.shard import reshard as _reshard  # type: ignore[import-not-found,no-redef]


def _explicit(x: Any) -> tuple[Any, tuple[Any, ...]] | None:
    """``(mesh, spec padded to x.ndim)`` if ``x``'s type carries an explicit sharding of some dimension, else None."""
    try:
        sharding = jax.typeof(x).sharding
    except Exception:  # pragma: no cover - no sharding in the type (older JAX, non-array)
        return None
    if not isinstance(sharding, NamedSharding):  # pragma: no cover - jax 0.10 types every array with one
        return None
    spec = tuple(sharding.spec)
    spec = spec + (None,) * (jnp.ndim(x) - len(spec))
    if all(s is None for s in spec):
        return None
    return sharding.mesh, spec


def _axes(entry: Any) -> tuple[Any, ...]:
    """The mesh axis names of one spec entry (``None``, a name, or a tuple of names)."""
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, tuple) else (entry,)


def _size(mesh: Any, entry: Any) -> int:
    """How many devices one spec entry splits its dimension over."""
    return math.prod(mesh.shape[name] for name in _axes(entry))


def _auto_matrix_sharding(x: Any) -> NamedSharding | None:
    """The sharding of a concrete array whose matrix dimensions are sharded over ``Auto`` mesh axes, else None."""
    if isinstance(x, jax.core.Tracer) or not isinstance(getattr(x, "sharding", None), NamedSharding):
        return None
    if x.ndim < 2:  # a vector right-hand side: moved along with the matrix, if on its mesh
        return None
    sharding = x.sharding
    mesh, types, explicit = sharding.mesh, sharding.mesh.axis_types, jax.sharding.AxisType.Explicit
    spec = tuple(sharding.spec) + (None,) * (x.ndim - len(tuple(sharding.spec)))
    matrix_axes = {axis for entry in spec[-2:] for axis in _axes(entry)}
    if not matrix_axes or all(types[mesh.axis_names.index(axis)] == explicit for axis in matrix_axes):
        return None
    return sharding


def on_explicit_axes(fname: str, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
    """Arrays of an eager call sharded over ``Auto`` mesh axes, moved to the same devices' ``Explicit`` twin mesh.

    With ``Auto`` axes the sharding is not part of a traced value's type, so
    the jitted implementation cannot see it and XLA gathers the matrix for the
    factorizations. An eager call holds the concrete array: here its mesh is
    re-declared with ``Explicit`` axes (the same devices and names, so
    ``device_put`` moves nothing) and TSQR can factor a row-sharded matrix in
    place. Returns the arguments and the twin mesh's original (or None): the
    caller puts its results back on it. A matrix whose sharding TSQR cannot
    factor in place is gathered whole either way: a warning says so.
    """
    shardings = [_auto_matrix_sharding(x) for x in args]
    first = next((i for i, s in enumerate(shardings) if s is not None), None)
    if first is None:
        return args, None
    found = shardings[first]
    assert found is not None  # (for the type checker)
    mesh = found.mesh
    twin = jax.sharding.Mesh(
        mesh.devices, mesh.axis_names, axis_types=(jax.sharding.AxisType.Explicit,) * len(mesh.axis_names)
    )

    def move(x: Any) -> Any:
        if isinstance(getattr(x, "sharding", None), NamedSharding) and x.sharding.mesh == mesh:
            return jax.device_put(x, NamedSharding(twin, x.sharding.spec))
        return x

    moved = tuple(move(x) for x in args)
    if not factored_in_place(moved[first]):
        warnings.warn(
            f"{fname}: the matrix dimensions of the input are sharded ({found.spec}) in a way TSQR does not "
            "factor in place (it takes tall matrices sharded along their rows, wide along their columns, "
            "with each device's block itself tall or wide); each matrix is gathered whole onto its devices.",
            stacklevel=3,
        )
    return moved, mesh


def back_on(mesh: Any, out: Any) -> Any:
    """Results on the ``Explicit`` twin of ``mesh`` (:func:`on_explicit_axes`) put back on ``mesh`` itself."""
    if mesh is None:
        return out

    def move(x: Any) -> Any:
        if isinstance(getattr(x, "sharding", None), NamedSharding):
            return jax.device_put(x, NamedSharding(mesh, x.sharding.spec))
        return x  # pragma: no cover - every result is an array on the twin mesh

    return jax.tree_util.tree_map(move, out)


def explicitly_sharded(x: jax.Array) -> bool:
    """Does ``x``'s type carry an explicit sharding of some dimension? (Then a reshape must spell out its output's.)"""
    return _explicit(x) is not None


def factored_in_place(a: jax.Array) -> bool:
    """Is ``a`` a batch of tall matrices sharded along their rows (or wide along their columns) that TSQR factors in place?"""
    info = _explicit(a)
    if info is None:
        return False
    mesh, spec = info
    m, n = a.shape[-2:]
    rows, cols = spec[-2], spec[-1]
    if rows is not None and cols is None:
        p = _size(mesh, rows)
        return p >= 2 and m % p == 0 and m // p >= n >= 1
    if cols is not None and rows is None:
        p = _size(mesh, cols)
        return p >= 2 and n % p == 0 and n // p >= m >= 1
    return False


def replicate_matrix(x: jax.Array) -> jax.Array:
    """``x`` with its last two dimensions unsharded (batch dimensions keep their sharding); ``x`` itself if already so."""
    info = _explicit(x)
    if info is None:
        return x
    mesh, spec = info
    if spec[-2] is None and spec[-1] is None:
        return x
    return _reshard(x, NamedSharding(mesh, PartitionSpec(*spec[:-2], None, None)))


def prepare(a: jax.Array) -> jax.Array:
    """``a`` unchanged if TSQR factors it where it lives (:func:`factored_in_place`), else with whole matrices per device.

    An explicit sharding of the matrix dimensions that TSQR does not handle
    would make ``svd``/``qr``/``eigh`` refuse the operand (JAX's sharding
    rules for them require unsharded matrix dimensions); resharding gathers
    each matrix onto the devices that hold its batch entry: ``O(m n)`` bytes.
    """
    return a if factored_in_place(a) else replicate_matrix(a)


def _mesh(x: Any) -> Any:
    """The (non-empty) mesh of ``x``'s explicit sharding type, or None."""
    try:
        sharding = jax.typeof(x).sharding
    except Exception:  # pragma: no cover - no sharding in the type (older JAX, non-array)
        return None
    mesh = getattr(sharding, "mesh", None)
    return mesh if isinstance(sharding, NamedSharding) and mesh is not None and mesh.shape else None


def on_common_mesh(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a`` replicated over ``b``'s mesh where ``a``'s type names no mesh and ``b``'s does.

    Explicit sharding refuses products of an array without a mesh and one
    with.
    """
    # jax<0.7: later versions place the mesh-less operand themselves (seen on 0.6.2)
    if _mesh(a) is None and _mesh(b) is not None:
        return _reshard(a, NamedSharding(_mesh(b), PartitionSpec()))
    return a


def align_batch(arrays: list[jax.Array], nbatch: int) -> list[jax.Array]:
    """The arrays (each with the same ``nbatch`` leading batch dimensions) with one batch sharding.

    ``a``, ``b`` and the tolerances broadcast against one batch; JAX's explicit
    sharding needs them sharded alike before they meet. Each batch dimension
    takes the first explicit sharding any of them has there (a mesh axis that
    shards a matrix dimension of one of them is not reused for the batch); the
    others are resharded to it: a slice where they were replicated, a
    reshuffle of the (batch-sized) array otherwise. Matrix dimensions keep
    their sharding.
    """
    infos = [_explicit(x) for x in arrays]
    if nbatch == 0 or all(info is None for info in infos):
        return arrays
    mesh = next(info[0] for info in infos if info is not None)
    used = {axis for info in infos if info is not None for entry in info[1][nbatch:] for axis in _axes(entry)}
    common: list[Any] = []
    for d in range(nbatch):
        entry = None
        for info in infos:
            if info is not None and info[1][d] is not None:
                axes = set(_axes(info[1][d]))
                taken = used | {axis for e in common for axis in _axes(e)}
                if not axes & taken:
                    entry = info[1][d]
                    break
        common.append(entry)
    out = []
    for x, info in zip(arrays, infos):
        current = tuple(info[1]) if info is not None else (None,) * x.ndim
        # a dimension of size 1 broadcasts (a matrix factored once for many tolerances): not sharded
        batch = tuple(e if x.shape[d] > 1 else None for d, e in enumerate(common))
        target = (*batch, *current[nbatch:])
        if current != target:
            x = _reshard(x, NamedSharding(mesh, PartitionSpec(*target)))
        out.append(x)
    return out


def like_rows(b: jax.Array, a: jax.Array) -> jax.Array:
    """A right-hand side ``b`` (``(*, m, k)``) sharded to match a native ``a``'s rows, or with whole matrices otherwise.

    For ``a`` sharded along its rows, ``b`` is sharded the same way (a slice
    of a replicated ``b``, no communication); a wide ``a`` sharded along its
    columns has few rows, and ``b`` is replicated over them.
    """
    info = _explicit(a)
    if info is None or not factored_in_place(a):
        return replicate_matrix(b)
    mesh, spec = info
    if spec[-2] is None:  # wide, columns sharded: b has m (few) rows
        return replicate_matrix(b)
    bspec = _explicit(b)
    batch = bspec[1][:-2] if bspec is not None else (None,) * (b.ndim - 2)
    target = PartitionSpec(*batch, spec[-2], None)
    return _reshard(b, NamedSharding(mesh, target))


def _thin_qr(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Thin Householder QR of tall ``x`` from ``geqrf`` and ``orgqr`` (:mod:`jaxpinv._householder`).

    Rather than ``jnp.linalg.qr``, whose lowering masks ``R`` with an
    unsharded ``select`` that JAX's explicit sharding refuses when the batch
    is sharded over a mesh axis inside ``shard_map`` (under ``vmap``). The
    input holds no Inf or NaN (sanitised).
    """
    f = _householder.factor(x)
    return _householder.q(f), f.r


def qr(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Thin ``(Q, R)`` of a batch of tall matrices: TSQR if ``a`` is sharded along its rows, else ``jnp.linalg.qr``.

    ``Q`` comes back sharded like ``a``; ``R`` (``n x n``) replicated over the
    row axes (batch dimensions keep their sharding).
    """
    info = _explicit(a)
    if info is None or info[1][-2] is None:
        q, r = jnp.linalg.qr(a)
        return q, r
    mesh, spec = info
    batch, rows = spec[:-2], spec[-2]
    local = PartitionSpec(*batch, rows, None)

    def factor(block: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _thin_qr(block)

    # check_vma=False: LAPACK custom calls carry no replication rule; both
    # outputs are sharded along the rows (R stacked: p n x n), none replicated.
    q_local, r_stacked = jax.shard_map(factor, mesh=mesh, in_specs=local, out_specs=(local, local), check_vma=False)(a)
    # The one collective: gather the p small R factors (p n^2 entries) ...
    r_stacked = _reshard(r_stacked, NamedSharding(mesh, PartitionSpec(*batch, None, None)))
    # ... and factor them on every device: [R_1; ...; R_p] = Q' R.
    q_small, r = _thin_qr(r_stacked)
    # Each device's n rows of Q' (a slice of a replicated array: no communication).
    q_small = _reshard(q_small, NamedSharding(mesh, local))

    def combine(q_block: jax.Array, q_small_block: jax.Array) -> jax.Array:
        return jnp.matmul(q_block, q_small_block, precision=jax.lax.Precision.HIGHEST)

    q = jax.shard_map(combine, mesh=mesh, in_specs=(local, local), out_specs=local, check_vma=False)(q_local, q_small)
    return q, r


def contraction_sharding(x: jax.Array, y: jax.Array, x_keep: int, y_keep: int, x_sum: int, y_sum: int) -> Any:
    """The output sharding JAX's explicit mode asks for in ``x``-by-``y`` products contracting a sharded dimension.

    For a product of two batches of matrices ``(..., i, j) x (..., j, k)``
    (in whichever layout: the kept and summed dimensions of each operand are
    given as -1 or -2) whose summed dimension is sharded, the result
    ``(..., i, k)`` keeps the batch's and the kept dimensions' shardings and
    is replicated over the summed axes (XLA adds the all-reduce). ``None``
    where no summed dimension is sharded: the product needs nothing.
    """
    xi, yi = _explicit(x), _explicit(y)
    if xi is None and yi is None:
        return None
    summed: set[Any] = set()
    for info, dim in ((xi, x_sum), (yi, y_sum)):
        if info is not None:
            summed.update(_axes(info[1][dim]))
    if not summed:
        return None
    mesh = xi[0] if xi is not None else yi[0]  # type: ignore[index]  # one of them is not None
    ndim = max(x.ndim, y.ndim)
    batch: list[Any] = [None] * (ndim - 2)
    for info, arr in ((yi, y), (xi, x)):  # x's batch sharding wins where both have one
        if info is not None:
            for d, entry in enumerate(info[1][: arr.ndim - 2]):
                if entry is not None:
                    batch[ndim - arr.ndim + d] = entry
    i = xi[1][x_keep] if xi is not None else None
    k = yi[1][y_keep] if yi is not None else None
    out = [e if not (set(_axes(e)) & summed) else None for e in (*batch, i, k)]
    return NamedSharding(mesh, PartitionSpec(*out))
