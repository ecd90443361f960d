"""Every example is a plain notebook: jupytext reads its ``# %%`` cells, and nothing of the tests is in it.

The examples run (as scripts and in Jupyter kernels) in their own ``test_example_NAME.py``;
this module checks what they all share, by reading the files (quick).
"""

from __future__ import annotations

import re

import pytest
from helpers import EXAMPLES as EXAMPLES_DIR

EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))


def test_six_examples():
    assert len(EXAMPLES) >= 6, EXAMPLES


@pytest.mark.slow
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


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_plain(path):
    # No test harness in a notebook: the tests read its variables from outside.
    text = path.read_text()
    for harness in ("RESULT", "json", "__file__", "repo_root", "ipykernel", "sys.argv", "--fast", "matplotlib.use("):
        assert harness not in text, (path.name, harness)
    # Settings come from two environment variables only, each read on one line.
    variables = set(
        re.findall(r"JAXPINV_\w+", "\n".join(line for line in text.splitlines() if not line.startswith("#")))
    )
    assert variables <= {"JAXPINV_EXAMPLES_FAST", "JAXPINV_EXAMPLES_SAVE"}, variables
    # A figure is shown with plt.show(), and written only where JAXPINV_EXAMPLES_SAVE names a
    # folder (the line before each savefig is the check).
    lines = text.splitlines()
    saves = [i for i, line in enumerate(lines) if ".savefig(" in line]
    for i in saves:
        assert lines[i - 1].strip() == "if SAVE:" and "os.path.join(SAVE, " in lines[i], (path.name, lines[i])
    assert text.count("plt.show()") == len(saves), path.name
    assert ('SAVE = os.environ.get("JAXPINV_EXAMPLES_SAVE")' in text) == bool(saves), path.name
