"""The examples in the docstrings run: ``doctest`` on every module of ``goodhart_jax``.

Every module of the package is collected, ``goodhart_jax.experiments`` included, with float64 on
(as ``conftest.py`` sets it for every test).  Output is compared with ``ELLIPSIS`` and
``NORMALIZE_WHITESPACE``.

The modules in ``SLOW`` (each over 15 s of examples on a 2-core machine, most of it compiling
optax loops and lab sweeps) run only with ``-m slow``; the rest, about a minute, run by default.
No experiment module is slow: their docstrings hold no long examples.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import goodhart_jax
from goodhart_jax import experiments


def _modules() -> list[str]:
    names = ["goodhart_jax"]
    names += [m.name for m in pkgutil.walk_packages(goodhart_jax.__path__, "goodhart_jax.")]
    names += ["goodhart_jax.experiments"]
    names += [m.name for m in pkgutil.walk_packages(experiments.__path__, "goodhart_jax.experiments.")]
    return sorted(set(names))


FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
SLOW = {
    "goodhart_jax.conditioning",
    "goodhart_jax.diagnose",  # a whole diagnosis with gold (~20 s), as test_diagnose runs
    "goodhart_jax.lab.policies",
    "goodhart_jax.lab.sweep",
    "goodhart_jax.lab.world",
    "goodhart_jax.optimize",
    "goodhart_jax.pressure",
}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in _modules()])
def test_doctests(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in finder.find(module, name, globs=dict(vars(module))):
        test.globs = dict(vars(module))  # every docstring starts from the module's names
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"
