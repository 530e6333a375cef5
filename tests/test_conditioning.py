"""Exact and sampled conditioning against independent numbers.

References: the published check values of the issue tracker, closed forms evaluated with
mpmath at 50 digits (normal/normal, normal value with exponential error), and the mpmath table
in tests/reference/ (see test_reference_table.py).
"""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import goodhart_jax as gj
from tests.test_distributions import ref_pdf_fn, ref_sf_cdf

mp.mp.dps = 50


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.max(np.abs(a / b - 1.0))


# --- published check values -------------------------------------------------------------------

def test_public_check_values_t3():
    t = jnp.array([2.0, 5.0, 10.0, 20.0, 50.0])
    got = np.asarray(gj.conditional_value(gj.Normal(), gj.StudentT(3.0), t))
    given = ["0.91484599", "0.62876465", "0.30475114", "0.15059937", "0.060038396"]
    for g, s in zip(got, given):
        half_ulp = 0.5 * 10.0 ** -len(s.split(".")[1])
        assert abs(g - float(s)) <= half_ulp * 1.01, (g, s)


def test_public_check_values_normal():
    got = np.asarray(gj.conditional_value(gj.Normal(), gj.Normal(0.0, 2.0), jnp.array([10.0, 50.0])))
    assert abs(got[0] - 2.09186068809) <= 0.5e-11 * 1.01
    assert abs(got[1] - 10.0199207884) <= 0.5e-10 * 1.01


# --- closed forms ------------------------------------------------------------------------------

def _normal_closed(sv, sx, t):
    su = mp.sqrt(mp.mpf(sv) ** 2 + mp.mpf(sx) ** 2)
    a = mp.mpf(t) / su
    logsf = mp.log(mp.erfc(a / mp.sqrt(2)) / 2)
    phi = mp.exp(-a * a / 2) / mp.sqrt(2 * mp.pi)
    return float(mp.mpf(sv) ** 2 / su * phi / mp.exp(logsf)), float(logsf)


# thresholds from the bulk to P(U >= t) ~ 1e-300 (a = t / s_U up to 37)
@pytest.mark.parametrize("sv,sx", [(1.0, 2.0), (1.0, 0.01), (3.0, 0.5), (1.0, 100.0)])
def test_normal_normal_closed_form(sv, sx):
    su = float(np.hypot(sv, sx))
    t = su * np.array([-5.0, 0.0, 1.0, 3.0, 8.0, 15.0, 25.0, 37.0])
    got = gj.conditional_value(gj.Normal(0.0, sv), gj.Normal(0.0, sx), t)
    logp = gj.log_tail_prob(gj.Normal(0.0, sv), gj.Normal(0.0, sx), t)
    ref = [_normal_closed(sv, sx, ti) for ti in t]
    assert _rel(got, [r[0] for r in ref]) < 1e-8  # the acceptance figure
    assert _rel(logp[1:], [r[1] for r in ref][1:]) < 1e-9
    assert abs(float(logp[0]) - ref[0][1]) < 1e-12  # log P ~ -3e-7 at t = -5 s_U


def _normal_exp_closed(mu, s, lam, t):
    """E[V | V + X >= t] and log P for V ~ N(mu, s^2), X ~ Exp(lam), in mpmath."""
    mu, s, lam, t = (mp.mpf(v) for v in (mu, s, lam, t))
    Phi = lambda z: mp.erfc(-z / mp.sqrt(2)) / 2  # noqa: E731
    phi = lambda z: mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)  # noqa: E731
    z = (t - mu) / s
    m2 = mu + lam * s * s
    z2 = (t - m2) / s
    tilt = mp.exp(-lam * (t - mu) + lam * lam * s * s / 2)
    p = (1 - Phi(z)) + tilt * Phi(z2)
    num = (mu * (1 - Phi(z)) + s * phi(z)) + tilt * (m2 * Phi(z2) - s * phi(z2))
    return float(num / p), float(mp.log(p))


