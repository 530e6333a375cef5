"""Resumable sweeps: saved points survive a killed run and are reused only for equal parameters."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from goodhart_jax import results, sweeps

# A sweep in a child process: each point sleeps, then logs that it computed (a line per call).
_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from goodhart_jax import sweeps
    out, log, delay = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    def fn(p):
        time.sleep(delay)
        with open(log, "a") as fh:
            fh.write(f"{p}\\n")
        return {"square": p * p, "inf": float("inf")}
    res = sweeps.sweep(out, "squares", {"power": 2}, list(range(8)), fn, progress=False)
    print([r["square"] for r in res])
""")


def _child(tmp_path: Path, delay: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "out"),
                             str(tmp_path / "calls.log"), str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _calls(tmp_path: Path) -> list[int]:
    log = tmp_path / "calls.log"
    return [int(v) for v in log.read_text().split()] if log.exists() else []


def test_killed_sweep_resumes_from_its_saved_points(tmp_path):
    proc = _child(tmp_path, delay=0.4)
    partial = sweeps.partial_dir(tmp_path / "out") / "squares.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until some, not all, points are saved
        if partial.exists() and 2 <= len(results.load_json(partial)["points"]) < 8:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = results.load_json(partial)["points"]
    assert 2 <= len(saved) < 8
    first = _calls(tmp_path)
    proc = _child(tmp_path, delay=0.0)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out) == [p * p for p in range(8)]
    second = _calls(tmp_path)[len(first):]
    # the second run computed exactly the points the first did not save
    assert sorted(second) == sorted(set(range(8)) - {json.loads(k) for k in saved})
    assert results.load_json(partial)["points"]['0']["inf"] == float("inf")


def test_other_parameters_start_afresh_and_clear_removes(tmp_path):
    calls = []

    def fn(p):
        calls.append(p)
        return p + 1

    assert sweeps.sweep(tmp_path, "s", {"a": 1}, [1, 2], fn, progress=False) == [2, 3]
    assert sweeps.sweep(tmp_path, "s", {"a": 1}, [1, 2, 3], fn, progress=False) == [2, 3, 4]
    assert calls == [1, 2, 3]  # equal parameters: only the new point is computed
    assert sweeps.sweep(tmp_path, "s", {"a": 2}, [1, 2], fn, progress=False) == [2, 3]
    assert calls == [1, 2, 3, 1, 2]  # other parameters: computed again
    sweeps.clear(tmp_path)
    assert not sweeps.partial_dir(tmp_path).exists()


@pytest.mark.parametrize("name", ["", "a/b", ".hidden"])
def test_bad_names_and_duplicate_points(tmp_path, name):
    with pytest.raises(ValueError, match="name"):
        sweeps.sweep(tmp_path, name, {}, [1], lambda p: p, progress=False)
    with pytest.raises(ValueError, match="distinct"):
        sweeps.sweep(tmp_path, "ok", {}, [1, 1], lambda p: p, progress=False)


def test_progress_bar_counts_points(tmp_path, capsys):
    sweeps.sweep(tmp_path, "bar", {}, [1, 2, 3], lambda p: p, progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "100%" in err
