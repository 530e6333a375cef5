"""Several processes: ``jax.distributed.initialize`` on the CPU, the same estimate as one process.

Two local processes (loopback only) join through a coordinator on a free port, each with one CPU
device, so the mesh spans two processes and the engine's ``psum`` goes through the CPU
collectives (gloo).  Every subprocess has a timeout, so a hung coordinator fails the test
instead of hanging the run.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from goodhart_jax import multihost

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 150

SCRIPT = r"""
import json
import jax
from goodhart_jax import multihost
multi = multihost.initialize_distributed()   # from GOODHART_JAX_* (absent: one process)
import jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import goodhart_jax as gj

def hexes(*arrays):
    return [float(v).hex() for a in arrays for v in np.asarray(a).reshape(-1)]

out = {"multi": multi, "process": jax.process_index(), "processes": jax.process_count(),
       "devices": len(jax.devices())}
t = jnp.array([0.5, 2.0])
e = gj.sample_conditional_value(jax.random.key(11), gj.Normal(), gj.Normal(0.0, 3.0), t,
                                num_samples=300_001, chunk_size=4096, dtype=jnp.float32)
out["mc32"] = hexes(e.mean, e.stderr, e.count)
e = gj.sample_conditional_value(jax.random.key(12), gj.Normal(), gj.Normal(0.0, 3.0), t,
                                num_samples=100_003, chunk_size=2048, method="cmc")
out["cmc64"] = hexes(e.mean, e.stderr)
print("RESULT " + json.dumps(out), flush=True)
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="1", **extra)
    for name in ("XLA_FLAGS", multihost.ENV_COORDINATOR, multihost.ENV_NUM_PROCESSES,
                 multihost.ENV_PROCESS_ID):
        env.pop(name, None)
    env.update(extra)
    return env


def _start(args, env):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


def _finish(procs):
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            outs.append((p.returncode, out, err))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("a process of the multi-process run timed out")
    return outs


def _parse(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert lines, out[-2000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_two_processes_give_the_one_process_estimate():
    port = _free_port()
    coord = f"127.0.0.1:{port}"
    pair = [_start([sys.executable, "-c", SCRIPT],
                   _env(GOODHART_JAX_COORDINATOR=coord, GOODHART_JAX_NUM_PROCESSES="2",
                        GOODHART_JAX_PROCESS_ID=str(i))) for i in (0, 1)]
    single = _start([sys.executable, "-c", SCRIPT], _env())
    results = _finish(pair + [single])
    for rc, out, err in results:
        assert rc == 0, err[-3000:]
    r0, r1, one = (_parse(out) for _, out, _ in results)
    assert (r0["multi"], r0["processes"], r0["devices"], r0["process"]) == (True, 2, 2, 0)
    assert (r1["process"], one["multi"], one["processes"], one["devices"]) == (1, False, 1, 1)
    for key in ("mc32", "cmc64"):
        assert r0[key] == r1[key] == one[key], key


def test_cli_distributed_flags_join_two_processes():
    coord = f"127.0.0.1:{_free_port()}"
    procs = [_start([sys.executable, "-m", "goodhart_jax.cli", "--no-progress",
                     "--coordinator", coord, "--num-processes", "2", "--process-id", str(i),
                     "list"], _env())
             for i in (0, 1)]
    for rc, out, err in _finish(procs):
        assert rc == 0, err[-3000:]
        assert "mesa_dashboard" in out


@pytest.mark.parametrize("args,word", [
    (["--num-processes", "2", "list"], "coordinator"),
    (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0", "list"], "host:port"),
    (["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "2", "list"],
     "process_id"),
])
def test_cli_bad_distributed_flags(args, word):
    p = subprocess.run([sys.executable, "-m", "goodhart_jax.cli", *args], capture_output=True,
                       text=True, env=_env(), cwd=ROOT, timeout=TIMEOUT)
    assert p.returncode == 2
    assert word in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_initialize_distributed_validation(monkeypatch):
    for name in (multihost.ENV_COORDINATOR, multihost.ENV_NUM_PROCESSES, multihost.ENV_PROCESS_ID):
        monkeypatch.delenv(name, raising=False)
    assert multihost.initialize_distributed() is False
    with pytest.raises(ValueError, match="num_processes"):
        multihost.initialize_distributed("127.0.0.1:1", 0, 0)
    with pytest.raises(ValueError, match="process_id"):
        multihost.initialize_distributed("127.0.0.1:1", 2, -1)
    with pytest.raises(ValueError, match="together"):
        multihost.initialize_distributed(num_processes=2)
    monkeypatch.setenv(multihost.ENV_NUM_PROCESSES, "2")
    with pytest.raises(ValueError, match="together"):
        multihost.initialize_distributed()
