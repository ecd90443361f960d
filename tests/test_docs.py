"""The documentation site builds in strict mode, with the API reference, the topic pages and the
example notebooks rendered with their figures (``mkdocs build --strict``; a slow test).

Strict mode turns every warning into a failure: a broken link between pages, a
missing cross-reference in a docstring, an unresolved snippet include, a page
left out of the navigation. The build executes each example notebook in a
Jupyter kernel (fast mode, see ``tools/mkdocs_hooks.py``), so a notebook that
raises fails the build too.
"""

from __future__ import annotations

import functools
import html.parser
import os
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import REPO, run_python

# Slow: the whole mkdocs build; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built once for this module's tests (``mkdocs build --strict``, notebooks executed afresh)."""
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter", "nbclient", "ipykernel"):
        pytest.importorskip(module)
    tmp_path = tmp_path_factory.mktemp("docs")
    site = tmp_path / "site"
    proc = run_python(
        ["-m", "mkdocs", "build", "--strict", "-d", str(site)],
        env_extra={
            "JAXPINV_EXAMPLES_FAST": "1",
            "JAXPINV_DOCS_NO_CACHE": "1",  # execute every notebook now, not from mkdocs-jupyter's cache
            "NO_MKDOCS_2_WARNING": "1",
            "XLA_FLAGS": None,
            "MPLBACKEND": None,
        },
        cwd=REPO,
        timeout=840,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return site


@pytest.mark.timeout(900)
def test_docs_build_strict(site):
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
        source = path.read_text()
        plots = source.count(".savefig(")
        code_cells = len(re.findall(r"^# %%(?! \[markdown\])", source, flags=re.M))
        assert page.count("jp-CodeCell") >= code_cells, path.name  # every cell rendered
        assert figures >= plots, (path.name, figures, plots)
    assert "Changelog" in (site / "changelog" / "index.html").read_text()


# --- The site as a reader sees it: every page loaded in headless Chromium, after its scripts ran. ---

CHROMIUM_FLAGS = [  # what this machine's closed network needs (no background connections), as root
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Raw TeX left in the text a reader sees: display or inline delimiters of either style, or a $ that
# opens a TeX command (also one whose formula a stray line break cut in two).
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\$[^$\s]*\\[A-Za-z]+|\$[^$\s][^$]{0,200}?\\[A-Za-z]+[^$]{0,200}?\$")
# Sphinx/RST markup that Markdown shows literally.
SPHINX_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj|ref|doc|math):`?")
RST_LITERAL = re.compile(r"\w::(?:\s|$)")


class _Text(html.parser.HTMLParser):
    """The visible text of a page (navigation and table of contents included), block by block; code, scripts, hidden copies and typeset math left out."""

    SKIP = {"script", "style", "code", "pre", "textarea", "mjx-container", "svg"}
    SKIP_CLASS = {"clipboard-copy-txt"}  # mkdocs-jupyter's hidden copy of each cell's source
    BLOCKS = {"p", "li", "td", "th", "h1", "h2", "h3", "h4", "dd", "dt", "div", "span"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, bool]] = []  # the open elements: (tag, skipped with its content)
        self.blocks: list[str] = [""]
        self.math = 0

    def handle_starttag(self, tag, attrs):
        self.math += tag == "mjx-container"
        if tag in self.VOID:
            return
        classes = set((dict(attrs).get("class") or "").split())
        self.open.append((tag, tag in self.SKIP or bool(classes & self.SKIP_CLASS) or "hidden" in dict(attrs)))
        if tag in self.BLOCKS:
            self.blocks.append("")

    def handle_startendtag(self, tag, attrs):
        self.math += tag == "mjx-container"

    def handle_endtag(self, tag):
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if not any(skip for _, skip in self.open):
            self.blocks[-1] += data


def _math_in_source(page: str) -> int:
    """How many formulas the built (not yet scripted) page holds: arithmatex spans, notebook TeX."""
    notebook = re.findall(r'jp-MarkdownOutput"[^>]*>(.*?)</div>', page, flags=re.S)
    formulas = re.compile(r"\$\$.+?\$\$|\$[^$]+\$", flags=re.S)
    return page.count('class="arithmatex"') + sum(len(formulas.findall(cell)) for cell in notebook)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no line per request in the test's output
        pass


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "no Chromium (Debian: apt-get install chromium)"
        if os.environ.get("JAXPINV_REQUIRE_BROWSER") == "1":  # CI installs it: there, missing is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.mark.timeout(900)
def test_site_renders_in_a_browser(site, tmp_path):
    """Loaded over HTTP in headless Chromium, offline: every formula typeset, no raw TeX, no RST left.

    The site carries its own MathJax (nothing on this machine's closed network
    is reachable), so a page whose math stays raw here stays raw for a reader
    offline too. Typeset math is counted as MathJax's ``mjx-container``
    elements in the DOM after the page's scripts ran.
    """
    chromium = _chromium()
    handler = functools.partial(_Quiet, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pages = sorted(p for p in site.rglob("index.html") if "vendor" not in p.parts)
    assert len(pages) >= 15, pages
    problems = []
    try:
        for page in pages:
            url = f"http://127.0.0.1:{server.server_port}/{page.parent.relative_to(site).as_posix()}/"
            dom = subprocess.run(
                [
                    chromium,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={tmp_path / 'profile'}",
                    "--virtual-time-budget=20000",
                    "--dump-dom",
                    url,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout
            text = _Text()
            text.feed(dom)
            assert text.blocks, url  # the page loaded
            expected = _math_in_source(page.read_text())
            if text.math < expected:
                problems.append(f"{url}: {text.math} typeset formulas of {expected}")
            for block in text.blocks:
                for pattern, what in ((RAW_TEX, "raw TeX"), (SPHINX_ROLE, "Sphinx role"), (RST_LITERAL, "RST '::'")):
                    if pattern.search(block):
                        problems.append(f"{url}: {what}: {block.strip()[:160]!r}")
                if block.lstrip().startswith("- "):
                    problems.append(f"{url}: a list item rendered as text: {block.strip()[:160]!r}")
    finally:
        server.shutdown()
    assert not problems, "\n".join(problems)
