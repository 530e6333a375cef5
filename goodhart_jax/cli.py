"""The ``goodhart-jax`` command line.

Sub-commands: ``list``, ``run NAME``, ``condition``, ``diagnose FILE``, ``explore``, ``bench``.  Bad input gets a
one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from goodhart_jax import multihost

__all__ = ["main"]

PROG = "goodhart-jax"


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(message)


def _floats(text: str) -> list[float]:
    items = text.split(",")
    if any(v.strip() == "" for v in items):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got an empty item in {text!r}")
    try:
        return [float(v) for v in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _writable_dir(path: Path) -> None:
    """Create ``path`` (and parents) and check a file can be written there; else ValueError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".goodhart_jax_write_test_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"--out: cannot write to folder {str(path)!r} ({reason})") from None


def _set_pairs(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set: expected key=value, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _build_parser() -> _Parser:
    p = _Parser(prog=PROG, description="Goodhart's law and mesa-optimisation, in JAX.")
    p.add_argument("--x64", action="store_true", help="compute in float64 (exact estimators default to it)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars for long streaming runs (also GOODHART_JAX_PROGRESS=0)")
    d = p.add_argument_group(
        "several processes/hosts",
        "the same command on every process; jax.distributed.initialize joins them (also from "
        f"{', '.join(multihost.ENV_NAMES)})")
    d.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                   help="address of process 0, which listens there")
    d.add_argument("--num-processes", type=int, metavar="N", default=None,
                   help="number of processes")
    d.add_argument("--process-id", type=int, metavar="I", default=None, help="this process, 0..N-1")
    d.add_argument("--distributed", action="store_true",
                   help="join a cluster JAX detects by itself (Slurm, Open MPI, ...)")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    ls = sub.add_parser("list", help="list the registered experiments")
    ls.add_argument("--json", action="store_true",
                    help="print JSON (name, description, tunable parameters with defaults)")

    r = sub.add_parser("run", help="run an experiment (or 'all')")
    r.add_argument("name")
    r.add_argument("--quick", action="store_true", help="a small, fast version of the experiment")
    r.add_argument("--out", type=Path, default=None, help="output folder (default results/NAME)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override an experiment parameter (repeatable)")

    c = sub.add_parser("condition", help="E[V | V + X >= t] and log P(V + X >= t), exactly")
    c.add_argument("--value", required=True, help="distribution of V, e.g. 'normal(0, 1)'")
    c.add_argument("--error", required=True, help="distribution of X, e.g. 'student_t(df=3)'")
    c.add_argument("--threshold", required=True, type=_floats, help="t or t1,t2,...")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")

    g = sub.add_parser("diagnose", help="diagnose the right tail of proxy scores (and gold) in a file")
    g.add_argument("file", type=Path, help="scores: CSV with a header, .npy/.npz, or JSON lines")
    g.add_argument("--proxy", default=None, help="proxy column (default 'proxy', else the first)")
    g.add_argument("--gold", default=None, help="gold column (default 'gold' where there is one)")
    g.add_argument("--group", default=None, help="prompt-group column (best-of-n per group)")
    g.add_argument("--out", type=Path, default=None,
                   help="output folder (default results/diagnose/<file stem>)")
    g.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    g.add_argument("--drop-nonfinite", action="store_true",
                   help="drop rows with NaN or infinite scores instead of refusing the file")
    g.add_argument("--seed", type=int, default=0, help="seed of the bootstraps and re-pairings")
    g.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal")
    g.add_argument("--no-fits", action="store_true",
                   help="skip the whole-law fits (each family compiles once: 5-10 s on a CPU)")

    e = sub.add_parser("explore", help="interactive mesa-optimisation explorer (matplotlib window)")
    e.add_argument("--backend", default=None, help="matplotlib backend (default: the interactive one)")

    b = sub.add_parser("bench", help="benchmarks that print their figures")
    b.add_argument("what", help="conditioning | sampling | pools | best_of_n | startup | lab | diagnose")
    b.add_argument("--quick", action="store_true")
    return p


def _cmd_list(as_json: bool = False) -> int:
    from goodhart_jax import experiments

    if as_json:
        rows = [{"name": n, "description": experiments.describe(n),
                 "parameters": experiments.parameters(n)} for n in experiments.names()]
        print(json.dumps(rows, indent=2, default=str))
        return 0
    width = max(len(n) for n in experiments.names())
    for name in experiments.names():
        print(f"{name:<{width}}  {experiments.describe(name)}")
    print(f"{'all':<{width}}  every experiment above, in order")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from goodhart_jax import experiments

    params = _set_pairs(args.sets)
    todo = experiments.names() if args.name == "all" else [args.name]
    if args.name != "all":
        experiments.load(args.name)  # ValueError for an unknown name, before any work
    for name in todo:  # unknown --set keys, before any work
        unknown = sorted(set(params) - set(experiments.parameters(name)))
        if unknown:
            allowed = ", ".join(sorted(experiments.parameters(name))) or "none"
            raise ValueError(f"--set: unknown parameter {unknown[0]!r} for {name}; allowed: {allowed}")
    outs = {name: args.out if (args.out is not None and len(todo) == 1) else (
        (args.out / name) if args.out is not None else Path("results") / name) for name in todo}
    for out in outs.values():  # an unwritable folder, before any work
        _writable_dir(out)
    for name in todo:
        out = outs[name] if (args.out is not None) else None
        print(f"[{name}] running{' (quick)' if args.quick else ''} ...", file=sys.stderr)
        experiments.run(name, quick=args.quick, out=out, seed=args.seed, params=params)
        where = out if out is not None else Path("results") / name
        print(f"[{name}] results in {where}/")
    return 0


