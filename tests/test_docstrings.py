"""Every public docstring example runs (doctest) and prints what it claims."""

from __future__ import annotations

import doctest
import inspect

import pytest

import jaxpinv

# In the slow run, with the docs build; CI's floor run (-m "not slow") leaves the module out.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", [n for n in jaxpinv.__all__ if inspect.isfunction(getattr(jaxpinv, n))])
def test_docstring_examples_run(name):
    fn = getattr(jaxpinv, name)
    for section in ("**Arguments:**", "**Returns:**", "**Raises:**", "**Example:**"):
        assert section in fn.__doc__, (name, section)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(fn, name, globs={}) if t.examples]
    assert tests, f"{name} has no example"
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0


def test_module_docstrings():
    # Every module says what lives there (docs/development.md, Architecture).
    import importlib
    import pkgutil

    names = [m.name for m in pkgutil.iter_modules(jaxpinv.__path__, "jaxpinv.")]
    assert len(names) > 10, names
    for name in ["jaxpinv", *names]:
        assert (importlib.import_module(name).__doc__ or "").strip(), name
