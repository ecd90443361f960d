"""Every example opens as a notebook: jupytext reads its ``# %%`` cells."""

from __future__ import annotations

import pytest
from helpers import EXAMPLES as EXAMPLES_DIR

# Slow: each example in Jupyter kernels; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow

EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))


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


def _kernel_env(monkeypatch, out):
    """What the kernel inherits: fast mode, figures to ``out`` (or the default), inline plotting."""
    monkeypatch.setenv("JAXPINV_EXAMPLES_FAST", "1")
    if out is None:
        monkeypatch.delenv("JAXPINV_EXAMPLES_OUT", raising=False)
    else:
        monkeypatch.setenv("JAXPINV_EXAMPLES_OUT", str(out))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in Jupyter
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # the examples set their own


def _execute(nb, cwd):
    """Run ``nb`` in a fresh ``python3`` Jupyter kernel started in ``cwd`` (raises on any cell error)."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    return client.execute()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.timeout(420)
def test_example_runs_as_a_notebook_and_shows_its_figures(path, tmp_path, monkeypatch):
    # As a user opens it: jupytext -> notebook -> a real kernel (not a script), fast mode.
    jupytext = pytest.importorskip("jupytext")
    _kernel_env(monkeypatch, tmp_path)
    nb = _execute(jupytext.read(path), path.parent)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.get("output_type") == "error"]
    assert not errors, errors
    # Every cell that draws a figure shows it inline, and the figure is also written to disk.
    plotting = [cell for cell in code if ".savefig(" in cell.source]
    for cell in plotting:
        images = [out for out in cell.outputs if "image/png" in out.get("data", {})]
        assert images, f"{path.name}: a plotting cell shows no image/png output:\n{cell.source[:300]}"
    assert len(list(tmp_path.glob("*.png"))) == len(plotting)
    # The script's last line, in the notebook too: the run reached the end.
    text = "".join(out.get("text", "") for cell in code for out in cell.outputs)
    assert "RESULT {" in text


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.timeout(120)
def test_notebook_kernel_started_anywhere_saves_to_the_repository_docs(path, tmp_path, monkeypatch):
    # A kernel has no __file__: the examples find the checkout from the kernel's working
    # directory (examples/, where Jupyter starts it, or any folder below the root).
    jupytext = pytest.importorskip("jupytext")
    _kernel_env(monkeypatch, None)
    nb = jupytext.read(path)
    first = next(i for i, cell in enumerate(nb.cells) if "OUT.mkdir" in cell.source)
    nb.cells = nb.cells[: first + 1]
    root = path.parents[1]
    for cwd in (path.parent, root / "docs"):
        out = _execute(nb, cwd)
        text = "".join(o.get("text", "") for cell in out.cells if cell.cell_type == "code" for o in cell.outputs)
        assert f"figures are saved to {root / 'docs' / 'images'}" in text, text[-500:]
