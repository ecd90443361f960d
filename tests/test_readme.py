"""The README's Python snippets run as written (the README stays in sync with the code)."""

from __future__ import annotations

import pathlib
import re

import jax
import jax.numpy as jnp

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def snippet(section: str) -> str:
    text = README.read_text()
    match = re.search(rf"## {section}.*?```python\n(.*?)```", text, re.S)
    assert match, f"README has no python block under '## {section}'"
    return match.group(1)


def test_quickstart_runs_and_batched_inverse_is_identity():
    ns: dict = {}
    exec(snippet("Quickstart"), ns)
    a, b = ns["a"], ns["b"]
    assert b.shape == (2, 3, 6)
    assert jnp.allclose(b @ a, jnp.eye(3), atol=1e-5)
    assert jnp.allclose(ns["jaxpinv"].pinverse(ns["x"]) @ ns["x"] @ ns["jaxpinv"].pinverse(ns["x"]),
                        ns["jaxpinv"].pinverse(ns["x"]), atol=1e-5)


def test_scaling_snippet_runs():
    ns: dict = {"a": jax.random.normal(jax.random.key(0), (4, 5, 3))}
    exec("import jax, jaxpinv\n" + snippet("Scaling out"), ns)
    assert ns["p"].shape == (4, 3, 5)


def test_version_in_one_place_and_changelog():
    import tomllib

    import jaxpinv

    root = README.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"] and "version" not in project  # read from __init__
    changelog = (root / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.M)
    assert released and released[0] == jaxpinv.__version__, (released, jaxpinv.__version__)


def test_readme_shows_every_example_and_its_picture():
    text = README.read_text()
    section = text.split("## Examples", 1)[1].split("\n## ", 1)[0]
    examples = sorted(p.stem for p in (README.parent / "examples").glob("*.py"))
    assert examples, "no examples found"
    for name in examples:
        assert f"(examples/{name}.py)" in section, name
    for image in re.findall(r"\]\((docs/images/[^)]+\.png)\)", section):
        assert (README.parent / image).is_file(), image
    assert len(re.findall(r"\]\(docs/images/", section)) >= 3
