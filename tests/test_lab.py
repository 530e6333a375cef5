"""The learned-proxy lab (goodhart_jax.lab) against independent closed forms.

References, never the code under test: linear gold ``w*.x`` and linear proxy ``w.x`` under
``pi0 = N(0, I)`` give the KL-regularised optimum ``N(w / beta, I)`` with gold ``w*.w / beta``
and ``KL = |w|^2 / (2 beta^2)`` (Gaussian algebra, written out below in NumPy); best-of-n gold
``(w*.w / |w|) e_n`` with ``e_n = ∫ n x phi(x) Phi(x)^(n-1) dx`` by ``scipy.integrate.quad``;
least squares on clean linear labels recovers ``w*``; tail exponents of the seven families.
"""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from goodhart_jax import experiments
from goodhart_jax import lab
from goodhart_jax.results import load_json

ROOT = Path(__file__).resolve().parents[1]
W_STAR = np.array([1.0, -2.0, 0.5, 0.0, 1.5])
W_PROXY = np.array([1.5, -1.0, -0.5, 1.0, 1.0])


def e_n(n: int) -> float:
    """E[max of n iid N(0, 1)] = ∫ n x phi(x) Phi(x)^(n-1) dx (SciPy quadrature)."""
    val, _ = integrate.quad(lambda x: n * x * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1),
                            -12.0, 12.0, points=[0.0, 1.0, 2.0, 3.0], epsabs=1e-14,
                            epsrel=1e-13, limit=400)
    return val


