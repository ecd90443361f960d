"""Every example opens as a notebook: jupytext reads its ``# %%`` cells."""

from __future__ import annotations

import pathlib

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_a_percent_notebook(path):
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(path)
    kinds = [cell.cell_type for cell in nb.cells]
    # A title in a markdown cell first, prose between the code, and no code
    # outside cells (the percent format puts anything before the first marker
    # in a cell of its own, which would then not be markdown).
    assert kinds[0] == "markdown" and nb.cells[0].source.startswith("# "), path.name
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3, kinds
    assert path.read_text().startswith("# %% [markdown]\n"), path.name
