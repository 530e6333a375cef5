"""The streaming engine: its bit stream, its normal sampler, device invariance, progress.

Device counts are fixed when JAX starts (``JAX_NUM_CPU_DEVICES``), so the invariance test runs
the same script in subprocesses with 1, 2 and 8 CPU devices and compares the printed floats
bit for bit (``float.hex``).
"""

import contextlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import goodhart_jax as gj
from goodhart_jax import engine, progress, rng

ROOT = Path(__file__).resolve().parents[1]


# --- the bit stream ----------------------------------------------------------------------------

def test_threefry_known_answer():
    # Random123 known-answer test for Threefry-2x32-20 (zero key and counter)
    y0, y1 = rng.threefry2x32(*jnp.zeros(4, jnp.uint32))
    assert (int(y0), int(y1)) == (0x6B200159, 0x99BA4EFE)


@pytest.mark.parametrize("seed,m", [(0, 2), (3, 10), (2**40 + 7, 1000)])
def test_random_bits_are_jax_threefry_bits(seed, m):
    key = jax.random.key(seed)
    with jax.threefry_partitionable(False):
        ref = np.asarray(jax.random.bits(key, (m,), jnp.uint32))
    np.testing.assert_array_equal(np.asarray(rng.random_bits(key, m)), ref)
    raw = jax.random.PRNGKey(seed)  # raw uint32 keys are accepted too
    np.testing.assert_array_equal(np.asarray(rng.random_bits(raw, m)), ref)


def test_random_bits_other_impl_and_validation():
    key = jax.random.key(1, impl="rbg")
    np.testing.assert_array_equal(np.asarray(rng.random_bits(key, 6)),
                                  np.asarray(jax.random.bits(key, (6,), jnp.uint32)))
    with pytest.raises(ValueError, match="m must be"):
        rng.random_bits(jax.random.key(0), 3)


# --- normal draws ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_normal_pair_is_standard_normal(dtype):
    z1, z2 = rng.normal_pair(jax.random.key(0), 1 << 17, dtype)
    assert z1.dtype == dtype and z2.dtype == dtype
    for z in (np.asarray(z1, float), np.asarray(z2, float)):
        assert stats.kstest(z, "norm").pvalue > 1e-4
        assert abs(z.mean()) < 5 / math.sqrt(z.size)
        assert abs(z.var() - 1) < 5 * math.sqrt(2 / z.size)
    corr = np.corrcoef(np.asarray(z1, float), np.asarray(z2, float))[0, 1]
    assert abs(corr) < 5 / math.sqrt(z1.size)


def test_box_muller_matches_float64_reference():
    key = jax.random.key(9)
    n = 1 << 14
    z1, z2 = rng.normal_pair(key, n, jnp.float32)
    a, b = np.split(np.asarray(rng.random_bits(key, 2 * n)), 2)
    u1 = (a.astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-32)  # as the sampler rounds
    r = np.sqrt(-2 * np.log(u1.astype(np.float64)))
    theta = 2 * np.pi * (b >> 8).astype(np.float64) * 2.0**-24
    tol = 5e-7 * (1 + r)
    assert np.all(np.abs(np.asarray(z1) - r * np.cos(theta)) <= tol)
    assert np.all(np.abs(np.asarray(z2) - r * np.sin(theta)) <= tol)


def test_normal_reach_float32_vs_float64():
    """The largest |z| each sampler can produce: engine 6.76 / 9.49, jax.random.normal 5.4 / 8.3."""
    zero = jnp.zeros(1, jnp.uint32)
    z32 = float(rng.box_muller(zero, None, zero, None, jnp.float32)[0][0])
    z64 = float(rng.box_muller(zero, zero, zero, zero, jnp.float64)[0][0])
    assert z32 == pytest.approx(math.sqrt(66 * math.log(2)), rel=1e-6)  # 6.7637
    assert z64 == pytest.approx(math.sqrt(130 * math.log(2)), rel=1e-12)  # 9.4926
    # jax.random.normal: sqrt(2) erfinv(u), u on a 2^-23 (2^-52) grid just inside (-1, 1)
    for dt, bits, lo, hi in [(np.float32, 23, 5.3, 5.5), (np.float64, 52, 8.2, 8.4)]:
        u = np.nextafter(dt(-1), dt(0))
        reach = -float(np.sqrt(2) * jax.lax.erf_inv(jnp.asarray(u, dt)))
        assert lo < reach < hi
    # and a float32 mc estimate has no accepted draw beyond the reach: the answer is exact-only
    t = 6.8 * math.sqrt(2.0)
    est = gj.sample_conditional_value(jax.random.key(0), gj.Normal(), gj.Normal(), t,
                                      num_samples=1 << 16, dtype=jnp.float32)
    assert int(est.count) == 0


