"""``sample_dependent_conditional_value`` streams through the engine: the same bits on 1, 2 and 8
CPU devices.

The device count is fixed when JAX starts, so one subprocess starts with 8 CPU devices
(``JAX_NUM_CPU_DEVICES=8``) and shards the same estimate over the first 1, 2 and 8 of them
(the ``devices`` argument), for both methods, with a partial last chunk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
import goodhart_jax as gj

assert len(jax.devices()) == 8, jax.devices()
t = np.array([0.0, 2.0, 5.0])
n = 9 * 65536 + 123  # ten chunks, the last one partial
out = {}
for method in ("mc", "cmc"):
    for model_name, model in (("kwa", gj.kwa_dependent_proxy()), ("one", gj.one_sided_noise())):
        for d in (1, 2, 8):
            e = gj.sample_dependent_conditional_value(jax.random.key(7), model, t, num_samples=n,
                                                      method=method, devices=d)
            out[f"{method}/{model_name}/{d}"] = [float(x).hex() for f in e
                                                 for x in np.asarray(f).ravel()]
print("RESULT " + json.dumps(out))
"""


def test_same_bits_on_1_2_and_8_devices():
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="8")
    env.pop("XLA_FLAGS", None)
    try:
        proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=600)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"subprocess timed out; stderr tail: {str(exc.stderr)[-2000:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(lines[-1][len("RESULT "):])
    for method in ("mc", "cmc"):
        for model in ("kwa", "one"):
            one = out[f"{method}/{model}/1"]
            assert all(float.fromhex(x) == float.fromhex(x) for x in one)  # finite, not NaN
            assert out[f"{method}/{model}/2"] == one, (method, model)
            assert out[f"{method}/{model}/8"] == one, (method, model)
