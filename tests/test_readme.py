"""The README's and the docs' Python snippets run as written; README, docs, CI and packaging agree."""

from __future__ import annotations

import pathlib
import re
import sys

import jax
import jax.numpy as jnp
from helpers import REPO

README = REPO / "README.md"
DOCS = README.parent / "docs"


def snippet(section: str, page: pathlib.Path = README) -> str:
    text = page.read_text()
    match = re.search(rf"#+ {section}.*?```python\n(.*?)```", text, re.S)
    assert match, f"{page.name} has no python block under '{section}'"
    return match.group(1)


def test_quickstart_runs_and_batched_inverse_is_identity():
    ns: dict = {}
    exec(snippet("Quickstart"), ns)
    a, b = ns["a"], ns["b"]
    assert b.shape == (2, 3, 6)
    assert jnp.allclose(b @ a, jnp.eye(3), atol=1e-5)
    assert jnp.allclose(
        ns["jaxpinv"].pinverse(ns["x"]) @ ns["x"] @ ns["jaxpinv"].pinverse(ns["x"]),
        ns["jaxpinv"].pinverse(ns["x"]),
        atol=1e-5,
    )


def test_quickstart_shape_comments_are_true():
    # Every line of the form `expr  # (d1, d2, ...)...` evaluates to that shape
    # (and to finite values where the comment says so).
    ns: dict = {}
    checked = 0
    for line in snippet("Quickstart").splitlines():
        code, _, comment = line.partition("#")
        match = re.match(r"\s*\(([\d, ]+)\)", comment)
        if not code.strip() or "=" in code.split("(")[0] or not match:
            exec(line, ns)
            continue
        value = eval(code, ns)
        shape = tuple(int(d) for d in match.group(1).split(",") if d.strip())
        assert value.shape == shape, (line, value.shape)
        if "finite" in comment:
            assert jnp.isfinite(value).all(), line
        checked += 1
    assert checked >= 5


def test_scaling_snippet_runs():
    ns: dict = {"a": jax.random.normal(jax.random.key(0), (4, 5, 3))}
    exec("import jax, jaxpinv\n" + snippet("Scaling out", DOCS / "topics" / "scaling-out.md"), ns)
    assert ns["p"].shape == (4, 3, 5)


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: pytest itself depends on tomli there
        import tomli as tomllib
    return tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]


def test_declared_floors_are_the_versions_ci_tests():
    # pyproject's floors (what a resolver may pick) equal the pins of CI's
    # floor run, and the README's test commands are CI's.
    project = _pyproject()
    floors = {}
    for req in project["dependencies"] + project["optional-dependencies"]["test"]:
        name, _, version = req.partition(">=")
        floors[name.strip()] = version.strip()
    root = README.parent
    pins = dict(
        line.split("==")
        for line in (root / ".ci" / "floor-constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name, version in pins.items():
        assert floors.get(name) and version.startswith(floors[name]), (name, version, floors.get(name))
    assert project["requires-python"] == ">=3.10"
    ci = (root / ".ci" / "run").read_text()
    assert "-m venv" in ci and "3.10" in ci
    tests = README.read_text().split("## Tests", 1)[1]
    for command in (
        'python -m pytest -n auto -m "not slow" --cov=jaxpinv --cov-fail-under=100',
        "python -m pytest -n auto -m slow",
        "floor-constraints.txt",
        'JAXPINV_TEST_X64=0 python -m pytest -n auto -m "not x64 and not slow"',
    ):
        assert command in tests, command
        assert command.split("python ")[-1] in ci, command


def test_version_in_one_place_and_changelog():
    import jaxpinv

    root = README.parent
    project = _pyproject()
    assert "version" in project["dynamic"] and "version" not in project  # read from __init__
    changelog = (root / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.M)
    assert released and released[0] == jaxpinv.__version__, (released, jaxpinv.__version__)


def test_docs_show_every_example_and_its_picture():
    # The examples page lists every example with its picture, and the site's
    # navigation renders each one as a notebook (mkdocs.yml).
    text = (DOCS / "examples.md").read_text()
    examples = sorted(p.stem for p in (README.parent / "examples").glob("*.py"))
    assert len(examples) >= 6, examples
    nav = (README.parent / "mkdocs.yml").read_text()
    for name in examples:
        assert f"(examples/{name}.py)" in text, name
        assert f"examples/{name}.py" in nav, name
    images = re.findall(r"\]\((images/[^)]+\.png)\)", text)
    assert len(images) >= 4, images
    for image in images:
        assert (DOCS / image).is_file(), image
    assert (DOCS / "examples").resolve() == (README.parent / "examples").resolve()


def test_docs_pages_exist_for_every_topic_and_the_nav_lists_them():
    nav = (README.parent / "mkdocs.yml").read_text()
    pages = re.findall(r":\s+([\w/.-]+\.md)\s*$", nav, re.M) + re.findall(r"^\s+- ([\w/.-]+\.md)\s*$", nav, re.M)
    for topic in (
        "tolerances",
        "derivatives",
        "hermitian",
        "non-finite",
        "least-squares",
        "scaling-out",
        "performance",
    ):
        assert f"topics/{topic}.md" in pages, topic
    for page in pages:
        assert (DOCS / page).is_file(), page
    # The README links into the docs, and every link it has resolves.
    readme = README.read_text()
    for link in re.findall(r"\]\(((?:docs/|CHANGELOG|LICENSE)[^)#]*)", readme):
        assert (README.parent / link).exists(), link


def test_packaging_metadata():
    project = _pyproject()
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]  # PEP 639
    assert "Apache License" in (README.parent / "LICENSE").read_text()
    assert project["authors"] and {"Homepage", "Documentation", "Changelog"} <= set(project["urls"])
    extras = project["optional-dependencies"]
    assert {"test", "examples", "docs", "dev"} <= set(extras)
    assert any(r.startswith("nbclient") for r in extras["examples"]) and any(
        r.startswith("ipykernel") for r in extras["examples"]
    )
    ci = (README.parent / ".ci" / "run").read_text()
    for check in ("ruff check", "ruff format --check", "mypy"):
        assert check in ci, check
