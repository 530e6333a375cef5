"""Test set-up: float64 on, a headless matplotlib backend.

JAX reads ``JAX_NUM_CPU_DEVICES``/``XLA_FLAGS`` only before it initialises, so tests that need
several devices or processes start their own subprocesses.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
