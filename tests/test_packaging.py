"""What the sdist and the wheel contain: built from this checkout, listed, compared with git's files.

The sdist carries the tracked sources with their tests, examples, docs and
benchmarks (so the suite runs from it) and nothing else: no file that git does
not track (a notebook's outputs, a local experiment). The wheel carries the
package alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
from helpers import REPO

import jaxpinv

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """``(sdist members, wheel members)``, paths relative to the archive's root."""
    pytest.importorskip("build")
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    with tarfile.open(sdist) as tar:
        in_sdist = {m.name.split("/", 1)[1] for m in tar.getmembers() if not m.isdir() and "/" in m.name}
    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
    return in_sdist, in_wheel


def _tracked() -> set[str] | None:
    """The files git tracks in this checkout (None outside a git checkout, e.g. in an unpacked sdist).

    A tracked link to a folder (``docs/examples`` -> ``examples``) stands for the
    files under it: the sdist holds them as copies.
    """
    if shutil.which("git") is None or not (REPO / ".git").exists():
        return None
    proc = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    tracked = set(proc.stdout.splitlines())
    for link in [name for name in tracked if (REPO / name).is_symlink()]:
        tracked.remove(link)
        target = (REPO / link).resolve().relative_to(REPO).as_posix()
        tracked |= {link + name[len(target) :] for name in tracked if name.startswith(target + "/")}
    return tracked


def test_the_wheel_holds_the_package_and_its_metadata_only(archives):
    _, in_wheel = archives
    package = {f"jaxpinv/{p.name}" for p in (REPO / "jaxpinv").iterdir() if p.suffix == ".py" or p.name == "py.typed"}
    assert "jaxpinv/py.typed" in package  # typed: mypy and pyright read the annotations
    info = f"jaxpinv-{jaxpinv.__version__}.dist-info"
    assert {n for n in in_wheel if not n.startswith(info)} == package
    assert {f"{info}/METADATA", f"{info}/licenses/LICENSE"} <= in_wheel


def test_the_sdist_holds_the_tracked_sources_tests_examples_and_docs(archives):
    in_sdist, _ = archives
    for folder in ("jaxpinv", "tests", "examples", "docs", "benchmarks"):
        assert any(n.startswith(folder + "/") for n in in_sdist), folder
    assert {"README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml", "mkdocs.yml", "PKG-INFO"} <= in_sdist
    # The tests find the examples beside them (tests/helpers.py: REPO / "examples").
    assert {f"examples/{p.name}" for p in (REPO / "examples").glob("*.py")} <= in_sdist
    tracked = _tracked()
    if tracked is None:
        pytest.skip("not a git checkout: nothing to compare the sdist with")
    untracked = in_sdist - tracked - {"PKG-INFO"}
    assert not untracked, f"files git does not track went into the sdist: {sorted(untracked)[:20]}"
    missing = tracked - in_sdist
    assert not missing, f"tracked files left out of the sdist: {sorted(missing)}"