@pytest.mark.parametrize("mu,s,lam", [(0.0, 1.0, 1.0), (1.0, 2.0, 0.5), (0.0, 0.1, 5.0)])
def test_normal_value_exponential_error_closed_form(mu, s, lam):
    t = np.array([-3.0, 0.0, 2.0, 10.0, 50.0, 300.0, 600.0 / lam])
    got = gj.conditional_value(gj.Normal(mu, s), gj.Exponential(lam), t)
    logp = gj.log_tail_prob(gj.Normal(mu, s), gj.Exponential(lam), t)
    ref = [_normal_exp_closed(mu, s, lam, ti) for ti in t]
    assert _rel(got, [r[0] for r in ref]) < 1e-8  # the acceptance figure
    assert np.max(np.abs(np.asarray(logp) - [r[1] for r in ref]) / np.maximum(1.0, np.abs([r[1] for r in ref]))) < 1e-10
    # the finite limit of Kwa et al. 2024: mu + lambda s^2
    assert abs(float(got[-1]) - (mu + lam * s * s)) < 1e-6 * max(1.0, abs(mu + lam * s * s))


def _gennorm_exp_mpmath(p, loc, t):
    """E[V | V + X >= t] and log P for V ~ gennorm(p, loc, 1), X ~ Exp(1), by mpmath quad."""
    p, loc, t = mp.mpf(p), mp.mpf(loc), mp.mpf(t)
    f = lambda v: p / (2 * mp.gamma(1 / p)) * mp.exp(-abs(v - loc) ** p)  # noqa: E731
    sx = lambda v: mp.exp(min(v - t, 0))  # S_X(t - v)  # noqa: E731
    pts = sorted({loc, t})
    breaks = [-mp.inf, pts[0] - 100, pts[0] - 10, pts[0] - 1, *pts, pts[-1] + 1, pts[-1] + 10,
              pts[-1] + 100, pts[-1] + 1000, mp.inf]
    prob = mp.quad(lambda v: f(v) * sx(v), breaks)
    num = mp.quad(lambda v: v * f(v) * sx(v), breaks)
    return float(num / prob), float(mp.log(prob))


# A cusped V (gennorm p < 1) whose centre sits just above X's lower edge t - lo_X: under jit the
# saddle's curvature there is ~|z|^-1.5, and a width taken from it alone once cost 2.8e-6
# (hypothesis found loc = 7.85e-156 at t = 0).
@pytest.mark.parametrize("loc,t", [(0.0, 0.0), (7.85198668343711e-156, 0.0), (1e-100, 0.0),
                                   (1e-20, 0.0), (1e-3, 0.0), (0.0, 1e-100), (0.0, -1e-20),
                                   (2.0, 2.0 - 1e-50)])
def test_cusped_value_centred_at_the_error_edge(loc, t):
    value, error = gj.GenNormal(p=0.5, loc=loc, scale=1.0), gj.Exponential(1.0)
    ref_v, ref_lp = _gennorm_exp_mpmath(0.5, loc, t)
    got = gj.conditional_value(value, error, jnp.asarray([t, t]))  # jitted and vmapped
    logp = gj.log_tail_prob(value, error, t)
    assert _rel(got, ref_v) < 1e-8
    assert abs(float(logp) - ref_lp) < 1e-10 * max(1.0, abs(ref_lp))


# A narrow error near a wide value's centre (or the reverse), at thresholds within a few of the
# narrow widths: the narrow structure reaches into the wide anchor's sides.  Before anchors took
# their neighbours' widths this cost 7e-4 (ratio 1e4), 6e-5 (1e3) and 1.4e-7 (1e2) in E, and
# E[V | U = u] was off by 8e-3 of its value at ratio 100.
@pytest.mark.parametrize("sv,sx", [(1.0, 1e-3), (1.0, 1e-2), (1.0, 1e2), (1.0, 1e3), (1e-3, 1.0)])
def test_scale_mismatch_near_the_narrow_scale(sv, sx):
    su, s = float(np.hypot(sv, sx)), min(sv, sx)
    t = s * np.array([-10.0, -3.0, -1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0, 3.0, 10.0, 100.0])
    value, error = gj.Normal(0.0, sv), gj.Normal(0.0, sx)
    ref = [_normal_closed(sv, sx, ti) for ti in t]
    assert _rel(gj.conditional_value(value, error, t), [r[0] for r in ref]) < 1e-8
    assert _rel(gj.log_tail_prob(value, error, t), [r[1] for r in ref]) < 1e-9
    u = s * np.array([-30.0, -3.0, -1.0, -0.3, 0.3, 1.0, 3.0, 30.0])
    got = np.asarray(gj.value_given_proxy(value, error, u))
    exact = u * sv**2 / su**2
    # the reference table's convention: 1e-8 relative, plus 1e-12 of V's width
    assert np.all(np.abs(got - exact) <= 1e-8 * np.abs(exact) + 1e-12 * sv)


