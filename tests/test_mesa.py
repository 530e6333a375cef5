"""Model B, the mesa-optimisation simulator: formulas, search, scatter, population, CLI."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import goodhart_jax.mesa as mesa

RHO_GRID = np.linspace(0.05, 0.95, 19)
SHIFT_GRID = np.geomspace(0.01, 10.0, 25)


# ------------------------------------------------------------------------------- formulas
def test_closed_forms_on_a_grid():
    rho, shift = np.meshgrid(RHO_GRID, SHIFT_GRID, indexing="ij")
    delta = shift * (1 - rho)
    np.testing.assert_allclose(mesa.misalignment(rho, shift), delta, rtol=1e-15)
    p_star = mesa.optimal_pressure(rho, shift)
    np.testing.assert_allclose(p_star, rho / (2 * delta), rtol=1e-14)
    np.testing.assert_allclose(mesa.true_performance(p_star, rho, shift), rho**2 / (4 * delta),
                               rtol=1e-12)
    np.testing.assert_allclose(mesa.optimal_true_performance(rho, shift), rho**2 / (4 * delta),
                               rtol=1e-14)
    # P* is the maximiser: the derivative vanishes there and nearby pressures do worse
    dtrue = jax.vmap(jax.grad(mesa.true_performance))(
        jnp.ravel(p_star), jnp.ravel(rho), jnp.ravel(shift))
    np.testing.assert_allclose(dtrue, 0.0, atol=1e-12)
    for f in (0.9, 1.1):
        assert np.all(mesa.true_performance(f * p_star, rho, shift)
                      < mesa.true_performance(p_star, rho, shift))
    np.testing.assert_array_equal(mesa.goodhart_gap(0.0, rho, shift), 0.0)
    np.testing.assert_allclose(mesa.goodhart_gap(p_star, rho, shift),
                               p_star - rho**2 / (4 * delta), rtol=1e-12)
    np.testing.assert_allclose(mesa.proxy_performance(p_star), p_star)


def test_deception_is_one_half_at_capability_100_oversight():
    oversight = np.linspace(0.0, 1.0, 101)
    np.testing.assert_allclose(mesa.deception_probability(100 * oversight, oversight), 0.5,
                               atol=1e-15)
    c = np.linspace(0, 200, 9)
    np.testing.assert_allclose(mesa.deception_probability(c, 0.3),
                               1 / (1 + np.exp(-(c / 20 - 1.5))), rtol=1e-14)


def test_broadcasts_a_million_point_grid_in_one_call():
    p = np.linspace(0.0, 10.0, 1000)
    rho = np.linspace(0.0, 1.0, 1000)
    out = mesa.true_performance(p[:, None], rho[None, :], 2.0)
    assert out.shape == (1000, 1000)
    expected = p[:, None] * rho[None, :] - 2.0 * (1 - rho[None, :]) * p[:, None] ** 2
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-12)
    gap = mesa.goodhart_gap(p[:, None], rho[None, :], 2.0)
    np.testing.assert_allclose(gap, p[:, None] - expected, rtol=1e-13, atol=1e-12)
    cap = np.linspace(0, 200, 1000)
    assert mesa.deception_probability(cap[:, None], rho[None, :]).shape == (1000, 1000)


def test_differentiable_and_jittable():
    g = jax.grad(mesa.true_performance, argnums=(0, 1, 2))(1.5, 0.6, 2.0)
    # true = P rho - s (1 - rho) P^2
    np.testing.assert_allclose(g, (0.6 - 2 * 2.0 * 0.4 * 1.5, 1.5 + 2.0 * 1.5**2, -0.4 * 1.5**2),
                               rtol=1e-13)
    # dP*/drho = 1 / (2 s (1 - rho)^2), dP*/ds = -rho / (2 s^2 (1 - rho))
    g = jax.grad(mesa.optimal_pressure, argnums=(0, 1))(0.6, 2.0)
    np.testing.assert_allclose(g, (1 / (2 * 2.0 * 0.4**2), -0.6 / (2 * 4.0 * 0.4)), rtol=1e-13)
    s = float(mesa.deception_probability(80.0, 0.3))
    np.testing.assert_allclose(jax.grad(mesa.deception_probability)(80.0, 0.3), s * (1 - s) / 20)
    jitted = jax.jit(mesa.goodhart_gap)
    np.testing.assert_allclose(jitted(2.0, 0.5, 1.0), mesa.goodhart_gap(2.0, 0.5, 1.0))
    # integer input is promoted to floating point
    assert jnp.issubdtype(mesa.true_performance(2, 1, 3).dtype, jnp.floating)


def test_delta_zero_has_no_best_pressure():
    rho = np.array([1.0, 1.0, 0.4, 0.0, 0.4])
    shift = np.array([3.0, 0.0, 0.0, 0.0, 1.0])
    bounded = np.array([False, False, False, False, True])
    np.testing.assert_array_equal(mesa.has_bounded_optimum(rho, shift), bounded)
    p = np.asarray(mesa.optimal_pressure(rho, shift))
    assert np.all(np.isposinf(p[~bounded]))  # "unbounded", never a finite number
    assert p[-1] == pytest.approx(0.4 / (2 * 0.6))
    best = np.asarray(mesa.optimal_true_performance(rho, shift))
    np.testing.assert_array_equal(best[:3], np.inf)
    assert best[3] == 0.0  # rho = 0 and delta = 0: true performance is identically 0
    # true performance never turns down when delta = 0
    ps = np.linspace(0, 1e6, 11)
    assert np.all(np.diff(mesa.true_performance(ps, 0.4, 0.0)) > 0)
    # gradients stay finite at the bounded entries of a mixed batch
    g = jax.grad(lambda r: jnp.sum(jnp.where(bounded, mesa.optimal_pressure(r, shift), 0.0)))(rho)
    assert np.all(np.isfinite(g))


@settings(max_examples=60, deadline=None)
@given(p=st.floats(0.0, 1e3), rho=st.floats(0.0, 0.999), shift=st.floats(1e-3, 1e2))
def test_optimum_dominates_and_gap_is_nonnegative(p, rho, shift):
    best = float(mesa.optimal_true_performance(rho, shift))
    assert float(mesa.true_performance(p, rho, shift)) <= best * (1 + 1e-12) + 1e-300
    assert float(mesa.goodhart_gap(p, rho, shift)) >= 0.0


# ------------------------------------------------------------------------- gradient search
def test_search_matches_closed_form_on_whole_grid_in_one_call():
    rho, shift = np.meshgrid(RHO_GRID, SHIFT_GRID, indexing="ij")  # 475 points, P* 2.6e-3..950
    res = mesa.search_optimal_pressure(rho, shift)
    assert res.pressure.shape == rho.shape
    assert res.trajectory.shape == rho.shape + (500 + 4 + 1,)
    exact_p = rho / (2 * shift * (1 - rho))
    exact_v = rho**2 / (4 * shift * (1 - rho))
    rel_p = np.abs(np.asarray(res.pressure) / exact_p - 1)
    rel_v = np.abs(np.asarray(res.value) / exact_v - 1)
    assert rel_p.max() <= 1e-4 and rel_v.max() <= 1e-4
    assert rel_p.max() <= 1e-12  # with the Newton polish, to rounding
    assert bool(np.all(res.bounded)) and bool(np.all(res.converged))
    # the trajectory starts at the initial pressure and climbs
    np.testing.assert_allclose(res.trajectory[..., 0], 1.0)
    assert np.all(np.asarray(res.values[..., -1]) >= np.asarray(res.values[..., 0]))


def test_pure_optax_search_is_within_1e4():
    rho, shift = np.meshgrid(RHO_GRID, SHIFT_GRID, indexing="ij")
    res = mesa.search_optimal_pressure(rho, shift, newton_steps=0, record=False)
    rel = np.abs(np.asarray(res.pressure) / (rho / (2 * shift * (1 - rho))) - 1)
    assert rel.max() <= 1e-4, rel.max()


def test_search_reports_unbounded_instead_of_a_number():
    res = mesa.search_optimal_pressure(np.array([1.0, 0.5, 0.5]), np.array([2.0, 0.0, 1.0]))
    np.testing.assert_array_equal(res.bounded, [False, False, True])
    assert np.all(np.isposinf(res.pressure[:2])) and np.all(np.isposinf(res.value[:2]))
    # the iterates themselves run away
    traj = np.asarray(res.trajectory[:2])
    assert np.all(np.isfinite(traj)) and np.all(traj[:, -1] > 1e6)
    assert float(res.pressure[2]) == pytest.approx(0.5, rel=1e-10)


# ------------------------------------------------------------------------------- scatter
def _corr(x, y):
    return float(np.corrcoef(np.asarray(x), np.asarray(y))[0, 1])


def test_scatter_training_and_deployment():
    key = jax.random.key(1)
    n, rho = 40_000, 0.7
    se = 4 / np.sqrt(n)
    tp, tt = mesa.sample_objectives(key, n, rho, 1.0)
    assert tp.shape == tt.shape == (n,)
    assert abs(_corr(tp, tt) - rho) < se
    shifts = np.array([0.0, 0.5, 1.0, 2.0, 5.0])
    dp, dt = mesa.sample_objectives(key, n, rho, shifts, deployment=True)
    assert dp.shape == (5, n)
    corrs = np.array([_corr(dp[i], dt[i]) for i in range(5)])
    np.testing.assert_allclose(corrs, mesa.deployment_correlation(rho, shifts), atol=se)
    assert np.all(np.diff(corrs) < 0)  # falls as shift grows
    # = training at shift 0: with the same key the deployment sample is an affine image of the
    # training sample, so even the sample correlations agree
    dp0, dt0 = mesa.sample_objectives(key, n, rho, 0.0, deployment=True)
    assert _corr(dp0, dt0) == pytest.approx(_corr(tp, tt), abs=1e-12)
    assert float(mesa.deployment_correlation(rho, 0.0)) == rho
    assert np.all(corrs[1:] < _corr(tp, tt))
    # wider and offset
    assert np.std(dp[2]) / np.std(tp) == pytest.approx(mesa.DEPLOYMENT_WIDTH, rel=0.02)
    assert np.all(np.std(dt, axis=-1) > np.std(tt))
    assert float(np.mean(dp[2])) == pytest.approx(mesa.DEPLOYMENT_OFFSET, abs=0.05)
    delta = 1.0 * (1 - rho)
    assert float(np.mean(dt[2])) == pytest.approx(rho * mesa.DEPLOYMENT_OFFSET - delta, abs=0.05)
    assert abs(float(np.mean(tp))) < 0.05 and abs(float(np.mean(tt))) < 0.05


def test_scatter_correlation_for_several_rho():
    rho = np.array([0.1, 0.5, 0.9, 1.0])
    tp, tt = mesa.sample_objectives(jax.random.key(2), 40_000, rho, 0.0)
    assert tp.shape == (4, 40_000)
    for i, r in enumerate(rho):
        assert abs(_corr(tp[i], tt[i]) - r) < 0.02
    # rho = 1: the proxy is the objective, in deployment too
    dp, dt = mesa.sample_objectives(jax.random.key(2), 1000, 1.0, 3.0, deployment=True)
    assert _corr(dp, dt) == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------- population
def test_population_mechanics():
    key = jax.random.key(3)
    n = 20_000
    pop = mesa.sample_population(key, n, capability=120.0, capability_spread=1.0,
                                 oversight_eval=0.3, oversight_deploy=0.4)
    c = np.asarray(pop.capability)
    assert c.shape == (n,) and c.min() >= 0 and c.max() <= 200
    assert np.median(c) == pytest.approx(120.0, rel=0.03)
    np.testing.assert_allclose(pop.p_deception, mesa.deception_probability(c, 0.3), rtol=1e-14)
    dec, dfc = np.asarray(pop.deceptive), np.asarray(pop.defected)
    assert np.all(dfc <= dec)  # only deceptive models defect
    skill = c / 200
    np.testing.assert_allclose(pop.evaluated, skill)  # deceptive ones score like aligned ones
    np.testing.assert_allclose(pop.deployed, np.where(dfc, -skill, skill))
    s = mesa.summarize_population(pop)
    se = 4 / np.sqrt(n)
    assert float(s.fraction_deceptive) == pytest.approx(float(np.mean(pop.p_deception)), abs=se)
    assert float(s.fraction_defected) == pytest.approx(float(s.expected_defected), abs=se)
    assert float(s.expected_defected) == pytest.approx(float(np.mean(pop.p_deception)) * 0.6)
    assert float(s.gap) == pytest.approx(2 * float(np.mean(np.where(dfc, skill, 0))))
    # deployment oversight does not change who is deceptive, only who defects
    watched = mesa.sample_population(key, n, capability=120.0, oversight_eval=0.3,
                                     oversight_deploy=1.0)
    np.testing.assert_array_equal(watched.deceptive, pop.deceptive)
    assert not bool(np.any(watched.defected))
    # no spread: every model at the median
    flat = mesa.sample_population(key, n, capability=37.0, capability_spread=0.0)
    np.testing.assert_allclose(flat.capability, 37.0, rtol=1e-13)


def test_population_sweep_capability_by_oversight():
    caps = jnp.linspace(0.0, 200.0, 21)  # the shapes of the quick experiment (one compile)
    ovs = jnp.linspace(0.0, 1.0, 21)
    s = mesa.population_sweep(jax.random.key(4), 2000, caps, ovs)
    assert s.fraction_defected.shape == (21, 21)
    e = np.asarray(s.expected_defected)
    assert np.all(np.diff(e, axis=0) >= 0)  # more capable: more defection
    assert np.all(np.diff(e, axis=1) <= 0)  # more oversight: less
    np.testing.assert_allclose(e[:, -1], 0.0)  # full deployment oversight: nobody defects
    assert np.max(np.abs(np.asarray(s.fraction_defected) - e)) < 0.06
    one = mesa.summarize_population(mesa.sample_population(
        jax.random.key(4), 2000, capability=float(caps[3]), oversight_eval=float(ovs[2]),
        oversight_deploy=float(ovs[2])))
    np.testing.assert_allclose(s.expected_defected[3, 2], one.expected_defected, rtol=1e-12)


def _toy_reference(t, d, k):
    """Episode-by-episode simulation of Hubinger et al.'s toy."""
    immediate, modified, pursued = 0, False, 0
    for _ in range(t):  # training: going for B gets it, and gets the model modified after k
        if not modified:
            immediate += 1
            pursued += 1
            modified = pursued >= k
    if not modified:
        immediate += d
    return immediate, d


