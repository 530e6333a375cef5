"""Test set-up: float64 on, a headless matplotlib backend.

JAX reads ``JAX_NUM_CPU_DEVICES``/``XLA_FLAGS`` only before it initialises, so tests that need
several devices or processes start their own subprocesses.
"""

import os
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")
# JAX's persistent compilation cache in a temporary folder of this run, never the user's: the
# command-line tests run in subprocesses, which then load what an earlier one compiled.
if "GOODHART_JAX_CACHE_DIR" not in os.environ and os.environ.get("GOODHART_JAX_CACHE") != "0":
    os.environ["GOODHART_JAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="goodhart_jax_test_cache_")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