def _cos(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# --- 1. the world: proxies recover a linear gold ----------------------------------------------

def test_trained_proxies_recover_a_linear_gold_from_clean_labels():
    gold = lab.linear_gold(W_STAR)
    d = W_STAR.size
    labels = lab.regression_labels(jax.random.key(0), gold, 512)
    # a linear proxy: least squares on clean labels is w* itself
    fit = lab.train_proxy(jax.random.key(1), lab.reward_linear(d), labels, steps=600,
                          learning_rate=0.05)
    assert 1.0 - _cos(fit.params.weights[0], W_STAR) < 1e-3
    assert float(fit.loss[-1]) < 1e-8 < float(fit.loss[0])
    # Bradley-Terry with clean (soft) preferences, temperature 1: r(a) - r(b) = w*.(a - b)
    pref = lab.preference_labels(jax.random.key(4), gold, 2048, soft=True)
    fit = lab.train_proxy(jax.random.key(5), lab.reward_linear(d), pref, steps=800,
                          learning_rate=0.05)
    assert 1.0 - _cos(fit.params.weights[0], W_STAR) < 1e-3
    np.testing.assert_allclose(fit.params.weights[0], W_STAR, atol=2e-2)


def test_padded_units_stay_zero_and_the_network_is_the_narrow_one():
    gold = lab.linear_gold([1.0, -1.0, 0.5])
    labels = lab.regression_labels(jax.random.key(1), gold, 64, noise="normal(0, 0.1)")
    wide = lab.reward_mlp(3, 8, 2)
    fit = lab.train_proxy(jax.random.key(2), wide, labels, width=3, steps=200)
    w, b = fit.params
    assert not np.any(np.asarray(w[0])[:, 3:]) and not np.any(np.asarray(w[1])[3:, :])
    assert not np.any(np.asarray(w[1])[:, 3:]) and not np.any(np.asarray(w[2])[3:])
    narrow = lab.reward_mlp(3, 3, 2)
    sliced = lab.MLPParams((w[0][:, :3], w[1][:3, :3], w[2][:3]), (b[0][:3], b[1][:3], b[2]))
    x = jax.random.normal(jax.random.key(3), (50, 3))
    np.testing.assert_allclose(wide.apply(fit.params, x), narrow.apply(sliced, x), rtol=1e-13)


@pytest.mark.parametrize("spec, finite", [
    ("normal(0, 2)", True), ("student_t(df=3)", True), ("student_t(df=2.5)", True),
    ("student_t(df=2)", False), ("student_t(df=1)", False), ("pareto(2.5)", True),
    ("pareto(2)", False), ("levy", False), ("lognormal(2)", True), ("exponential", True),
    ("gennorm(0.5)", True),
])
def test_finite_variance_from_the_tails(spec, finite):
    assert lab.has_finite_variance(spec) is finite


# --- 2, 3. pushing on the proxy: the linear closed forms --------------------------------------

def test_gaussian_policy_converges_to_the_closed_form():
    """Linear gold and proxy: N(w / beta, I), gold w*.w / beta, KL |w|^2 / (2 beta^2), 1e-6."""
    gold, proxy = lab.linear_gold(W_STAR), lab.linear_gold(W_PROXY)
    betas = np.array([0.5, 2.0, 5.0])

    def one(beta):
        return lab.optimize_policy(jax.random.key(0), proxy, gold, beta=beta, steps=2000,
                                   learning_rate=0.1)

    run = jax.jit(jax.vmap(one))(jnp.asarray(betas))
    mean = np.asarray(run.policy.mean)
    np.testing.assert_allclose(mean, W_PROXY[None, :] / betas[:, None], rtol=0, atol=1e-6)
    scale = np.asarray(jax.vmap(lab.gaussian_scale_tril)(run.policy))
    np.testing.assert_allclose(scale, np.broadcast_to(np.eye(5), scale.shape), atol=1e-6)
    np.testing.assert_allclose(run.trace.gold[:, -1], W_STAR @ W_PROXY / betas, atol=1e-6)
    np.testing.assert_allclose(run.trace.kl[:, -1], W_PROXY @ W_PROXY / (2 * betas ** 2),
                               atol=1e-6)
    np.testing.assert_allclose(run.trace.proxy[:, -1], W_PROXY @ W_PROXY / betas, atol=1e-6)
    # the trace starts at pi0 and is recorded at every step
    assert run.trace.kl.shape == (3, 2001) and np.all(np.asarray(run.trace.kl[:, 0]) == 0)
    opt = lab.linear_policy_optimum(W_PROXY, W_STAR, 2.0)
    np.testing.assert_allclose([float(opt.gold), float(opt.kl)],
                               [W_STAR @ W_PROXY / 2.0, W_PROXY @ W_PROXY / 8.0], rtol=1e-12)


def test_best_of_n_matches_the_closed_form_within_monte_carlo_error():
    gold, proxy = lab.linear_gold(W_STAR), lab.linear_gold(W_PROXY)
    ns = [1, 2, 8, 64]
    bon = lab.proxy_best_of_n(jax.random.key(7), proxy, gold, ns, num_draws=20_000)
    ref = np.array([W_STAR @ W_PROXY / np.linalg.norm(W_PROXY) * e_n(n) for n in ns])
    z = (np.asarray(bon.gold.mean) - ref) / np.asarray(bon.gold.stderr)
    assert np.all(np.abs(z) < 4.5), z
    np.testing.assert_allclose(bon.kl, [math.log(n) - (n - 1) / n for n in ns], rtol=1e-12)
    # the selecting proxy's own score is |w| e_n
    np.testing.assert_allclose(bon.proxy, np.linalg.norm(W_PROXY) * np.array([e_n(n) for n in ns]),
                               atol=5 * float(np.linalg.norm(W_PROXY)) / math.sqrt(20_000))


def test_best_of_n_closed_form_through_best_of_n_value():
    ns = np.array([2.0, 16.0, 64.0])
    got = np.asarray(lab.linear_best_of_n_gold(W_STAR, W_PROXY, ns))
    ref = np.array([W_STAR @ W_PROXY / np.linalg.norm(W_PROXY) * e_n(int(n)) for n in ns])
    np.testing.assert_allclose(got, ref, rtol=1e-8)


def test_ensemble_objectives():
    model = lab.reward_linear(2)
    params = lab.MLPParams((jnp.array([[1.0, 0.0], [3.0, 1.0], [2.0, -1.0]]),), (jnp.zeros(3),))
    x = jnp.array([[1.0, 1.0]])
    r = np.array([1.0, 4.0, 1.0])
    expect = {"single": r[0], "mean": r.mean(), "min": r.min(), "uwo": r.mean() - 0.5 * r.var()}
    for objective, v in expect.items():
        got = float(lab.Ensemble(model, params, objective, 0.5)(x)[0])
        assert got == pytest.approx(v, rel=1e-12), objective


# --- 7. bad input ------------------------------------------------------------------------------

GOLD3 = lab.linear_gold([1.0, 0.0, 0.0])


@pytest.mark.parametrize("call, needle", [
    (lambda: lab.reward_mlp(3, width=0), "width"),
    (lambda: lab.reward_mlp(3, width=4, depth=-1), "depth"),
    (lambda: lab.lab_sweep(jax.random.key(0), GOLD3, widths=[4, 0]), "widths"),
    (lambda: lab.lab_sweep(jax.random.key(0), GOLD3, widths=[2.5]), "widths"),
    (lambda: lab.lab_sweep(jax.random.key(0), GOLD3, label_counts=[-3]), "label_counts"),
    (lambda: lab.lab_sweep(jax.random.key(0), GOLD3, betas=[0.1, 0.0]), "betas"),
    (lambda: lab.lab_sweep(jax.random.key(0), GOLD3, noise="student_t(df=2)"), "finite variance"),
    (lambda: lab.lab_sweep(jax.random.key(0), GOLD3, noise="levy"), "finite variance"),
    (lambda: lab.lab_sweep(jax.random.key(0), GOLD3, objectives=["max"]), "objectives"),
    (lambda: lab.optimize_policy(jax.random.key(0), GOLD3, GOLD3, beta=-1.0), "beta"),
    (lambda: lab.optimize_policy(jax.random.key(0), lab.linear_gold([1.0, 2.0]), GOLD3,
                                 beta=1.0), "dimension"),
    (lambda: lab.train_proxy(jax.random.key(0), lab.reward_mlp(2, 4),
                             lab.regression_labels(jax.random.key(0), GOLD3, 8)), "dimension"),
    (lambda: lab.proxy_best_of_n(jax.random.key(0), lab.linear_gold([1.0, 2.0]), GOLD3, [1, 2]),
     "dimension"),
    (lambda: lab.proxy_best_of_n(jax.random.key(0), GOLD3, GOLD3, [4, 2]), "increasing"),
    (lambda: lab.linear_policy_optimum([1.0, 2.0], [1.0, 0.0, 0.0], 1.0), "dimension"),
    (lambda: lab.regression_labels(jax.random.key(0), GOLD3, 0), "num"),
])
def test_bad_input_names_the_argument(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()


@pytest.mark.parametrize("setting, needle", [
    ("widths=[0, 4]", "widths must be integers >= 1"),
    ("heavy_noise=student_t(df=2)", "heavy_noise must have a finite variance"),
])
def test_cli_bad_input_one_line_exit_2(setting, needle, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "goodhart_jax.cli", "run", "learned_proxy",
                           "--quick", "--set", setting, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("goodhart-jax: error:")]
    assert len(errors) == 1 and errors[0] == lines[-1] and needle in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


# --- 4. the experiment, tiny, and its resumable sweep -------------------------------------------

TINY = {"dim": 3, "gold_width": 8, "widths": [2, 4], "label_counts": [16, 32],
        "betas": [0.1, 1.0], "seeds": 2, "train_steps": 20, "policy_steps": 10,
        "policy_samples": 8, "bon_max": 8, "bon_draws": 8, "ensemble": 2}


def test_learned_proxy_resumes_and_writes_its_files(tmp_path, monkeypatch):
    """Interrupted after its first sweep (light noise), the run resumes from the saved point."""
    real, calls = lab.lab_sweep, []

    def interrupted(*args, **kwargs):
        calls.append(kwargs["noise"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # the second sweep (heavy noise) never finishes
        return real(*args, **kwargs)

    monkeypatch.setattr(lab, "lab_sweep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        experiments.run("learned_proxy", quick=True, out=tmp_path, seed=0, params=TINY)
    saved = load_json(tmp_path / ".partial" / "learned_proxy.json")
    assert list(saved["points"]) == ['"light"']

    calls.clear()
    monkeypatch.setattr(lab, "lab_sweep", lambda *a, **k: calls.append(k["noise"]) or real(*a, **k))
    num = experiments.run("learned_proxy", quick=True, out=tmp_path, seed=0, params=TINY)
    assert calls == ["student_t(df=2.5, scale=0.2236068)"]  # only the missing point
    for name in ("learned_proxy.png", "learned_proxy_noise.png", "learned_proxy_ensembles.png",
                 "numbers.json", "manifest.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert not (tmp_path / ".partial").exists()
    saved = load_json(tmp_path / "numbers.json")
    assert saved["gold_base"] == num["gold_base"]
    assert {r["width"] for r in saved["fits"]["by_width"]} == {2, 4}
    assert {r["form"] for r in saved["fits"]["by_width"]} == {"bon", "rl"}
    assert set(saved["ensembles"]["rl"]) == {"single", "mean", "min", "uwo"}
    assert saved["kl_bon"][0] == 0.0 and len(saved["kl_bon"]) == len(saved["bon_n"])


# --- the layering rule ------------------------------------------------------------------------

def test_lab_imports_no_private_names_from_other_modules():
    files = sorted((ROOT / "goodhart_jax" / "lab").glob("*.py")) + [
        ROOT / "goodhart_jax" / "plots" / "lab.py", ROOT / "experiments" / "learned_proxy.py",
        ROOT / "experiments" / "bench_lab.py"]
    bad = []
    for f in files:
        tree = ast.parse(f.read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("goodhart_jax"):
                own = f.parent.name == "lab" and node.module.startswith("goodhart_jax.lab")
                for alias in node.names:
                    if alias.name.startswith("_") and not own:
                        bad.append(f"{f.name}: from {node.module} import {alias.name}")
                    modules.add(alias.asname or alias.name)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("goodhart_jax"):
                        modules.add((alias.asname or alias.name).split(".")[0])
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                    and node.value.id in modules):
                bad.append(f"{f.name}: {node.value.id}.{node.attr}")
    assert not bad, bad


# --- slow: sharding, sampled preferences, the full quick run ----------------------------------

@pytest.mark.slow
def test_sweep_is_the_same_on_one_and_two_devices(tmp_path):
    script = (
        "import sys, jax, numpy as np\n"
        "jax.config.update('jax_num_cpu_devices', int(sys.argv[1]))\n"
        "from goodhart_jax import lab\n"
        "gold = lab.random_gold(jax.random.key(0), 3, width=8)\n"
        "res = lab.lab_sweep(jax.random.key(1), gold, seeds=2, widths=[2, 4], "
        "label_counts=[8, 16], betas=[0.5], train_steps=5, policy_steps=4, policy_samples=4, "
        "bon_n=[1, 4], bon_draws=4, probe_samples=8, noise='normal(0, 0.3)')\n"
        "assert len(jax.devices()) == int(sys.argv[1])\n"
        "np.savez(sys.argv[2], gold=res.gold, bon=res.bon_gold, err=res.probe_error)\n")
    outs = []
    for n in (1, 2):
        path = tmp_path / f"d{n}.npz"
        proc = subprocess.run([sys.executable, "-c", script, str(n), str(path)],
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(np.load(path))
    for k in ("gold", "bon", "err"):
        np.testing.assert_array_equal(outs[0][k], outs[1][k])


@pytest.mark.slow
def test_an_mlp_proxy_recovers_a_linear_gold():
    """Clean labels: the MLP proxy's mean gradient under pi0 points along w*."""
    gold = lab.linear_gold(W_STAR)
    labels = lab.regression_labels(jax.random.key(0), gold, 512)
    model = lab.reward_mlp(W_STAR.size, 32, 2)
    fit = lab.train_proxy(jax.random.key(2), model, labels, steps=1500, learning_rate=1e-2)
    x = jax.random.normal(jax.random.key(3), (4096, W_STAR.size))
    grad = jax.vmap(jax.grad(lambda z: model.apply(fit.params, z)))(x).mean(axis=0)
    assert 1.0 - _cos(grad, W_STAR) < 1e-3


@pytest.mark.slow
def test_sampled_preferences_recover_a_linear_gold():
    gold = lab.linear_gold(W_STAR)
    pref = lab.preference_labels(jax.random.key(0), gold, 1 << 15)
    fit = lab.train_proxy(jax.random.key(1), lab.reward_linear(W_STAR.size), pref, steps=800,
                          learning_rate=0.05)
    assert 1.0 - _cos(fit.params.weights[0], W_STAR) < 1e-3


@pytest.mark.slow
def test_learned_proxy_quick_run(tmp_path):
    num = experiments.run("learned_proxy", quick=True, out=tmp_path, seed=0)
    assert (tmp_path / "learned_proxy.png").exists()
    assert len(num["gao_comparison"]) == 5
    # the policies' end points move away from pi0 as beta falls
    kl = np.asarray(num["policy_end"]["kl"], float)
    assert np.all(np.diff(kl, axis=-1) < 0)
