"""Test set-up: float64 on, a headless matplotlib backend.

JAX reads ``JAX_NUM_CPU_DEVICES``/``XLA_FLAGS`` only before it initialises, so tests that need
several devices or processes start their own subprocesses.
"""

import os
import subprocess
import sys
import tempfile

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# The suite is compile-bound: most of its CPU time is XLA compiling programs that then run once
# or twice.  Its processes (and the subprocesses they start) generate code at LLVM optimisation
# level 0: the same HLO programs and the same IEEE arithmetic (no fast-math at any level), a
# fifth less CPU time for the whole run (16.8 instead of 20.9 CPU minutes on 2 cores).  Users'
# programs and the benchmarks compile at XLA's default level.  GOODHART_JAX_TEST_XLA_OPT=default
# runs the suite at that level.
#
# They also generate it with XLA's elemental emitters (``--xla_cpu_use_fusion_emitters=false``)
# instead of its newer fusion emitters: the same operations, compiled about twice as fast
# (conditional_value's program for gennorm/exponential: 2.9 s of XLA instead of 4.6 s) into
# loops that run about half as fast, which a suite of programs that run once or twice does not
# notice (tests/test_conditioning.py, test_laws.py and test_selection.py: 118 s instead of 183 s
# on 2 cores).  The two emitters' own approximations of exp, log and the like may differ in the
# last bits; every check compares with references to tolerances far above that, and checks of
# identical bits compare two runs under the same flags.  A jaxlib that does not know the flag
# would refuse to start, so it is added only after a child process has started JAX with it.
_TEST_XLA_FLAGS = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")


def _xla_accepts(flag: str) -> bool:
    env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + flag).strip(),
               JAX_PLATFORMS="cpu")
    probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"], env=env,
                           capture_output=True, timeout=120)
    return probe.returncode == 0


if os.environ.get("GOODHART_JAX_TEST_XLA_OPT", "0") != "default":
    for _flag in _TEST_XLA_FLAGS:
        _flags = os.environ.get("XLA_FLAGS", "")
        if _flag.split("=")[0] not in _flags and (_flag == _TEST_XLA_FLAGS[0]
                                                  or _xla_accepts(_flag)):
            os.environ["XLA_FLAGS"] = (_flags + " " + _flag).strip()
# JAX's persistent compilation cache in a temporary folder of this run, never the user's: the
# command-line tests run in subprocesses, which then load what an earlier one compiled.
if "GOODHART_JAX_CACHE_DIR" not in os.environ and os.environ.get("GOODHART_JAX_CACHE") != "0":
    os.environ["GOODHART_JAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="goodhart_jax_test_cache_")

import jax  # noqa: E402

import goodhart_jax  # noqa: E402,F401  (points JAX's cache at the folder above)

jax.config.update("jax_enable_x64", True)
# This process itself writes nothing to that cache: its programs are compiled once per run
# anyway, and writing them costs time.  (Twice in a full run, XLA's CPU executable
# serialisation, jax 0.10.2, crashed with a segmentation fault while writing a program of the
# user-family tests; alone those tests pass.)  The subprocesses still share the cache.
jax.config.update("jax_enable_compilation_cache", False)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's in-memory caches after each test module: a full run compiles thousands of
    programs, and late in such a run XLA's CPU compiler crashed (segmentation fault) three
    times on programs that compile fine in a shorter process."""
    yield
    jax.clear_caches()


@pytest.fixture(autouse=True)
def _restore_mpmath_precision():
    """A test that sets ``mpmath.mp.dps`` for itself leaves it as it found it: the modules that
    set 50-60 digits at import would otherwise run, in the same worker, at whatever digits a test
    before them left (30 digits made an mpmath derivative at ``z = 1e30`` miss by 3e-9)."""
    try:
        import mpmath
    except ImportError:
        yield
        return
    dps = mpmath.mp.dps
    yield
    mpmath.mp.dps = dps
