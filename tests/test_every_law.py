"""Every law, through every function, as value and as error (issue: "everything accepts them").

Each law meets a standard normal partner.  References are independent of the code under test:

* ``P(U >= t)``, ``E[V | U >= t]`` and ``E[V | U = u]`` by SciPy's QUADPACK over the densities
  and survival functions of ``scipy.stats`` (a mixture: the weighted sum of its components';
  an :class:`~goodhart_jax.Empirical` law: its own ``log_prob`` / ``log_sf``, which its own
  tests check against the data -- here the question is whether the machinery accepts it);
* best-of-n by a NumPy Monte Carlo over ``scipy.stats`` draws (200,000 replicates);
* the regimes by the theorems (an exponential error bounds the excess at ``sigma^2 rate``).

The default run covers the new laws in one role each; every law in both roles with ``-m slow``
(each pairing compiles its own programs, 5-30 s).
"""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest
from scipy import integrate, stats

import goodhart_jax as gj
from goodhart_jax import cli
from tests.pool_checks import push_fixed_point


class Ref:
    """A law for the references: vectorised pdf / sf / cdf, draws, support and mean."""

    def __init__(self, parts, lo=-np.inf, hi=np.inf):
        self.parts = [(w / sum(w for w, _ in parts), d) for w, d in parts]
        self.lo, self.hi = lo, hi

    def pdf(self, x):
        return sum(w * d.pdf(x) for w, d in self.parts)

    def sf(self, x):
        return sum(w * d.sf(x) for w, d in self.parts)

    def cdf(self, x):
        return sum(w * d.cdf(x) for w, d in self.parts)

    def mean(self):
        return sum(w * d.mean() for w, d in self.parts)

    def rvs(self, rng, size):
        if len(self.parts) == 1:
            return self.parts[0][1].rvs(size=size, random_state=rng)
        which = rng.choice(len(self.parts), size=size, p=[w for w, _ in self.parts])
        out = np.empty(size)
        for i, (_, d) in enumerate(self.parts):
            m = which == i
            out[m] = d.rvs(size=int(m.sum()), random_state=rng)
        return out


def _one(d, lo=-np.inf, hi=np.inf):
    return Ref([(1.0, d)], lo, hi)


class _FromLaw:
    """``scipy.stats``-like view of a goodhart_jax law's own log_prob / log_sf / log_cdf."""

    def __init__(self, law):
        self.law = law
        # jitted once: QUADPACK calls these point by point
        self._pdf, self._sf, self._cdf = (
            jax.jit(lambda x, f=f: jax.numpy.exp(f(law, x)))
            for f in (type(law).log_prob, type(law).log_sf, type(law).log_cdf))

    def pdf(self, x):
        return float(self._pdf(float(x)))

    def sf(self, x):
        return float(self._sf(float(x)))

    def cdf(self, x):
        return float(self._cdf(float(x)))

    def mean(self):
        return float(self.law.mean())

    def rvs(self, size, random_state):
        key = jax.random.key(int(random_state.integers(2 ** 31)))
        return np.asarray(self.law.sample(key, (size,)))


def _empirical():
    draws = stats.t(3).rvs(size=200_000, random_state=np.random.default_rng(5))
    law = gj.Empirical.fit(draws)
    lo, hi = (float(a) for a in law.support())
    return law, Ref([(1.0, _FromLaw(law))], lo, hi)


# name -> (goodhart_jax law, reference); value-role laws need a finite mean
LAWS = {
    "normal": lambda: (gj.Normal(0.2, 1.1), _one(stats.norm(0.2, 1.1))),
    "student_t": lambda: (gj.StudentT(3.0), _one(stats.t(3.0))),
    "gennorm": lambda: (gj.GenNormal(0.8, 0.0, 0.7), _one(stats.gennorm(0.8, 0.0, 0.7))),
    "exponential": lambda: (gj.Exponential(1.5), _one(stats.expon(scale=1 / 1.5), lo=0.0)),
    "lognormal": lambda: (gj.LogNormal(0.5, -1.0), _one(stats.lognorm(0.5, -1.0), lo=-1.0)),
    "pareto": lambda: (gj.Pareto(2.5), _one(stats.pareto(2.5), lo=1.0)),
    "levy": lambda: (gj.Levy(0.5), _one(stats.levy(scale=0.5), lo=0.0)),
    "mixture": lambda: (gj.parse_dist("mixture(0.9 normal(0, 1), 0.1 student_t(df=2, scale=2))"),
                        Ref([(0.9, stats.norm()), (0.1, stats.t(2.0, scale=2.0))])),
    "genpareto+": lambda: (gj.GeneralizedPareto(0.3, 1.2, -0.5),
                           _one(stats.genpareto(0.3, -0.5, 1.2), lo=-0.5)),
    "genpareto0": lambda: (gj.GeneralizedPareto(0.0, 0.8),
                           _one(stats.genpareto(0.0, 0.0, 0.8), lo=0.0)),
    "genpareto-": lambda: (gj.GeneralizedPareto(-0.3, 1.5, 0.2),
                           _one(stats.genpareto(-0.3, 0.2, 1.5), lo=0.2, hi=0.2 + 1.5 / 0.3)),
    "empirical": _empirical,
}
NO_MEAN = {"levy"}
# the default run: the fitted law as the error (the generalized Pareto laws and the mixture are
# checked against mpmath in the default runs of tests/test_laws.py and tests/test_mixture.py);
# every other cell with -m slow
QUICK = {("empirical", "error")}
CELLS = [pytest.param(name, role, marks=() if (name, role) in QUICK else pytest.mark.slow,
                      id=f"{name}-as-{role}")
         for name in LAWS for role in ("value", "error") if not (role == "value" and name in NO_MEAN)]