def test_hubinger_toy_payoff_table():
    toy = mesa.hubinger_toy(2, 3)
    assert (int(toy.pursue_immediately), int(toy.deceive), int(toy.comply)) == (1, 3, 0)
    t, d, k = np.arange(6)[:, None, None], np.arange(6)[None, :, None], np.arange(1, 4)
    table = mesa.hubinger_toy(t, d, episodes_to_modify=k)  # any episode counts, one call
    assert table.deceive.shape == (6, 6, 3)
    pursue, deceive = np.asarray(table.pursue_immediately), np.asarray(table.deceive)
    for i, j, m in itertools.product(range(6), range(6), range(3)):
        got = (int(pursue[i, j, m]), int(deceive[i, j, m]))
        assert got == _toy_reference(i, j, m + 1)
    grid = mesa.hubinger_toy(np.arange(6)[:, None], np.arange(6)[None, :])
    assert grid.deceive.shape == (6, 6)
    # once training can modify it, deceiving is at least as good, strictly with D > 1
    dt = np.asarray(grid.deceive - grid.pursue_immediately)
    assert np.all(dt[1:, 2:] > 0) and np.all(dt[1:, 1] == 0)
    with pytest.raises(ValueError, match="training_episodes"):
        mesa.hubinger_toy(1.5, 3)
    with pytest.raises(ValueError, match="episodes_to_modify"):
        mesa.hubinger_toy(2, 3, episodes_to_modify=0)


