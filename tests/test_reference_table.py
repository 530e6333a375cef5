"""Exact conditioning against the independent mpmath table in tests/reference/conditioning.json.

The table (made by tests/reference/make_conditioning.py, mpmath only, 20 digits, each value
cross-checked at 28 digits; worst disagreement 5e-18) covers every pairing of value in {normal, t, gennorm, exponential,
lognormal, pareto} with error in all seven families, plus scale mismatches, at thresholds
from the bulk to P(U >= t) = 1e-300.

Accuracy asked: relative error <= 1e-8 in float64 and <= 1e-4 in float32.  Where the exact
answer is 0 (E[V | U = 0] for symmetric pairs) relative error is undefined; there the error is
measured against V's scale: 1e-12 x its width, the rounding level of a signed sum of ~1,000
quadrature terms of size ~1 (1,000 x 1e-16 x a condition number of ~10).
"""

import json
from collections import defaultdict
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import goodhart_jax as gj

# Each pairing costs a compilation or three: the default run checks a few of the hardest
# (heavy error at far thresholds, heavy against heavy, a cusped error, a bounded error with a
# jump), the rest run under the slow marker (`python -m pytest -m slow`).
DEFAULT = {
    ("normal(0, 1)", "student_t(df=3)"),
    ("student_t(df=3)", "levy(scale=1)"),
    ("gennorm(p=0.5)", "gennorm(p=0.7, scale=0.5)"),
    ("pareto(alpha=2.5)", "lognormal(sigma=1)"),
    ("exponential(rate=1)", "exponential(rate=0.5)"),
}


def _params(groups, default=DEFAULT):
    return [pytest.param(p, r, id=f"{p[0]}|{p[1]}",
                         marks=() if p in default else pytest.mark.slow) for p, r in groups]

TABLE = json.loads((Path(__file__).parent / "reference" / "conditioning.json").read_text())


def _groups(rows):
    out = defaultdict(list)
    for r in rows:
        out[(r["value"], r["error"])].append(r)
    return sorted(out.items())


# six Levy-error thresholds at P = 1e-300 lie beyond float64 (t ~ 6e599): not testable here
CASES = _groups([r for r in TABLE["cases"] if r.get("t_is_float64", True)])
GIVEN = _groups(TABLE["given_proxy"])


def _floor(value_spec: str, dtype_eps: float) -> float:
    return dtype_eps * float(gj.parse_dist(value_spec).bulk()[1])


def _check(got, ref, rel, floor, what, ts):
    got, ref = np.asarray(got, float), np.asarray(ref, float)
    err = np.abs(got - ref)
    tol = rel * np.abs(ref) + floor
    bad = ~(err <= tol)
    assert not bad.any(), [
        (what, float(t), float(g), float(r), float(e / max(abs(r), 1e-300)))
        for t, g, r, e in zip(np.asarray(ts)[bad], got[bad], ref[bad], err[bad])
    ][:5]


@pytest.mark.parametrize("pair,rows", _params(CASES))
def test_tail_float64(pair, rows):
    value, error = pair
    t = jnp.asarray([float(r["t"]) for r in rows], dtype=jnp.float64)
    got = gj.conditional_value(value, error, t)
    _check(got, [float(r["conditional_value"]) for r in rows], 1e-8, _floor(value, 1e-15),
           "E[V|U>=t]", t)
    logp = gj.log_tail_prob(value, error, t)
    ref = np.array([float(r["log_tail_prob"]) for r in rows])
    # log P: relative 1e-8 of max(|log P|, 1), i.e. P itself to ~1e-8 relative near P = 1
    _check(logp, ref, 1e-8, 1e-8, "log P", t)


@pytest.mark.parametrize("pair,rows", _params(GIVEN))
def test_given_proxy_float64(pair, rows):
    value, error = pair
    u = jnp.asarray([float(r["u"]) for r in rows], dtype=jnp.float64)
    got = gj.value_given_proxy(value, error, u)
    _check(got, [float(r["value_given_proxy"]) for r in rows], 1e-8, _floor(value, 1e-12),
           "E[V|U=u]", u)


def _float32_rows(rows):
    # representable in float32, and away from float32's own rounding of t near 0
    return [r for r in rows if abs(float(r["t"])) < 1e30 and float(r["log_tail_prob"]) > -80]


F32 = [(p, _float32_rows(r)) for p, r in CASES if _float32_rows(r)]


@pytest.mark.parametrize("pair,rows", _params(F32, {("normal(0, 1)", "student_t(df=3)"),
                                                     ("student_t(df=3)", "levy(scale=1)")}))
def test_tail_float32(pair, rows):
    value, error = pair
    t = np.array([float(r["t"]) for r in rows], dtype=np.float32)
    got = gj.conditional_value(value, error, jnp.asarray(t))
    assert got.dtype == jnp.float32
    # the reference at the float32-rounded threshold differs from the table's t by at most
    # |dE/dt| * |dt|; tables give t to 20 digits, so compare at thresholds exact in float32
    exact = np.array([float(r["t"]) for r in rows]) == t.astype(np.float64)
    ref = np.array([float(r["conditional_value"]) for r in rows])
    if exact.any():
        _check(np.asarray(got)[exact], ref[exact], 1e-4, _floor(value, 1e-6), "E[V|U>=t] f32", t[exact])
    # all thresholds: against float64 at the same (rounded) thresholds, whose accuracy the
    # float64 test establishes
    ref64 = gj.conditional_value(value, error, jnp.asarray(t, dtype=jnp.float64))
    _check(got, ref64, 1e-4, _floor(value, 1e-6), "E[V|U>=t] f32 vs f64", t)
