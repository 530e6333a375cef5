"""A source checkout used through ``PYTHONPATH`` alone: ``experiments/`` as ``goodhart_jax.experiments``.

Installed (a wheel, or ``pip install -e .``), ``goodhart_jax.experiments`` comes from the
``package-dir`` mapping in ``pyproject.toml``: the top-level folder ``experiments/`` becomes that
subpackage, and no top-level package ``experiments`` is installed.  A checkout that is only on
``sys.path`` has no installed mapping, so :func:`install` adds a finder that answers exactly the
one name ``goodhart_jax.experiments`` with the checkout's ``experiments/`` folder (its modules then
load from there as submodules).  Outside a checkout it does nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

NAME = "goodhart_jax.experiments"


class _ExperimentsFinder(importlib.abc.MetaPathFinder):
    """Finds ``goodhart_jax.experiments`` in the checkout's top-level ``experiments/``."""

    def __init__(self, folder: Path):
        self.folder = folder

    def find_spec(self, fullname, path=None, target=None):
        if fullname != NAME:
            return None
        return importlib.util.spec_from_file_location(
            fullname, self.folder / "__init__.py", submodule_search_locations=[str(self.folder)])


def install() -> None:
    """Add the finder when ``goodhart_jax`` is imported from a checkout (once)."""
    package = Path(__file__).resolve().parent
    root = package.parent
    folder = root / "experiments"
    in_checkout = ((root / "pyproject.toml").is_file() and (folder / "__init__.py").is_file()
                   and not (package / "experiments").exists())
    if not in_checkout or any(isinstance(f, _ExperimentsFinder) for f in sys.meta_path):
        return
    # first: the experiments of this checkout, whatever an editable install elsewhere maps
    sys.meta_path.insert(0, _ExperimentsFinder(folder))
