"""Resumable sweeps: each finished point of a parameter sweep is saved as soon as it is done.

An experiment that evaluates a slow function over a list of points calls :func:`sweep`.  After
every point the results so far are written (atomically) to ``out/.partial/<name>.json`` together
with a fingerprint of the parameters that define them.  If the run is interrupted and started
again with the same parameters, the saved points are read back and only the missing ones are
computed; with other parameters the old file is ignored and overwritten.  :func:`clear` removes
the partial files once the whole experiment has finished (``experiments.run`` calls it), so a
completed run started again recomputes everything.

A progress bar (points done, rate, ETA) is drawn on standard error while the sweep runs; it
follows the switches of :mod:`goodhart_jax.progress` (``--no-progress``).

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> sweep(out, "squares", {"power": 2}, [1, 2, 3], lambda x: x ** 2, progress=False)
    [1, 4, 9]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from goodhart_jax import progress as _progress
from goodhart_jax import results

__all__ = ["sweep", "clear", "partial_dir"]


def partial_dir(out: str | os.PathLike) -> Path:
    """The folder where the sweeps of an experiment writing into ``out`` keep finished points."""
    return Path(out) / ".partial"


def _fingerprint(params: Any) -> str:
    text = json.dumps(results.to_jsonable(params), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _key(point: Any) -> str:
    return json.dumps(results.to_jsonable(point), sort_keys=True)


def sweep(out: str | os.PathLike, name: str, params: Any, points: Sequence[Any],
          fn: Callable[[Any], Any], *, progress: bool | None = None,
          label: str | None = None) -> list[Any]:
    """Evaluate ``fn`` at every point, saving each result as it is finished.

    Math: ``[fn(p) for p in points]``, resumed from ``out/.partial/<name>.json``.

    Args:
        out: the experiment's output folder.
        name: the sweep's name, unique within the experiment (a file name).
        params: everything besides the point that determines ``fn``'s results (the
            experiment's parameters, seed, quick flag, ...); saved points are reused only when
            it is equal to the saved one.
        points: the sweep's points (JSON-serialisable: numbers, strings, tuples of them).
        fn: computes one point's result; the result must be JSON-serialisable (arrays,
            numbers, dicts and lists of them; non-finite floats are kept).
        progress: ``True`` always draws a bar, ``False`` never, ``None`` when standard error
            is a terminal.
        label: the bar's unit (default ``name``).

    Returns:
        The results in the order of ``points`` (loaded ones as read back from JSON: arrays
        come back as lists).

    Raises:
        ValueError: ``name`` is empty or not a plain file name, or two points are equal.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file name, got {name!r}")
    keys = [_key(p) for p in points]
    if len(set(keys)) != len(keys):
        raise ValueError(f"points of sweep {name!r} must be distinct")
    path = partial_dir(out) / f"{name}.json"
    fingerprint = _fingerprint(params)
    done: dict[str, Any] = {}
    if path.exists():
        try:
            saved = results.load_json(path)
        except (OSError, ValueError):
            saved = None
        if isinstance(saved, dict) and saved.get("fingerprint") == fingerprint:
            done = {k: v for k, v in saved.get("points", {}).items() if k in set(keys)}
    if progress is None:
        try:
            show = _progress.enabled() and sys.stderr.isatty()
        except (AttributeError, ValueError):
            show = False
    else:
        show = _progress.should_show(progress, len(keys))
    show = show and len(keys) > 1
    bar = _progress.Progress(len(keys), unit=label or name) if show else None
    try:
        if bar is not None:
            bar.update(sum(k in done for k in keys))
        for point, key in zip(points, keys):
            if key in done:
                continue
            done[key] = results.to_jsonable(fn(point))
            results.save_json(path, {"fingerprint": fingerprint, "params": params,
                                     "points": done})
            if bar is not None:
                bar.update(sum(k in done for k in keys))
    finally:
        if bar is not None:
            bar.close()
    return [results.from_jsonable(done[k]) for k in keys]


def clear(out: str | os.PathLike) -> None:
    """Remove the saved points of every sweep of the experiment writing into ``out``."""
    shutil.rmtree(partial_dir(out), ignore_errors=True)
