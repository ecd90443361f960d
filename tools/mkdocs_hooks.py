"""MkDocs hooks (mkdocs.yml ``hooks:``): how the example notebooks execute when the site is built.

mkdocs-jupyter runs each example in a Jupyter kernel started in ``docs/examples``
(a link to ``examples/``). Unless set otherwise, the examples run in their fast
mode (``JAXPINV_EXAMPLES_FAST=1``; ``JAXPINV_EXAMPLES_FAST=0 mkdocs build`` runs
the full versions, as for a published site), write no figure files (the
figures on the pages are the notebooks' own inline outputs; only
``JAXPINV_EXAMPLES_SAVE`` would make them write) and plot with the kernel's
inline backend.
mkdocs-jupyter caches executed notebooks (``.cache/mkdocs-jupyter``, keyed by
the file's contents); ``JAXPINV_DOCS_NO_CACHE=1`` executes them all afresh,
as the test of the build does.
"""

from __future__ import annotations

import os
from typing import Any


def on_config(config: Any) -> Any:
    os.environ.setdefault("JAXPINV_EXAMPLES_FAST", "1")
    os.environ.pop("JAXPINV_EXAMPLES_SAVE", None)
    os.environ.pop("MPLBACKEND", None)
    if os.environ.get("JAXPINV_DOCS_NO_CACHE") == "1":
        config.plugins["mkdocs-jupyter"].config["cache"] = False
    return config