# ------------------------------------------------------------------------------ bad input
BAD = [
    (mesa.true_performance, (1.0, 1.5, 1.0), "rho"),
    (mesa.true_performance, (1.0, -0.1, 1.0), "rho"),
    (mesa.goodhart_gap, (1.0, 0.5, -1.0), "shift"),
    (mesa.true_performance, (-1.0, 0.5, 1.0), "pressure"),
    (mesa.goodhart_gap, (np.array([1.0, -2.0]), 0.5, 1.0), "pressure"),
    (mesa.misalignment, (np.nan, 1.0), "rho"),
    (mesa.optimal_pressure, (0.5, np.inf), "shift"),
    (mesa.search_optimal_pressure, (2.0, 1.0), "rho"),
    (mesa.deception_probability, (250.0, 0.5), "capability"),
    (mesa.deception_probability, (-1.0, 0.5), "capability"),
    (mesa.deception_probability, (100.0, 1.5), "oversight"),
    (mesa.sample_objectives, (jax.random.key(0), 10, 0.5, -1.0), "shift"),
]


@pytest.mark.parametrize("fn, args, name", BAD)
def test_bad_input_names_the_parameter(fn, args, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        fn(*args)


def test_bad_population_input():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="capability"):
        mesa.sample_population(key, 10, capability=201.0)
    with pytest.raises(ValueError, match="oversight_eval"):
        mesa.sample_population(key, 10, oversight_eval=-0.5)
    with pytest.raises(ValueError, match="oversight_deploy"):
        mesa.sample_population(key, 10, oversight_deploy=2.0)
    with pytest.raises(ValueError, match="oversights"):
        mesa.population_sweep(key, 10, [100.0], [0.5, 1.1])
    with pytest.raises(ValueError, match=r"\bn\b"):
        mesa.sample_objectives(key, 0, 0.5, 1.0)


