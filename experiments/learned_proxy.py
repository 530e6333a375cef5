"""Learned proxies: extremal Goodhart in a synthetic RLHF lab (Gao, Schulman & Hilton 2022).

World (docs/design.md, section E): a gold reward ``r*`` on ``R^dim`` (a fixed random tanh MLP,
standardised under ``pi0 = N(0, I)``); proxy reward models (GELU MLPs of several widths)
trained with optax on ``N`` points of ``pi0`` labelled by gold plus noise; policies pushed on
the proxy by best-of-n under ``pi0`` (``KL_bon`` exact) and by an optax-trained Gaussian
policy on ``E_pi[r_proxy] - beta KL(pi || pi0)``; gold tracked against ``d = sqrt(KL)``.
Everything runs in :func:`goodhart_jax.lab.lab_sweep` (one compiled program, configurations
sharded over the devices by the streaming engine).

1. **Scaling.**  Gold against ``d`` at several proxy widths and label counts, Gao et al.'s
   forms fitted per seed (:func:`goodhart_jax.fit_overoptimization`; ``d (alpha - beta d)``
   for best-of-n over ``n = 1..bon_max``, ``d (alpha - beta log d)`` along the trajectory of
   the policy with the smallest ``beta``; seed means taken at equal ``d``), the coefficients'
   mean +- 2 standard errors across seeds against width and label count.  Proxies are trained
   for ``train_steps`` full-batch AdamW steps (early stopping: 1000 steps overfit the widest
   proxies, correlation with gold on ``pi0`` 0.81 instead of 0.95 at ``N = 2048``).
2. **Label noise tails.**  The same sweep with heavy-tailed label noise of the same variance
   (default t(2.5) against normal): the right tail of the learned proxy's error under ``pi0``
   (Hill estimates) and the gold curves.
3. **Ensembles** (Coste et al. 2023): ``ensemble`` proxies per configuration; best-of-n and
   policies against the first member alone, the mean, the minimum and ``mean - lam var``; where
   each curve peaks, in KL.

Both sweeps are saved as they finish (:func:`goodhart_jax.sweeps.sweep`), so an interrupted run
resumes.  ``--quick`` shrinks every size left at its default.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import goodhart_jax as gj
from goodhart_jax import lab, results, sweeps
from goodhart_jax.validation import check_param, check_positive_int

DEFAULTS = {"dim": 8, "gold_width": 64, "gold_depth": 2, "widths": (4, 16, 64),
            "label_counts": (128, 512, 2048), "betas": (0.03, 0.1, 0.3, 1.0), "seeds": 5,
            "depth": 2, "noise": "normal(0, 0.5)",
            "heavy_noise": "student_t(df=2.5, scale=0.2236068)", "ensemble": 3, "lam": 1.0,
            "train_steps": 300, "policy_steps": 300, "policy_learning_rate": 0.05,
            "policy_samples": 128, "bon_max": 4096, "bon_draws": 256, "labels": "regression"}
QUICK = {"widths": (4, 16), "label_counts": (128, 512), "betas": (0.03, 0.3), "seeds": 3,
         "train_steps": 200, "policy_steps": 150, "policy_learning_rate": 0.1,
         "policy_samples": 32, "bon_max": 512, "bon_draws": 64}
OBJECTIVES = ("single", "mean", "min", "uwo")


def _mean_se(a: np.ndarray, axis: int = 0):
    a = np.asarray(a, float)
    s = a.shape[axis]
    se = np.std(a, axis=axis, ddof=1) / math.sqrt(s) if s > 1 else np.full(
        np.delete(a.shape, axis), np.nan)
    return np.mean(a, axis=axis), se


def _fit_seeds(d: np.ndarray, gold: np.ndarray, form: str) -> dict:
    """Gao et al.'s form fitted to each seed's curve; mean and standard error across seeds."""
    fits = [gj.fit_overoptimization(d[s], gold[s], form) for s in range(d.shape[0])]
    alpha = np.array([float(f.alpha) for f in fits])
    beta = np.array([float(f.beta) for f in fits])
    peak = np.array([float(f.peak_d) for f in fits])
    am, ase = _mean_se(alpha)
    bm, bse = _mean_se(beta)
    return {"form": form, "alpha": alpha, "beta": beta, "peak_d": peak,
            "alpha_mean": float(am), "alpha_se": float(ase), "beta_mean": float(bm),
            "beta_se": float(bse), "peak_d_median": float(np.median(peak))}


def _fit_record(d, gold, form) -> dict:
    f = gj.fit_overoptimization(d, gold, form)
    return {"form": form, "alpha": float(f.alpha), "beta": float(f.beta),
            "peak_d": float(f.peak_d), "rms": float(f.rms)}


def _bon_curve(res: dict, w: int, n: int, o: int, label: str) -> tuple[dict, dict]:
    d = np.sqrt(np.asarray(res["kl_bon"], float))
    gold = np.asarray(res["bon_gold"], float)[:, w, n, o, :] - res["gold_base"]  # (S, L)
    m, se = _mean_se(gold)
    curve = {"label": label, "d": d, "gold": m, "gold_se": se, "fit": _fit_record(d, m, "bon")}
    return curve, _fit_seeds(np.broadcast_to(d, gold.shape), gold, "bon")


def _rl_curve(res: dict, w: int, n: int, o: int, b: int, label: str) -> tuple[dict, dict]:
    """A policy's trajectory: gold against d, averaged over seeds at equal d (not equal step).

    Each seed's trajectory is interpolated on a common grid of d (its running maximum, so that
    the abscissa is monotone) up to the smallest final d over the seeds; the fits use each
    seed's raw trajectory.
    """
    kl = np.asarray(res["kl"], float)[:, w, n, o, b, :]  # (S, T + 1)
    gold = np.asarray(res["gold"], float)[:, w, n, o, b, :] - res["gold_base"]
    d = np.sqrt(np.maximum(kl, 0.0))
    d_mono = np.maximum.accumulate(d, axis=1)
    grid = np.linspace(0.0, float(d_mono[:, -1].min()), 100)
    g = np.stack([np.interp(grid, d_mono[s], gold[s]) for s in range(d.shape[0])])
    m, se = _mean_se(g)
    curve = {"label": label, "d": grid, "gold": m, "gold_se": se,
             "fit": _fit_record(grid, m, "rl")}
    return curve, _fit_seeds(d, gold, "rl")


def _hill(x: np.ndarray, k: int) -> float:
    """Hill's estimate of the extreme-value index from the top ``k`` of ``x`` (``x > 0``)."""
    top = np.sort(x[x > 0])[::-1]
    k = min(k, top.size - 1)
    if k < 2:
        return float("nan")
    return float(np.mean(np.log(top[:k])) - np.log(top[k]))


