"""The documentation site builds in strict mode, with the API reference, the topic pages and the
example notebooks rendered with their figures (``mkdocs build --strict``; a slow test).

Strict mode turns every warning into a failure: a broken link between pages, a
missing cross-reference in a docstring, an unresolved snippet include, a page
left out of the navigation. The build executes each example notebook in a
Jupyter kernel (fast mode, see ``tools/mkdocs_hooks.py``), so a notebook that
raises fails the build too.
"""

from __future__ import annotations

import re

import pytest
from helpers import REPO, run_python

# Slow: the whole mkdocs build; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)
def test_docs_build_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter", "nbclient", "ipykernel"):
        pytest.importorskip(module)
    site = tmp_path / "site"
    proc = run_python(
        ["-m", "mkdocs", "build", "--strict", "-d", str(site)],
        env_extra={
            "JAXPINV_EXAMPLES_FAST": "1",
            "JAXPINV_EXAMPLES_OUT": str(tmp_path / "figures"),
            "JAXPINV_DOCS_NO_CACHE": "1",  # execute every notebook now, not from mkdocs-jupyter's cache
            "NO_MKDOCS_2_WARNING": "1",
            "XLA_FLAGS": None,
            "MPLBACKEND": None,
        },
        cwd=REPO,
        timeout=840,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    # The API reference, generated from the docstrings: every public function, its
    # arguments section and its example.
    api = (site / "api" / "index.html").read_text()
    for name in ("pinv", "pinverse", "matrix_rank", "lstsq", "lstsq_full", "LstsqResult", "damped_pinv"):
        assert f'id="jaxpinv.{name}"' in api, name
    assert api.count("Arguments:") >= 3 and api.count("&gt;&gt;&gt;") >= 5
    # Every topic page (docs/topics/*.md) is built.
    topics = sorted(p.stem for p in (REPO / "docs" / "topics").glob("*.md"))
    assert len(topics) >= 7, topics
    for topic in topics:
        assert (site / "topics" / topic / "index.html").is_file(), topic
    # Every example rendered as a notebook, the plotting ones with their figures inline.
    for path in sorted((REPO / "examples").glob("*.py")):
        page = (site / "examples" / path.stem / "index.html").read_text()
        figures = len(re.findall(r"data:image/png;base64", page))
        plots = path.read_text().count(".savefig(")
        assert figures >= plots, (path.name, figures, plots)
        assert "RESULT {" in page, path.name  # executed to the end
    assert "Changelog" in (site / "changelog" / "index.html").read_text()
