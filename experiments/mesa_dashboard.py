"""The mesa-optimisation simulator's four panels and the deceptive-population sweep.

Writes into ``out``:

* ``dashboard.png``: proxy and true performance vs pressure (optimum marked), the Goodhart
  gap, P(deception) vs capability for several oversight levels, the proxy-true scatter
  (training cyan, deployment red);
* ``population.png``: heatmaps over median capability x oversight of the fraction of models
  that defect in deployment and of what evaluation overstates;
* ``numbers.json``: the closed forms, the optax search and its error, the scatter
  correlations, the population at the chosen point, the sweep and Hubinger et al.'s toy.

A thin script over :mod:`goodhart_jax.mesa`; parameters are validated by the library (bad
values raise ``ValueError`` naming them before any work).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from goodhart_jax import mesa, results
from goodhart_jax.validation import check_positive_int
from goodhart_jax.plots.mesa import dashboard_figure, population_figure


def main(
    quick: bool,
    out: Path,
    seed: int,
    *,
    pressure: float = 1.0,
    rho: float = 0.7,
    shift: float = 1.0,
    capability: float = 100.0,
    oversight: float = 0.5,
    oversight_deploy: float = 0.5,
    capability_spread: float = 1.0,
    n_models: int | None = None,
    n_scatter: int = 300,
    training_episodes: int = 2,
    deployment_episodes: int = 3,
) -> dict:
    """Run the dashboard; ``n_models`` defaults to 2,000 (quick) or 20,000 per cell."""
    out = Path(out)
    # the library validates every parameter (ValueError naming it) before any work
    mesa.check_params(owner="mesa_dashboard", pressure=pressure, rho=rho, shift=shift,
                      capability=capability, oversight=oversight,
                      oversight_deploy=oversight_deploy, capability_spread=capability_spread)
    n_models = (2_000 if quick else 20_000) if n_models is None else n_models
    n_models = check_positive_int("n_models", n_models, owner="mesa_dashboard")
    n_scatter = check_positive_int("n_scatter", n_scatter, minimum=2, owner="mesa_dashboard")
    n_grid = 21 if quick else 81
    key = jax.random.key(seed)
    k_dash, k_pop, k_sweep = jax.random.split(key, 3)

    toy = mesa.hubinger_toy(training_episodes, deployment_episodes)
    pop = mesa.summarize_population(
        mesa.sample_population(k_pop, n_models, capability=capability,
                               capability_spread=capability_spread, oversight_eval=oversight,
                               oversight_deploy=oversight_deploy))
    data = mesa.dashboard_data(k_dash, pressure=pressure, rho=rho, shift=shift,
                               capability=capability, oversight=oversight, n_scatter=n_scatter)
    search = mesa.search_optimal_pressure(rho, shift)
    p_star = float(data.optimal_pressure)
    rel_err = (abs(float(search.pressure) / p_star - 1.0) if np.isfinite(p_star) else None)

    capabilities = np.linspace(0.0, mesa.CAPABILITY_MAX, n_grid)
    oversights = np.linspace(0.0, 1.0, n_grid)
    sweep = mesa.population_sweep(k_sweep, n_models, capabilities, oversights,
                                  capability_spread=capability_spread)

    title = (f"rho = {rho:g}, shift = {shift:g}, pressure = {pressure:g}, "
             f"capability = {capability:g}, oversight = {oversight:g}")
    results.save_figure(out / "dashboard.png", dashboard_figure(data, title=title))
    results.save_figure(out / "population.png", population_figure(
        capabilities, oversights, sweep,
        title=f"{n_models} models per cell, capability spread {capability_spread:g} (logit scale)"))

    numbers = {
        "params": {"pressure": pressure, "rho": rho, "shift": shift, "capability": capability,
                   "oversight": oversight, "oversight_deploy": oversight_deploy,
                   "capability_spread": capability_spread, "n_models": n_models,
                   "n_scatter": n_scatter},
        "misalignment": float(shift) * (1.0 - float(rho)),
        "optimum": {
            "bounded": bool(data.bounded),
            "optimal_pressure": p_star,
            "optimal_true_performance": float(data.optimal_true),
            "search_pressure": float(search.pressure),
            "search_value": float(search.value),
            "search_bounded": bool(search.bounded),
            "search_converged": bool(search.converged),
            "search_relative_error": rel_err,
            "search_steps": int(search.trajectory.shape[-1] - 1),
        },
        "at_pressure": {
            "proxy": float(pressure),
            "true": float(data.true_at_pressure),
            "goodhart_gap": float(data.gap_at_pressure),
        },
        "deception_probability": float(data.deception_at),
        "scatter": {
            "train_correlation": float(data.train_corr),
            "deploy_correlation": float(data.deploy_corr),
            "deploy_correlation_exact": float(data.deploy_corr_exact),
            "train_mean": [float(np.mean(data.train_proxy)), float(np.mean(data.train_true))],
            "deploy_mean": [float(np.mean(data.deploy_proxy)), float(np.mean(data.deploy_true))],
        },
        "population": {k: float(v) for k, v in pop._asdict().items()},
        "sweep": {
            "capabilities": capabilities,
            "oversights": oversights,
            **{k: np.asarray(v) for k, v in sweep._asdict().items()},
        },
        "hubinger_toy": {
            "training_episodes": training_episodes,
            "deployment_episodes": deployment_episodes,
            "pursue_immediately": int(toy.pursue_immediately),
            "deceive": int(toy.deceive),
            "comply": int(toy.comply),
        },
    }
    results.save_json(out / "numbers.json", numbers)
    return numbers
