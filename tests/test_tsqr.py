"""One matrix sharded along its rows over 8 devices: TSQR (see ``jaxpinv/_sharding.py``).

The checks live in ``tests/tsqr_check.py`` and run in a fresh interpreter:
the device count is an XLA flag that must be set before JAX starts. Each
group prints one line per check; the test fails on any ``BAD`` line.

- ``values`` + ``memory`` (quick): pinv / lstsq / lstsq_full / matrix_rank
  of row-sharded tall matrices (κ = 1e2 and 1e6, rank-deficient, Inf,
  wide along columns, batches and ``vmap``) against NumPy in float64 and
  the unsharded call; TSQR's accuracy within 2x of the one-device path;
  the output shardings; the compiled programs' collectives (none of size
  m); peak memory per device at m = 2e6, n = 64 against gathering; the
  TSQR snippet of docs/topics/scaling-out.md, run as printed; ``auto``: an
  eager call on ``Auto`` mesh axes compiles the ``Explicit`` program (TSQR)
  and returns on the ``Auto`` mesh; a sharding TSQR cannot take warns.
- ``derivatives`` + ``other`` (slow): grad / jvp / jacrev / ``grad(vmap)``
  equal to unsharded with the input's sharding in the cotangent, central
  differences; every other sharding (both dimensions, square, short local
  blocks, uneven rows, Hermitian, ``damped_pinv``, a sharded ``b`` with a
  replicated ``a``, a sharded tolerance array) against NumPy; ``edges``: what
  a hostile review found (damped derivatives on sharded input, batch shardings
  that differ between ``a``, ``b`` and the tolerances, jaxpinv inside a
  user's ``shard_map``).
"""

from __future__ import annotations

import pytest
from helpers import REPO


def _run(on_eight_devices, *groups: str) -> None:
    proc = on_eight_devices([str(REPO / "tests" / "tsqr_check.py"), *groups])
    shown = f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, shown
    assert "all checks passed" in proc.stdout and "BAD" not in proc.stdout, shown


@pytest.mark.timeout(300)
def test_tsqr_values_collectives_memory(on_eight_devices) -> None:
    _run(on_eight_devices, "values", "layouts", "memory", "readme", "auto")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tsqr_derivatives_and_other_shardings(on_eight_devices) -> None:
    _run(on_eight_devices, "derivatives", "other", "edges")
