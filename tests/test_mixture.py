"""Finite mixtures (``gj.Mixture``) as value and as error, exact everywhere.

References are independent of the code under test: closed forms by mpmath (a normal mixture
with a normal error), mpmath quadrature with break points narrower than every peak and SciPy's
nested QUADPACK for best-of-n (``tests/reference/make_mixtures.py`` -> ``mixtures.json``), SciPy
for the sampler's law, closed forms for the regimes and the tilted pool policy, central finite
differences for the gradients.  The default run keeps to a few compilations (the normal-mixture
value and the normal / Pareto error); the other pairings, value-given-proxy, best-of-n and the
Monte Carlo checks run with ``-m slow``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy import stats

import goodhart_jax as gj
from goodhart_jax import cli
from tests.compile_counting import SEEN
from tests.pool_checks import push_fixed_point

REFERENCE = json.loads((Path(__file__).parent / "reference" / "mixtures.json").read_text())
ROWS = {row["name"]: row for row in REFERENCE["pairs"]}


def _law(spec):
    """A law of the reference file as a goodhart_jax distribution."""
    if spec[0] == "mixture":
        return gj.Mixture([_law(sub) for _, sub in spec[1]], [w for w, _ in spec[1]])
    if spec[0] == "normal":
        return gj.Normal(spec[1], spec[2])
    if spec[0] == "student_t":
        return gj.StudentT(spec[1], spec[2], spec[3])
    if spec[0] == "pareto":
        return gj.Pareto(spec[1], spec[2])
    raise ValueError(spec)


def _pair(name):
    row = ROWS[name]
    return _law(row["value"]), _law(row["error"]), row


# the default run: the closed form (a value mixture) for E[V | U >= t], the Pareto mixture as
# error for both; everything else with -m slow (each pairing compiles for 5-20 s)
QUICK_VALUE = ("mix_normal/normal", "normal/mix_pareto")
QUICK_TAIL = ("normal/mix_pareto",)
ALL_SLOW = [pytest.param(n, marks=pytest.mark.slow) for n in ROWS]


def _pairs(quick):
    return [pytest.param(n, marks=() if n in quick else pytest.mark.slow) for n in ROWS]


# --- exact conditioning against the references -------------------------------------------


def test_reference_reaches_far_tails():
    closed = ROWS["mix_normal/normal"]
    assert min(c["log_tail_prob"] for c in closed["cases"]) <= math.log(1e-300)
    for name in ("normal/mix_pareto", "normal/mix_t2", "normal/mix_narrow", "mix_narrow/student_t"):
        assert min(c["log_tail_prob"] for c in ROWS[name]["cases"]) <= math.log(1e-30), name


@pytest.mark.parametrize("name", _pairs(QUICK_VALUE))
def test_conditional_value_matches_reference(name):
    value, error, row = _pair(name)
    t = np.array([c["t"] for c in row["cases"]])
    ref = np.array([c["conditional_value"] for c in row["cases"]])
    got = np.asarray(gj.conditional_value(value, error, t))
    # 1e-10 relative against the closed form; 1e-8 against quadrature
    rtol = 1e-10 if row["method"] == "closed form" else 1e-8
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=0)


@pytest.mark.parametrize("name", _pairs(QUICK_TAIL))
def test_log_tail_prob_matches_reference(name):
    value, error, row = _pair(name)
    t = np.array([c["t"] for c in row["cases"]])
    ref = np.array([c["log_tail_prob"] for c in row["cases"]])
    got = np.asarray(gj.log_tail_prob(value, error, t))
    # P to 1e-10 (closed form) or 1e-8 (quadrature) relative: log P to that absolute
    atol = 1e-10 if row["method"] == "closed form" else 1e-8
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)


@pytest.mark.parametrize("name", [p for p in ALL_SLOW if "excess" in ROWS[p.values[0]]["cases"][0]])
def test_value_excess_keeps_its_digits(name):
    """``E[V | U >= t] - E[V]`` to 1e-8 relative even where it is 1e-20 (a mixture value under
    a heavy-tailed error: the catastrophic regime)."""
    value, error, row = _pair(name)
    t = np.array([c["t"] for c in row["cases"]])
    ref = np.array([c["excess"] for c in row["cases"]])
    log_d, _ = gj.log_value_excess(value, error, t)
    np.testing.assert_allclose(np.exp(np.asarray(log_d)), ref, rtol=1e-8, atol=0)


@pytest.mark.parametrize("name", ALL_SLOW)
def test_value_given_proxy_matches_reference(name):
    value, error, row = _pair(name)
    u = np.array([c["u"] for c in row["given_proxy"]])
    ref = np.array([c["value_given_proxy"] for c in row["given_proxy"]])
    got = np.asarray(gj.value_given_proxy(value, error, u))
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", [p for p in ALL_SLOW if ROWS[p.values[0]]["best_of_n"]])
def test_best_of_n_matches_scipy(name):
    value, error, row = _pair(name)
    n = np.array([b["n"] for b in row["best_of_n"]])
    ref = np.array([b["best_of_n_value"] for b in row["best_of_n"]])
    got = np.asarray(gj.best_of_n_value(value, error, n))
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8)


def test_conditional_density_is_the_mixture_formula():
    """f_{V | U >= t}(v) = f_V(v) S_X(t - v) / P(U >= t), with SciPy's densities and the
    reference P (one v per threshold: the thresholds' quadrature is the one of
    test_log_tail_prob_matches_reference)."""
    value, error, row = _pair("normal/mix_pareto")
    t = np.array([c["t"] for c in row["cases"]])
    log_p = np.array([c["log_tail_prob"] for c in row["cases"]])
    v = np.clip(0.5 * t, -3.0, 5.0)
    sx = 0.99 * stats.norm.sf(t - v) + 0.01 * stats.pareto(1.5).sf(t - v)
    ref = np.exp(stats.norm.logpdf(v) + np.log(sx) - log_p)
    got = np.asarray(gj.conditional_density(value, error, v, t))
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0)




def test_compiles_once_per_structure():
    """New weights and parameters of the same component tree compile nothing."""
    seen = SEEN

    def call(i):
        value = gj.Mixture([gj.Normal(0.1 * i, 1.0), gj.Normal(2.0, 3.0 + i),
                            gj.Normal(-1.0, 0.1)], [0.5, 0.3 + 0.1 * i, 0.2])
        return jax.block_until_ready(gj.conditional_value(value, gj.Normal(0.0, 1.0 + i),
                                                          np.linspace(-10.0, 119.0, 10) + i))

    call(0)
    start = len(seen)
    call(1)
    call(2)
    assert len(seen) == start


# --- gradients ---------------------------------------------------------------------------


def _central_difference(f, x, rel=1e-4):
    """Fourth-order central differences, step ``rel * |x_i|`` per coordinate."""
    x = np.asarray(x, float)
    g = np.zeros_like(x)
    for i in range(x.size):
        h = rel * abs(x[i])
        e = np.zeros_like(x)
        e[i] = h
        vals = [float(f(jnp.asarray(x + k * e))) for k in (-2, -1, 1, 2)]
        g[i] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
    return g


def _error_mixture(p):  # weights, then Pareto's alpha and scale (its density jumps at scale)
    return gj.Mixture([gj.Normal(0.0, 1.0), gj.Pareto(p[2], p[3])], p[:2])


def _value_mixture(p):  # weights, then the second component's loc and scale
    return gj.Mixture([gj.Normal(0.0, 1.0), gj.Normal(p[2], p[3])], p[:2])


@pytest.mark.slow
def test_gradient_of_log_tail_prob_in_weights_and_parameters():
    p0 = np.array([0.99, 0.01, 1.5, 1.3])
    for t in (2.0, 6.0):
        f = lambda p, t=t: gj.log_tail_prob(gj.Normal(), _error_mixture(p), t)
        g = np.asarray(jax.grad(f)(jnp.asarray(p0)))
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, _central_difference(f, p0), rtol=1e-7, atol=1e-10)
        assert abs(g[:2] @ p0[:2]) < 1e-10  # relative weights: scaling them changes nothing


@pytest.mark.slow
@pytest.mark.parametrize("side", ["error", "value", "value with a Pareto piece"])
def test_gradient_of_conditional_value(side):
    if side == "error":
        p0 = np.array([0.99, 0.01, 1.5, 1.3])
        f = lambda p: gj.conditional_value(gj.Normal(), _error_mixture(p), 6.0)
    elif side == "value":
        p0 = np.array([0.7, 0.3, 2.0, 0.5])
        f = lambda p: gj.conditional_value(_value_mixture(p), gj.StudentT(3.0), 4.0)
    else:  # the Pareto piece's mean lies above the mixture's: G's terms differ below its support
        p0 = np.array([0.5, 0.5, 2.5, 1.0])
        f = lambda p: gj.conditional_value(_error_mixture(p), gj.Normal(), 4.0)
    g = np.asarray(jax.grad(f)(jnp.asarray(p0)))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, _central_difference(f, p0), rtol=1e-7, atol=1e-10)


@pytest.mark.slow
def test_gradient_of_log_tail_prob_for_a_value_mixture():
    p0 = np.array([0.7, 0.3, 2.0, 0.5])
    f = lambda p: gj.log_tail_prob(_value_mixture(p), gj.StudentT(3.0), 4.0)
    g = np.asarray(jax.grad(f)(jnp.asarray(p0)))
    np.testing.assert_allclose(g, _central_difference(f, p0), rtol=1e-7, atol=1e-10)


# --- structure: nesting, tails, pointwise functions ----------------------------------------

NESTED = gj.Mixture([gj.Mixture([gj.Normal(0.0, 1.0), gj.Normal(3.0, 0.5)], [1.0, 3.0]),
                     gj.Pareto(2.5, 2.0)], [0.8, 0.2])
FLAT = gj.Mixture([gj.Normal(0.0, 1.0), gj.Normal(3.0, 0.5), gj.Pareto(2.5, 2.0)],
                  [0.2, 0.6, 0.2])
MEAN = 0.6 * 3.0 + 0.2 * 2.5 * 2.0 / 1.5


@jax.jit
def _pointwise(mix, x):
    return mix.log_prob(x), mix.log_sf(x), mix.log_cdf(x), mix.log_mean_excess(x), mix.mean()


def test_pointwise_functions_are_the_mixture_formulas():
    x = np.array([-30.0, -5.0, -3.0, 0.0, 0.5, 2.0, 2.1, 3.0, 4.0, 40.0, 1e6])
    parts = [(0.2, stats.norm(0, 1)), (0.6, stats.norm(3, 0.5)), (0.2, stats.pareto(2.5, 0, 2))]
    pdf = sum(w * d.pdf(x) for w, d in parts)
    sf = sum(w * d.sf(x) for w, d in parts)
    cdf = sum(w * d.cdf(x) for w, d in parts)
    # G(y) = E[(V - m) 1{V > y}] by mpmath from the definition (at the first ten points)
    mp.mp.dps = 20
    m = mp.mpf("1.8") + mp.mpf(2) / 3  # 0.6 * 3 + 0.2 * 2.5 * 2 / 1.5
    dens = lambda v: (mp.mpf("0.2") * mp.npdf(v) + mp.mpf("0.6") * mp.npdf(v, 3, mp.mpf("0.5"))
                      + (mp.mpf("0.2") * mp.mpf("2.5") / 2 * (2 / v) ** mp.mpf("3.5") if v >= 2
                         else 0))

    def excess(y):  # both forms have positive integrands: G(y) = E[(m - V) 1{V <= y}] below m
        # break points graded away from y (the integrand's mass hugs y far out in a tail) and
        # at the components' centres and Pareto's lower end
        # (mp.quad stops on an absolute error: the integrand is scaled to its value at y)
        steps = (0.25, 1.0, 4.0, 16.0, 64.0)
        scale = (abs(m - y) + 1) * dens(y)
        if y >= m:
            pts = sorted({y + d for d in steps} | {b for b in (2.0, 3.0, 10.0, 100.0) if b > y})
            return float(scale * mp.quad(lambda v: (v - m) * dens(v) / scale, [y] + pts + [mp.inf]))
        pts = sorted({y - d for d in steps} | {b for b in (0.0, 2.0) if b < y})
        return float(scale * mp.quad(lambda v: (m - v) * dens(v) / scale, [-mp.inf] + pts + [y]))

    g = [excess(y) for y in x[:10]]
    for mix in (NESTED, FLAT):
        lp, ls, lc, lg, mean = (np.asarray(a) for a in _pointwise(mix, x))
        np.testing.assert_allclose(np.exp(lp), pdf, rtol=1e-12)
        np.testing.assert_allclose(np.exp(ls), sf, rtol=1e-12)
        np.testing.assert_allclose(np.exp(lc), cdf, rtol=1e-12)
        np.testing.assert_allclose(np.exp(lg[:10]), g, rtol=1e-12)
        assert float(mean) == pytest.approx(MEAN, rel=1e-15)


@pytest.mark.slow
def test_nested_mixture_equals_flattened_one():
    t = np.array([-2.0, 0.0, 3.0, 10.0, 1e3, 1e8])
    for value, error in ((NESTED, gj.Normal()), (gj.Normal(), NESTED)):
        flat = (FLAT, error) if value is NESTED else (value, FLAT)
        np.testing.assert_allclose(gj.conditional_value(value, error, t),
                                   gj.conditional_value(*flat, t), rtol=1e-12)
        np.testing.assert_allclose(gj.log_tail_prob(value, error, t),
                                   gj.log_tail_prob(*flat, t), rtol=1e-12, atol=1e-12)


def test_right_tail_is_the_heaviest_components():
    t = gj.Mixture([gj.Normal(), gj.Pareto(1.5, 2.0), gj.StudentT(1.5), gj.LogNormal(3.0)],
                   [1.0, 1.0, 2.0, 4.0]).right_tail()
    a_pareto = 2.0 ** 1.5
    a_t = gj.StudentT(1.5).right_tail().coef
    assert (t.kind, t.exponent) == ("power", 1.5)
    assert t.coef == pytest.approx((a_pareto + 2.0 * a_t) / 8.0, rel=1e-12)
    t = gj.Mixture([gj.Normal(0.0, 1.0), gj.LogNormal(0.5), gj.GenNormal(0.5)]).right_tail()
    assert (t.kind, t.exponent) == ("lognormal", 0.5)
    t = gj.Mixture([gj.Normal(0.0, 3.0), gj.Exponential(2.0), gj.Normal(5.0, 1.0)]).right_tail()
    assert (t.kind, t.exponent, t.scale) == ("weibull", 1.0, 0.5)
    t = gj.Mixture([gj.Normal(0.0, 3.0), gj.Normal(5.0, 1.0)]).right_tail()
    assert (t.kind, t.exponent) == ("weibull", 2.0) and t.scale == pytest.approx(3.0 * 2 ** 0.5)
    nested, flat = NESTED.right_tail(), FLAT.right_tail()
    assert (nested.kind, nested.exponent) == (flat.kind, flat.exponent) == ("power", 2.5)
    assert nested.coef == pytest.approx(flat.coef, rel=1e-15)
    assert NESTED.right_tail().coef == pytest.approx(0.2 * 2.0 ** 2.5, rel=1e-12)
    assert NESTED.tail == "heavy" and gj.Mixture([gj.Normal(), gj.Exponential()]).tail == "exponential"


def test_predicted_regimes():
    # Thm 5: a power-law piece makes the error subexponential: catastrophic, limit E[V]
    p = gj.predicted_regime(gj.Normal(0.3), gj.parse_dist("mixture(0.99*normal, 0.01*pareto(1.5))"))
    assert p.regime == "catastrophic" and p.limit == pytest.approx(0.3)
    # a normal-mixture value under an exponential error: bounded at V's mean tilted by e^(lam v),
    # sum_i w_i M_i (m_i + lam s_i^2) / sum_i w_i M_i with M_i = exp(lam m_i + lam^2 s_i^2 / 2)
    lam, comps = 0.5, [(0.7, 0.0, 1.0), (0.3, 2.0, 1.5)]
    value = gj.Mixture([gj.Normal(m, s) for _, m, s in comps], [w for w, _, _ in comps])
    mgf = [w * math.exp(lam * m + 0.5 * lam * lam * s * s) for w, m, s in comps]
    limit = sum(k * (m + lam * s * s) for k, (_, m, s) in zip(mgf, comps)) / sum(mgf)
    p = gj.predicted_regime(value, gj.Exponential(lam))
    assert p.regime == "bounded" and p.limit == pytest.approx(limit, rel=1e-7)
    # power laws with a_V - a_X = 1: limit E[V] + a_V A_V / ((a_V - 1) A_X), A_X = 0.5 * 1
    p = gj.predicted_regime(gj.Pareto(2.5), gj.Mixture([gj.Pareto(1.5), gj.Normal()], [1.0, 1.0]))
    assert p.regime == "bounded" and p.limit == pytest.approx(2.5 / 1.5 + 2.5 / (1.5 * 0.5))
    # a light mixture error: unbounded (Thm 6)
    assert gj.predicted_regime(gj.Normal(), gj.Mixture([gj.Normal(), gj.Normal(3.0, 2.0)])).regime \
        == "unbounded"


@pytest.mark.slow
def test_numerical_regime_of_a_mixture_value_under_a_heavy_error():
    value, error, _ = _pair("mix_narrow/student_t")
    assert gj.numerical_regime(value, error).regime == "catastrophic"


# --- sampling ------------------------------------------------------------------------------


@jax.jit
def _draws(mix, key):
    return mix.sample(key, (100_000,))


def test_sample_passes_kolmogorov_smirnov():
    mix = gj.parse_dist("mixture(0.99*normal(0, 1), 0.01*pareto(alpha=1.5))")
    x = np.asarray(_draws(mix, jax.random.key(0)))
    cdf = lambda v: 0.99 * stats.norm.cdf(v) + 0.01 * stats.pareto(1.5).cdf(v)
    assert stats.kstest(x, cdf).pvalue > 0.01
    y = np.asarray(_draws(NESTED, jax.random.key(1)))
    cdf = lambda v: (0.2 * stats.norm.cdf(v) + 0.6 * stats.norm(3, 0.5).cdf(v)
                     + 0.2 * stats.pareto(2.5, 0, 2).cdf(v))
    assert stats.kstest(y, cdf).pvalue > 0.01


@pytest.mark.slow
@pytest.mark.parametrize("method", ["mc", "cmc"])
@pytest.mark.parametrize("name, index", [("normal/mix_pareto", 3), ("mix_narrow/student_t", 1),
                                         ("mix_normal/normal", 4)])
def test_monte_carlo_within_four_standard_errors(name, index, method):
    value, error, row = _pair(name)
    case = row["cases"][index]
    est = gj.sample_conditional_value(jax.random.key(11), value, error, case["t"],
                                      num_samples=1 << 18, method=method)
    ref = case["conditional_value"]
    assert abs(float(est.mean) - ref) < 4 * float(est.stderr), (float(est.mean), ref, float(est.stderr))


@pytest.mark.slow
def test_pool_push_reaches_the_tilted_policy():
    """push converges to pi ∝ e^(u / beta); for independent V, X its E_pi[V] is V's mean tilted
    by e^(v / beta): for a normal mixture, sum_i w_i M_i (m_i + lam s_i^2) / sum_i w_i M_i."""
    comps, beta = [(0.6, 0.0, 1.0), (0.4, 1.5, 0.5)], 2.0
    lam = 1.0 / beta
    value = gj.Mixture([gj.Normal(m, s) for _, m, s in comps], [w for w, _, _ in comps])
    error = gj.parse_dist("mixture(0.5*normal(0, 0.5), 0.5*normal(1, 0.3))")
    pool = gj.sample_pool(jax.random.key(3), value, error, 200_000)
    got, est, se = push_fixed_point(pool, beta)
    assert abs(got - est) < 1e-6
    mgf = [wi * math.exp(lam * m + 0.5 * lam * lam * s * s) for wi, m, s in comps]
    ref = sum(k * (m + lam * s * s) for k, (_, m, s) in zip(mgf, comps)) / sum(mgf)
    assert abs(got - ref) < 4 * se, (got, ref, se)


# --- construction, specs, bad input --------------------------------------------------------


def test_spec_round_trips():
    for mix in (NESTED, FLAT, gj.Mixture([gj.Normal(1.0, 2.0), gj.Pareto(1.5)], [0.3, 0.1])):
        again = gj.parse_dist(mix.spec)
        assert again == mix and again.spec == mix.spec
    a = gj.parse_dist("mixture(0.99*normal(0,1), 0.01*pareto(alpha=1.5))")
    b = gj.parse_dist("mixture(0.99 normal(0,1), 0.01 pareto(alpha=1.5))")
    c = gj.parse_dist("mixture(normal(0, 1), pareto(alpha=1.5), weights=[0.99, 0.01])")
    d = gj.parse_dist("mixture(normal(0,1)*0.99, 1e-2 pareto(1.5))")
    assert a == b == c == d
    e = gj.parse_dist("mixture(normal, mixture(0.5 normal(3), 0.5 student_t(3)))")
    assert np.allclose(np.asarray(e.weights), [1.0, 1.0])
    assert [type(x).__name__ for _, x in gj.mixture.leaf_components(e)] == \
        ["Normal", "Normal", "StudentT"]


def test_weights_are_relative():
    a = gj.Mixture([gj.Normal(), gj.Normal(2.0)], [3.0, 1.0])
    b = gj.Mixture([gj.Normal(), gj.Normal(2.0)], [0.75, 0.25])
    assert float(a.mean()) == float(b.mean()) == 0.5
    x = np.linspace(-3, 5, 9)  # the same law: equal up to rounding
    np.testing.assert_allclose(a.log_sf(x), b.log_sf(x), rtol=1e-14, atol=1e-15)


def test_mean_propagates_inf_and_nan():
    assert float(gj.Mixture([gj.Normal(), gj.Pareto(0.8)], [0.99, 0.01]).mean()) == math.inf
    assert math.isnan(float(gj.Mixture([gj.Normal(), gj.StudentT(1.0)]).mean()))
    assert float(gj.Mixture([gj.Levy(), gj.Pareto(0.5)]).mean()) == math.inf
    with pytest.raises(ValueError, match="finite mean"):
        gj.conditional_value(gj.Mixture([gj.Normal(), gj.Pareto(0.8)]), gj.Normal(), 1.0)


@pytest.mark.slow
def test_float32():
    """Thresholds in float32: the weights follow (cast with every other parameter)."""
    value, error, row = _pair("normal/mix_pareto")
    case = row["cases"][3]
    got = gj.conditional_value(value, error, np.float32([case["t"]]))
    assert got.dtype == np.float32
    assert float(got[0]) == pytest.approx(case["conditional_value"], rel=1e-5)
    assert error.sample(jax.random.key(2), (3, 4), jnp.float32).dtype == jnp.float32


def test_pytree():
    leaves, tree = jax.tree_util.tree_flatten(NESTED)
    assert len(leaves) == 2 + 2 + 1 + 2 + 1  # two normals, inner weights, Pareto, outer weights
    assert jax.tree_util.tree_unflatten(tree, leaves) == NESTED
    f = jax.jit(lambda d, x: d.log_prob(x))
    assert float(f(NESTED, 1.0)) == pytest.approx(float(NESTED.log_prob(1.0)), rel=1e-15)


@pytest.mark.parametrize("args, match", [
    (([gj.Normal(), gj.Normal()], [0.5, -0.5]), "weights must be positive finite"),
    (([gj.Normal(), gj.Normal()], [0.5, float("nan")]), "weights must be positive finite"),
    (([gj.Normal(), gj.Normal()], [0.5, float("inf")]), "weights must be positive finite"),
    (([gj.Normal(), gj.Normal()], [0.5, 0.0]), "weights must be positive finite"),
    (([gj.Normal(), gj.Normal()], [1.0]), "weights .* one per component"),
    (([gj.Normal()], [[1.0]]), "weights"),
    (([gj.Normal()], "heavy"), "weights"),
    (([], None), "components must hold at least one"),
    ((gj.Normal(), None), "components must be a non-empty list"),
    (([gj.Normal(), 3.0], None), "components must be goodhart_jax distributions; component 1"),
    (([gj.Normal(), "normal"], None), "components must be goodhart_jax distributions"),
    (([gj.Normal(jnp.float32(0.0), jnp.float32(1.0)), gj.Normal(jnp.float64(0.0), 1.0)], None),
     "components must have parameters of one float dtype"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        gj.Mixture(*args)


@pytest.mark.parametrize("spec, match", [
    ("mixture()", "components must hold at least one"),
    ("mixture(0.5*normal, -0.5*normal)", "weights must be positive finite"),
    ("mixture(0.5*normal, normal)", "every component or for none"),
    ("mixture(normal, student_t(3), weights=[1])", "one per component"),
    ("mixture(normal, 0.5*normal, weights=[1, 1])", "not both"),
    ("mixture(0.5*foo, 0.5*normal)", "unknown distribution 'foo'"),
    ("mixture(normal*student_t)", "not weight\\*law"),
    ("mixture(0.5 * 3)", "malformed"),
    ("mixture(normal, scale=2)", "weights=\\[...\\]"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        gj.parse_dist(spec)


def test_command_line_rejects_a_bad_mixture(capsys):
    code = cli.main(["condition", "--value", "normal", "--error",
                     "mixture(0.5*normal, -0.5*pareto(alpha=1.5))", "--threshold", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "weights must be positive finite" in err
