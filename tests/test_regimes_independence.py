"""Regimes of lim E[V | U >= t] (theory and numerics), dependent proxies, and their experiments.

Compilations dominate the cost: every new pair of distribution *types* (and every new shape of
the threshold array) compiles the quadrature once, so the tests reuse a few pairs and fixed
shapes (8 thresholds, 41 for :func:`numerical_regime`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings

import jax
import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import goodhart_jax as gj
from goodhart_jax import dependence, regimes

# E[V | U >= t] for Kwa et al.'s dependent proxy; the brief's values at t = 5, 10, 20 are right,
# those at t = 50, 100 (0.91293690, 0.95809991) are off by -2.6e-7 and +3.0e-6 (three independent
# 50-digit mpmath integrations agree on the values below to 1e-12).
BRIEF = {5.0: 0.36506864, 10.0: 0.56914632, 20.0: 0.76995912}
HIGH_PRECISION = {50.0: 0.912937157005586, 100.0: 0.958096955578391}


# ------------------------------------------------------------------------------------------
# 1. independence: E[V | U >= t] >= E[V], against an independent textbook-form integral
# ------------------------------------------------------------------------------------------
def _scipy(dist):
    """The same law in scipy.stats (an independent implementation)."""
    name = type(dist).__name__
    p = {k: float(getattr(dist, k)) for k in dist.parameters}
    if name == "Normal":
        return stats.norm(p["loc"], p["scale"])
    if name == "StudentT":
        return stats.t(p["df"], p["loc"], p["scale"])
    if name == "GenNormal":
        return stats.gennorm(p["p"], p["loc"], p["scale"])
    if name == "Exponential":
        return stats.expon(scale=1.0 / p["rate"])
    if name == "LogNormal":
        return stats.lognorm(p["sigma"], loc=p["loc"])
    if name == "Pareto":
        return stats.pareto(p["alpha"], scale=p["scale"])
    if name == "Levy":
        return stats.levy(scale=p["scale"])
    raise AssertionError(name)


def _textbook(value, error, t):
    """``∫ (v - E V) f_V S_X(t - v) dv / ∫ f_V S_X(t - v) dv`` by scipy quad, piecewise."""
    sv, sx = _scipy(value), _scipy(error)
    mean = float(sv.mean())
    lo, hi = sv.support()
    pts = {float(sv.ppf(q)) for q in (1e-9, 1e-4, 0.1, 0.5, 0.9, 1 - 1e-4, 1 - 1e-9)}
    pts |= {t - float(sx.ppf(q)) for q in (1e-6, 0.01, 0.5, 0.99, 1 - 1e-6)}
    x_lo = sx.support()[0]
    if np.isfinite(x_lo):
        pts.add(t - x_lo)
    pts = sorted(p for p in pts if lo < p < hi)
    edges = [lo] + pts + [hi]

    def quad(f):
        total, err = 0.0, 0.0
        for a, b in itertools.pairwise(edges):
            with warnings.catch_warnings():  # its error estimate widens the tolerance instead
                warnings.simplefilter("ignore", integrate.IntegrationWarning)
                val, e = integrate.quad(f, a, b, limit=200, epsabs=0.0, epsrel=1e-11)
            total, err = total + val, err + e
        return total, err

    den, e_den = quad(lambda v: sv.pdf(v) * sx.sf(t - v))
    num, e_num = quad(lambda v: (v - mean) * sv.pdf(v) * sx.sf(t - v))
    return num / den, (e_num + abs(num / den) * e_den) / den, den


_LOC = st.floats(-2.0, 2.0)
_SCALE = st.floats(0.5, 2.0)
_FAMILIES = {
    "normal": lambda v: st.builds(gj.Normal, _LOC, _SCALE),
    "student_t": lambda v: st.builds(gj.StudentT,
                                     st.floats(2.0, 10.0) if v else st.floats(0.5, 10.0),
                                     _LOC, _SCALE),
    "gennorm": lambda v: st.builds(gj.GenNormal, st.floats(0.5, 4.0), _LOC, _SCALE),
    "exponential": lambda v: st.builds(gj.Exponential, st.floats(0.5, 2.0)),
    "lognormal": lambda v: st.builds(gj.LogNormal, st.floats(0.2, 1.0), _LOC),
    "pareto": lambda v: st.builds(gj.Pareto, st.floats(2.0, 5.0) if v else st.floats(0.5, 5.0),
                                  _SCALE),
    "levy": lambda v: st.builds(gj.Levy, _SCALE),
}
# every family on each side it can take (Levy has no mean: error only); the first three pairs
# are those of the independence experiment's quick mode (their compilations are shared)
PAIRS = [("normal", "student_t"), ("pareto", "levy"), ("lognormal", "gennorm"),
         ("exponential", "normal"), ("student_t", "pareto"), ("gennorm", "exponential"),
         ("normal", "lognormal")]


@st.composite
def _independent_case(draw):
    vf, xf = draw(st.sampled_from(PAIRS))
    value = draw(_FAMILIES[vf](True))
    error = draw(_FAMILIES[xf](False))
    t = np.sort(np.asarray(draw(st.lists(st.floats(-8.0, 25.0), min_size=8, max_size=8))))
    return value, error, t


# ------------------------------------------------------------------------------------------
# 2. the dependent proxy of Kwa et al. and the one-sided counterexample
# ------------------------------------------------------------------------------------------
def test_dependent_proxy_matches_reference_values():
    model = dependence.kwa_dependent_proxy()
    t = np.array(sorted(BRIEF) + sorted(HIGH_PRECISION))
    ref = np.array([BRIEF[x] for x in sorted(BRIEF)]
                   + [HIGH_PRECISION[x] for x in sorted(HIGH_PRECISION)])
    got = np.asarray(dependence.dependent_conditional_value(model, t))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8)
    # rising to 1, the top of the gate: 1 - E ~ 4 / t
    far = np.asarray(dependence.dependent_conditional_value(model, np.array([1e4, 1e8, 1e50])))
    np.testing.assert_allclose((1 - far[:2]) * np.array([1e4, 1e8]), 4.0, rtol=2e-3)
    assert far[2] == 1.0


def _mp_gated(t, lo, hi, s, dps=30):
    """E[V | U >= t] for a gated proxy by mpmath (numerator through integration by parts)."""
    with mp.workdps(dps):
        return _mp_gated_at(*(mp.mpf(x) for x in (t, lo, hi, s)))


def _mp_gated_at(t, lo, hi, s):
    S = lambda x: mp.ncdf(-x)
    w = s * s / max(t - hi, 1)  # the width of the mass piled at the gate's top
    pts = {lo, hi, min(max(mp.mpf(0), lo), hi), min(max(t / (1 + s * s), lo), hi)}
    pts = sorted(pts | {hi - k * w for k in (0.25, 1, 4, 16) if hi - k * w > lo})
    den = mp.quad(lambda v: mp.npdf(v) * S((t - v) / s), pts)
    r, m = mp.sqrt(1 + s * s), t / (1 + s * s)
    tau = s / r
    # ∫_lo^hi v phi(v) S((t - v)/s) dv = [-phi S]_lo^hi + ∫ phi(v) phi((t - v)/s) / s dv
    num = (mp.npdf(lo) * S((t - lo) / s) - mp.npdf(hi) * S((t - hi) / s)
           + mp.npdf(t / r) / r * (mp.ncdf((hi - m) / tau) - mp.ncdf((lo - m) / tau)))
    c = max(t, hi)
    den += S(c)
    num += mp.npdf(c)
    if t < lo:
        den += mp.ncdf(lo) - mp.ncdf(t)
        num += mp.npdf(t) - mp.npdf(lo)
    return float(num / den)


@pytest.mark.parametrize("t", [-1.5, 0.5, 3.0, 30.0])
def test_dependent_proxy_against_mpmath(t):
    got = float(dependence.dependent_conditional_value(dependence.kwa_dependent_proxy(), t))
    assert abs(got - _mp_gated(t, -1.0, 1.0, 2.0)) < 1e-10


def test_counterexample_is_unbiased_and_breaks_the_inequality():
    model = dependence.one_sided_noise(10.0)
    # E[X | V] = 0: X's mean in V-quantile bins is zero within sampling error
    v, x = dependence.sample_dependent(jax.random.key(3), model, (400_000,))
    v, x = np.asarray(v), np.asarray(x)
    assert np.all(x[v > 0] == 0.0)
    edges = np.quantile(v, np.linspace(0, 1, 11))
    for a, b in itertools.pairwise(edges):
        xb = x[(v >= a) & (v < b)]
        if np.all(xb == 0):
            continue
        assert abs(xb.mean()) < 4.5 * xb.std(ddof=1) / math.sqrt(xb.size)
    # E[V | U >= t] < E[V] = 0: exact, and by an independent scipy integral
    t = 5.0
    phi = stats.norm.pdf
    den = integrate.quad(lambda u: phi(u) * stats.norm.sf((t - u) / 10.0), -np.inf, 0.0,
                         epsabs=0, epsrel=1e-12)[0] + stats.norm.sf(t)
    num = integrate.quad(lambda u: u * phi(u) * stats.norm.sf((t - u) / 10.0), -np.inf, 0.0,
                         epsabs=0, epsrel=1e-12)[0] + phi(t)
    got = float(dependence.dependent_conditional_value(model, t))
    assert num / den < 0.0
    assert abs(got - num / den) < 1e-9
    assert abs(got - _mp_gated(t, -math.inf, 0.0, 10.0)) < 1e-10
    # and far out it tends to 0 from below like -sigma^2 / t
    assert abs(float(dependence.dependent_conditional_value(model, 1e8)) * 1e8 + 100.0) < 1e-3


@pytest.mark.parametrize("method", ["mc", "cmc"])
def test_sampler_agrees_with_exact(method):
    t = np.array([0.0, 2.0, 4.0])
    for i, model in enumerate([dependence.kwa_dependent_proxy(), dependence.one_sided_noise()]):
        est = dependence.sample_dependent_conditional_value(jax.random.key(10 + i), model, t,
                                                            num_samples=300_000, method=method)
        exact = np.asarray(dependence.dependent_conditional_value(model, t))
        z = (np.asarray(est.mean) - exact) / np.asarray(est.stderr)
        assert np.all(np.abs(z) < 4.0), (method, model, z)


def test_wide_gate_is_the_independent_pair():
    t = np.linspace(-2.0, 30.0, 150)  # the shape of the independence experiment's quick grid
    gate = dependence.GatedProxy(-40.0, 40.0, 2.0)
    wide = np.asarray(dependence.dependent_conditional_value(gate, t))
    ind = np.asarray(gj.conditional_value(gj.Normal(), gj.Normal(0.0, 2.0), t))
    np.testing.assert_allclose(wide, ind, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------
# 3. the theory's prediction and the numerical classification
# ------------------------------------------------------------------------------------------
def test_exponential_error_normal_value_bounded_limit():
    value, error = gj.Normal(0.3, 1.5), gj.Exponential(2.0)
    pred = regimes.predicted_regime(value, error)
    assert pred.regime == "bounded"
    assert pred.limit == pytest.approx(0.3 + 2.0 * 1.5 ** 2, abs=1e-12)
    far = np.asarray(gj.conditional_value(value, error, np.array([100.0, 1e3, 1e5])))
    np.testing.assert_allclose(far, pred.limit, rtol=0, atol=1e-8)


def test_textbook_predictions():
    cases = [
        (gj.GenNormal(2.0), gj.GenNormal(0.5), "catastrophic"),  # Thm 5
        (gj.Normal(), gj.StudentT(3.0), "catastrophic"),  # Thm 5
        (gj.StudentT(3.0), gj.Normal(), "unbounded"),  # Thm 6 (and V heavier)
        (gj.Normal(), gj.Normal(), "unbounded"),  # Thm 6
        (gj.GenNormal(0.5), gj.GenNormal(0.5), "unbounded"),  # equal tails: t/2
        (gj.GenNormal(1.0), gj.GenNormal(1.0), "unbounded"),  # Laplace + Laplace: t/2
        (gj.GenNormal(0.5), gj.GenNormal(0.9), "unbounded"),  # V heavier
        (gj.GenNormal(3.0), gj.GenNormal(1.0), "bounded"),  # c_X = 1 < c_V
        (gj.StudentT(3.0), gj.StudentT(2.0), "bounded"),  # nu_V - nu_X = 1
        (gj.StudentT(3.5), gj.StudentT(2.0), "catastrophic"),  # > 1
        (gj.StudentT(2.5), gj.StudentT(2.0), "unbounded"),  # < 1
        (gj.LogNormal(0.5), gj.Pareto(1.5), "catastrophic"),
        (gj.LogNormal(0.5), gj.LogNormal(1.0), "catastrophic"),
        (gj.Pareto(2.0), gj.LogNormal(1.0), "unbounded"),
        (gj.Exponential(3.0), gj.Exponential(1.0), "bounded"),
        (gj.Exponential(1.0), gj.Exponential(1.0), "unbounded"),
        ("normal(0, 1)", "levy(1)", "catastrophic"),
    ]
    for value, error, regime in cases:
        assert regimes.predicted_regime(value, error).regime == regime, (value, error)
    limit = regimes.predicted_regime(gj.Exponential(3.0), gj.Exponential(1.0)).limit
    assert limit == pytest.approx(0.5)  # 1 / (3 - 1)


def test_predicted_bounded_limits_match_the_estimator():
    # c = 1 edge, gennorm V: the tilt series; power laws with nu_V - nu_X = 1: the A-ratio
    for value, error, t in [(gj.GenNormal(1.5), gj.GenNormal(1.0), 200.0),
                            (gj.GenNormal(3.0, 0.5, 2.0), gj.GenNormal(1.0, 0.0, 3.0), 300.0),
                            (gj.StudentT(3.0), gj.StudentT(2.0), 1e120),
                            (gj.StudentT(2.0, 0.5, 2.0), gj.StudentT(1.0, 0.0, 0.5), 1e120)]:
        pred = regimes.predicted_regime(value, error)
        assert pred.regime == "bounded"
        # 41 thresholds: numerical_regime's shape (one compilation shared)
        got = float(gj.conditional_value(value, error, np.full(41, t))[0])
        assert abs(got - pred.limit) < 1e-7 * (1 + abs(pred.limit)), (value, error, got, pred)


@pytest.mark.parametrize("family, v, x", [("gennorm", 3.0, 0.9), ("gennorm", 1.5, 1.0),
                                          ("gennorm", 3.0, 1.25), ("student_t", 1.75, 0.75),
                                          ("student_t", 5.0, 3.75)])
def test_numerical_regime_agrees_with_theory(family, v, x):
    make = gj.GenNormal if family == "gennorm" else gj.StudentT
    num = regimes.numerical_regime(make(v), make(x))
    assert num.regime == regimes.predicted_regime(make(v), make(x)).regime
    assert num.log_p < -400 or num.t_max == 1e150


def test_classify_trend_synthetic():
    t = np.geomspace(10.0, 1e8, 41)
    assert regimes.classify_trend(t, 2.0 / t ** 0.1)[0] == "catastrophic"
    assert regimes.classify_trend(t, 3.0 + 1.0 / t)[0] == "bounded"
    assert regimes.classify_trend(t, t ** 0.05)[0] == "unbounded"
    assert regimes.classify_trend(t, -np.ones_like(t))[0] == "undetermined"


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="value"):
        regimes.predicted_regime(gj.Levy(), gj.Normal())
    with pytest.raises(ValueError, match="error"):
        regimes.predicted_regime(gj.Normal(), 3.0)
    with pytest.raises(ValueError, match="slope_tol"):
        regimes.classify_trend(np.arange(1.0, 9.0), np.ones(8), slope_tol=0.0)
    with pytest.raises(ValueError, match="t must"):
        regimes.classify_trend(np.array([1.0, 2.0, 3.0]), np.ones(3))
    with pytest.raises(ValueError, match="max_nats"):
        regimes.numerical_regime(gj.Normal(), gj.Normal(), max_nats=1.0)
    with pytest.raises(ValueError, match="num_points"):
        regimes.numerical_regime(gj.Normal(), gj.Normal(), num_points=3)
    with pytest.raises(ValueError, match="scale"):
        dependence.kwa_dependent_proxy(scale=-1.0)
    with pytest.raises(ValueError, match="cutoff"):
        dependence.kwa_dependent_proxy(cutoff=0.0)
    with pytest.raises(ValueError, match="scale"):
        dependence.one_sided_noise(0.0)
    with pytest.raises(ValueError, match="lo"):
        dependence.dependent_conditional_value(dependence.GatedProxy(1.0, 0.0, 1.0), 1.0)
    with pytest.raises(ValueError, match="hi"):
        dependence.dependent_conditional_value(dependence.GatedProxy(0.0, math.inf, 1.0), 1.0)
    with pytest.raises(ValueError, match="model"):
        dependence.dependent_conditional_value((0.0, 1.0, 1.0), 1.0)
    with pytest.raises(ValueError, match="t"):
        dependence.dependent_conditional_value(dependence.kwa_dependent_proxy(), math.nan)
    key, model = jax.random.key(0), dependence.one_sided_noise()
    with pytest.raises(ValueError, match="num_samples"):
        dependence.sample_dependent_conditional_value(key, model, 1.0, num_samples=0)
    with pytest.raises(ValueError, match="method"):
        dependence.sample_dependent_conditional_value(key, model, 1.0, num_samples=10,
                                                      method="qmc")


# ------------------------------------------------------------------------------------------
# 4. the experiments (quick mode), and resuming an interrupted phase diagram
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def phase_quick(tmp_path_factory):
    from goodhart_jax import experiments

    out = tmp_path_factory.mktemp("phase_diagram")
    numbers = experiments.run("phase_diagram", quick=True, out=out)
    return out, numbers


def test_phase_diagram_quick(phase_quick):
    out, _ = phase_quick
    saved = json.loads((out / "numbers.json").read_text())
    assert (out / "phase_diagram.png").stat().st_size > 10_000
    assert (out / "manifest.json").exists()
    assert not (out / ".partial").exists()
    for family in ("gennorm", "student_t"):
        tab = saved["grids"][family]
        assert tab["cells"] == 25
        assert tab["agree_off_boundary"] == tab["off_boundary"] > 0
        assert tab["agree"] == 25
        assert tab["bounded_limit_max_abs_error"] < 1e-6
        assert set(tab["counts"]["predicted"]) == {"catastrophic", "bounded", "unbounded"}
    assert "agree with the theory on 25/25" in saved["conclusions"][0]


@pytest.mark.slow  # 12 s of experiment reruns; the resume itself is tested in test_sweeps.py
def test_phase_diagram_resumes(phase_quick, tmp_path, monkeypatch):
    """Kill a run once a row is saved; the rerun computes only the missing rows."""
    _, clean = phase_quick
    out = tmp_path / "pd"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "GOODHART_JAX_PROGRESS": "0"}
    cmd = [sys.executable, "-c",
           "from goodhart_jax.cli import main; import sys; sys.exit(main(sys.argv[1:]))",
           "run", "phase_diagram", "--quick", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out / ".partial" / "gennorm.json"
    saved = None
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if partial.exists():
                try:
                    saved = json.loads(partial.read_text())
                except (OSError, ValueError):
                    saved = None
                if saved and len(saved["points"]) >= 1:
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert saved is not None, "no row was saved before the deadline"
    saved = json.loads(partial.read_text())  # what the killed run left
    done = len(saved["points"])
    assert 1 <= done < 5

    from goodhart_jax import experiments
    from goodhart_jax.experiments import phase_diagram
    from goodhart_jax.results import to_jsonable

    calls = []
    real = phase_diagram._row

    def counting(family, v, xs, opts):
        calls.append((family, v))
        return real(family, v, xs, opts)

    monkeypatch.setattr(phase_diagram, "_row", counting)
    numbers = experiments.run("phase_diagram", quick=True, out=out)
    assert len([c for c in calls if c[0] == "gennorm"]) == 5 - done
    assert len([c for c in calls if c[0] == "student_t"]) == 5
    grid = numbers["grids"]["gennorm"]["grid"]
    vs = numbers["grids"]["gennorm"]["value_params"]
    for key, row in saved["points"].items():  # the saved rows come back unchanged
        i = vs.index(json.loads(key))
        for k, val in row.items():
            assert json.dumps(to_jsonable(grid[k][i])) == json.dumps(val), k
    strip = lambda n: json.dumps(to_jsonable({k: v for k, v in n.items() if k != "compute_s"}),
                                 sort_keys=True)
    assert strip(numbers) == strip(clean)


@pytest.mark.slow  # the whole experiment (27 s); its exact values are also checked above
def test_independence_quick(tmp_path):
    from goodhart_jax import experiments

    numbers = experiments.run("independence", quick=True, out=tmp_path)
    saved = json.loads((tmp_path / "numbers.json").read_text())
    assert (tmp_path / "independence.png").stat().st_size > 10_000
    dep = saved["dependent_proxy"]
    exact = dict(zip(dep["brief_t"], dep["brief_exact"]))
    for t, v in {**BRIEF, **HIGH_PRECISION}.items():
        assert abs(exact[t] - v) < 1e-8
    assert saved["limit"] == 1.0
    assert "tends to 1" in saved["limit_statement"] and "not to 0" in saved["limit_statement"]
    assert saved["independence"]["all_nonnegative"]
    assert saved["independence"]["min_excess"] >= 0.0
    assert saved["counterexample"]["min_value"] < 0.0
    for name, mc in saved["monte_carlo"].items():
        assert max(abs(z) for z in mc["z"]) < 4.0, name
    assert numbers["independent"]["closed_form_max_abs_diff"] < 1e-9


def test_experiment_tunables_are_validated(tmp_path):
    from goodhart_jax import experiments

    with pytest.raises(ValueError, match="gennorm_exponents"):
        experiments.run("phase_diagram", quick=True, out=tmp_path,
                        params={"gennorm_exponents": [1.0]})
    with pytest.raises(ValueError, match="df_values"):
        experiments.run("phase_diagram", quick=True, out=tmp_path, params={"df_values": [0.5, 2.0]})
    with pytest.raises(ValueError, match="t_max"):
        experiments.run("independence", quick=True, out=tmp_path, params={"t_max": -1.0})


def _check_independence_never_lowers_the_value(case):
    """E[V | U >= t] >= E[V] for independent V, X: the exact estimator, and a textbook check."""
    value, error, t = case
    cond = np.asarray(gj.conditional_value(value, error, t))
    mean = float(value.mean())
    assert np.all(cond - mean >= -1e-12 * (1.0 + abs(mean)))
    for k in (0, 4, 7):  # an independent scipy integral of the covariance form, where P is not tiny
        ref, err, den = _textbook(value, error, float(t[k]))
        if den < 1e-12:
            continue
        assert ref >= -1e-9 - err
        assert abs((cond[k] - mean) - ref) <= 1e-6 * (1.0 + abs(ref)) + 10 * err


# runs after test_independence_quick, whose three family pairs it shares (compiled once); each
# new family pair costs a compilation (~6 s), so the default run draws 3 cases and the slow one 40
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_independent_case())
def test_independence_never_lowers_the_value(case):
    _check_independence_never_lowers_the_value(case)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_independent_case())
def test_independence_never_lowers_the_value_many_cases(case):
    _check_independence_never_lowers_the_value(case)
