"""Experiments: one thin script per study, registered by name.

Each module defines ``main(quick: bool, out: pathlib.Path, seed: int, **params) -> dict``
that computes with the library, writes its figures and numbers into ``out`` (atomically, via
``goodhart_jax.results``) and returns the numbers.  :func:`run` adds ``manifest.json``.
Slow sweeps go through ``goodhart_jax.sweeps.sweep`` so that an interrupted run, started again
with the same parameters, resumes from its saved points.
"""

from __future__ import annotations

import importlib
import inspect
import time
from pathlib import Path
from typing import Any, Callable

from goodhart_jax import results, sweeps

# name -> (module, one-line description).  Keep sorted by the order a reader should meet them.
REGISTRY: dict[str, tuple[str, str]] = {
    "tails_come_apart": (
        "goodhart_jax.experiments.tails_come_apart",
        "E[V | U >= t] against t and bits of selection for normal, exponential, heavy errors",
    ),
    "elliptical_regression": (
        "goodhart_jax.experiments.elliptical_regression",
        "joint normal (X, V): the naive major-axis line vs the regression E[V | U]; E[V | U >= t] linear",
    ),
    "joint_density_triangle": (
        "goodhart_jax.experiments.joint_density_triangle",
        "density of (V, X) on V + X >= t: normal, equal exp(-|x|^c) tails, one tail heavier",
    ),
    "tail_pdfs": (
        "goodhart_jax.experiments.tail_pdfs",
        "PDFs and negative log PDFs of V and X for a catastrophic pair (X heavier-tailed)",
    ),
    "conditional_animation": (
        "goodhart_jax.experiments.conditional_animation",
        "GIF: the density of V given U >= t as t rises, with the conditional mean",
    ),
    "phase_diagram": (
        "goodhart_jax.experiments.phase_diagram",
        "limit of E[V | U >= t] over tail exponents: catastrophic, bounded, unbounded vs theory",
    ),
    "independence": (
        "goodhart_jax.experiments.independence",
        "E[V | U >= t] >= E[V] under independence, and dependent proxies that break or bound it",
    ),
    "catastrophic_goodhart": (
        "goodhart_jax.experiments.catastrophic_goodhart",
        "best-of-n and KL-tilted pushing on U = V + X: light vs heavy-tailed error (Kwa et al. 2024)",
    ),
    "contaminated_error": (
        "goodhart_jax.experiments.contaminated_error",
        "error (1 - eps) N(0,1) + eps t(2): best-of-n and thresholds collapse at n* ~ 4/eps",
    ),
    "overoptimization": (
        "goodhart_jax.experiments.overoptimization",
        "gold reward against sqrt(KL) for best-of-n and optax-tilted policies, Gao et al. fits",
    ),
    "evaluator_ensembles": (
        "goodhart_jax.experiments.evaluator_ensembles",
        "U = V + mean of k errors: where averaging evaluators removes catastrophic Goodhart",
    ),
    "mesa_dashboard": (
        "goodhart_jax.experiments.mesa_dashboard",
        "the mesa-optimisation simulator's four panels and the deceptive-population sweep",
    ),
    "learned_proxy": (
        "goodhart_jax.experiments.learned_proxy",
        "learned reward models pushed by best-of-n and optax: Gao et al.'s scaling, noise, ensembles",
    ),
}


def names() -> list[str]:
    """Registered experiment names."""
    return list(REGISTRY)


def describe(name: str) -> str:
    return REGISTRY[name][1]


def load(name: str) -> Callable[..., dict]:
    """The ``main`` function of experiment ``name`` (``ValueError`` if unknown)."""
    if name not in REGISTRY:
        raise ValueError(f"experiment must be one of {', '.join(names())}; got {name!r}")
    return importlib.import_module(REGISTRY[name][0]).main


def parameters(name: str) -> dict[str, Any]:
    """The tunable keyword parameters of experiment ``name`` with their defaults."""
    sig = inspect.signature(load(name))
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }


def run(name: str, *, quick: bool = False, out: Path | None = None, seed: int = 0,
        params: dict[str, Any] | None = None) -> dict:
    """Run experiment ``name`` and write ``manifest.json`` beside its results."""
    main = load(name)
    params = dict(params or {})
    unknown = set(params) - set(parameters(name))
    if unknown:
        allowed = ", ".join(sorted(parameters(name))) or "none"
        raise ValueError(f"--set: unknown parameter {sorted(unknown)[0]!r} for {name}; allowed: {allowed}")
    out = Path(out) if out is not None else Path("results") / name
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    numbers = main(quick=quick, out=out, seed=seed, **params)
    wall = time.perf_counter() - start
    full = {**parameters(name), **params}
    results.save_json(out / "manifest.json",
                      results.manifest(name=name, params=full, seed=seed, wall_time_s=wall, quick=quick))
    sweeps.clear(out)  # finished: the saved points of interrupted sweeps are no longer needed
    return numbers
