"""Compiled programs kept on disk under keys found without tracing (``compile_cache.persistent_jit``).

A fresh process that repeats an earlier one's calls loads their compiled programs (serialised
executables) instead of tracing them: checked by counting the calls of the quadrature's rule
builder (it runs only while a program is traced).  The numbers are the same bits as with the
cache off; a damaged file is traced again.  In-process: what the cache must not keep (a
family the user wrote, local functions) and calls under the user's transformations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import goodhart_jax as gj
from goodhart_jax import compile_cache

_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import goodhart_jax as gj
    from goodhart_jax import quadrature, conditioning
    calls = []
    rule = quadrature.anchored_rule
    def counted(*a, **k):
        calls.append(1)
        return rule(*a, **k)
    conditioning.anchored_rule = counted   # runs only while a quadrature is traced
    t = np.array([2.0, 5.0, 10.0])
    out = {
        "cv": gj.conditional_value(gj.Normal(), gj.StudentT(3.0), t),
        "cv_new_values": gj.conditional_value(gj.Normal(0.5, 2.0), gj.StudentT(4.0), t + 1.0),
        "ltp": gj.log_tail_prob(gj.GenNormal(0.5), gj.Exponential(), t),
        "vgp": gj.value_given_proxy(gj.Normal(), gj.Mixture([gj.Normal(), gj.StudentT(3.0)],
                                                           [0.9, 0.1]), t),
        "bon": gj.best_of_n_value(gj.Normal(0.0, 2.0), gj.Normal(), 4.0 ** np.arange(5)),
    }
    print(json.dumps({"values": {k: [float(x).hex() for x in np.asarray(v)]
                                 for k, v in out.items()},
                      "traced": len(calls)}))
""")


def _run_script(script: str, cache, *argv, **env):
    """``script`` in a fresh Python with the cache in ``cache``: its last line of output, as JSON."""
    environ = {**os.environ, "GOODHART_JAX_CACHE_DIR": str(cache), "JAX_PLATFORMS": "cpu", **env}
    environ.pop("GOODHART_JAX_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", script, *argv], env=environ,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run(cache: str, **env) -> dict:
    return _run_script(_SCRIPT, cache, **env)


def test_a_fresh_process_loads_the_traced_programs_and_gets_the_same_bits(tmp_path):
    first = _run(str(tmp_path / "on"))
    off = _run(str(tmp_path / "on"), GOODHART_JAX_TRACE_CACHE="0")
    traces = sorted((tmp_path / "on" / "traces").glob("*.trace"))
    # conditional_value (one program for both parameter sets), log_tail_prob, value_given_proxy,
    # best_of_n_value's two programs
    assert len(traces) == 5
    second = _run(str(tmp_path / "on"))
    assert off["traced"] > 0 and first["traced"] > 0
    assert second["traced"] == 0
    assert first["values"] == off["values"] == second["values"]


class _UserLaw(gj.Normal):
    """A family written outside the package: its code is not in the cache key."""


def test_what_is_not_kept_on_disk():
    assert compile_cache._treedef_key(jax.tree_util.tree_structure((gj.Normal(),))) is not None
    assert compile_cache._treedef_key(jax.tree_util.tree_structure((_UserLaw(),))) is None
    assert compile_cache._static_key(gj.conditional_value) is not None
    assert compile_cache._static_key(lambda x: x) is None
    assert compile_cache._leaf_signature(jnp.ones(3)) == ((3,), jnp.ones(3).dtype.str, False)
    assert compile_cache._leaf_signature(2.0) == ((), "f", True)


@pytest.fixture
def trace_cache_on(tmp_path, monkeypatch):
    """The trace cache on in this process, in ``tmp_path`` (the test run keeps it off)."""
    monkeypatch.setenv("GOODHART_JAX_CACHE_DIR", str(tmp_path))
    before = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", True)
    try:
        assert compile_cache.traces_dir() is not None
        yield tmp_path / "traces"
    finally:
        jax.config.update("jax_enable_compilation_cache", before)


def _scaled_sum(x, y, scale):
    return {"sum": (x + y) * scale, "scale": scale}


_SCALED_SUM = compile_cache.persistent_jit(_scaled_sum, static_argnums=2)


