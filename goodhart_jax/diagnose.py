"""Diagnosing real scores: how heavy is the proxy's right tail, and what does that predict?

:func:`diagnose` takes the scores of a reward model (the proxy ``U``), optionally gold labels
``V`` of the same rows (so the error is ``X = U - V``) and prompt groups, and answers the
questions of docs/design.md section D (every number, the rules for the class and for "how
sure", and the references: docs/diagnose.md):

* **the right tail of each part** (:class:`TailReport`): the extreme-value index ``xi`` with its
  95% interval by generalized-Pareto peaks over threshold (the class's main number), Hill's
  estimate at the double bootstrap's ``k`` when ``xi > 0`` (Danielsson et al. 2001), the moment
  estimator (Dekkers, Einmahl & de Haan 1989), the Weibull-tail coefficient ``c`` of
  ``exp(-x^c)`` (Girard 2004); a class ``"light"`` / ``"exponential"`` / ``"heavy"`` and how
  sure (``"sure"`` when the intervals exclude the boundaries ``xi = 0`` and ``c = 1``, else
  ``"undecided"``);
* **with gold**: ``V`` and ``X`` diagnosed the same way; independence checked where it matters,
  among the top 5% proxy scores (the Spearman correlation of ``V`` and ``X`` there, against its
  distribution under independence by re-pairing, and an upper-tail dependence estimate); the
  regime of ``E[V | U >= t]`` predicted by Kwa, Thomas & Garriga-Alonso's (2024) theorems on
  laws fitted to ``V`` and ``X`` (:meth:`goodhart_jax.Empirical.fit`,
  :func:`goodhart_jax.regimes.predicted_regime`), the curves those laws predict, Gao, Schulman &
  Hilton's (2022) unbiased best-of-``n`` estimate with its standard error, their form
  ``d (alpha - beta d)`` fitted against ``d = sqrt(KL_bon)``, and the best ``n``;
* **without gold**: what the proxy alone can and cannot say, in plain words.

References (docs/diagnose.md): Kwa, Thomas & Garriga-Alonso 2024; Gao, Schulman & Hilton 2022;
Danielsson, de Haan, Peng & de Vries 2001; Dekkers, Einmahl & de Haan 1989; Girard 2004.

Tail threshold (documented choice): ``k = max(30, min(ceil(n^(2/3)), floor(n / 20)))`` points
above it (:func:`goodhart_jax.empirical.tail_count`, the rule :meth:`Empirical.fit` uses), and at
least :data:`~goodhart_jax.tail_estimators.MIN_K` (50): fewer is refused (``n < 1000``).  The
estimators that take logarithms (Hill, moments, Weibull-tail) see the scores measured from an
origin: 0 when every score is ``>= 0`` (a half-line keeps its natural origin), else the median
(a reward model's location is arbitrary).  The GPD fit is location invariant; the Weibull-tail
``c`` is not (a shift changes its finite-sample bias, e.g. an exponential measured from its
median reads ``c ~ 0.8`` at ``n = 2e4``), which is why the class rests on ``xi`` first.

Example:
    >>> import numpy as np, goodhart_jax as gj
    >>> rng = np.random.default_rng(0)
    >>> d = gj.diagnose(rng.standard_normal(20_000) + rng.standard_t(2.0, 20_000), fits=False)
    >>> d.proxy.tail, d.proxy.how_sure
    ('heavy', 'sure')
    >>> bool(d.proxy.xi_ci[0] < 0.5 < d.proxy.xi_ci[1])
    True
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, NamedTuple

import numpy as np

from goodhart_jax.empirical import tail_count
from goodhart_jax.law_fits import compare_laws
from goodhart_jax.tail_estimators import MIN_K

__all__ = ["Diagnosis", "TailReport", "diagnose", "kl_best_of_n_inverse", "TOP_FRACTION"]

#: The share of the highest proxy scores in which independence is checked.
TOP_FRACTION = 0.05
_Z95 = 1.959963984540054
_Z99 = 2.5758293035489004  # a drop after the peak must clear this (40 points are checked)
_PERMUTATIONS = 199
#: The most rows the independence check uses (a random subsample beyond).
INDEPENDENCE_ROWS = 100_000
#: Pairs drawn from the fitted laws for the predicted curves (``curves="sampled"``).
PREDICT_DRAWS = 200_000


class TailReport(NamedTuple):
    """The right tail of one sample (the proxy, the gold value or the error).

    Attributes:
        name: ``"proxy"``, ``"value"`` or ``"error"``.
        n: the sample size.
        k: the number of points above the tail threshold (the documented rule).
        threshold: the threshold (the ``(k+1)``-th largest score).
        xi, xi_ci: the generalized-Pareto (peaks over threshold) estimate of the extreme-value
            index and its 95% interval.
        gpd_scale: the fitted GPD scale ``sigma`` of the excesses.
        hill, hill_ci, hill_k: Hill's estimate at the double bootstrap's ``k`` (``None`` when
            ``xi <= 0``, or the bootstrap found no minimum or one past half the positive scores).
        moments, moments_ci: the moment estimator at ``k`` and its interval.
        c, c_ci: the Weibull-tail coefficient at ``k`` and its interval.
        tail: ``"light"``, ``"exponential"`` or ``"heavy"``.
        how_sure: ``"sure"`` (an interval excludes its boundary on the class's side) or
            ``"undecided"``.
        reason: the rule that gave the class, in words.
        plots: arrays for the figures (Hill / moments over ``k``, mean excess, QQ, histogram).
    """

    name: str
    n: int
    k: int
    threshold: float
    xi: float
    xi_ci: tuple[float, float]
    gpd_scale: float
    hill: float | None
    hill_ci: tuple[float, float] | None
    hill_k: int | None
    moments: float
    moments_ci: tuple[float, float]
    c: float
    c_ci: tuple[float, float]
    tail: str
    how_sure: str
    reason: str
    plots: dict

    def summary(self) -> dict:
        """The numbers (no plot arrays), JSON-ready; ``xi``, ``xi_ci``, ``tail`` as in
        docs/design.md section D."""
        out = self._asdict()
        out.pop("plots")
        out["xi_ci"] = list(self.xi_ci)
        out["c_ci"] = list(self.c_ci)
        out["moments_ci"] = list(self.moments_ci)
        out["hill_ci"] = None if self.hill_ci is None else list(self.hill_ci)
        return out


@dataclasses.dataclass
class Diagnosis:
    """What :func:`diagnose` found.

    Attributes:
        n: the number of rows.
        proxy: the proxy's :class:`TailReport`.
        value, error: the gold value's and the error's (``X = U - V``), or ``None`` without gold.
        independence: the tail-independence check (dict), or ``None``.
        regime: the predicted regime of ``E[V | U >= t]`` (dict: regime, limit, reason, sure).
        curves: the fitted laws' predicted ``E[V | U >= t]`` and best-of-``n`` curves (dict).
        best_of_n: the empirical best-of-``n`` curve, the Gao fit and the best ``n`` (dict).
        verdict: the conclusion in plain words.
        notes: what the data can and cannot tell (plain-language sentences).
        fits: the whole-law fits table (:func:`goodhart_jax.law_fits.compare_laws`, sorted by
            AIC; empty with ``fits=False``).
    """

    n: int
    proxy: TailReport
    value: TailReport | None = None
    error: TailReport | None = None
    independence: dict | None = None
    regime: dict | None = None
    curves: dict | None = None
    best_of_n: dict | None = None
    verdict: str = ""
    notes: list = dataclasses.field(default_factory=list)
    fits: Any = dataclasses.field(default_factory=list)

    def numbers(self) -> dict:
        """Every number, JSON-ready (``numbers.json`` and ``--json``): ``proxy`` holds
        ``xi``, ``xi_ci`` and ``tail`` (docs/design.md section D)."""
        from goodhart_jax.results import to_jsonable

        return to_jsonable({
            "n": self.n,
            "verdict": self.verdict,
            "proxy": self.proxy.summary(),
            "value": None if self.value is None else self.value.summary(),
            "error": None if self.error is None else self.error.summary(),
            "independence": self.independence,
            "regime": self.regime,
            "best_of_n": self.best_of_n,
            "curves": self.curves,
            "notes": list(self.notes),
            "fits": _plain(self.fits),
        })


def _plain(obj):
    """Named tuples and dataclasses (e.g. rows of a fits table) as dicts, recursively; a
    distribution as its ``repr``."""
    from goodhart_jax.distributions import Distribution

    if isinstance(obj, Distribution):
        return repr(obj)
    if hasattr(obj, "_asdict"):
        return {k: _plain(v) for k, v in obj._asdict().items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# --- input checks -----------------------------------------------------------------------------


def _vector(name: str, x) -> np.ndarray:
    """``x`` as a 1-D float64 array (no copy for float64 input, e.g. a memory map), checked."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{name}: {bad.size} of {arr.size} values are not finite (NaN or "
                         f"infinite); the first is at index {int(bad[0])} ({arr[bad[0]]!r})")
    return arr


