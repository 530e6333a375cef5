"""The codebase's seams, checked on the source: a family is one class in one place.

* No module outside ``goodhart_jax/distributions.py`` dispatches on family classes
  (``isinstance(d, Normal)``): what the numerics need to know about a family is a hook of
  :class:`goodhart_jax.Distribution`.
* No module imports another module's underscore name (``from goodhart_jax.x import _y``) or
  reaches into it (``x._y`` on an imported goodhart_jax module).
* ``log(1 - e^u)`` is written once, in ``goodhart_jax/numerics.py``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import goodhart_jax as gj

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("goodhart_jax/**/*.py"), *ROOT.glob("experiments/*.py")])
FAMILIES = {"Normal", "StudentT", "GenNormal", "Exponential", "LogNormal", "Pareto", "Levy",
            "GeneralizedPareto",
            "MeanOf", "Mixture", "Distribution"}


def _names(node) -> list[str]:
    """Class names in an isinstance target: ``Normal``, ``gj.Normal``, tuples of them."""
    if isinstance(node, ast.Tuple):
        return [n for e in node.elts for n in _names(e)]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    return []


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_sources_found():
    assert len(SOURCES) > 40 and any(p.name == "distributions.py" for p in SOURCES)


def test_no_dispatch_on_family_classes_outside_distributions():
    found = []
    for path in SOURCES:
        if _rel(path) == "goodhart_jax/distributions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2):
                hit = (set(_names(node.args[1])) & FAMILIES) - {"Distribution"}
                if hit:
                    found.append(f"{_rel(path)}:{node.lineno} {sorted(hit)}")
    assert not found, "family dispatch outside distributions.py:\n" + "\n".join(found)


def test_no_module_uses_another_modules_underscore_names():
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and (
                    node.module.split(".")[0] in ("goodhart_jax", "experiments") or node.level):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{_rel(path)}:{node.lineno} from {node.module} import "
                                     f"{alias.name}")
                    else:
                        modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "goodhart_jax":
                        modules.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in modules and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                found.append(f"{_rel(path)}:{node.lineno} {node.value.id}.{node.attr}")
    assert not found, "underscore names used across modules:\n" + "\n".join(found)


def test_log1mexp_is_written_once():
    pattern = re.compile(r"log1p\(\s*-\s*(jnp|np)\.exp\(|log\(\s*-\s*(jnp|np)\.expm1\(")
    found = [f"{_rel(p)}:{i + 1}" for p in SOURCES if _rel(p) != "goodhart_jax/numerics.py"
             for i, line in enumerate(p.read_text().splitlines()) if pattern.search(line)]
    assert not found, "log(1 - e^u) by hand (use numerics.log1mexp / log_sub_exp):\n" + "\n".join(found)


@pytest.mark.parametrize("name", ["Distribution", "Constraint", "POSITIVE", "REAL", "Tail",
                                  "MeanOf", "mean_of", "Estimate", "Mixture"])
def test_protocol_is_public(name):
    assert name in gj.__all__ and hasattr(gj, name)
