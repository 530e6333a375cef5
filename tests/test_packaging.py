"""Packaging: experiments/ installs as goodhart_jax.experiments, and the version is the metadata's."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import goodhart_jax

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    """The explicit package list of pyproject.toml covers every package folder of goodhart_jax/."""
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "goodhart_jax").rglob("__init__.py") if "__pycache__" not in p.parts}
    found.add("goodhart_jax.experiments")
    assert set(_setuptools()["packages"]) == found


def test_experiments_map_to_the_top_level_folder():
    conf = _setuptools()
    assert conf["package-dir"] == {"goodhart_jax.experiments": "experiments"}
    assert not any(p == "experiments" or p.startswith("experiments.") for p in conf["packages"])


def test_experiments_import_as_a_subpackage():
    from goodhart_jax import experiments

    assert experiments.__name__ == "goodhart_jax.experiments"
    assert Path(experiments.__file__).resolve().parent == ROOT / "experiments"
    for name in experiments.names():
        assert experiments.REGISTRY[name][0].startswith("goodhart_jax.experiments.")


def test_version_comes_from_the_metadata():
    try:
        expected = importlib.metadata.version("goodhart_jax")
    except importlib.metadata.PackageNotFoundError:
        expected = "0+unknown"
    assert goodhart_jax.__version__ == expected