# (family, parameters, width) of each spec, for the mpmath helpers of test_distributions
_MP = {
    "normal(0, 1)": ("normal", (0.0, 1.0), 1.0),
    "normal(0, 0.001)": ("normal", (0.0, 1e-3), 1e-3),
    "normal(0, 1000)": ("normal", (0.0, 1e3), 1e3),
    "student_t(df=3)": ("student_t", (3.0, 0.0, 1.0), 1.0),
    "student_t(df=1.5)": ("student_t", (1.5, 0.0, 1.0), 1.0),
    "student_t(df=30, scale=2)": ("student_t", (30.0, 0.0, 2.0), 2.0),
    "student_t(df=4, scale=1000)": ("student_t", (4.0, 0.0, 1e3), 1e3),
    "student_t(df=0.5, scale=0.01)": ("student_t", (0.5, 0.0, 1e-2), 1e-2),
}


def _conditional_value_mp(value, error, t):
    """E[V | V + X >= t] = int v f_V(v) S_X(t - v) dv / int f_V(v) S_X(t - v) dv, mpmath quad
    with break points at both scales (30 digits)."""
    with mp.workdps(30):
        v_name, v_par, sv = _MP[value]
        x_name, x_par, sx = _MP[error]
        f = ref_pdf_fn(v_name, v_par)

        def sf(x):
            return ref_sf_cdf(x_name, x_par, x)[0]

        t = mp.mpf(t)
        pts = {mp.mpf(0), t} | {t + k * sx for k in (-40, -10, -3, -1, 1, 3, 10, 40)}
        pts |= {k * sv for k in (-100, -10, -3, -1, 1, 3, 10, 100)}
        pts = [-mp.inf, *sorted(pts), mp.inf]
        den = mp.quad(lambda v: f(v) * sf(t - v), pts)
        num = mp.quad(lambda v: v * f(v) * sf(t - v), pts)
        return float(num / den)


@pytest.mark.parametrize("value,error,t", [
    ("normal(0, 1)", "student_t(df=4, scale=1000)", -0.316),  # was 2.7e-5 off
    ("student_t(df=3)", "normal(0, 0.001)", 0.001),  # was 7.2e-6 off
    ("student_t(df=3)", "normal(0, 1000)", -0.001),  # was 5.5e-7 off
    ("student_t(df=30, scale=2)", "student_t(df=4, scale=1000)", -1.0),  # was 3.2e-7 off
    ("student_t(df=30, scale=2)", "student_t(df=0.5, scale=0.01)", 0.001),  # was 1.1e-8 off
    ("student_t(df=1.5)", "student_t(df=4, scale=1000)", -3.16),
    ("student_t(df=1.5)", "normal(0, 1000)", -0.001),
])
def test_scale_mismatch_against_mpmath(value, error, t):
    got = float(gj.conditional_value(value, error, t))
    assert abs(got / _conditional_value_mp(value, error, t) - 1.0) < 1e-8


def test_value_given_proxy_closed_forms():
    u = np.array([-10.0, -1.0, 0.0, 2.0, 30.0, 80.0])
    got = gj.value_given_proxy(gj.Normal(0.0, 1.0), gj.Normal(0.0, 2.0), u)
    assert np.max(np.abs(np.asarray(got) - u / 5.0)) < 1e-12 * 80
    # V ~ N(0, s^2), X ~ Exp(lam): V | U = u is N(lam s^2, s^2) truncated above at u
    s, lam = 1.5, 0.7
    m2 = lam * s * s
    ref = []
    for ui in u:
        b = (mp.mpf(ui) - m2) / s
        Phi = mp.erfc(-b / mp.sqrt(2)) / 2
        ref.append(float(m2 - s * mp.exp(-b * b / 2) / mp.sqrt(2 * mp.pi) / Phi))
    got = gj.value_given_proxy(gj.Normal(0.0, s), gj.Exponential(lam), u)
    assert _rel(got, ref) < 1e-9


