"""Compare every experiment's numbers.json in two run folders: numeric leaves to 1e-12 relative.

Usage: python .ci/compare_numbers.py BEFORE_DIR AFTER_DIR  (folders of `goodhart-jax run all --quick --out DIR`;
timings and versions are skipped).
"""
import json
import math
import sys
from pathlib import Path

SKIP = ("_s", "seconds", "wall", "time", "elapsed", "version", "date", "path", "host")


def leaves(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, obj


def main(a, b, tol=1e-12):
    worst, bad, n = 0.0, [], 0
    for fa in sorted(Path(a).glob("*/numbers.json")):
        fb = Path(b) / fa.parent.name / "numbers.json"
        la, lb = dict(leaves(json.loads(fa.read_text()))), dict(leaves(json.loads(fb.read_text())))
        if la.keys() != lb.keys():
            bad.append(f"{fa.parent.name}: keys differ {sorted(set(la) ^ set(lb))[:5]}")
        for k in la.keys() & lb.keys():
            if any(s in k.split(".")[-1].lower() for s in SKIP):
                continue
            x, y = la[k], lb[k]
            if isinstance(x, (int, float)) and not isinstance(x, bool) and isinstance(y, (int, float)):
                n += 1
                if x == y or (math.isnan(x) and math.isnan(y)):
                    continue
                rel = abs(x - y) / max(abs(x), abs(y), 1e-300)
                worst = max(worst, rel)
                if rel > tol:
                    bad.append(f"{fa.parent.name}{k}: {x!r} vs {y!r} (rel {rel:.2e})")
            elif x != y:
                bad.append(f"{fa.parent.name}{k}: {x!r} vs {y!r}")
    print(f"{n} numbers compared; largest relative difference {worst:.2e}; {len(bad)} beyond {tol:g}")
    for line in bad[:60]:
        print("  ", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
