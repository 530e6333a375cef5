"""``goodhart-jax bench diagnose`` is registered and importable (no timings are tested here)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numpy as np

from goodhart_jax import cli

ROOT = Path(__file__).resolve().parents[1]


def test_bench_diagnose_is_registered(capsys):
    assert cli.main(["bench", "no_such_bench"]) == 2
    assert "diagnose" in capsys.readouterr().err
    module = importlib.import_module("goodhart_jax.experiments.bench_diagnose")
    assert callable(module.main)


def test_bench_scores_are_fixed():
    module = importlib.import_module("goodhart_jax.experiments.bench_diagnose")
    a, b = module.scores(1000), module.scores(1000)
    assert np.array_equal(a, b) and np.all(a >= 0)


def test_bench_uses_only_public_names_of_the_library():
    tree = ast.parse((ROOT / "experiments" / "bench_diagnose.py").read_text())
    bad = [f"{node.module}.{alias.name}" for node in ast.walk(tree)
           if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("goodhart_jax")
           for alias in node.names if alias.name.startswith("_")]
    assert not bad, bad