def _tail_k(n: int, name: str) -> int:
    k = min(tail_count(n), n - 1)
    if k < MIN_K:
        raise ValueError(f"{name}: only {k} of the {n} scores would lie above the tail threshold "
                         f"(k = max(30, min(ceil(n^(2/3)), floor(n/20)))); at least {MIN_K} are "
                         f"needed for a tail estimate with an interval (n >= {20 * MIN_K})")
    return k


# --- one tail ----------------------------------------------------------------------------------


def _classify(xi_ci, c_ci) -> tuple[str, str, str]:
    """The class, how sure, and the rule (docs/diagnose.md)."""
    if xi_ci[0] > 0:
        return "heavy", "sure", "the GPD interval for xi lies above 0 (a power law)"
    if xi_ci[1] < 0 and c_ci[0] > 1:
        return "light", "sure", ("the GPD interval for xi lies below 0 and the Weibull-tail "
                                 "interval for c above 1 (lighter than exponential)")
    if c_ci[0] > 1:
        return "light", "sure", "the Weibull-tail interval for c lies above 1 (lighter than exponential)"
    if xi_ci[1] < 0:
        return "light", "sure", "the GPD interval for xi lies below 0 (bounded above)"
    if c_ci[1] < 1:
        return "heavy", "sure", ("the Weibull-tail interval for c lies below 1 (heavier than "
                                 "exponential, e.g. lognormal-like); xi's interval covers 0")
    return "exponential", "undecided", ("the intervals cover xi = 0 and c = 1: consistent with an "
                                        "exponential tail; slightly lighter or heavier cannot be "
                                        "ruled out")