@pytest.mark.parametrize("setting, name", [
    ("rho=2", "rho"), ("shift=-1", "shift"), ("pressure=-3", "pressure"),
    ("capability=250", "capability"), ("oversight=1.5", "oversight"),
])
def test_cli_bad_input_exit_2_one_line(setting, name, tmp_path, capsys):
    from goodhart_jax import cli

    rc = cli.main(["run", "mesa_dashboard", "--quick", "--set", setting, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len([line for line in err if "error" in line]) == 1
    assert err[-1].startswith("goodhart-jax: error:") and name in err[-1]
    assert not (tmp_path / "numbers.json").exists()


# ----------------------------------------------------------------------------- experiment
def test_mesa_dashboard_quick(tmp_path):
    from goodhart_jax import experiments

    numbers = experiments.run("mesa_dashboard", quick=True, out=tmp_path, seed=0)
    for name in ("dashboard.png", "population.png", "numbers.json", "manifest.json"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "numbers.json").read_text())
    opt = saved["optimum"]
    assert opt["bounded"] and opt["search_relative_error"] < 1e-4
    assert opt["optimal_pressure"] == pytest.approx(0.7 / (2 * 0.3))
    assert saved["hubinger_toy"]["pursue_immediately"] == 1
    assert saved["hubinger_toy"]["deceive"] == 3
    assert saved["scatter"]["deploy_correlation"] < saved["scatter"]["train_correlation"]
    assert np.asarray(saved["sweep"]["fraction_defected"]).shape == (21, 21)
    assert numbers["population"]["fraction_defected"] == saved["population"]["fraction_defected"]