SLOW_CELLS = [pytest.param(*p.values, marks=pytest.mark.slow, id=p.id) for p in CELLS]

_CACHE: dict = {}


def _pair(name, role):
    if name not in _CACHE:
        _CACHE[name] = LAWS[name]()
    law, ref = _CACHE[name]
    normal = (gj.Normal(), _one(stats.norm()))
    (v, rv), (x, rx) = ((law, ref), normal) if role == "value" else (normal, (law, ref))
    return v, x, rv, rx


def _quad(f, lo, hi, points):
    """``∫_lo^hi f`` by QUADPACK, split at ``points`` (finite pieces, then the infinite ends)."""
    cuts = sorted({p for p in points if lo < p < hi} | {lo, hi})
    total = 0.0
    for a, b in zip(cuts[:-1], cuts[1:]):
        if np.isinf(a) and np.isinf(b):
            raise AssertionError("need at least one finite cut")
        total += integrate.quad(f, a, b, epsabs=0.0, epsrel=1e-12, limit=400)[0]
    return total


def _cuts(rv, rx, s):
    """Where the integrands over ``v`` kink or peak: V's support ends, ``s`` minus X's, and a
    fine ladder around V's and X's centres (panels narrower than any peak here)."""
    pts = [rv.lo, rv.hi, s - rx.lo, s - rx.hi]
    grid = np.concatenate([np.linspace(-8, 8, 65), np.linspace(s - 8, s + 8, 65)])
    return [p for p in pts + list(grid) if np.isfinite(p)]


def reference_tail(rv, rx, t):
    """``P(V + X >= t)`` and ``E[V | V + X >= t]`` by quadrature over ``v`` (where ``t - v``
    passes X's upper end, ``S_X = 1``: a kink, one of the cuts)."""
    pts = _cuts(rv, rx, t)
    p = _quad(lambda v: rv.pdf(v) * rx.sf(t - v), rv.lo, rv.hi, pts)
    m = _quad(lambda v: v * rv.pdf(v) * rx.sf(t - v), rv.lo, rv.hi, pts)
    return p, m / p


def reference_given(rv, rx, u):
    """``E[V | V + X = u]`` by quadrature over ``v``."""
    lo, hi = max(rv.lo, u - rx.hi), min(rv.hi, u - rx.lo)
    pts = _cuts(rv, rx, u)
    num = _quad(lambda v: v * rv.pdf(v) * rx.pdf(u - v), lo, hi, pts)
    den = _quad(lambda v: rv.pdf(v) * rx.pdf(u - v), lo, hi, pts)
    return num / den


def reference_best_of_n(rv, rx, n, reps=200_000, seed=11):
    """Monte Carlo E[V] of the best of ``n`` draws of ``U`` (mean and standard error)."""
    rng = np.random.default_rng(seed)
    v = rv.rvs(rng, n * reps).reshape(reps, n)
    u = v + rx.rvs(rng, n * reps).reshape(reps, n)
    best = v[np.arange(reps), np.argmax(u, axis=1)]
    return best.mean(), best.std(ddof=1) / math.sqrt(reps)


T, N = 2.0, 8


def _exact_cells():
    return CELLS