def _cmd_condition(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)  # exact computation: float64
    import numpy as np

    import goodhart_jax as gj

    value = gj.parse_dist(args.value)
    error = gj.parse_dist(args.error)
    t = np.asarray(args.threshold, dtype=np.float64)
    if t.size == 0:
        raise ValueError("threshold must be one or more finite numbers")
    log_excess, logp = (np.asarray(a) for a in gj.log_value_excess(value, error, t))
    mean = float(value.mean()) + np.exp(log_excess)  # one quadrature for both
    rows = [
        {"t": float(ti), "conditional_value": float(m), "log_tail_prob": float(lp),
         "bits": float(-lp / np.log(2.0))}
        for ti, m, lp in zip(t, mean, logp)
    ]
    if args.json:
        print(json.dumps({"value": args.value, "error": args.error, "rows": rows}, indent=2))
    else:
        print(f"V ~ {args.value}   X ~ {args.error}")
        print(f"{'t':>14} {'E[V | U >= t]':>22} {'log P(U >= t)':>22} {'bits':>12}")
        for r in rows:
            print(f"{r['t']:>14.6g} {r['conditional_value']:>22.15g} {r['log_tail_prob']:>22.15g} "
                  f"{r['bits']:>12.6g}")
    return 0


def _cmd_diagnose(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from goodhart_jax.diagnose_report import write_report
    from goodhart_jax.score_files import read_scores

    scores = read_scores(args.file, proxy=args.proxy, gold=args.gold, group=args.group,
                         drop_nonfinite=args.drop_nonfinite)
    out = args.out if args.out is not None else Path("results") / "diagnose" / args.file.stem
    existed = out.exists()
    _writable_dir(out)
    try:
        import goodhart_jax as gj

        diag = gj.diagnose(scores.proxy, scores.gold, groups=scores.groups,
                           key=jax.random.key(args.seed),
                           progress=True if args.progress else None, fits=not args.no_fits)
        numbers = write_report(out, diag, source=str(args.file), dropped=scores.dropped,
                               seed=args.seed)
    except BaseException:
        if not existed:
            try:
                out.rmdir()  # only if nothing landed in it
            except OSError:
                pass
        raise
    if args.json:
        print(json.dumps(numbers, indent=2))
    else:
        print(diag.verdict)
        print(f"results in {out}/")
    return 0


def _cmd_explore(args: argparse.Namespace) -> int:
    from goodhart_jax import explorer

    return explorer.main(backend=args.backend)


def _cmd_bench(args: argparse.Namespace) -> int:
    benches = {
        "conditioning": "goodhart_jax.experiments.bench_conditioning",
        "sampling": "goodhart_jax.experiments.bench_sampling",
        "pools": "goodhart_jax.experiments.bench_pools",
        "best_of_n": "goodhart_jax.experiments.bench_best_of_n",
        "startup": "goodhart_jax.experiments.bench_startup",
        "lab": "goodhart_jax.experiments.bench_lab",
        "diagnose": "goodhart_jax.experiments.bench_diagnose",
    }
    if args.what not in benches:
        raise ValueError(f"bench must be one of {', '.join(benches)}; got {args.what!r}")
    import importlib

    return importlib.import_module(benches[args.what]).main(quick=args.quick)


def _init_distributed(args: argparse.Namespace) -> None:
    """``jax.distributed.initialize`` from the flags or the environment (before any JAX work)."""
    given = (args.coordinator, args.num_processes, args.process_id)
    if not (args.distributed or any(v is not None for v in given)
            or any(os.environ.get(name) for name in multihost.ENV_NAMES)):
        return
    try:
        if multihost.initialize_distributed(args.coordinator, args.num_processes,
                                            args.process_id, auto=args.distributed):
            _JOINED.append(True)
    except RuntimeError as exc:  # e.g. the coordinator never answered
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"distributed initialisation failed: {first}") from None


# Set when this process joined a multi-process run (its exit must tell the coordinator).
_JOINED: list[bool] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``goodhart-jax``; returns the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.x64:
            import jax

            jax.config.update("jax_enable_x64", True)
        if args.no_progress:
            from goodhart_jax import progress

            progress.set_enabled(False)
        _init_distributed(args)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "list":
            return _cmd_list(args.json)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "condition":
            return _cmd_condition(args)
        if args.command == "diagnose":
            return _cmd_diagnose(args)
        if args.command == "explore":
            return _cmd_explore(args)
        if args.command == "bench":
            return _cmd_bench(args)
        raise UsageError(f"unknown command {args.command!r}")
    except (UsageError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `goodhart-jax list --json | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def run() -> None:
    """The ``goodhart-jax`` executable: :func:`main`, then a quick exit.

    Python's interpreter teardown with JAX loaded takes about 0.25 s (JAX's backends and thread
    pools are torn down one by one).  Once the command has returned, its files are closed
    (written atomically) and its output is flushed, nothing of that teardown is needed, so the
    executable leaves with ``os._exit``.  A process that joined a multi-process run exits the
    normal way (JAX's shutdown tells the coordinator).
    """
    code = main()
    if _JOINED:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left: nothing more to say
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
