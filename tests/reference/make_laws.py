"""Independent references for tests/test_laws.py: the generalized Pareto law as value and error.

Laws are written out from their definitions with mpmath (no goodhart_jax import):

* ``["normal", loc, scale]``: ``log S = log(erfc(z / sqrt 2) / 2)``;
* ``["genpareto", xi, scale, loc]``: ``z = (x - loc) / scale``, ``L = log1p(xi z) / xi``
  (``z`` at ``xi = 0``), ``log S = -L``, ``log f = -log(scale) - (1 + xi) L`` on the support
  ``[loc, loc - scale / xi]`` (``xi < 0``) or ``[loc, inf)``.

References, for independent ``V`` (value) and ``X`` (error), ``U = V + X``, by ``mp.quad``
(tanh-sinh) over ``v``:

* ``P(U >= t) = ∫ f_V(v) S_X(t - v) dv``, ``E[V | U >= t] = ∫ v f_V S_X / P`` and the excess
  ``E[V | U >= t] - E[V] = ∫ (v - E V) f_V S_X / P`` (directly, at ``40 + 1.2 log10 |t|``
  digits, so the cancellation at a far ``t`` costs nothing);
* ``f_U(u) = ∫ f_V(v) f_X(u - v) dv`` and ``E[V | U = u]``.

Panels: the integrand's peak ``v*`` is found on a grid of candidates (the laws' centres and
support ends, ``t`` minus the error's, and points between) and refined by golden section; its
width ``w`` is where the log integrand has dropped by 1 on the narrower side.  Break points:
the support ends of ``V`` and of ``t - X`` (where the integrand jumps, kinks or is singular),
``v* ± j w / 4`` for ``j <= 48`` (no panel wider than a quarter of the peak), geometric steps
``v* ± w 1.5^k`` out to where the log integrand is 800 below its peak (or the support ends),
and around every support end steps ``2^k / 4``.  Each panel's integrand is divided by the
peak value (``mp.quad`` stops on an absolute error).

Thresholds: where ``P(U >= t)`` is about 0.5, 1e-2, 1e-6, 1e-20, 1e-60, 1e-150, 1e-300 (found
by interpolation on a coarse scan of a quicker evaluation: only roughly; the stored reference
is exact at the stored float ``t``), plus a few fixed ``t``.

Run: ``python tests/reference/make_laws.py`` (about half an hour on one busy core) to rewrite
``laws.json``; finished pairs are kept in ``$LAWS_CACHE`` (default
``/tmp/goodhart_laws_cache.json``), so an interrupted run resumes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import mpmath as mp

OUT = Path(__file__).with_name("laws.json")
CACHE = Path(os.environ.get("LAWS_CACHE", "/tmp/goodhart_laws_cache.json"))

N01 = ["normal", 0.0, 1.0]
# name, value, error, fixed thresholds, proxies u
PAIRS = [
    ("normal/genpareto(0.3)", N01, ["genpareto", 0.3, 1.0, 0.0], [0.0, 2.0, 10.0], [0.0, 3.0, 30.0]),
    ("normal/genpareto(-0.3)", N01, ["genpareto", -0.3, 1.0, 0.0], [0.0, 2.0, 10.0], [0.0, 3.0, 10.0]),
    ("genpareto(-0.5)/normal", ["genpareto", -0.5, 1.0, 0.0], N01, [0.0, 2.0, 10.0], [0.0, 2.0, 10.0]),
    ("normal/genpareto(0)", N01, ["genpareto", 0.0, 1.0, 0.0], [0.0, 2.0, 10.0], [0.0, 3.0, 30.0]),
    ("normal/genpareto(-1)", N01, ["genpareto", -1.0, 2.0, -0.5], [0.0, 2.0, 10.0], [0.0, 1.0, 10.0]),
    ("genpareto(-1.5)/normal", ["genpareto", -1.5, 1.5, 0.5], ["normal", 0.0, 0.5], [0.0, 2.0, 10.0],
     [0.5, 1.5, 5.0]),
    ("genpareto(0.2)/normal", ["genpareto", 0.2, 1.0, 0.0], N01, [0.0, 2.0, 10.0], [0.0, 5.0, 50.0]),
    ("genpareto(-0.3)/genpareto(0.25)", ["genpareto", -0.3, 2.0, 1.0], ["genpareto", 0.25, 0.5, -1.0],
     [0.0, 2.0, 10.0], [0.5, 5.0, 50.0]),
    ("genpareto(1e-6)/genpareto(-1e-6)", ["genpareto", 1e-6, 1.0, 0.0], ["genpareto", -1e-6, 1.0, 0.0],
     [0.0, 2.0, 10.0], [0.5, 5.0, 20.0]),
]
TARGETS = [0.5, 1e-2, 1e-6, 1e-20, 1e-60, 1e-150, 1e-300]


# --- laws --------------------------------------------------------------------------------------

def support(law):
    if law[0] == "normal":
        return -mp.inf, mp.inf
    xi, scale, loc = (mp.mpf(a) for a in law[1:])
    return loc, (loc - scale / xi if xi < 0 else mp.inf)


def centre(law):
    return mp.mpf(law[1]) if law[0] == "normal" else mp.mpf(law[3])


def width(law):
    return mp.mpf(law[2])


def mean(law):
    if law[0] == "normal":
        return mp.mpf(law[1])
    xi, scale, loc = (mp.mpf(a) for a in law[1:])
    return loc + scale / (1 - xi)


def _gpd_big(law, x):
    xi, scale, loc = (mp.mpf(a) for a in law[1:])
    z = (x - loc) / scale
    return z if xi == 0 else mp.log1p(xi * z) / xi


def log_pdf(law, x):
    if law[0] == "normal":
        z = (x - mp.mpf(law[1])) / mp.mpf(law[2])
        return -z * z / 2 - mp.log(mp.sqrt(2 * mp.pi) * mp.mpf(law[2]))
    lo, hi = support(law)
    if x < lo or x >= hi:
        return -mp.inf
    xi, scale = mp.mpf(law[1]), mp.mpf(law[2])
    return -mp.log(scale) - (1 + xi) * _gpd_big(law, x)


def log_sf(law, x):
    if law[0] == "normal":
        z = (x - mp.mpf(law[1])) / mp.mpf(law[2])
        return mp.log(mp.erfc(z / mp.sqrt(2)) / 2)
    lo, hi = support(law)
    if x <= lo:
        return mp.mpf(0)
    if x >= hi:
        return -mp.inf
    return -_gpd_big(law, x)


# --- integration -------------------------------------------------------------------------------

def _golden(f, a, b, iters=80):
    g = (mp.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2


def _integrals(logg, lo, hi, features, scale, m, fast=False):
    """(log ∫ g, m + ∫ (v - m) g / ∫ g, ∫ (v - m) g / ∫ g) over [lo, hi] (g = exp(logg)); the
    second is skipped (0) when ``fast``."""
    def safe(v):
        if v <= lo or v >= hi:
            return -mp.inf
        val = logg(v)
        return val if mp.isfinite(val) or val == -mp.inf else -mp.inf

    feats = sorted({f for f in features if lo < f < hi})
    cands = set(feats)
    for f in feats:
        for k in range(-30, 12):
            for sg in (-1, 1):
                cands.add(f + sg * scale * mp.mpf(2) ** k)
    if mp.isfinite(lo):
        cands.update(lo + scale * mp.mpf(2) ** k for k in range(-40, 12))
    if mp.isfinite(hi):
        cands.update(hi - scale * mp.mpf(2) ** k for k in range(-40, 12))
    cands = sorted(c for c in cands if lo < c < hi)
    vals = [safe(c) for c in cands]
    i = max(range(len(cands)), key=lambda k: vals[k])
    a = cands[i - 1] if i > 0 else (lo if mp.isfinite(lo) else cands[i] - 10 * scale)
    b = cands[i + 1] if i + 1 < len(cands) else (hi if mp.isfinite(hi) else cands[i] + 10 * scale)
    vstar = _golden(safe, a, b, 40 if fast else 120)
    top = safe(vstar)
    if vals[i] > top:
        vstar, top = cands[i], vals[i]

    def drop(sign):  # distance at which logg has dropped by 1 (doubling, then bisection)
        d = scale * mp.mpf(2) ** -60
        while d < 1e6 * scale and safe(vstar + sign * d) > top - 1:
            d *= 2
        lo_d, hi_d = d / 2, d
        for _ in range(30):
            mid = (lo_d + hi_d) / 2
            if safe(vstar + sign * mid) > top - 1:
                lo_d = mid
            else:
                hi_d = mid
        return hi_d

    w = min(drop(-1), drop(1))
    pts = set(feats)
    pts.update(p for p in (lo, hi) if mp.isfinite(p))
    pts.add(vstar)
    for j in range(1, 8 if fast else 25):
        pts.update((vstar - j * w / 4, vstar + j * w / 4))
    for sign, end in ((-1, lo), (1, hi)):
        step = w * (2 if fast else 6)
        while True:
            p = vstar + sign * step
            if (sign < 0 and p <= lo) or (sign > 0 and p >= hi):
                break
            pts.add(p)
            if safe(p) < top - 800:
                break
            step *= 1.5
        if not mp.isfinite(end):
            pts.add(p)
    last = vstar + 50 * w
    first = vstar - 50 * w
    for f in feats + [p for p in (lo, hi) if mp.isfinite(p)]:
        if safe(f) < top - 800 and not (first <= f <= last):
            continue  # a feature where nothing lives
        for k in range(-3 if fast else -10, 6):
            for sg in (-1, 1):
                pts.add(f + sg * mp.mpf(2) ** k * scale / 4)
    pts = sorted(p for p in pts if lo <= p <= hi)
    # keep the range where the integrand lives (ends: support ends, or 800 nats down)
    lo_i = 0
    while lo_i + 1 < len(pts) and pts[lo_i + 1] < first and safe(pts[lo_i + 1]) < top - 800:
        lo_i += 1
    hi_i = len(pts) - 1
    while hi_i - 1 > 0 and pts[hi_i - 1] > last and safe(pts[hi_i - 1]) < top - 800:
        hi_i -= 1
    pts = pts[lo_i:hi_i + 1]

    def g(v):
        val = safe(v)
        return mp.exp(val - top) if val > -mp.inf else mp.mpf(0)

    s0 = s2 = mp.mpf(0)
    for a, b in zip(pts[:-1], pts[1:]):
        if b <= a:
            continue
        s0 += mp.quad(g, [a, b])
        if not fast:
            s2 += mp.quad(lambda v: (v - m) * g(v), [a, b])
    return top + mp.log(s0), m + s2 / s0, s2 / s0


def tail(value, error, t, fast=False):
    """(log P(U >= t), E[V | U >= t], E[V | U >= t] - E[V])."""
    t = mp.mpf(t)
    lo_v, hi_v = support(value)
    lo_x, hi_x = support(error)
    feats = [centre(value), t - centre(error)]
    feats += [p for p in (lo_v, hi_v, t - lo_x, t - hi_x) if mp.isfinite(p)]
    lo = max(lo_v, t - hi_x) if mp.isfinite(hi_x) else lo_v
    scale = min(width(value), width(error))
    return _integrals(lambda v: log_pdf(value, v) + log_sf(error, t - v), lo, hi_v, feats,
                      scale, mean(value), fast)


def proxy(value, error, u):
    """(log f_U(u), E[V | U = u])."""
    u = mp.mpf(u)
    lo_v, hi_v = support(value)
    lo_x, hi_x = support(error)
    lo = max(lo_v, u - hi_x) if mp.isfinite(hi_x) else lo_v
    hi = min(hi_v, u - lo_x) if mp.isfinite(lo_x) else hi_v
    feats = [centre(value), u - centre(error)]
    feats += [p for p in (lo_v, hi_v, u - lo_x, u - hi_x) if mp.isfinite(p)]
    scale = min(width(value), width(error))
    lf, e, _ = _integrals(lambda v: log_pdf(value, v) + log_pdf(error, u - v), lo, hi, feats,
                          scale, mean(value))
    return lf, e


def _dps(t):
    return 40 + int(1.2 * max(0.0, math.log10(max(abs(float(t)), 1.0))))


def scan(value, error):
    """[(t, log P(U >= t))] on a coarse grid growing ever faster (a quick evaluation), to the
    first ``t`` with ``P < 1e-300`` (or ``t > 1e250``)."""
    grid = [-3.0, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0,
            48.0, 64.0, 100.0]
    out = []
    k = 0
    while True:
        t = grid[k] if k < len(grid) else out[-1][0] ** 1.25
        with mp.workdps(_dps(t) - 15):
            lp = float(tail(value, error, t, fast=True)[0])
        out.append((t, lp))
        k += 1
        if lp < math.log(1e-300) - 5 or t > 1e250:
            return out


def find_t(points, value, error, target):
    """A float t with P(U >= t) about ``target``: interpolation of ``log(-log P)`` against
    ``log t`` (or ``t`` below 1) on the scan, then one secant step."""
    lt = math.log(target)
    for (t0, p0), (t1, p1) in zip(points[:-1], points[1:]):
        if p0 >= lt > p1:
            break
    else:
        return None

    def interp(t0, p0, t1, p1):
        if t0 > 1.0:
            a, b = math.log(t0), math.log(t1)
            y0, y1, y = (math.log(-min(p, -1e-300)) for p in (p0, p1, lt))
            return math.exp(a + (b - a) * (y - y0) / (y1 - y0)) if y1 != y0 else t0
        return t0 + (t1 - t0) * (lt - p0) / (p1 - p0) if p1 != p0 else t0

    t = interp(t0, p0, t1, p1)
    with mp.workdps(_dps(t) - 15):
        p = float(tail(value, error, t, fast=True)[0])
    if p > lt:
        t0, p0 = t, p
    else:
        t1, p1 = t, p
    return float(interp(t0, p0, t1, p1))


def main():
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    pairs = []
    order = PAIRS[::-1] if os.environ.get("LAWS_REVERSE") else PAIRS
    for name, value, error, fixed_t, fixed_u in order:
        if name in cache:
            pairs.append(cache[name])
            continue
        if os.environ.get("LAWS_CACHED_ONLY"):  # write what is finished, compute nothing
            continue
        ts = [(t, None) for t in fixed_t]
        points = scan(value, error)
        for target in TARGETS:
            t = find_t(points, value, error, target)
            if t is not None:
                ts.append((t, target))
        cases = []
        for t, target in sorted(ts):
            with mp.workdps(_dps(t)):
                lp, e, ex = tail(value, error, t)
            if not mp.isfinite(lp):
                continue
            cases.append({"t": repr(float(t)), "target_tail_prob": target,
                          "log_tail_prob": mp.nstr(lp, 20), "conditional_value": mp.nstr(e, 20),
                          "excess": mp.nstr(ex, 20)})
            print(name, t, cases[-1]["log_tail_prob"], cases[-1]["excess"], flush=True)
        given = []
        for u in fixed_u:
            with mp.workdps(40):
                lf, e = proxy(value, error, u)
            if mp.isfinite(lf):
                given.append({"u": repr(float(u)), "log_density": mp.nstr(lf, 20),
                              "value_given_proxy": mp.nstr(e, 20)})
        pairs.append({"name": name, "value": value, "error": error, "cases": cases,
                      "given_proxy": given})
        cache[name] = pairs[-1]
        CACHE.write_text(json.dumps(cache))
    pairs.sort(key=lambda p: [q[0] for q in PAIRS].index(p["name"]))
    OUT.write_text(json.dumps({"source": __doc__.splitlines()[0], "pairs": pairs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