@pytest.mark.parametrize("alpha", [0.3, 1.5, 7.0])
def test_gamma_variate_is_gamma(alpha):
    g = np.exp(np.asarray(rng.log_gamma_variate(jax.random.key(1), alpha, 1 << 17), float))
    assert stats.kstest(g, stats.gamma(alpha).cdf).pvalue > 1e-4


@pytest.mark.parametrize("dist,ref", [
    (gj.StudentT(3.0, loc=1.0, scale=2.0), stats.t(3.0, loc=1.0, scale=2.0)),
    (gj.StudentT(0.8), stats.t(0.8)),
    (gj.GenNormal(1.5, scale=0.5), stats.gennorm(1.5, scale=0.5)),
    (gj.GenNormal(0.5), stats.gennorm(0.5)),
])
def test_engine_t_and_gennorm_samplers(dist, ref):

    h1, h2 = dist.sample_halves(jax.random.key(2), 1 << 16, jnp.float64)
    z = np.concatenate([np.asarray(h1), np.asarray(h2)])
    assert stats.kstest(z, ref.cdf).pvalue > 1e-4


def test_normal_helper_shape_and_validation():
    assert rng.normal(jax.random.key(0), 7).shape == (7,)
    with pytest.raises(ValueError, match="n must be"):
        rng.normal_pair(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="dtype"):
        rng.normal_pair(jax.random.key(0), 4, jnp.int32)


# --- the stream --------------------------------------------------------------------------------

def _moments(key, mask, loc):
    z = loc + rng.normal(key, mask.shape[0], jnp.float64)
    return {"n": mask.sum(dtype=z.dtype), "s": jnp.where(mask, z, 0.0).sum(),
            "q": jnp.where(mask, z * z, 0.0).sum()}


def _hexes(tree):
    leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(np.asarray, tree))
    return [float(x).hex() for x in leaves]


def test_stream_counts_and_order_independence():
    out = engine.stream(_moments, jax.random.key(2), 0.5, num_samples=100_003, chunk_size=1000)
    assert int(out["n"]) == 100_003
    assert abs(float(out["s"]) / 100_003 - 0.5) < 5 / math.sqrt(100_003)
    # chunks per device per round change the schedule, never the bits
    for k in (1, 3, 7):
        again = engine.stream(_moments, jax.random.key(2), 0.5, num_samples=100_003,
                              chunk_size=1000, chunks_per_device=k)
        assert _hexes(again) == _hexes(out)


def test_stream_progress_same_bits(capsys):
    args = dict(num_samples=50_000, chunk_size=1000)
    quiet = engine.stream(_moments, jax.random.key(4), 0.0, progress=False, **args)
    loud = engine.stream(_moments, jax.random.key(4), 0.0, progress=True, **args)
    assert _hexes(quiet) == _hexes(loud)
    err = capsys.readouterr().err
    assert "100%" in err and "samples/s" in err and "ETA" in err
    progress.set_enabled(False)
    try:
        engine.stream(_moments, jax.random.key(4), 0.0, progress=True, **args)
        assert capsys.readouterr().err == ""
    finally:
        progress.set_enabled(None)


def _count(key, mask):
    return mask.sum(dtype=jnp.float64)


@pytest.mark.slow
def test_stream_beyond_int32_samples():
    n = (1 << 33) + 7
    assert int(engine.stream(_count, jax.random.key(0), num_samples=n, chunk_size=1 << 22)) == n


def test_stream_last_partial_chunk_counts_exactly():
    n = (1 << 20) + 3
    assert int(engine.stream(_count, jax.random.key(0), num_samples=n, chunk_size=1 << 12)) == n


def test_stream_under_jit_and_vmap():
    keys = jax.random.split(jax.random.key(5), 3)
    f = jax.jit(lambda k: engine.stream(_moments, k, 0.0, num_samples=5000, chunk_size=512)["s"])
    batched = jax.vmap(f)(keys)
    one_by_one = [f(k) for k in keys]
    np.testing.assert_array_equal(np.asarray(batched), np.asarray(one_by_one))


@pytest.mark.parametrize("kw,word", [
    (dict(num_samples=0), "num_samples"),
    (dict(num_samples=10, chunk_size=0), "chunk_size"),
    (dict(num_samples=10, devices=0), "devices"),
    (dict(num_samples=10, chunks_per_device=0), "chunks_per_device"),
    (dict(num_samples=1 << 40, chunk_size=1), "chunks"),
])
def test_stream_validation(kw, word):
    with pytest.raises(ValueError, match=word):
        engine.stream(_moments, jax.random.key(0), 0.0, **kw)