def test_float32_accuracy():
    t = jnp.array([0.0, 2.0, 5.0, 10.0, 20.0], dtype=jnp.float32)
    got = gj.conditional_value(gj.Normal(), gj.Normal(0.0, 2.0), t)
    assert got.dtype == jnp.float32
    ref = [_normal_closed(1.0, 2.0, float(ti))[0] for ti in t]
    assert _rel(got, ref) < 1e-4
    got = gj.conditional_value(gj.Normal(), gj.StudentT(3.0), t[1:])
    assert _rel(got, [0.91484599, 0.62876465, 0.30475114, 0.15059937]) < 1e-4


# --- the one-pass log-sum-exp of the tail integrals -------------------------------------------

def _mp_lse(a):
    return float(mp.log(mp.fsum(mp.exp(mp.mpf(float(v))) for v in a if np.isfinite(v))))


# gap: how far the largest term lies above the reference (the largest term at the panels'
# middle nodes, which is <= it); the documented window is 986 nats (float64), 116 (float32).
# The exponent a - shift (up to ~200 in float32) carries its own rounding, ~1e-5 in float32:
# a tenth of float32's 1e-4 target; in float64 it is ~1e-13.
@pytest.mark.parametrize("dtype,gaps,tol", [(jnp.float64, [0.0, 30.0, 400.0, 900.0], 1e-13),
                                            (jnp.float32, [0.0, 10.0, 40.0, 100.0], 1e-5)])
def test_one_pass_log_sum_exp_against_mpmath(dtype, gaps, tol):
    from goodhart_jax.conditioning import _LIFT, _lse_one_pass, _lse_one_pass_pair

    rng = np.random.default_rng(0)
    lift = _LIFT * float(np.log(np.finfo(dtype).max))
    for gap in gaps:
        for top in [-1e4, -700.0, 0.0, 650.0]:
            # 760 terms: a peak at `top`, a spread 60 nats below it, dead terms and -inf
            a = top - np.concatenate([[0.0], rng.uniform(0.0, 60.0, 600), rng.uniform(1e3, 1e5, 150),
                                      np.full(9, np.inf)])
            ref = top - gap
            got = float(_lse_one_pass(jnp.asarray(a, dtype), jnp.asarray(ref + lift, dtype)))
            want = _mp_lse(a.astype(dtype))
            assert abs(got - want) <= tol * max(1.0, abs(want)), (gap, top, got, want)
            # the pair: the same terms split over complementary nodes, each with its own shift
            in_a = rng.uniform(size=a.size) < 0.5
            in_a[0] = True
            b_terms = np.where(in_a, -np.inf, a)
            got_a, got_b = _lse_one_pass_pair(jnp.asarray(np.where(in_a, a, -np.inf), dtype),
                                              jnp.asarray(b_terms, dtype), jnp.asarray(in_a),
                                              jnp.asarray(ref + lift, dtype),
                                              jnp.asarray(ref - 5.0 + lift, dtype))
            assert abs(float(got_a) - _mp_lse(np.where(in_a, a, -np.inf).astype(dtype))) \
                <= tol * max(1.0, abs(want))
            assert abs(float(got_b) - _mp_lse(b_terms.astype(dtype))) <= tol * max(1.0, abs(want))
    # no terms at all: log 0
    empty = jnp.full(10, -jnp.inf, dtype)
    assert float(_lse_one_pass(empty, jnp.asarray(lift, dtype))) == -np.inf


# --- transformations ---------------------------------------------------------------------------

def test_vmapped_thousand_thresholds_in_one_call():
    t = jnp.linspace(0.0, 100.0, 1000)
    f = jax.jit(lambda t: gj.conditional_value(gj.Normal(), gj.StudentT(3.0), t))
    out = f(t)
    assert out.shape == (1000,) and bool(jnp.all(jnp.isfinite(out)))
    # thresholds run in batches (1,000 is not a multiple of the batch): every one of them, and
    # its derivative, against the normal closed form; a (2, 500) array keeps its shape
    sv, sx = 1.0, 2.0
    su = float(np.hypot(sv, sx))
    t = jnp.linspace(-3.0, 35.0, 1000) * su
    normal = (gj.Normal(0.0, sv), gj.Normal(0.0, sx))
    got = gj.conditional_value(*normal, t.reshape(2, 500))
    assert got.shape == (2, 500)
    assert _rel(got.reshape(-1), [_normal_closed(sv, sx, float(ti))[0] for ti in t]) < 1e-9
    slope = jax.grad(lambda t: jnp.sum(gj.conditional_value(*normal, t)))(t)
    for i in [0, 63, 64, 500, 999]:  # either side of a batch boundary, and the last
        a = mp.mpf(float(t[i])) / su
        lam = mp.exp(-a * a / 2) / mp.sqrt(2 * mp.pi) / (mp.erfc(a / mp.sqrt(2)) / 2)
        assert abs(float(slope[i]) / float(sv**2 / su**2 * lam * (lam - a)) - 1.0) < 1e-7
    # grid over a second axis through jax.vmap over the distributions' parameters
    scales = jnp.array([0.5, 1.0, 2.0])
    g = jax.vmap(lambda s: gj.conditional_value(gj.Normal(0.0, s), gj.StudentT(3.0), t[:10]))(scales)
    assert g.shape == (3, 10)


