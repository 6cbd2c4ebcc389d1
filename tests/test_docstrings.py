"""The ``>>>`` examples in textshift's docstrings run and print what they show.

Examples that train with the real encoder for minutes are marked ``# doctest: +SKIP``; the rest run here.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import textshift

MODULES = sorted(info.name for info in pkgutil.walk_packages(textshift.__path__, prefix="textshift.")
                 if info.name != "textshift.__main__")  # importing __main__ runs the command line


def _examples(name: str) -> list[doctest.DocTest]:
    return [test for test in doctest.DocTestFinder().find(importlib.import_module(name)) if test.examples]


@pytest.mark.parametrize("name", [name for name in MODULES if _examples(name)])
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures: list[str] = []
    for test in _examples(name):
        runner.run(test, out=failures.append)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, "".join(failures)
