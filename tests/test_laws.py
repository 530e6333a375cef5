"""Exact conditioning with generalized Pareto laws, as value and as error, against mpmath.

References: ``tests/reference/laws.json``, made by ``tests/reference/make_laws.py`` (mpmath
only).  Measures: ``log P(U >= t)`` relative to ``max(|log P|, 1)``; ``E[V | U >= t] - E[V]``
(from :func:`goodhart_jax.log_value_excess`, so a catastrophic pair keeps its relative
accuracy) relative; ``E[V | U >= t]`` relative to ``max(|E|, 1)``; ``E[V | U = u]`` relative to
``max(|E|, 1)`` and ``log f_U`` (in the proxy quadrature) through it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest

import goodhart_jax as gj

DATA = json.loads((Path(__file__).parent / "reference" / "laws.json").read_text())
PAIRS = {p["name"]: p for p in DATA["pairs"]}
TOL = 1e-9


def _law(spec):
    if spec[0] == "normal":
        return gj.Normal(spec[1], spec[2])
    return gj.GeneralizedPareto(spec[1], spec[2], spec[3])


# the default run: one pairing per kind (xi > 0 error, bounded value, uniform error, through
# xi = 0); the other four with -m slow
_QUICK_PAIRS = {"normal/genpareto(0.3)", "genpareto(-0.5)/normal", "normal/genpareto(-1)",
                "genpareto(1e-6)/genpareto(-1e-6)"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in _QUICK_PAIRS else pytest.mark.slow)
                                  for n in sorted(PAIRS)])
def test_tail_prob_and_conditional_value(name):
    pair = PAIRS[name]
    value, error = _law(pair["value"]), _law(pair["error"])
    t = np.array([float(c["t"]) for c in pair["cases"]])
    lp = np.asarray(gj.log_tail_prob(value, error, t))
    log_d, lp2 = (np.asarray(a) for a in gj.log_value_excess(value, error, t))
    cv = np.asarray(gj.conditional_value(value, error, t))
    for i, c in enumerate(pair["cases"]):
        ref_lp = float(c["log_tail_prob"])
        ref_ex = float(c["excess"])
        ref_cv = float(c["conditional_value"])
        assert abs(lp[i] - ref_lp) <= TOL * max(abs(ref_lp), 1.0), (t[i], lp[i], ref_lp)
        assert abs(lp2[i] - ref_lp) <= TOL * max(abs(ref_lp), 1.0), (t[i], lp2[i], ref_lp)
        # (an excess that is 0, where P = 1: the reference's own rounding, 1e-40, absolutely)
        assert abs(math.exp(log_d[i]) - ref_ex) <= TOL * abs(ref_ex) + 1e-30, (t[i], log_d[i], ref_ex)
        assert abs(cv[i] - ref_cv) <= TOL * max(abs(ref_cv), 1.0), (t[i], cv[i], ref_cv)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_value_given_proxy(name):
    pair = PAIRS[name]
    value, error = _law(pair["value"]), _law(pair["error"])
    cases = pair["given_proxy"]
    try:
        gj.conditioning.check_exact(value, error, proxy=True)
    except ValueError:
        pytest.skip("a density unbounded at its upper end: refused by value_given_proxy")
    u = np.array([float(c["u"]) for c in cases])
    got = np.asarray(gj.value_given_proxy(value, error, u))
    for i, c in enumerate(cases):
        ref = float(c["value_given_proxy"])
        assert abs(got[i] - ref) <= TOL * max(abs(ref), 1.0), (u[i], got[i], ref)


@pytest.mark.slow
@pytest.mark.parametrize("value, error", [("normal", "genpareto(0.3)"), ("normal", "genpareto(-0.3)"),
                                          ("genpareto(-0.5)", "normal"), ("normal", "genpareto(-1)")])
def test_best_of_n_against_monte_carlo(value, error):
    n = np.array([1.0, 4.0, 64.0])
    exact = np.asarray(gj.best_of_n_value(value, error, n))
    assert abs(exact[0] - float(gj.parse_dist(value).mean())) < 1e-9
    for k, nk in enumerate(n[1:], 1):
        est = gj.sample_best_of_n_value(jax.random.key(k), value, error, int(nk), num_draws=40_000)
        assert abs(exact[k] - float(est.mean)) < 5 * float(est.stderr), (nk, exact[k], est)


def test_gradients_through_a_bounded_error_and_value():
    """d/dt and d/dparams by autodiff against central differences (the uniform error's jump at
    its upper end moves with t: a Leibniz term)."""
    g_ = gj.GeneralizedPareto

    def check(f, x, h=1e-5):
        g = float(jax.grad(f)(x))
        fd = (float(f(x + h)) - float(f(x - h))) / (2 * h)
        assert abs(g - fd) < 1e-7 * max(1.0, abs(fd)), (g, fd)

    t = 3.0
    check(lambda s: gj.conditional_value(gj.Normal(), g_(-1.0, 2.0, -0.5), s), t)


@pytest.mark.slow
def test_more_gradients_through_bounded_laws():
    g_ = gj.GeneralizedPareto

    def check_xi(f, x, h=1e-5):
        g = float(jax.grad(f)(x))
        fd = (float(f(x + h)) - float(f(x - h))) / (2 * h)
        assert abs(g - fd) < 1e-7 * max(1.0, abs(fd)), (g, fd)

    # through xi = 0 (the exponential) and at a bounded value (xi = -0.5)
    check_xi(lambda xi: gj.conditional_value(gj.Normal(), g_(xi), 3.0), 0.0)
    check_xi(lambda xi: gj.conditional_value(g_(xi), gj.Normal(), 3.0), -0.5)

    def check(f, x, h=1e-5):
        g = float(jax.grad(f)(x))
        fd = (float(f(x + h)) - float(f(x - h))) / (2 * h)
        assert abs(g - fd) < 1e-7 * max(1.0, abs(fd)), (g, fd)

    for t in (0.5, 8.0):
        check(lambda s: gj.conditional_value(gj.Normal(), g_(-1.0, 2.0, -0.5), s), t)
        check(lambda s: gj.log_tail_prob(gj.Normal(), g_(-1.0, 2.0, -0.5), s), t)
        check(lambda xi: gj.conditional_value(gj.Normal(), g_(xi), t), 0.0)
        check(lambda xi: gj.conditional_value(gj.Normal(), g_(xi), t), -0.3)
        check(lambda xi: gj.conditional_value(g_(xi), gj.Normal(), t), -0.5)
        check(lambda s: gj.conditional_value(g_(-1.0, s), gj.Normal(), t), 1.0)