def _normal_quantiles(p: np.ndarray) -> np.ndarray:
    nd = statistics.NormalDist()
    return np.array([nd.inv_cdf(float(v)) for v in p])


def _tail_report(name: str, x: np.ndarray, key, progress_cb=None) -> TailReport:
    """Diagnose the right tail of ``x`` (1-D, finite float64)."""
    import jax

    from goodhart_jax.tail_estimators import (gpd_tail, hill, hill_double_bootstrap,
                                              mean_excess, moments_estimator, weibull_tail)

    n = x.shape[0]
    k = _tail_k(n, name)
    xs = np.sort(x)  # the one copy of the data
    lo_v, hi_v = float(xs[0]), float(xs[-1])
    if not hi_v > lo_v:
        raise ValueError(f"{name}: all {n} scores are equal ({hi_v:g}); a constant has no tail")
    med = float(xs[n // 2])
    origin = 0.0 if lo_v >= 0.0 else med  # the origin of the log-based estimators
    threshold = float(xs[n - 1 - k])
    if not threshold > med or not xs[-1] > threshold:
        raise ValueError(f"{name}: the tail threshold ({threshold:g}, the {k + 1}-th largest "
                         f"score) does not lie above the median ({med:g}) with distinct scores "
                         f"above it; too many ties to estimate a tail")
    xs -= origin  # in place on our own copy: y = x - origin, sorted ascending
    npos = n - int(np.searchsorted(xs, 0.0, side="right"))
    m = min(npos, max(4 * k, 20_000))  # the top slice for the plots over k
    top = xs[n - m:]
    try:
        g = gpd_tail(top, k)
        mo = moments_estimator(top, k)
        wb = weibull_tail(xs, k)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    xi, xi_ci = float(g.estimate), (float(g.ci[0]), float(g.ci[1]))
    from goodhart_jax.empirical import fit_generalized_pareto

    gpd_scale = float(fit_generalized_pareto(top[m - k:] - top[m - k - 1])[1])
    c, c_ci = float(wb.estimate), (float(wb.ci[0]), float(wb.ci[1]))
    if progress_cb:
        progress_cb()
    hill_est = hill_ci = hill_k = None
    if xi > 0 and npos >= 4 * MIN_K:
        # the double bootstrap on the positive part (the same top points); on at most 2e5 of
        # them (a random subsample), its k then scaled by (n / m)^(2/3) (second-order rho = -1)
        pos = xs[n - npos:]
        cap = 200_000
        sub = pos
        if npos > cap:
            idx = np.asarray(jax.random.choice(key, npos, (cap,), replace=False))
            sub = pos[np.sort(idx)]
        try:
            db = hill_double_bootstrap(sub, key=jax.random.fold_in(key, 1), r_bootstrap=200)
            kk = db.k if npos <= cap else int(round(db.k * (npos / cap) ** (2.0 / 3.0)))
            kk = int(min(max(kk, MIN_K), npos - 1))
            # a k past half the positive scores is no tail choice (the criterion fell to the
            # end of its range, e.g. on tied, discrete scores): no Hill opinion then
            if kk <= npos // 2:
                h = hill(pos[npos - min(npos, kk + 1):] if kk + 1 <= npos else pos, kk)
                hill_est, hill_ci, hill_k = float(h.estimate), (float(h.ci[0]), float(h.ci[1])), kk
        except ValueError:
            pass  # no minimum of the bootstrap criterion: reported as None
    if progress_cb:
        progress_cb()
    tail, how_sure, reason = _classify(xi_ci, c_ci)
    # arrays for the figures
    ks = np.unique(np.geomspace(MIN_K, m - 1, 60).astype(np.int64))
    hp = hill(top, ks)
    mp = moments_estimator(top, ks)
    qs = np.linspace(0.5, 1.0 - (MIN_K + 1.0) / n, 40)  # mean-excess thresholds: quantiles
    ths = np.unique(xs[(qs * (n - 1)).astype(np.int64)])
    ths = ths[ths >= top[0]] if top[0] > ths[0] else ths
    me = mean_excess(top, ths[ths <= top[m - MIN_K - 1]]) if ths.size else None
    p = np.concatenate([np.linspace(0.5, 999.5, 1000) / 1000.0,
                        1.0 - np.geomspace(1e-3, 0.5 / n, 200)])
    p = np.unique(p[(p > 0) & (p < 1)])
    idx = np.clip(np.rint(p * n - 0.5).astype(np.int64), 0, n - 1)
    idx, first = np.unique(idx, return_index=True)  # one point per order statistic
    p = (idx + 0.5) / n
    ex = xs[n - k:] - xs[n - k - 1]  # the k excesses, ascending
    step = max(1, k // 2000)
    ei = np.arange(0, k, step)
    counts, edges = np.histogram(x, bins=120)
    plots = {
        "hill_k": ks, "hill_xi": np.asarray(hp.estimate), "hill_lo": np.asarray(hp.ci[0]),
        "hill_hi": np.asarray(hp.ci[1]),
        "moments_xi": np.asarray(mp.estimate), "moments_lo": np.asarray(mp.ci[0]),
        "moments_hi": np.asarray(mp.ci[1]),
        "k": k, "hill_k_star": hill_k,
        "me_u": None if me is None else np.asarray(me.threshold) + origin,
        "me_e": None if me is None else np.asarray(me.estimate),
        "me_se": None if me is None else np.asarray(me.se),
        "qq_normal_theory": _normal_quantiles(p), "qq_normal_sample": xs[idx] + origin,
        "qq_exp_theory": -np.log1p(-(ei + 0.5) / k), "qq_exp_sample": ex[ei],
        "hist_counts": counts, "hist_edges": edges,
        "mean": float(np.mean(x)), "sd": float(np.std(x)), "threshold": threshold,
        "gpd_xi": xi, "gpd_scale": gpd_scale, "tail_mass": k / n,
    }
    del xs, top
    return TailReport(name, n, k, threshold, xi, xi_ci, gpd_scale, hill_est, hill_ci, hill_k,
                      float(mo.estimate), (float(mo.ci[0]), float(mo.ci[1])), c, c_ci, tail,
                      how_sure, reason, plots)


# --- dependence in the tail --------------------------------------------------------------------


def _ranks(a: np.ndarray) -> np.ndarray:
    r = np.empty(a.shape[0])
    r[np.argsort(a, kind="stable")] = np.arange(a.shape[0])
    return r


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / den if den > 0 else 0.0


def _top_spearman(v: np.ndarray, e: np.ndarray, m: int) -> float:
    top = np.argpartition(v + e, v.shape[0] - m)[v.shape[0] - m:]
    return _spearman(v[top], e[top])


def _independence(v: np.ndarray, e: np.ndarray, key) -> dict:
    """Spearman's rho of ``V`` and ``X`` among the top 5% by ``U = V + X`` against its law under
    independence (re-pairings), and the upper-tail dependence ``P(F_V > q | F_X > q)``."""
    import jax

    n_all = v.shape[0]
    if n_all > INDEPENDENCE_ROWS:  # a random subsample: the same test, bounded cost
        keep = np.sort(np.asarray(jax.random.choice(jax.random.fold_in(key, 7), n_all,
                                                    (INDEPENDENCE_ROWS,), replace=False)))
        v, e = v[keep], e[keep]
    n = v.shape[0]
    m = max(int(math.ceil(TOP_FRACTION * n)), 4)
    rho = _top_spearman(v, e, m)
    # Fisher z with the Bonett & Wright (2000) variance (1 + rho^2 / 2) / (m - 3)
    z, se = math.atanh(max(min(rho, 0.999999), -0.999999)), math.sqrt((1 + rho * rho / 2) / (m - 3))
    ci = (math.tanh(z - _Z95 * se), math.tanh(z + _Z95 * se))
    keys = jax.random.split(key, _PERMUTATIONS)
    null = np.array([_top_spearman(v, e[np.asarray(jax.random.permutation(kk, n))], m)
                     for kk in keys])
    center = float(np.mean(null))
    p_value = (1 + int(np.sum(np.abs(null - center) >= abs(rho - center)))) / (_PERMUTATIONS + 1)
    q = 1.0 - TOP_FRACTION
    rv, rx = _ranks(v), _ranks(e)
    both = int(np.sum((rv >= q * n) & (rx >= q * n)))
    above = int(np.sum(rx >= q * n))
    lam = both / above
    lam_se = math.sqrt(max(lam * (1 - lam), 1e-12) / above)
    rejected = p_value < 0.05
    return {
        "top_fraction": TOP_FRACTION, "rows": m, "rows_used": n,
        "spearman": rho, "spearman_ci": list(ci),
        "spearman_if_independent": center,
        "spearman_if_independent_range": [float(np.quantile(null, 0.025)),
                                          float(np.quantile(null, 0.975))],
        "p_value": p_value, "permutations": _PERMUTATIONS,
        "tail_dependence": lam, "tail_dependence_ci": [lam - _Z95 * lam_se, lam + _Z95 * lam_se],
        "tail_dependence_if_independent": TOP_FRACTION,
        "independence_rejected": bool(rejected),
        "summary": ("independence of V and X is rejected in the top 5% of proxy scores "
                    f"(Spearman {rho:.3f} vs {center:.3f} expected from the selection alone, "
                    f"p = {p_value:.3f}): the theorems, which assume it, may not apply"
                    if rejected else
                    "independence of V and X is not rejected in the top 5% of proxy scores "
                    f"(Spearman {rho:.3f}, {center:.3f} expected from the selection alone, "
                    f"p = {p_value:.3f})"),
    }


# --- best-of-n --------------------------------------------------------------------------------


def kl_best_of_n_inverse(kl) -> np.ndarray:
    """The ``n`` whose ``KL_bon(n) = log n - (n - 1) / n`` is ``kl`` (real ``n >= 1``).

    Math: ``KL_bon`` increases from 0 at ``n = 1``; solved by bisection in ``log n``.

    Example:
        >>> round(float(kl_best_of_n_inverse(np.log(100.0) - 0.99)), 9)
        100.0
    """
    kl = np.asarray(kl, dtype=np.float64)
    lo = np.zeros_like(kl)
    hi = np.maximum(kl + 2.0, 2.0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        # (n - 1) / n as -expm1(-log n): exact, and 1 where n overflows (log n past 709)
        f = mid + np.expm1(-mid)
        lo = np.where(f < kl, mid, lo)
        hi = np.where(f < kl, hi, mid)
    with np.errstate(over="ignore"):  # beyond float range: inf
        return np.exp(0.5 * (lo + hi))


def _best_of_n(proxy, gold, groups, key) -> dict:
    from goodhart_jax.empirical_bon import empirical_best_of_n
    from goodhart_jax.pressure import fit_overoptimization

    if groups is None:
        top_n = proxy.shape[0]
    else:
        _, sizes = np.unique(np.asarray(groups), return_counts=True)
        top_n = int(sizes.min())
    ns = np.unique(np.rint(np.geomspace(1, max(top_n, 1), 40)).astype(np.int64))
    est = empirical_best_of_n(proxy, gold, ns, groups=groups, key=key)
    mean, se = np.asarray(est.mean), np.asarray(est.stderr)
    kl = np.log(ns) - (ns - 1.0) / ns
    d = np.sqrt(kl)
    out = {"n": ns, "kl": kl, "d": d, "gold": mean, "stderr": se, "count": np.asarray(est.count)}
    if ns.size >= 3:
        fit = fit_overoptimization(d[1:], mean[1:] - mean[0], "bon")
        peak_d = float(fit.peak_d)
        out["gao_fit"] = {"form": "d (alpha - beta d)", "alpha": float(fit.alpha),
                          "beta": float(fit.beta), "alpha_stderr": float(fit.alpha_stderr),
                          "beta_stderr": float(fit.beta_stderr), "peak_d": peak_d,
                          "peak_n": float(kl_best_of_n_inverse(peak_d ** 2))
                          if math.isfinite(peak_d) else math.inf,
                          "rms": float(fit.rms)}
    # the peak: the n whose gold is highest at its lower 95% bound (the estimates at large n
    # average few top-scored rows, the largest n's is one row's gold: their noise must not win)
    se_ok = np.where(np.isfinite(se), se, 0.0)
    i = int(np.argmax(mean - _Z95 * se_ok))
    sep = np.sqrt(np.where(np.isfinite(se), se, 0.0) ** 2
                  + (se[i] if np.isfinite(se[i]) else 0.0) ** 2)
    near = mean >= mean[i] - _Z95 * sep
    # an interior optimum: some larger n whose gold is significantly below the peak's (not only
    # the largest n, whose estimate is the gold of one top-scored row and as noisy as that)
    drops = np.flatnonzero((np.arange(ns.size) > i) & (mean < mean[i] - _Z99 * sep))
    if drops.size:
        lo_i = i
        while lo_i > 0 and near[lo_i - 1]:
            lo_i -= 1
        hi_i = i
        while hi_i < ns.size - 1 and near[hi_i + 1]:
            hi_i += 1
        out["n_star"] = int(ns[i])
        out["n_star_interval"] = [int(ns[lo_i]), int(ns[hi_i])]
        out["n_star_summary"] = (f"an interior optimum: best-of-n gold peaks at n* = {ns[i]} "
                                 f"(n from {ns[lo_i]} to {ns[hi_i]} is within 1.96 standard "
                                 f"errors of the peak), and falls significantly by n = "
                                 f"{ns[drops[0]]}")
    else:
        out["n_star"] = None
        out["n_star_interval"] = None
        out["n_star_summary"] = (f"still rising at the largest n ({ns[-1]}): no interior optimum "
                                 "is seen in these data")
    return out


def _predicted(law_v, law_x, proxy: np.ndarray, ns: np.ndarray | None, key,
               method: str, gold: np.ndarray | None = None) -> dict:
    """``E[V | U >= t]`` and best-of-``n`` predicted by the fitted laws of ``V`` and ``X``.

    ``method="sampled"`` (the default of :func:`diagnose`): from :data:`PREDICT_DRAWS` pairs
    drawn from the fitted laws (tail means of the simulated ``V`` above each ``t``; Gao's exact
    subset average on the simulated pool for best-of-``n``).  ``method="exact"``: the
    quadratures :func:`goodhart_jax.conditional_value` and :func:`goodhart_jax.best_of_n_value`
    (exact, but their compilation for fitted laws takes minutes on a CPU).
    """
    import jax
    import jax.numpy as jnp

    qs = np.quantile(proxy, [0.5, 1.0 - 1.0 / proxy.shape[0]])
    t = np.linspace(qs[0], qs[1], 40)
    out = {"t": t, "value_mean": float(law_v.mean()), "method": method}
    if gold is not None:  # the data's own E[V | U >= t] where at least 50 rows are above t
        order = np.argsort(proxy)
        ps, gs = proxy[order], gold[order]
        above = np.cumsum(gs[::-1])[::-1]
        first = np.searchsorted(ps, t, side="left")
        cnt = ps.shape[0] - first
        out["empirical_conditional_value"] = np.where(
            cnt >= MIN_K, above[np.minimum(first, ps.shape[0] - 1)] / np.maximum(cnt, 1), np.nan)
    if method == "exact":
        from goodhart_jax.conditioning import conditional_value
        from goodhart_jax.selection import best_of_n_value

        out["conditional_value"] = np.asarray(conditional_value(law_v, law_x, jnp.asarray(t)))
        if ns is not None:
            out["n"] = ns
            out["best_of_n"] = np.asarray(best_of_n_value(law_v, law_x, jnp.asarray(ns, jnp.float64)))
        return out
    from goodhart_jax.empirical_bon import empirical_best_of_n

    kv, kx = jax.random.split(key)
    v = np.asarray(law_v.sample(kv, (PREDICT_DRAWS,), jnp.float64))
    u = v + np.asarray(law_x.sample(kx, (PREDICT_DRAWS,), jnp.float64))
    order = np.argsort(u)
    us, vs = u[order], v[order]
    tail_sum = np.cumsum(vs[::-1])[::-1]
    start = np.searchsorted(us, t, side="left")
    count = PREDICT_DRAWS - start
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.where(count >= MIN_K, tail_sum[np.minimum(start, PREDICT_DRAWS - 1)]
                      / np.maximum(count, 1), np.nan)
    out["conditional_value"] = cv
    out["draws"] = PREDICT_DRAWS
    if ns is not None:
        keep = ns[ns <= PREDICT_DRAWS // 10]
        out["n"] = keep
        out["best_of_n"] = np.asarray(empirical_best_of_n(u, v, keep, bootstrap=0).mean)
    return out


# --- the whole diagnosis -----------------------------------------------------------------------

_NO_GOLD_NOTES = (
    "Proxy scores alone show the tail of U = V + X, not of its parts.",
    "Under independence, a light-tailed proxy rules out a heavy-tailed error (the sum of "
    "independent parts is at least as heavy as the heavier part), so catastrophic Goodhart "
    "(Kwa et al. 2024, Thm 5) is not expected.",
    "A heavy-tailed proxy does not say which part is heavy: a heavy error predicts catastrophic "
    "Goodhart, a heavy true value predicts the opposite; gold labels for some rows decide it.",
    "Without gold, no best-of-n curve of the true value can be estimated.",
)


def _verdict(d: Diagnosis) -> str:
    p = d.proxy
    head = (f"The proxy's right tail is {p.tail} ({p.how_sure}): xi = {p.xi:.3f} "
            f"[{p.xi_ci[0]:.3f}, {p.xi_ci[1]:.3f}], c = {p.c:.3f} [{p.c_ci[0]:.3f}, "
            f"{p.c_ci[1]:.3f}].")
    if d.error is None:
        if p.tail == "light":
            tail = " Under independence the error cannot be heavy-tailed: no catastrophic Goodhart expected."
        elif p.tail == "heavy":
            tail = (" The proxy alone cannot tell whether the heavy part is the error "
                    "(catastrophic Goodhart) or the true value; gold labels would decide it.")
        else:
            tail = " The proxy sits at the exponential boundary; gold labels would decide the regime."
        return head + tail
    e = d.error
    text = (head + f" The error X = U - V is {e.tail} ({e.how_sure}): xi = {e.xi:.3f} "
            f"[{e.xi_ci[0]:.3f}, {e.xi_ci[1]:.3f}]; the true value V is {d.value.tail}.")
    if d.regime is not None:
        text += (f" Predicted regime of E[V | U >= t]: {d.regime['regime']} "
                 f"({d.regime['reason']}).")
    if d.independence is not None and d.independence["independence_rejected"]:
        text += " Caution: V and X are dependent in the tail, which the theorems assume away."
    if d.best_of_n is not None:
        text += " " + d.best_of_n["n_star_summary"][0].upper() + d.best_of_n["n_star_summary"][1:] + "."
    return text


def diagnose(proxy, gold=None, *, groups=None, key=None, progress: bool | None = None,
             curves: str = "sampled", fits=True) -> Diagnosis:
    """Diagnose the right tail of proxy scores (and, with gold, of the error) and what it predicts.

    Math: tail threshold ``k = max(30, min(ceil(n^(2/3)), floor(n/20)))`` (``>= 50``); class from
    the GPD interval for ``xi`` and the Weibull-tail interval for ``c``: heavy if
    ``xi_lo > 0`` or ``c_hi < 1``, light if ``c_lo > 1`` or ``xi_hi < 0``, else exponential
    (undecided); with gold, ``X = U - V``, ``KL_bon(n) = log n - (n-1)/n``,
    ``R(n) - R(1) ~ d (alpha - beta d)``, ``d = sqrt(KL_bon)`` (docs/diagnose.md).

    Args:
        proxy: proxy scores, a 1-D array of at least 1000 finite numbers, not all equal (a
            float64 memory map is used without a copy; one sorted copy is made).
        gold: gold scores of the same rows (optional), the same length.
        groups: prompt-group labels per row (optional; only with gold): the best-of-``n``
            estimate is made per group.
        key: a ``jax.random`` key for the bootstraps and re-pairings (default
            ``jax.random.key(0)``: repeated calls agree).
        progress: a progress bar over the stages on stderr (``None``: only on a terminal,
            :mod:`goodhart_jax.progress`).
        curves: how the fitted laws' curves are computed (with gold): ``"sampled"`` (from
            200 000 draws of the fitted laws, seconds) or ``"exact"`` (the quadratures
            ``conditional_value`` / ``best_of_n_value``; minutes of compilation on a CPU).
        fits: the whole-law fits of the proxy scores (:func:`goodhart_jax.law_fits.compare_laws`):
            ``True`` for every family it knows, a sequence of family names for those, ``False``
            for none (each family compiles once, 5 to 10 s on a CPU).

    Returns:
        A :class:`Diagnosis`.

    Raises:
        ValueError: ``proxy`` (or ``gold``, ``groups``) empty, not 1-D, not finite (the message
            names the first bad index and the count), constant, too short for 50 points above
            the tail threshold; ``gold`` or ``groups`` of another length; ``groups`` without
            ``gold``.  Each names the argument.

    Example:
        >>> import numpy as np, goodhart_jax as gj
        >>> rng = np.random.default_rng(1)
        >>> v = rng.standard_normal(5_000)
        >>> d = gj.diagnose(v + rng.standard_normal(5_000), v, fits=False)
        >>> d.proxy.tail, d.error.tail, d.regime["regime"] != "catastrophic"
        ('light', 'light', True)
    """
    import jax

    from goodhart_jax import progress as progress_mod

    x = _vector("proxy", proxy)
    n = x.shape[0]
    g = None
    if gold is not None:
        g = _vector("gold", gold)
        if g.shape[0] != n:
            raise ValueError(f"gold must have one score per proxy row: {g.shape[0]} gold scores "
                             f"for {n} proxy scores")
    if groups is not None:
        if g is None:
            raise ValueError("groups: prompt groups need gold scores (they only enter best-of-n)")
        labels = np.asarray(groups)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"groups must have one label per row: got shape {labels.shape} for "
                             f"{n} rows")
    _tail_k(n, "proxy")
    if curves not in ("sampled", "exact"):
        raise ValueError(f"curves must be 'sampled' or 'exact', got {curves!r}")
    if key is None:
        key = jax.random.key(0)
    elif not isinstance(key, jax.Array):
        raise ValueError(f"key must be a jax.random key (e.g. jax.random.key(0)), got {key!r}")
    keys = jax.random.split(key, 6)
    stages = 2 if g is None else 9  # two per tail, then independence, best-of-n, curves
    bar = None
    if progress_mod.should_show(progress, progress_mod.AUTO_MIN_SAMPLES):
        bar = progress_mod.Progress(stages, unit="stages")
    done = [0]

    def tick():
        done[0] += 1
        if bar is not None:
            bar.update(done[0])

    try:
        rep = _tail_report("proxy", x, keys[0], tick)
        diag = Diagnosis(n=n, proxy=rep)
        if g is None:
            diag.notes = list(_NO_GOLD_NOTES)
        else:
            e = x - g
            diag.value = _tail_report("value", g, keys[1], tick)
            diag.error = _tail_report("error", e, keys[2], tick)
            diag.independence = _independence(g, e, keys[3])
            tick()
            from goodhart_jax.empirical import Empirical
            from goodhart_jax.regimes import predicted_regime

            law_v, law_x = Empirical.fit(g), Empirical.fit(e)
            pred = predicted_regime(law_v, law_x)
            diag.regime = {
                "regime": pred.regime, "limit": pred.limit, "reason": pred.reason,
                "value_law_xi": float(law_v.upper_tail.xi),
                "error_law_xi": float(law_x.upper_tail.xi),
                "error_law_xi_ci": list(law_x.upper_tail.xi_ci),
                "sure": diag.error.how_sure == "sure" and not diag.independence[
                    "independence_rejected"],
                "note": ("on laws fitted to V and X (Empirical.fit: GPD tails); as sure as the "
                         "error's tail class, and only under independence"),
            }
            if law_v.upper_tail.xi < 0 and pred.regime == "bounded":
                diag.regime["note"] += (
                    "; V's fitted tail is bounded (xi < 0, as a normal's often fits at finite "
                    "thresholds), so a light X gives 'bounded' at V's fitted end where an "
                    "unbounded V would give 'unbounded' (Thm 6)")
            diag.best_of_n = _best_of_n(x, g, groups, keys[4])
            tick()
            diag.curves = _predicted(law_v, law_x, x, diag.best_of_n["n"], keys[5], curves, g)
            tick()
            diag.notes = [diag.independence["summary"], diag.best_of_n["n_star_summary"]]
        if fits is True:
            diag.fits = compare_laws(x)
        elif fits:
            diag.fits = compare_laws(x, families=tuple(fits))
        diag.verdict = _verdict(diag)
    finally:
        if bar is not None:
            bar.close()
    return diag