def test_sampler_options():
    V, X = gj.Normal(), gj.Normal(0.0, 2.0)
    s_u = math.sqrt(5.0)
    exact = (1.0 / s_u) * stats.norm.pdf(1.0 / s_u) / stats.norm.sf(1.0 / s_u)  # closed form
    for sampler in ("engine", "jax"):
        est = gj.sample_conditional_value(jax.random.key(3), V, X, 1.0, num_samples=50_000,
                                          chunk_size=1 << 14, sampler=sampler)
        assert abs(float(est.mean) - exact) < 4 * float(est.stderr)
    with pytest.raises(ValueError, match="sampler"):
        gj.sample_conditional_value(jax.random.key(3), V, X, 1.0, num_samples=10,
                                    sampler="ziggurat")
    with pytest.raises(ValueError, match="chunk_size"):
        gj.sample_conditional_value(jax.random.key(3), V, X, 1.0, num_samples=10, chunk_size=0)


def test_float64_estimate_is_float64():
    est = gj.sample_conditional_value(jax.random.key(1), gj.Normal(), gj.Normal(), 1.0,
                                      num_samples=100_000, dtype=jnp.float64)
    assert est.mean.dtype == jnp.float64
    a = 1.0 / math.sqrt(2.0)
    exact = a * stats.norm.pdf(a) / stats.norm.sf(a)
    assert abs(float(est.mean) - exact) < 4 * float(est.stderr)


# --- the same estimate on 1, 2 and 8 devices ---------------------------------------------------

INVARIANCE_SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import goodhart_jax as gj
from goodhart_jax import engine

def hexes(*arrays):
    return [float(v).hex() for a in arrays for v in np.asarray(a).reshape(-1)]

out = {"devices": len(jax.devices())}
t = jnp.array([0.5, 1.5])
e = gj.sample_conditional_value(jax.random.key(7), gj.Normal(), gj.Normal(0.0, 2.0), t,
                                num_samples=300_007, chunk_size=4096, dtype=jnp.float32)
out["mc32"] = hexes(e.mean, e.stderr, e.count)
e = gj.sample_conditional_value(jax.random.key(7), gj.Normal(), gj.Normal(0.0, 2.0), t,
                                num_samples=300_007, chunk_size=4096, dtype=jnp.float32,
                                progress=True)
out["mc32_progress"] = hexes(e.mean, e.stderr, e.count)
e = gj.sample_conditional_value(jax.random.key(8), gj.Normal(), gj.Normal(0.0, 2.0), t,
                                num_samples=200_001, chunk_size=8192, method="cmc")
out["cmc64"] = hexes(e.mean, e.stderr)
e = gj.sample_conditional_value(jax.random.key(9), gj.Exponential(), gj.Exponential(0.5), 2.0,
                                num_samples=60_001, chunk_size=2048)
out["mc64_exp"] = hexes(e.mean, e.stderr, e.count)
e = gj.sample_conditional_value(jax.random.key(9, impl="rbg"), gj.Normal(), gj.Normal(), 1.0,
                                num_samples=60_001, chunk_size=2048)
out["mc64_rbg"] = hexes(e.mean, e.stderr, e.count)
print("RESULT " + json.dumps(out))
"""


def _run_script(script: str, env_extra: dict, timeout: float = 240.0):
    env = dict(os.environ, JAX_PLATFORMS="cpu", **env_extra)
    env.pop("XLA_FLAGS", None)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _result(proc, timeout: float = 240.0) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"subprocess timed out; stderr tail: {err[-2000:]}")
    assert proc.returncode == 0, err[-3000:]
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert lines, out[-2000:] + err[-2000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_same_bits_on_1_2_and_8_devices():
    procs = {n: _run_script(INVARIANCE_SCRIPT, {"JAX_NUM_CPU_DEVICES": str(n)}) for n in (2, 8)}
    if len(jax.devices()) == 1:  # this process is the one-device run (saves a start-up)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            exec(INVARIANCE_SCRIPT, {"__name__": "invariance"})
        one = json.loads(out.getvalue().split("RESULT ")[-1])
    else:
        one = _result(_run_script(INVARIANCE_SCRIPT, {"JAX_NUM_CPU_DEVICES": "1"}))
    results = {1: one, **{n: _result(p) for n, p in procs.items()}}
    for n, r in results.items():
        assert r.pop("devices") == n
    assert results[1]["mc32"] == results[1]["mc32_progress"]
    assert results[1] == results[2] == results[8]
