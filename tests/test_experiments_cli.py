"""The experiment registry and command line: tails_come_apart's numbers, list --json, run all."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from goodhart_jax import experiments
from goodhart_jax import cli
from goodhart_jax.results import load_json


@pytest.fixture(scope="module")
def tails(tmp_path_factory):
    out = tmp_path_factory.mktemp("tails")
    experiments.run("tails_come_apart", quick=True, out=out, seed=0)
    return out, load_json(out / "numbers.json")


def test_tails_come_apart_normal_series_is_the_closed_form(tails):
    out, num = tails
    assert (out / "tails_come_apart.png").exists() and (out / "manifest.json").exists()
    s = num["series"]["normal"]
    t = np.asarray(num["t"], float)
    keep = t <= 30  # closed form in double precision: scipy's log-space normal tail
    a = t[keep] / math.sqrt(2.0)
    log_sf = special.log_ndtr(-a)
    # (s_V^2 / s_U) phi(a) / (1 - Phi(a)) with s_V = 1, s_U = sqrt 2
    closed = (1.0 / math.sqrt(2.0)) * np.exp(stats.norm.logpdf(a) - log_sf)
    np.testing.assert_allclose(np.asarray(s["conditional_value"], float)[keep], closed, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(s["bits"], float)[keep], -log_sf / math.log(2.0), rtol=1e-9)


def test_tails_come_apart_limits_are_the_theorems(tails):
    _, num = tails
    t = np.asarray(num["t"], float)
    far = t > 1e6
    domain = np.isfinite(np.asarray(num["series"]["exponential"]["conditional_value"], float))
    assert np.all(domain == (np.asarray(num["series"]["exponential"]["bits"], float) * math.log(2.0)
                             <= -math.log(1e-300) + 1e-9))
    # exponential error (rate 1), V ~ N(0, 1): E[V | U >= t] -> mu + lambda s^2 = 1, exactly
    # (for t > t0 the conditional law of V is the tilted normal N(1, 1) truncated at t: the
    # truncation's effect is phi(t - 1)-small)
    exp_series = np.asarray(num["series"]["exponential"]["conditional_value"], float)
    np.testing.assert_allclose(exp_series[domain & (t > 50)], 1.0, rtol=1e-10)
    assert num["series"]["exponential"]["limit"] == 1.0
    # t(3) error: E[V | U >= t] - E[V] = Var(V) f_X(t) / S_X(t) (1 + O(1/t^2)) -> 0 (catastrophic)
    t3 = np.asarray(num["series"]["student_t"]["conditional_value"], float)
    far &= np.isfinite(t3)
    assert far.sum() > 50
    # f_X(t) / S_X(t) = 3 / t (1 + O(1 / t^2)) for t(3): exact to double precision for t > 1e6
    ratio = t3[far] / (3.0 / t[far])
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-6)
    # the sampled points agree with the exact curve within 4 standard errors
    for name in ("normal", "exponential", "student_t"):
        s = num["series"][name]
        exact = np.interp(s["mc_t"], t, np.asarray(s["conditional_value"], float))
        z = (np.asarray(s["mc_mean"], float) - exact) / np.asarray(s["mc_stderr"], float)
        assert np.all(np.abs(z) < 4), (name, z)


def test_list_json_names_every_experiment_with_its_parameters(capsys):
    assert cli.main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == experiments.names()
    assert rows[0]["parameters"]["t_max"] == 40.0


@pytest.mark.parametrize("argv, needle", [
    (["run", "nope"], "experiment must be one of"),
    (["run", "tail_pdfs", "--set", "x_max=-1"], "x_max"),
    (["run", "tail_pdfs", "--set", "bogus=1"], "unknown parameter 'bogus'"),
    (["run", "tail_pdfs", "--set", "novalue"], "expected key=value"),
])
def test_run_bad_input_one_line_exit_2(argv, needle, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "goodhart_jax.cli", *argv, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("goodhart-jax: error:")]
    assert len(errors) == 1 and errors[0] == lines[-1] and needle in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("where", ["under_a_file", "under_a_missing_root"])
def test_run_unwritable_out_one_line_exit_2(where, tmp_path):
    """An --out folder that cannot be created or written: one line naming it, exit 2, no work."""
    (tmp_path / "a_file").write_text("")
    out = (tmp_path / "a_file" / "sub") if where == "under_a_file" else Path("/proc/no/such/dir")
    proc = subprocess.run([sys.executable, "-m", "goodhart_jax.cli", "run", "tail_pdfs", "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out: cannot write to folder" in lines[0], proc.stderr
    assert str(out) in lines[0] and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.slow
def test_run_all_quick(tmp_path):
    """Every registered experiment, quick, from one command line (a few minutes)."""
    proc = subprocess.run([sys.executable, "-m", "goodhart_jax.cli", "--no-progress", "run", "all",
                           "--quick", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in experiments.names():
        manifest = load_json(tmp_path / name / "manifest.json")
        assert manifest["experiment"] == name and manifest["quick"] is True
        assert not (tmp_path / name / ".partial").exists()