@pytest.mark.parametrize("name, role", _exact_cells())
def test_exact_conditioning_matches_quadpack(name, role):
    v, x, rv, rx = _pair(name, role)
    p, cond = reference_tail(rv, rx, T)
    assert float(gj.log_tail_prob(v, x, T)) == pytest.approx(math.log(p), abs=1e-8)
    assert float(gj.conditional_value(v, x, T)) == pytest.approx(cond, rel=1e-7, abs=1e-9)
    ref_given = reference_given(rv, rx, T)
    assert float(gj.value_given_proxy(v, x, T)) == pytest.approx(ref_given, rel=1e-7, abs=1e-9)


def _bon_cells():
    return SLOW_CELLS


@pytest.mark.parametrize("name, role", _bon_cells())
def test_best_of_n_matches_monte_carlo(name, role):
    v, x, rv, rx = _pair(name, role)
    mean, se = reference_best_of_n(rv, rx, N)
    got = float(gj.best_of_n_value(v, x, N))
    assert abs(got - mean) < 4.5 * se, (got, mean, se)


@pytest.mark.parametrize("method", ["mc", "cmc"])
@pytest.mark.parametrize("name, role", CELLS)
def test_samplers_within_their_errors(name, role, method):
    v, x, rv, rx = _pair(name, role)
    _, cond = reference_tail(rv, rx, T)
    est = gj.sample_conditional_value(jax.random.key(3), v, x, T, num_samples=1 << 17,
                                      method=method)
    assert abs(float(est.mean) - cond) < 4.5 * float(est.stderr), (float(est.mean), cond)


@pytest.mark.parametrize("name, role", CELLS)
def test_pools_and_push(name, role):
    v, x, rv, rx = _pair(name, role)
    mean, se = reference_best_of_n(rv, rx, N)
    pool = gj.sample_pool(jax.random.key(4), v, x, 1 << 17)
    est = gj.best_of_n_pool(pool, N)
    assert abs(float(est.mean) - mean) < 4.5 * math.hypot(float(est.stderr), se)
    got, fixed_point, _ = push_fixed_point(pool, beta=2.0)
    assert abs(got - fixed_point) < 1e-6


# the regime of V ~ law, X ~ N(0, 1) (value) and of V ~ N(0, 1), X ~ law (error), by the
# theorems: a heavier V than X is unbounded; a heavy X catastrophic (Thm 5); a light X
# unbounded (Thm 6); an exponential X (rate r) bounded at E[V] + sigma_V^2 r
REGIMES = {
    ("normal", "error"): "unbounded", ("student_t", "error"): "catastrophic",
    ("gennorm", "error"): "catastrophic", ("exponential", "error"): "bounded",
    ("lognormal", "error"): "catastrophic", ("pareto", "error"): "catastrophic",
    ("levy", "error"): "catastrophic", ("mixture", "error"): "catastrophic",
    ("genpareto+", "error"): "catastrophic", ("genpareto0", "error"): "bounded",
    ("genpareto-", "error"): "unbounded", ("empirical", "error"): "catastrophic",
    ("student_t", "value"): "unbounded", ("pareto", "value"): "unbounded",
    ("lognormal", "value"): "unbounded", ("mixture", "value"): "unbounded",
    ("genpareto+", "value"): "unbounded", ("empirical", "value"): "unbounded",
}
BOUNDED_LIMITS = {("exponential", "error"): 1.5, ("genpareto0", "error"): 1 / 0.8}


@pytest.mark.parametrize("name, role", [pytest.param(*k, id=f"{k[0]}-as-{k[1]}") for k in REGIMES])
def test_predicted_regime(name, role):
    v, x, _, _ = _pair(name, role)
    p = gj.predicted_regime(v, x)
    assert p.regime == REGIMES[name, role], p
    if (name, role) in BOUNDED_LIMITS:
        assert p.limit == pytest.approx(BOUNDED_LIMITS[name, role], rel=1e-9)


SPECS = {
    "mixture": "mixture(0.9 normal(0, 1), 0.1 student_t(df=2, scale=2))",
    "genpareto+": "genpareto(xi=0.3, scale=1.2, loc=-0.5)",
    "genpareto-": "genpareto(-0.3, 1.5, 0.2)",
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n == "genpareto+" else pytest.mark.slow)
                                  for n in SPECS])
def test_command_line_accepts_the_spec(name, capsys):
    _, _, rv, rx = _pair(name, "error")
    code = cli.main(["condition", "--value", "normal", "--error", SPECS[name], "--threshold",
                     "2", "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    p, cond = reference_tail(rv, rx, 2.0)
    assert row["log_tail_prob"] == pytest.approx(math.log(p), abs=1e-8)
    assert row["conditional_value"] == pytest.approx(cond, rel=1e-7)
