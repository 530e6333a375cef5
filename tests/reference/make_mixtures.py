"""Independent references for tests/test_mixture.py: finite mixtures as value and as error.

Laws are written out from their definitions (no goodhart_jax import):

* ``["normal", loc, scale]``, ``["student_t", df, loc, scale]`` (``S`` by the regularised
  incomplete beta function), ``["pareto", alpha, scale]`` (``S(x) = (scale / x)^alpha``);
* ``["mixture", [[w, law], ...]]``: ``f = Σ w_i f_i``, ``S = Σ w_i S_i`` with the weights
  normalised to sum to 1.

References:

* ``log P(U >= t)``, ``E[V | U >= t]`` (and ``E[V | U >= t] - E[V]`` directly, from the
  cancelling integrand at 40+ digits) and ``E[V | U = u]`` by mpmath (``mp.quad``, tanh-sinh),
  integrating over ``y = V`` on ``[-L, L]`` (``L`` = 40 of V's widest scale: beyond it ``f_V`` is
  below ``e^-800`` of its peak) with break points every 0.5 and, around every feature of width
  below 2 (a component's centre and lower support end, of V at ``y = c`` and of X at
  ``y = t - c``), every quarter width over 12 widths on either side: no panel is wider than a
  quarter of the narrowest peak it holds.  Each panel's integrand is divided by the largest
  value sampled at the break points (``mp.quad`` stops on an absolute error).
* The pairing of a normal mixture with a normal error has a closed form (``U_i ~ N(m_i,
  sqrt(s_i^2 + s_x^2))``): ``E[V | U >= t] = Σ w_i P_i E_i / Σ w_i P_i``,
  ``E_i = m_i + s_i^2 / σ_i φ(z) / Q(z)``, by ``mp.erfc`` at 50 digits, from the bulk out to
  ``P(U >= t) = 1e-300``.
* ``E[V]`` of the best of ``n`` by proxy, ``E V + ∫ n F_U(u)^(n-1) h(u) du`` with
  ``h(u) = ∫ (v - E V) f_V(v) f_X(u - v) dv``, ``F_U = 1 - S_U``, ``(n - 1) log1p(-S_U)`` in
  the power: inner integrals per pair of components (closed forms for two normals, else SciPy's
  QUADPACK with the pair's features as break points, relative tolerance 1e-13), the outer one by
  QUADPACK (relative tolerance 1e-11) split at the quantiles ``S_U = e^-s``,
  ``s = log n + (-4.5 ... 40)``.

Run: ``python tests/reference/make_mixtures.py`` (about 20 minutes on one core) to rewrite
``mixtures.json``; finished values are kept in ``$MIXTURES_CACHE`` (default
``/tmp/goodhart_mixtures_cache.json``), so an interrupted run resumes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import mpmath as mp
import numpy as np

OUT = Path(__file__).with_name("mixtures.json")

N01 = ["normal", 0.0, 1.0]
BEST_OF_N = [1, 4, 64, 4096, 1e6]

# name, value, error, thresholds t, proxies u, best-of-n (True/False), digits
CASES = [
    ("normal/mix_pareto", N01, ["mixture", [[0.99, N01], [0.01, ["pareto", 1.5, 1.0]]]],
     [-2.0, 0.0, 1.0, 3.0, 10.0, 100.0, 1e4, 1e8, 1e12, 1e16, 1e20],
     [-1.0, 0.0, 1.5, 3.0, 10.0, 100.0, 1e4], True, 40),
    ("normal/mix_t2", N01, ["mixture", [[0.999, N01], [0.001, ["student_t", 2.0, 0.0, 10.0]]]],
     [-2.0, 0.0, 2.0, 5.0, 20.0, 100.0, 1e4, 1e8, 1e12, 1e15],
     [0.0, 3.0, 10.0, 50.0, 1e3], True, 40),
    ("normal/mix_narrow", N01, ["mixture", [[0.6, N01], [0.4, ["normal", 25.0, 0.02]]]],
     [0.0, 10.0, 20.0, 25.0, 30.0, 36.5, 45.0],
     [0.0, 12.5, 25.0, 26.0, 40.0], True, 40),
    ("mix_narrow/student_t", ["mixture", [[0.7, N01], [0.3, ["normal", 10.0, 0.05]]]],
     ["student_t", 3.0, 0.0, 1.0],
     [0.0, 5.0, 10.0, 12.0, 30.0, 1e3, 1e6, 1e10, 1.2e10],
     [0.0, 5.0, 10.0, 12.0, 100.0, 1e4], True, 50),
]
# the normal mixture with a normal error: closed form
CLOSED = ("mix_normal/normal", ["mixture", [[0.5, N01], [0.3, ["normal", 2.0, 3.0]],
                                            [0.2, ["normal", -1.0, 0.1]]]], ["normal", 0.0, 1.0])
CLOSED_T = [-10.0, -3.0, 0.0, 1.0, 3.0, 10.0, 30.0, 60.0, 100.0, 120.0]
CLOSED_U = [-5.0, 0.0, 1.0, 5.0, 30.0, 100.0]


# --- laws in mpmath ---------------------------------------------------------------------------

def leaves(law, weight=1):
    """[(w, leaf law)] with the weights normalised (nested mixtures flattened)."""
    if law[0] != "mixture":
        return [(mp.mpf(weight), law)]
    total = sum(mp.mpf(w) for w, _ in law[1])
    return [(wl, leaf) for w, sub in law[1]
            for wl, leaf in leaves(sub, mp.mpf(weight) * mp.mpf(w) / total)]


def leaf_fns(law):
    """(pdf, sf, cdf, mean, features) of a law that is not a mixture; features are (centre,
    width) pairs where the density peaks or jumps."""
    fam = law[0]
    if fam == "normal":
        loc, s = mp.mpf(law[1]), mp.mpf(law[2])
        z = lambda x: (x - loc) / s
        return (lambda x: mp.npdf(z(x)) / s, lambda x: mp.erfc(z(x) / mp.sqrt(2)) / 2,
                lambda x: mp.erfc(-z(x) / mp.sqrt(2)) / 2, loc, [(loc, s)])
    if fam == "student_t":
        nu, loc, s = (mp.mpf(a) for a in law[1:4])

        def sf(x):
            zz = (x - loc) / s
            tail = mp.betainc(nu / 2, mp.mpf(1) / 2, 0, nu / (nu + zz * zz), regularized=True) / 2
            return tail if zz >= 0 else 1 - tail

        c = mp.exp(mp.loggamma((nu + 1) / 2) - mp.loggamma(nu / 2)) / mp.sqrt(nu * mp.pi)
        pdf = lambda x: c / s * (1 + ((x - loc) / s) ** 2 / nu) ** (-(nu + 1) / 2)
        return pdf, sf, lambda x: sf(2 * loc - x), loc, [(loc, s)]
    if fam == "pareto":
        a, s = mp.mpf(law[1]), mp.mpf(law[2])
        pdf = lambda x: a / s * (s / x) ** (a + 1) if x >= s else mp.mpf(0)
        sf = lambda x: (s / x) ** a if x >= s else mp.mpf(1)
        cdf = lambda x: 1 - (s / x) ** a if x >= s else mp.mpf(0)
        return pdf, sf, cdf, a * s / (a - 1), [(s, s / a)]
    raise ValueError(fam)


def fns(law):
    parts = [(w, leaf_fns(leaf)) for w, leaf in leaves(law)]
    pdf = lambda x: sum(w * f[0](x) for w, f in parts)
    sf = lambda x: sum(w * f[1](x) for w, f in parts)
    mean = sum(w * f[3] for w, f in parts)
    feats = [feat for _, f in parts for feat in f[4]]
    return pdf, sf, mean, feats


def breaks(value, error, t):
    """Break points in y: every 0.5 on [-L, L], finer around narrow features of V (y = c) and
    of X (y = t - c)."""
    _, _, _, fv = fns(value)
    _, _, _, fx = fns(error)
    big = max(mp.mpf(w) for _, w in fv)
    lo = min(c for c, _ in fv) - 40 * big
    hi = max(c for c, _ in fv) + 40 * big
    step = mp.mpf("0.5")
    pts = {lo + k * step for k in range(int((hi - lo) / step) + 1)} | {hi}
    feats = [(c, w) for c, w in fv] + [(t - c, w) for c, w in fx]
    for c, w in feats:
        if w < 2 and lo - 12 * w < c < hi + 12 * w:
            pts |= {c + k * w / 4 for k in range(-48, 49)}
        elif lo < c < hi:
            pts.add(c)
    return sorted(p for p in pts if lo <= p <= hi)


def integrate(g, pts):
    """∫ g over [pts[0], pts[-1]], panel by panel, scaled by the largest sampled |g|."""
    scale = max(abs(g(p)) for p in pts)
    if scale == 0:
        return mp.mpf(0)
    return scale * sum(mp.quad(lambda y: g(y) / scale, [a, b]) for a, b in zip(pts[:-1], pts[1:]))


def exact(value, error, t):
    """(log P(U >= t), E[V | U >= t], E[V | U >= t] - E[V])."""
    pv, _, m, _ = fns(value)
    _, sx, _, _ = fns(error)
    t = mp.mpf(t)
    pts = breaks(value, error, t)
    p = integrate(lambda y: pv(y) * sx(t - y), pts)
    d = integrate(lambda y: (y - m) * pv(y) * sx(t - y), pts)
    return float(mp.log(p)), float(m + d / p), float(d / p)


def given_proxy(value, error, u):
    pv, _, m, _ = fns(value)
    px, _, _, _ = fns(error)
    u = mp.mpf(u)
    pts = breaks(value, error, u)
    f = integrate(lambda y: pv(y) * px(u - y), pts)
    d = integrate(lambda y: (y - m) * pv(y) * px(u - y), pts)
    return float(m + d / f), float(mp.log(f))


def closed(value, error, t):
    """Normal mixture value, normal error: (log P, E[V | U >= t])."""
    sx = mp.mpf(error[2])
    t = mp.mpf(t)
    p = e = 0
    for w, (_, m, s) in leaves(value):
        m, s = mp.mpf(m), mp.mpf(s)
        sig = mp.sqrt(s * s + sx * sx)
        z = (t - m) / sig
        q = mp.erfc(z / mp.sqrt(2)) / 2
        p += w * q
        e += w * (m * q + s * s / sig * mp.npdf(z))
    return float(mp.log(p)), float(e / p)


def closed_proxy(value, error, u):
    sx = mp.mpf(error[2])
    u = mp.mpf(u)
    f = e = 0
    for w, (_, m, s) in leaves(value):
        m, s = mp.mpf(m), mp.mpf(s)
        sig2 = s * s + sx * sx
        dens = mp.npdf((u - m) / mp.sqrt(sig2)) / mp.sqrt(sig2)
        f += w * dens
        e += w * dens * (m + s * s / sig2 * (u - m))
    return float(e / f)


# --- best of n: SciPy ---------------------------------------------------------------------------

def float_leaf(law):
    """(pdf, sf, mean, features, lower end) in float64."""
    from scipy import special

    fam = law[0]
    if fam == "normal":
        loc, s = float(law[1]), float(law[2])
        return (lambda x: math.exp(-0.5 * ((x - loc) / s) ** 2) / (s * math.sqrt(2 * math.pi)),
                lambda x: 0.5 * math.erfc((x - loc) / (s * math.sqrt(2))), loc, [(loc, s)], None)
    if fam == "student_t":
        nu, loc, s = (float(a) for a in law[1:4])
        c = math.exp(math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2)) / math.sqrt(nu * math.pi) / s
        return (lambda x: c * (1 + ((x - loc) / s) ** 2 / nu) ** (-(nu + 1) / 2),
                lambda x: float(special.stdtr(nu, -(x - loc) / s)), loc, [(loc, s)], None)
    if fam == "pareto":
        a, s = float(law[1]), float(law[2])
        return (lambda x: a / s * (s / x) ** (a + 1) if x >= s else 0.0,
                lambda x: (s / x) ** a if x >= s else 1.0, a * s / (a - 1), [(s, s / a)], s)
    raise ValueError(fam)


def float_leaves(law):
    return [(float(w), leaf) for w, leaf in leaves(law)]


def pair_terms(vl, xl, u, m):
    """(f, S, h) of V_i + X_j at u: density, survival and ∫ (v - m) f_V f_X(u - v) dv."""
    import scipy.integrate as si

    if vl[0] == "normal" and xl[0] == "normal":
        mv, sv, mx, sx = float(vl[1]), float(vl[2]), float(xl[1]), float(xl[2])
        sig2 = sv * sv + sx * sx
        z = (u - mv - mx) / math.sqrt(sig2)
        f = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi * sig2)
        return f, 0.5 * math.erfc(z / math.sqrt(2)), f * (mv - m + sv * sv / math.sqrt(sig2) * z)
    pv, sfv, _, fv, _ = float_leaf(vl)
    px, sfx, _, fx, lox = float_leaf(xl)
    cv, wv = fv[0]
    lo, hi = cv - 40 * wv, cv + 40 * wv
    pts = [cv - 3 * wv, cv, cv + 3 * wv] + [u - c for c, _ in fx] + ([u - lox] if lox else [])
    pts = sorted({min(max(p, lo), hi) for p in pts} - {lo, hi})
    opts = dict(points=pts, epsabs=0.0, epsrel=1e-13, limit=400)
    f = si.quad(lambda v: pv(v) * px(u - v), lo, hi, **opts)[0]
    s = si.quad(lambda v: pv(v) * sfx(u - v), lo, hi, **opts)[0]
    h = si.quad(lambda v: (v - m) * pv(v) * px(u - v), lo, hi, **opts)[0]
    return f, s, h


def best_of_n(value, error, n):
    """E[V of the best of n by proxy] by SciPy QUADPACK (float64)."""
    import scipy.integrate as si
    import scipy.optimize as so

    vs, xs = float_leaves(value), float_leaves(error)
    m = float(fns(value)[2])

    def terms(u):
        f = s = h = 0.0
        for wv, vl in vs:
            for wx, xl in xs:
                a, b, c = pair_terms(vl, xl, u, m)
                f += wv * wx * a
                s += wv * wx * b
                h += wv * wx * c
        return f, s, h

    def outer(u):
        _, s, h = terms(u)
        if s >= 1.0:
            return 0.0 if n > 1 else h
        return n * math.exp((n - 1) * math.log1p(-s)) * h

    def quantile(level):  # u with -log S_U(u) = level (S_U = 0: beyond every level)
        def g(u):
            s = terms(u)[1]
            return -math.log(s) - level if s > 0 else 1e300

        a, b = -1.0, 1.0
        while g(a) > 0:
            a *= 2
        while g(b) < 0:
            b *= 2
        return so.brentq(g, a, b, xtol=1e-12, rtol=1e-13)

    ln = math.log(n)
    levels = [max(ln + d, 1e-3) for d in (-4.5, -3, -2, -1, 0, 1, 2, 3, 5, 8, 12, 20, 30, 40)]
    levels = sorted(set(levels))
    us = [quantile(lv) for lv in levels]
    opts = dict(epsabs=1e-15, epsrel=1e-11, limit=400)
    total = si.quad(outer, -np.inf, us[0], **opts)[0]
    for a, b in zip(us[:-1], us[1:]):
        total += si.quad(outer, a, b, **opts)[0]
    total += si.quad(outer, us[-1], np.inf, **opts)[0]
    return m + total


CACHE = Path(os.environ.get("MIXTURES_CACHE", "/tmp/goodhart_mixtures_cache.json"))


def cached(key, fn, *args):
    """``fn(*args)``, remembered in ``CACHE`` under ``key`` (an interrupted run resumes)."""
    store = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    if key not in store:
        store[key] = fn(*args)
        CACHE.write_text(json.dumps(store))
    return store[key]


def main():
    rows = []
    name, value, error = CLOSED
    mp.mp.dps = 50
    cases = []
    for t in CLOSED_T:
        lp, cv = closed(value, error, t)
        cases.append({"t": t, "log_tail_prob": lp, "conditional_value": cv})
        print(name, t, lp, cv, flush=True)
    proxy = [{"u": u, "value_given_proxy": closed_proxy(value, error, u)} for u in CLOSED_U]
    bon = [{"n": n, "best_of_n_value": cached(f"{name} bon {n}", best_of_n, value, error, n)}
           for n in BEST_OF_N]
    print(name, proxy, bon, flush=True)
    rows.append({"name": name, "value": value, "error": error, "method": "closed form",
                 "cases": cases, "given_proxy": proxy, "best_of_n": bon})
    for name, value, error, ts, us, with_bon, dps in CASES:
        mp.mp.dps = dps
        cases = []
        for t in ts:
            lp, cv, ex = cached(f"{name} t {t!r}", exact, value, error, t)
            cases.append({"t": t, "log_tail_prob": lp, "conditional_value": cv, "excess": ex})
            print(name, t, lp, cv, ex, flush=True)
        proxy = []
        for u in us:
            vp, lf = cached(f"{name} u {u!r}", given_proxy, value, error, u)
            proxy.append({"u": u, "value_given_proxy": vp, "log_density": lf})
            print(name, "u", u, vp, lf, flush=True)
        bon = []
        if with_bon:
            bon = [{"n": n, "best_of_n_value": cached(f"{name} bon {n}", best_of_n, value, error, n)}
                   for n in BEST_OF_N]
            print(name, bon, flush=True)
        rows.append({"name": name, "value": value, "error": error, "method": "mpmath quadrature",
                     "cases": cases, "given_proxy": proxy, "best_of_n": bon})
    OUT.write_text(json.dumps({"source": __doc__.strip().splitlines()[0], "pairs": rows},
                              indent=1) + "\n")


if __name__ == "__main__":
    main()