def test_gradient_in_t_matches_closed_form():
    # normal/normal: d/dt E[V | U >= t] = (s_V^2/s_U^2) * d/da [phi(a)/(1-Phi(a))]
    sv, sx = 1.0, 2.0
    su = np.hypot(sv, sx)
    for t in [0.0, 3.0, 20.0, 60.0]:
        a = mp.mpf(t) / su
        lam = mp.exp(-a * a / 2) / mp.sqrt(2 * mp.pi) / (mp.erfc(a / mp.sqrt(2)) / 2)
        ref = float(sv**2 / su**2 * lam * (lam - a))
        got = float(jax.grad(lambda t: gj.conditional_value(gj.Normal(0.0, sv), gj.Normal(0.0, sx), t))(t))
        assert abs(got / ref - 1.0) < 1e-7, (t, got, ref)
        # d/dt log P = -f_U(t) / P(U >= t) = -lam / s_U
        got = float(jax.grad(lambda t: gj.log_tail_prob(gj.Normal(0.0, sv), gj.Normal(0.0, sx), t))(t))
        assert abs(got / float(-lam / su) - 1.0) < 1e-8


@pytest.mark.parametrize("value,error,param", [
    ("normal(0, 1)", "student_t(df=3)", "df"),
    ("student_t(df=4)", "normal(0, 2)", "scale"),
    ("pareto(alpha=2.5)", "lognormal(sigma=1)", "sigma"),
    ("exponential(rate=1)", "gennorm(p=0.7)", "p"),
])
def test_gradient_in_parameters_matches_finite_differences(value, error, param):
    V, X = gj.parse_dist(value), gj.parse_dist(error)
    t = 7.0

    def f(theta):
        kw = {p: getattr(X, p) for p in X.parameters}
        kw[param] = theta
        return gj.conditional_value(V, type(X)(**kw), t)

    theta = float(getattr(X, param))
    g = float(jax.grad(f)(theta))
    h = 1e-5 * theta
    fd = float((f(theta + h) - f(theta - h)) / (2 * h))
    assert np.isfinite(g) and abs(g - fd) <= 1e-5 * max(abs(fd), 1e-3)


# --- sampled estimators ------------------------------------------------------------------------

PAIRS = [
    ("normal(0, 1)", "student_t(df=3)", [1.0, 5.0, 20.0]),
    ("student_t(df=3)", "normal(0, 1)", [1.0, 5.0, 20.0]),
    ("pareto(alpha=2.5)", "lognormal(sigma=1)", [3.0, 20.0, 200.0]),
    ("exponential(rate=1)", "exponential(rate=0.5)", [1.0, 5.0, 15.0]),
    ("gennorm(p=0.5)", "levy(scale=1)", [2.0, 10.0, 50.0]),
]


@pytest.mark.parametrize("method", ["mc", "cmc"])
@pytest.mark.parametrize("value,error,t", PAIRS)
def test_sampled_agrees_with_exact(value, error, t, method):
    V, X = gj.parse_dist(value), gj.parse_dist(error)
    t = jnp.array(t)
    exact = np.asarray(gj.conditional_value(V, X, t))
    est = gj.sample_conditional_value(jax.random.key(7), V, X, t, num_samples=400_000, method=method)
    z = (np.asarray(est.mean) - exact) / np.asarray(est.stderr)
    ok = np.asarray(est.count) > 50  # mc needs accepted draws to say anything
    assert ok[0]
    assert np.all(np.abs(z[ok]) < 4.0), z


