"""The `>>>` examples of the package's docstrings run as written and print what they show: one
test per module that has examples (found by `doctest`, run with NORMALIZE_WHITESPACE and
ELLIPSIS, in the module's globals plus jax, jnp, np, sparselearn and sl). They run in a temporary
directory holding copies of configs/ and of the paper_figs/*.py files, so what an example writes
(a store, a figure) stays out of the repository; compiled programs go to the session's cache
(conftest.py). Examples that train a sweep or read a stored one are `# doctest: +SKIP`."""

from __future__ import annotations

import doctest
import importlib
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sparselearn"
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _modules_with_examples() -> list[str]:
    """The modules whose source holds a `>>>` line, found without importing them."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _namespace() -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import sparselearn

    return {"jax": jax, "jnp": jnp, "np": np, "sparselearn": sparselearn, "sl": sparselearn}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A temporary working directory with copies of the repository's configs/ and of the figure
    files of paper_figs/ (copies, not links: a figure writes beside its file's real path)."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (tmp_path / "paper_figs").mkdir()
    for path in (ROOT / "paper_figs").glob("*.py"):
        shutil.copy(path, tmp_path / "paper_figs" / path.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples(name, workdir):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module, name, extraglobs=_namespace()) if t.examples]
    assert tests, f"{name} has `>>>` lines but no example doctest finds"
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    try:
        for test in sorted(tests, key=lambda t: t.lineno or 0):   # the module's own example first
            runner.run(test, out=report.append)
    finally:
        if "matplotlib.pyplot" in sys.modules:   # the figures the plotting examples open
            sys.modules["matplotlib.pyplot"].close("all")
    assert runner.failures == 0, "".join(report)