def test_concrete_calls_are_kept_and_transformed_calls_take_the_plain_path(trace_cache_on):
    assert float(_SCALED_SUM(2.0, np.float64(3.0), 2)["sum"]) == 10.0
    assert float(_SCALED_SUM(2.0, np.float64(4.0), 2)["sum"]) == 12.0  # same program
    assert float(_SCALED_SUM(2.0, np.float64(4.0), 3)["sum"]) == 18.0  # a new static argument
    # a module-level function of the tests: not this package's code, so nothing on disk
    assert not trace_cache_on.exists() or not list(trace_cache_on.glob("*.trace"))
    kept = compile_cache.persistent_jit(jnp.multiply)  # jnp's function: not ours either
    assert float(kept(2.0, 3.0)) == 6.0
    assert float(jax.grad(lambda x: _SCALED_SUM(x, 3.0, 2)["sum"])(2.0)) == 2.0
    assert np.allclose(jax.vmap(lambda x: _SCALED_SUM(x, 1.0, 2)["sum"])(jnp.arange(3.0)),
                       [2.0, 4.0, 6.0])
    assert float(jax.jit(lambda x: _SCALED_SUM(x, x, 2)["sum"])(3.0)) == 12.0
    # a public call writes its program
    t = np.array([1.0, 2.0])
    np.testing.assert_allclose(gj.log_tail_prob(gj.Normal(), gj.Normal(), t),
                               _normal_log_sf(t / np.sqrt(2.0)), rtol=1e-13)
    assert len(list(trace_cache_on.glob("*.trace"))) == 1


def test_a_damaged_file_is_traced_again(trace_cache_on):
    from goodhart_jax import numerics

    x = np.array([-3.0, -1e-3, -40.0])
    want = numerics.log1mexp(x)
    assert float(compile_cache.persistent_jit(numerics.log1mexp)(x)[0]) == float(want[0])
    (kept,) = trace_cache_on.glob("*.trace")
    kept.write_bytes(b"not a trace")
    again = compile_cache.persistent_jit(numerics.log1mexp)(x)  # a new process's view: memory empty
    np.testing.assert_array_equal(again, want)
    assert kept.read_bytes() != b"not a trace"  # rewritten


def _normal_log_sf(z):
    from scipy.special import log_ndtr

    return log_ndtr(-z)


def test_traces_dir_follows_the_switches(monkeypatch, tmp_path):
    monkeypatch.setenv("GOODHART_JAX_TRACE_CACHE", "0")
    assert compile_cache.traces_dir() is None
    monkeypatch.delenv("GOODHART_JAX_TRACE_CACHE")
    monkeypatch.setenv("GOODHART_JAX_CACHE", "0")
    assert compile_cache.traces_dir() is None


def test_user_family_result_is_right_without_the_cache():
    # the plain path for a family the user wrote: same number as the built-in family
    t = np.array([1.0, 3.0])
    ours = gj.conditional_value(gj.Normal(), gj.Normal(), t)
    theirs = gj.conditional_value(_UserLaw(), gj.Normal(), t)
    np.testing.assert_allclose(theirs, ours, rtol=1e-13)


_FROM_JAX_CACHE = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import goodhart_jax as gj
    from goodhart_jax import compile_cache
    if sys.argv[1] == "careless":  # as before the fix: programs from JAX's cache written too
        compile_cache._count_cache_hits.__code__ = (lambda event, **kwargs: None).__code__
    t = np.array([1.0, 2.0])
    out = gj.log_tail_prob(gj.Normal(), gj.Normal(), t)
    print(json.dumps([float(v).hex() for v in np.asarray(out)]))
""")


def test_a_program_from_jaxs_cache_is_not_kept_and_a_broken_file_is_dropped(tmp_path):
    # jaxlib 0.10.2 on CPU: an executable JAX read from its own persistent cache serialises into
    # a file that loads but cannot run in the next process ("Function ... not found").  Such a
    # program is left unwritten; a broken file found anyway is removed and the call traced.
    want = [float(v).hex() for v in _normal_log_sf(np.array([1.0, 2.0]) / np.sqrt(2.0))]
    traces = tmp_path / "traces"
    first = _run_script(_FROM_JAX_CACHE, tmp_path, "plain")  # compiles: JAX's cache and a file
    assert len(list(traces.glob("*.trace"))) == 1
    for f in traces.glob("*.trace"):  # the file lost, JAX's entry kept
        f.unlink()
    second = _run_script(_FROM_JAX_CACHE, tmp_path, "plain")  # JAX's cache: no file written
    assert not list(traces.glob("*.trace"))
    third = _run_script(_FROM_JAX_CACHE, tmp_path, "careless")  # writes the broken file
    assert len(list(traces.glob("*.trace"))) == 1
    fourth = _run_script(_FROM_JAX_CACHE, tmp_path, "plain")  # runs it, fails, drops it
    assert not list(traces.glob("*.trace"))
    np.testing.assert_allclose([float.fromhex(v) for v in first],
                               [float.fromhex(v) for v in want], rtol=1e-13)
    assert first == second == third == fourth