def _tail(errors: np.ndarray) -> dict:
    """Right tail of centred errors: Hill index (top 2.5%), excess kurtosis, survival curve."""
    e = errors - np.median(errors, axis=-1, keepdims=True)
    e = e.reshape(-1)
    k = max(10, e.size // 40)
    pos = np.sort(e[e > 0])
    sf = (pos.size - np.arange(pos.size)) / e.size  # P(e > x) at the sorted positive x
    z = (e - e.mean()) / e.std()
    return {"hill_xi": _hill(e, k), "hill_k": k, "excess_kurtosis": float(np.mean(z ** 4) - 3.0),
            "sd": float(np.std(e)), "x": pos[::max(1, pos.size // 300)],
            "sf": sf[::max(1, pos.size // 300)]}


def _peak(curve: dict) -> dict:
    g = np.asarray(curve["gold"], float)
    i = int(np.nanargmax(g))
    d = float(np.asarray(curve["d"], float)[i])
    return {"d": d, "kl": d * d, "gold": float(g[i]), "final_gold": float(g[-1]),
            "final_kl": float(np.asarray(curve["d"], float)[-1] ** 2),
            "at_end": bool(i == g.size - 1)}


def _claim(text: str, holds: bool, detail: str) -> dict:
    return {"claim": text, "holds": bool(holds), "detail": detail}


def main(quick: bool, out: Path, seed: int, *, dim: int = 8, gold_width: int = 64,
         gold_depth: int = 2, widths=(4, 16, 64), label_counts=(128, 512, 2048),
         betas=(0.03, 0.1, 0.3, 1.0), seeds: int = 5, depth: int = 2,
         noise: str = "normal(0, 0.5)", heavy_noise: str = "student_t(df=2.5, scale=0.2236068)",
         ensemble: int = 3, lam: float = 1.0, train_steps: int = 300, policy_steps: int = 300,
         policy_learning_rate: float = 0.05, policy_samples: int = 128, bon_max: int = 4096,
         bon_draws: int = 256,
         labels: str = "regression") -> dict:
    """Write ``learned_proxy.png``, ``learned_proxy_noise.png``, ``learned_proxy_ensembles.png``
    and ``numbers.json``; return the numbers."""
    p = {"dim": dim, "gold_width": gold_width, "gold_depth": gold_depth, "widths": widths,
         "label_counts": label_counts, "betas": betas, "seeds": seeds, "depth": depth,
         "noise": noise, "heavy_noise": heavy_noise, "ensemble": ensemble, "lam": lam,
         "train_steps": train_steps, "policy_steps": policy_steps,
         "policy_learning_rate": policy_learning_rate, "policy_samples": policy_samples,
         "bon_max": bon_max, "bon_draws": bon_draws, "labels": labels}
    if quick:  # shrink what was left at its default
        p.update({k: v for k, v in QUICK.items() if p[k] == DEFAULTS[k]})
    owner = "learned_proxy"
    check_positive_int("dim", p["dim"], owner=owner)
    check_positive_int("gold_width", p["gold_width"], owner=owner)
    check_positive_int("gold_depth", p["gold_depth"], owner=owner)
    check_positive_int("seeds", p["seeds"], owner=owner)
    bon_max = check_positive_int("bon_max", p["bon_max"], minimum=2, owner=owner)
    check_positive_int("ensemble", p["ensemble"], owner=owner)
    check_param("lam", p["lam"], lo=0.0, owner=owner)
    for name in ("widths", "label_counts"):  # before any work (the sweep checks them again)
        vals = np.atleast_1d(np.asarray(p[name], dtype=float))
        if vals.size == 0 or np.any(vals < 1) or np.any(vals != np.round(vals)):
            raise ValueError(f"{owner}: {name} must be integers >= 1, got {p[name]!r}")
    check_param("betas", p["betas"], lo=0.0, lo_open=True, owner=owner)
    for name in ("noise", "heavy_noise"):
        law = gj.parse_dist(p[name])
        if p["labels"] == "regression" and not lab.has_finite_variance(law):
            raise ValueError(f"{owner}: {name} must have a finite variance (least-squares "
                             f"training), got {law.spec}")
    bon_n = tuple(sorted({int(v) for v in np.unique(np.round(np.geomspace(1, bon_max, 13)))}))

    key = jax.random.key(seed)
    gold = lab.random_gold(jax.random.fold_in(key, 0), p["dim"], width=p["gold_width"],
                           depth=p["gold_depth"], dtype=jnp.float32)
    common = {k: p[k] for k in ("seeds", "widths", "label_counts", "betas", "depth", "labels",
                                "ensemble", "lam", "train_steps", "policy_steps",
                                "policy_learning_rate", "policy_samples", "bon_draws")}
    common.update(objectives=OBJECTIVES, bon_n=bon_n, dtype=jnp.float32)

    def run_part(part: str) -> dict:
        law = p["noise"] if part == "light" else p["heavy_noise"]
        res = lab.lab_sweep(jax.random.fold_in(key, 1), gold,
                            noise=law if p["labels"] == "regression" else None, **common)
        return {k: (list(v) if k == "objectives" else v) for k, v in res._asdict().items()}

    fingerprint = {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()},
                   "seed": seed, "quick": quick, "bon_n": list(bon_n)}
    light, heavy = sweeps.sweep(out, "learned_proxy", fingerprint, ["light", "heavy"], run_part,
                                label="sweeps")
    widths_a = np.asarray(light["widths"], int)
    counts_a = np.asarray(light["label_counts"], int)
    betas_a = np.asarray(light["betas"], float)
    W, N = widths_a.size, counts_a.size
    b_rl = int(np.argmin(betas_a))
    o_single = 0
    numbers: dict = {
        "source": "Gao, Schulman & Hilton (2022); Coste et al. (2023); Kwa et al. (2024)",
        "params": {**fingerprint}, "bon_n": list(bon_n), "kl_bon": light["kl_bon"],
        "gold_base": light["gold_base"], "rl_beta": float(betas_a[b_rl]),
        "probe_corr_light": light["probe_corr"], "train_loss_light": light["train_loss"],
    }

    # --- 1. scaling with proxy size and label count -------------------------------------------
    panels = {"by_width": {"bon": [], "rl": []}, "by_count": {"bon": [], "rl": []},
              "coef_width": [], "coef_count": [],
              "width_note": f"N = {counts_a[-1]} labels, widths {widths_a.tolist()}",
              "count_note": f"width {widths_a[-1]}, label counts {counts_a.tolist()}"}
    fits = {"by_width": [], "by_count": []}
    for w in range(W):
        for kind, fn in (("bon", _bon_curve), ("rl", _rl_curve)):
            args = (light, w, N - 1, o_single) + ((b_rl,) if kind == "rl" else ())
            curve, fs = fn(*args, label=f"width {widths_a[w]}")
            panels["by_width"][kind].append(curve)
            row = {"width": int(widths_a[w]), "label_count": int(counts_a[-1]), **fs}
            fits["by_width"].append(row)
            panels["coef_width"].append(row)
    for n in range(N):
        for kind, fn in (("bon", _bon_curve), ("rl", _rl_curve)):
            args = (light, W - 1, n, o_single) + ((b_rl,) if kind == "rl" else ())
            curve, fs = fn(*args, label=f"N = {counts_a[n]}")
            panels["by_count"][kind].append(curve)
            row = {"width": int(widths_a[-1]), "label_count": int(counts_a[n]), **fs}
            fits["by_count"].append(row)
            panels["coef_count"].append(row)
    numbers["fits"] = fits
    numbers["curves"] = {k: panels[k] for k in ("by_width", "by_count")}
    # every policy's end point (all betas), seed means
    kl_end = np.asarray(light["kl"], float)[..., o_single, :, -1].mean(0)  # (W, N, B)
    gold_end = np.asarray(light["gold"], float)[..., o_single, :, -1].mean(0) - light["gold_base"]
    numbers["policy_end"] = {"kl": kl_end, "gold": gold_end, "betas": betas_a}

    def trend(rows, key, form):
        sel = sorted((r for r in rows if r["form"] == form), key=lambda r: r[key])
        return [r["beta_mean"] for r in sel], [r["beta_se"] for r in sel]

    comparison = []
    for key_, what in (("by_width", "larger proxies"), ("by_count", "more labels")):
        xkey = "width" if key_ == "by_width" else "label_count"
        for form in ("bon", "rl"):
            m, se = trend(fits[key_], xkey, form)
            holds = m[-1] < m[0] - 2.0 * math.hypot(se[-1], se[0])
            comparison.append(_claim(
                f"{what} overoptimise less: smaller fitted beta ({form})", holds,
                f"beta from {m[0]:.3g} ± {2 * se[0]:.2g} to {m[-1]:.3g} ± {2 * se[-1]:.2g} "
                "(mean ± 2 se over seeds)"))
    bon_peaks = [r["peak_d_median"] for r in fits["by_width"] if r["form"] == "bon"]
    d_max = float(np.sqrt(np.asarray(light["kl_bon"], float)[-1]))
    comparison.append(_claim(
        "best-of-n gold turns over within the range of n", any(pk <= d_max for pk in bon_peaks),
        f"fitted peaks d* (median over seeds) {[round(v, 2) for v in bon_peaks]} against "
        f"d_max = {d_max:.2f} (n = {bon_n[-1]})"))
    numbers["gao_comparison"] = comparison

    # --- 2. light against heavy-tailed label noise --------------------------------------------
    tails = {}
    noise_data = {"tails": [], "bon": [], "rl": [],
                  "note": f"width {widths_a[-1]}; N = {counts_a[0]} and {counts_a[-1]}"}
    for j, (part, res, law_spec) in enumerate((("light", light, p["noise"]),
                                              ("heavy", heavy, p["heavy_noise"]))):
        law = gj.parse_dist(law_spec)
        for n in (0, N - 1):
            err = np.asarray(res["probe_error"], float)[:, W - 1, n, :]
            t = _tail(err)
            tails[f"{part}_N{counts_a[n]}"] = t
            if n == N - 1:
                noise_data["tails"].append({"label": f"proxy error, {law.spec} labels "
                                            f"(N={counts_a[n]}): Hill xi {t['hill_xi']:.2f}",
                                            "x": t["x"], "sf": t["sf"], "color": f"C{j}"})
        eps = np.asarray(res["label_error"], float)  # the labels' own noise, y - r*(x)
        t = _tail(eps)
        tails[f"{part}_label_noise"] = t
        noise_data["tails"].append({"label": f"label noise {law.spec}: Hill xi {t['hill_xi']:.2f}",
                                    "x": t["x"], "sf": t["sf"], "color": f"C{j}", "ls": ":"})
        for n, ls in ((0, "N0"), (N - 1, "N1")):
            c, fs = _bon_curve(res, W - 1, n, o_single, f"{part} noise, N = {counts_a[n]}")
            c["color"] = f"C{2 * j + (n > 0)}"
            noise_data["bon"].append(c)
            c, fs = _rl_curve(res, W - 1, n, o_single, b_rl, f"{part} noise, N = {counts_a[n]}")
            c["color"] = f"C{2 * j + (n > 0)}"
            noise_data["rl"].append(c)
    noise_numbers = {"tails": {k: {kk: vv for kk, vv in v.items() if kk not in ("x", "sf")}
                               for k, v in tails.items()}}
    for kind in ("bon", "rl"):
        noise_numbers[kind] = {c["label"]: _peak(c) for c in noise_data[kind]}
    numbers["noise"] = noise_numbers

    # --- 3. ensembles -----------------------------------------------------------------------------
    ens = {"bon": [], "rl": [],
           "note": f"k = {p['ensemble']} proxies, width {widths_a[-1]}, N = {counts_a[0]}, "
                   f"lam = {p['lam']:g}; policy beta = {betas_a[b_rl]:g}"}
    names = {"single": "one proxy", "mean": "mean of k", "min": "min of k (worst case)",
             "uwo": f"mean - {p['lam']:g} var (uncertainty-weighted)"}
    ens_numbers: dict = {}
    for o, obj in enumerate(OBJECTIVES):
        for kind, fn in (("bon", _bon_curve), ("rl", _rl_curve)):
            args = (light, W - 1, 0, o) + ((b_rl,) if kind == "rl" else ())
            c, _ = fn(*args, label=names[obj])
            c["peak"] = _peak(c)
            ens[kind].append(c)
            ens_numbers.setdefault(kind, {})[obj] = c["peak"]
    for kind in ("bon", "rl"):
        base = ens_numbers[kind]["single"]
        for obj in OBJECTIVES:
            r = ens_numbers[kind][obj]
            r["peak_kl_delay"] = r["kl"] - base["kl"]
            r["peak_gold_gain"] = r["gold"] - base["gold"]
    numbers["ensembles"] = ens_numbers

    from goodhart_jax.plots.lab import ensembles_figure, learned_proxy_figure, noise_tails_figure

    world = (f"gold: random tanh MLP on R^{p['dim']} (width {p['gold_width']}, depth "
             f"{p['gold_depth']}); proxies: GELU MLPs, depth {p['depth']}; "
             f"{p['seeds']} seeds; labels {p['noise']}")
    results.save_figure(out / "learned_proxy.png", learned_proxy_figure(
        panels, title=f"Learned proxies pushed by best-of-n and by optax — {world}"))
    results.save_figure(out / "learned_proxy_noise.png", noise_tails_figure(
        noise_data, title="Label noise with light vs heavy tails (equal variance)"))
    results.save_figure(out / "learned_proxy_ensembles.png", ensembles_figure(
        ens, title="Ensembles of proxies (Coste et al. 2023): which objective delays the collapse"))
    results.save_json(out / "numbers.json", numbers)
    return numbers
