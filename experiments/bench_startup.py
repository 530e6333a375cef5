"""Benchmark: the command line from fresh processes, with JAX's persistent compilation cache.

Each command runs twice in new processes sharing one new cache folder (the first fills it, the
second loads from it), as a user's first and second run would:

* ``goodhart-jax condition --value 'normal(0,1)' --error 'student_t(df=3)' --threshold 2,5,10``;
* ``goodhart-jax run tails_come_apart --quick``;

beside ``python -c "import jax"`` (the floor no command can go under) and the same commands with
the cache off (``GOODHART_JAX_CACHE=0``).  Wall times, in seconds.

Run: ``goodhart-jax bench startup``.  Saves ``results/bench_startup/bench.json``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path("results") / "bench_startup"
CONDITION = ["condition", "--value", "normal(0,1)", "--error", "student_t(df=3)",
             "--threshold", "2,5,10"]


def _wall(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main(quick: bool = False) -> int:
    from goodhart_jax import results

    cli = [sys.executable, "-m", "goodhart_jax.cli", "--no-progress"]
    report: dict = {"cores": os.cpu_count()}
    base = dict(os.environ)
    base.pop("GOODHART_JAX_CACHE", None)
    report["import_jax_s"] = min(_wall([sys.executable, "-c", "import jax"], base)
                                 for _ in range(3))
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in (("condition", CONDITION),
                           ("run tails_come_apart --quick",
                            ["run", "tails_come_apart", "--quick", "--out", f"{tmp}/out"])):
            env = dict(base, GOODHART_JAX_CACHE_DIR=f"{tmp}/cache_{len(report)}")
            first = _wall(cli + argv, env)
            second = min(_wall(cli + argv, env) for _ in range(1 if quick else 3))
            off = _wall(cli + argv, dict(env, GOODHART_JAX_CACHE="0"))
            report[name] = {"first_s": first, "second_s": second, "cache_off_s": off,
                            "second_over_first": second / first}
    print(f"fresh processes, {os.cpu_count()} cores; wall seconds "
          f"(python -c 'import jax': {report['import_jax_s']:.2f} s)")
    print(f"  {'command':<32}{'first':>9}{'second':>9}{'2nd/1st':>9}{'cache off':>11}")
    for name in ("condition", "run tails_come_apart --quick"):
        r = report[name]
        print(f"  {name:<32}{r['first_s']:>9.2f}{r['second_s']:>9.2f}"
              f"{r['second_over_first']:>9.2f}{r['cache_off_s']:>11.2f}")
    print("  (first: an empty persistent compilation cache; second: the cache the first filled, "
          "best of the reruns)")
    results.save_json(OUT / "bench.json", report)
    print(f"saved {OUT / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(quick="--quick" in sys.argv))