@pytest.mark.parametrize("method", ["mc", "cmc"])
def test_standard_errors_are_honest(method):
    """Coverage over repeated seeds: about 95% of 2-se intervals hold the exact value."""
    V, X = gj.Normal(), gj.StudentT(3.0)
    t = jnp.array([1.0, 3.0])
    exact = np.asarray(gj.conditional_value(V, X, t))
    keys = jax.random.split(jax.random.key(3), 200)
    est = jax.vmap(lambda k: gj.sample_conditional_value(k, V, X, t, num_samples=4000, method=method,
                                                         chunk_size=4000))(keys)
    inside = np.abs(np.asarray(est.mean) - exact) <= 2.0 * np.asarray(est.stderr)
    cover = inside.mean(axis=0)
    # 200 trials: binomial sd of the coverage is ~1.5%; 0.89..0.99 is a 4-sd band around 0.95
    assert np.all((cover > 0.89) & (cover < 0.995)), cover


def test_chunking_does_not_change_mc_draws():
    V, X = gj.Normal(), gj.Normal()
    a = gj.sample_conditional_value(jax.random.key(1), V, X, 1.0, num_samples=10_000, chunk_size=1000)
    b = gj.sample_conditional_value(jax.random.key(1), V, X, 1.0, num_samples=10_001, chunk_size=1000)
    # the extra draw lands in a new chunk: the first 10,000 draws are shared
    assert abs(int(b.count) - int(a.count)) <= 1


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("t", [float("nan"), float("inf"), [1.0, float("nan")]])
def test_bad_threshold(t):
    with pytest.raises(ValueError, match="t must be"):
        gj.conditional_value(gj.Normal(), gj.Normal(), t)
    with pytest.raises(ValueError, match="t must be"):
        gj.log_tail_prob(gj.Normal(), gj.Normal(), t)


def test_bad_arguments():
    with pytest.raises(ValueError, match="finite mean"):
        gj.conditional_value(gj.Levy(), gj.Normal(), 1.0)
    with pytest.raises(ValueError, match="method"):
        gj.sample_conditional_value(jax.random.key(0), gj.Normal(), gj.Normal(), 1.0, num_samples=10, method="x")
    with pytest.raises(ValueError, match="num_samples"):
        gj.sample_conditional_value(jax.random.key(0), gj.Normal(), gj.Normal(), 1.0, num_samples=0)
    with pytest.raises(ValueError, match="unknown distribution"):
        gj.conditional_value("nromal", gj.Normal(), 1.0)


# --- command line ------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "goodhart_jax.cli", *args], capture_output=True, text=True)


def test_cli_condition_json():
    out = _cli("condition", "--value", "normal(0, 1)", "--error", "student_t(df=3)",
               "--threshold", "2,10", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["rows"]
    assert abs(rows[0]["conditional_value"] - 0.91484599) < 1e-8
    assert abs(rows[1]["conditional_value"] - 0.30475114) < 1e-8
    assert rows[1]["bits"] > 0


@pytest.mark.parametrize("args,word", [
    (["condition", "--value", "normal(0, -1)", "--error", "normal", "--threshold", "1"], "scale"),
    (["condition", "--value", "student_t(df=0)", "--error", "normal", "--threshold", "1"], "df"),
    (["condition", "--value", "normal", "--error", "pareto(alpha=-1)", "--threshold", "1"], "alpha"),
    (["condition", "--value", "normal", "--error", "gennorm(p=0)", "--threshold", "1"], "p"),
    (["condition", "--value", "normal", "--error", "bogus(1)", "--threshold", "1"], "unknown distribution"),
    (["condition", "--value", "normal(", "--error", "normal", "--threshold", "1"], "malformed"),
    (["condition", "--value", "normal", "--error", "normal", "--threshold", "nan"], "t must be"),
    (["condition", "--value", "normal", "--error", "normal", "--threshold", "abc"], "threshold"),
    (["condition", "--value", "normal", "--error", "normal", "--threshold", "1,,2"], "empty item"),
    (["condition", "--value", "normal", "--error", "normal", "--threshold", "1,"], "empty item"),
    (["run", "no_such_experiment"], "experiment must be one of"),
])
def test_cli_bad_input_one_line_exit_2(args, word):
    out = _cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], out.stderr
    assert "Traceback" not in out.stderr
