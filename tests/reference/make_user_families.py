"""Independent references for tests/test_user_family.py: two laws the library does not have.

The logistic law (``S(x) = 1 / (1 + e^z)``) and the Gumbel maximum law (``F(x) = exp(-e^-z)``),
``z = (x - loc) / scale``, each paired with a built-in law (normal, Student t) or the other.

* ``log P(U >= t)``, ``E[V | U >= t]`` and ``E[V | U = u]`` (at ``u = t``) by mpmath (30 digits;
  40 for the Student t pairing), integrating over ``y = V`` with break points every 0.5 across
  ``+-60`` around 0 and around ``t`` (narrower than any peak of these integrands, whose widths
  are >= the smallest scale, 0.7), open to both infinities;
* ``E[V]`` of the best of ``n`` by proxy, ``E V + ∫ n F_U(u)^(n-1) h(u) du`` with
  ``h(u) = ∫ (v - E V) f_V(v) f_X(u - v) dv`` and ``F_U(u) = ∫ f_V(v) F_X(u - v) dv``, by SciPy's
  QUADPACK in float64 (relative tolerance 1e-12 inside, 1e-10 outside).

No goodhart_jax import.  Run: ``python tests/reference/make_user_families.py`` (about 5 minutes)
to rewrite ``user_families.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import mpmath as mp

OUT = Path(__file__).with_name("user_families.json")

# (name, value law, error law, thresholds, digits); a law is (family, loc, scale[, df])
PAIRS = [
    ("logistic/normal", ("logistic", 0.5, 1.5), ("normal", 0.0, 1.0),
     [0.0, 3.0, 25.0, 110.0, 345.0, 1040.0], 30),
    ("normal/logistic", ("normal", 0.0, 1.0), ("logistic", 0.0, 0.7),
     [0.0, 3.0, 25.0, 55.0, 162.0, 484.0], 30),
    ("gumbel/logistic", ("gumbel", 0.0, 1.0), ("logistic", 0.0, 1.0),
     [0.0, 3.0, 25.0, 75.0, 232.0, 692.0], 30),
    ("normal/gumbel", ("normal", 1.0, 2.0), ("gumbel", -1.0, 0.8),
     [0.0, 3.0, 25.0, 70.0, 190.0, 560.0], 30),
    ("logistic/student_t", ("logistic", 0.0, 1.0), ("student_t", 0.0, 1.0, 3.0),
     [0.0, 3.0, 30.0, 1.1e10], 40),
]
BEST_OF_N = [1, 4, 64, 1024]


def mp_law(law):
    """(log pdf, log sf, log cdf, mean) as mpmath functions."""
    fam, loc, s = law[0], mp.mpf(law[1]), mp.mpf(law[2])
    z = lambda x: (x - loc) / s
    if fam == "logistic":
        return (lambda x: -z(x) - 2 * mp.log1p(mp.exp(-z(x))) - mp.log(s),
                lambda x: -mp.log1p(mp.exp(z(x))), lambda x: -mp.log1p(mp.exp(-z(x))), loc)
    if fam == "gumbel":
        return (lambda x: -z(x) - mp.exp(-z(x)) - mp.log(s),
                lambda x: mp.log(-mp.expm1(-mp.exp(-z(x)))), lambda x: -mp.exp(-z(x)),
                loc + s * mp.euler)
    if fam == "normal":
        return (lambda x: -z(x) ** 2 / 2 - mp.log(s) - mp.log(2 * mp.pi) / 2,
                lambda x: mp.log(mp.ncdf(-z(x))), lambda x: mp.log(mp.ncdf(z(x))), loc)
    if fam == "student_t":
        nu = mp.mpf(law[3])

        def lsf(x):
            zz = z(x)
            tail = mp.betainc(nu / 2, mp.mpf(1) / 2, 0, nu / (nu + zz * zz), regularized=True) / 2
            return mp.log(tail) if zz >= 0 else mp.log(1 - tail)

        lpdf = lambda x: (mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2) - mp.log(nu * mp.pi) / 2
                          - mp.log(s) - (nu + 1) / 2 * mp.log(1 + z(x) ** 2 / nu))
        return lpdf, lsf, lambda x: lsf(2 * loc - x), loc
    raise ValueError(fam)


def panels(centre, half=60, width=0.5):
    k = int(math.ceil(half / width))
    return [mp.mpf(centre) + width * i for i in range(-k, k + 1)]


def exact(value, error, t):
    """(log P(U >= t), E[V | U >= t], E[V | U = t])."""
    lpv, _, _, _ = mp_law(value)
    lpx, lsx, _, _ = mp_law(error)
    t = mp.mpf(t)
    pts = sorted(set(panels(0) + panels(t)))
    if "student_t" in (value[0], error[0]):  # a power-law tail: out to the infinities
        pts = [-mp.inf] + pts + [mp.inf]
    # otherwise the integrands are below e^-60 of their peak beyond 60 scales (and the Gumbel's
    # left tail exp(-e^-z) cannot be evaluated far out)
    p = mp.quad(lambda y: mp.exp(lpv(y) + lsx(t - y)), pts)
    n = mp.quad(lambda y: y * mp.exp(lpv(y) + lsx(t - y)), pts)
    d = mp.quad(lambda y: mp.exp(lpv(y) + lpx(t - y)), pts)
    dn = mp.quad(lambda y: y * mp.exp(lpv(y) + lpx(t - y)), pts)
    return float(mp.log(p)), float(n / p), float(dn / d)


def float_law(law):
    """(pdf, cdf) in float64, for SciPy."""
    from scipy import special as ss

    fam, loc, s = law[0], float(law[1]), float(law[2])
    if fam == "logistic":
        return (lambda x: ss.expit((x - loc) / s) * ss.expit(-(x - loc) / s) / s,
                lambda x: ss.expit((x - loc) / s))
    if fam == "gumbel":
        return (lambda x: math.exp(-(x - loc) / s - math.exp(min(-(x - loc) / s, 700.0))) / s,
                lambda x: math.exp(-math.exp(min(-(x - loc) / s, 700.0))))
    if fam == "normal":
        return (lambda x: math.exp(-0.5 * ((x - loc) / s) ** 2) / (s * math.sqrt(2 * math.pi)),
                lambda x: ss.ndtr((x - loc) / s))
    raise ValueError(fam)


def best_of_n(value, error, n):
    """E[V of the best of n by proxy] by SciPy QUADPACK (float64)."""
    import scipy.integrate as si

    fv, _ = float_law(value)
    fx, cx = float_law(error)
    m = float(mp_law(value)[3])
    inner = dict(epsabs=0.0, epsrel=1e-13, limit=200)

    def over_v(g, u):
        pts = sorted({-10.0, 0.0, 10.0, u - 10.0, u, u + 10.0})
        return si.quad(g, min(u, 0.0) - 60.0, max(u, 0.0) + 60.0, points=pts, **inner)[0]

    def outer(u):
        h = over_v(lambda v: (v - m) * fv(v) * fx(u - v), u)
        cdf = over_v(lambda v: fv(v) * cx(u - v), u)
        return n * cdf ** (n - 1) * h

    pts = [-10.0, -5.0, -3.0, -1.0, 0.0, 1.0, 3.0, 5.0, 8.0, 12.0, 20.0]
    return m + si.quad(outer, -40.0, 50.0, points=pts, epsabs=1e-14, epsrel=1e-11, limit=400)[0]


def main():
    rows = []
    for name, value, error, ts, dps in PAIRS:
        mp.mp.dps = dps
        cases = []
        for t in ts:
            lp, cv, vp = exact(value, error, t)
            cases.append({"t": t, "log_tail_prob": lp, "conditional_value": cv,
                          "value_given_proxy": vp})
            print(name, t, lp, cv, vp, flush=True)
        bon = []
        if error[0] != "student_t":
            mp.mp.dps = 20
            bon = [{"n": n, "best_of_n_value": best_of_n(value, error, n)} for n in BEST_OF_N]
            print(name, bon, flush=True)
        rows.append({"name": name, "value": list(value), "error": list(error), "cases": cases,
                     "best_of_n": bon})
    OUT.write_text(json.dumps({"source": __doc__.strip().splitlines()[0], "pairs": rows},
                              indent=1) + "\n")


if __name__ == "__main__":
    main()
