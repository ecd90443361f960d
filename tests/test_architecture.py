"""The layers of docs/development.md (Architecture), checked on the source: each module imports only from below.

Inside the package a private *module* is imported, never another module's
underscored name; tests and benchmarks reach the internals only through
``jaxpinv.internal``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest
from helpers import REPO

# Layer of each module, highest first (docs/development.md); a module may import from lower layers,
# and from modules of its own layer only where listed in SAME_LAYER.
LAYERS = {
    "__main__": 9,
    "__init__": 8,
    "internal": 8,
    "_pinv": 7,
    "_lstsq": 7,
    "_damped": 7,
    "_check": 6,
    "_preamble": 5,
    "_pinv_core": 4,
    "_lstsq_core": 4,
    "_damped_core": 4,
    "_dispatch": 3,
    "_svd": 2,
    "_qr": 2,
    "_cholesky": 2,
    "_estimate": 1,
    "_kernel": 1,
    "_linalg": 1,
    "_householder": 0,
    "_types": 0,
    "_tolerance": 0,
    "_validate": 0,
    "_batching": 0,
    "_sharding": 0,
}
SAME_LAYER = {
    ("_lstsq_core", "_pinv_core"),
    ("_kernel", "_sharding"),
    ("_linalg", "_sharding"),
    ("_sharding", "_householder"),
    ("_validate", "_tolerance"),
    ("_preamble", "_kernel"),
    ("_preamble", "_linalg"),
    ("_estimate", "_kernel"),
    ("_estimate", "_linalg"),
}
PACKAGE = REPO / "jaxpinv"


def _imports(path: pathlib.Path) -> list[tuple[str, str, int]]:
    """``(module, name, line)`` for every import of a jaxpinv module or of a name from one."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "jaxpinv":
            out += [(a.name, "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxpinv."):
            out += [(node.module.split(".", 1)[1], a.name, node.lineno) for a in node.names]
    return out


def test_every_module_has_a_layer():
    assert {p.stem for p in PACKAGE.glob("*.py")} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_go_down_and_name_no_private_names(module):
    for target, name, line in _imports(PACKAGE / f"{module}.py"):
        where = f"jaxpinv/{module}.py:{line} imports {target}{'.' + name if name else ''}"
        assert not name.startswith("_"), f"{where}: another module's underscored name"
        below = LAYERS[target] < LAYERS[module] or (module, target) in SAME_LAYER
        assert below or module in ("__init__", "__main__"), f"{where}: not a lower layer"


def test_tests_and_benchmarks_reach_internals_only_through_jaxpinv_internal():
    for path in [*(REPO / "tests").glob("*.py"), *(REPO / "benchmarks").glob("*.py")]:
        for target, name, line in _imports(path):
            assert target in ("internal", "__main__") or (not target.startswith("_") and not name.startswith("_")), (
                f"{path.name}:{line} imports jaxpinv.{target} {name}"
            )
