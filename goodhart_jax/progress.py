"""A progress bar for long streaming runs (rate and ETA), outside of ``jit``.

The streaming engine (:mod:`goodhart_jax.engine`) shows progress by running a Python loop
over jitted *super-chunks* (each a whole number of rounds of chunks, one compilation for all
of them) and calling :meth:`Progress.update` between them, so nothing inside ``jit`` changes
and the estimate is bit for bit the one of a single call.

Turning it off, from the most to the least local:

* ``progress=False`` in :func:`goodhart_jax.engine.stream` (and the estimators built on it);
* :func:`set_enabled` (``False``) for the whole process; the command line's ``--no-progress``
  calls it;
* the environment variable ``GOODHART_JAX_PROGRESS=0``.

With ``progress=None`` (the default) a bar appears only for runs of at least
:data:`AUTO_MIN_SAMPLES` samples, outside of traced code, when standard error is a terminal.

Example:
    >>> import io
    >>> from goodhart_jax.progress import Progress
    >>> out = io.StringIO()
    >>> bar = Progress(1000, stream=out, min_interval=0.0)
    >>> bar.update(1000); bar.close()
    >>> "100%" in out.getvalue()
    True
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

__all__ = ["Progress", "set_enabled", "enabled", "should_show", "AUTO_MIN_SAMPLES"]

#: Runs shorter than this many samples show no bar unless ``progress=True`` is passed.
AUTO_MIN_SAMPLES = 1 << 28

_ENABLED: bool | None = None


def set_enabled(flag: bool | None) -> None:
    """Turn progress bars on or off for the whole process (``None``: back to the default).

    Math: none (a switch).

    Args:
        flag: ``False`` hides every bar, even where ``progress=True`` is passed; ``True``
            or ``None`` restore the default behaviour.

    Example:
        >>> from goodhart_jax import progress
        >>> progress.set_enabled(False); progress.enabled()
        False
        >>> progress.set_enabled(None)
    """
    global _ENABLED
    _ENABLED = None if flag is None else bool(flag)


def enabled() -> bool:
    """Whether progress bars may be shown (``set_enabled`` and ``GOODHART_JAX_PROGRESS``)."""
    if _ENABLED is not None:
        return _ENABLED
    value = os.environ.get("GOODHART_JAX_PROGRESS", "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def should_show(progress: bool | None, num_samples: int, stream: TextIO | None = None) -> bool:
    """Decide whether a run of ``num_samples`` shows a bar.

    Args:
        progress: the caller's choice (``True``, ``False`` or ``None`` for automatic).
        num_samples: the size of the run.
        stream: where the bar would go (default ``sys.stderr``).

    Returns:
        ``False`` when bars are disabled process-wide or ``progress`` is ``False``;
        ``True`` when ``progress`` is ``True``; otherwise whether the run is long
        (``num_samples >= AUTO_MIN_SAMPLES``) and ``stream`` is a terminal.
    """
    if progress is False or not enabled():
        return False
    if progress is True:
        return True
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and num_samples >= AUTO_MIN_SAMPLES


def _fmt_time(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """A one-line text progress bar with rate and ETA.

    Math: ``rate = done / elapsed``; ``ETA = (total - done) / rate``.

    Args:
        total: the number of units of the whole run (> 0).
        unit: the unit's name, shown after the rate.
        stream: where to write (default ``sys.stderr``).  On a terminal the line is redrawn
            in place; elsewhere a line is written at most every ``10 * min_interval`` s.
        min_interval: the least time between two redraws, in seconds.
        width: the bar's width in characters.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> with Progress(10, stream=out, min_interval=0.0) as bar:
        ...     bar.update(10)
        >>> "10/10" in out.getvalue()
        True
    """

    def __init__(self, total: int, *, unit: str = "samples", stream: TextIO | None = None,
                 min_interval: float = 0.2, width: int = 24) -> None:
        if not total or total <= 0:
            raise ValueError(f"total must be a positive number, got {total!r}")
        self.total = total
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        try:
            self._tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self._tty = False
        self.min_interval = min_interval if self._tty else 10.0 * min_interval
        self.width = width
        self.done = 0
        self.start = time.perf_counter()
        self._last = -float("inf")
        self._drawn = -1
        self._closed = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def line(self) -> str:
        """The current status line (without a line ending)."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        frac = min(self.done / self.total, 1.0)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        fill = int(round(frac * self.width))
        bar = "#" * fill + "." * (self.width - fill)
        return (f"[{bar}] {100 * frac:3.0f}% {self.done:.3g}/{self.total:.3g} {self.unit}"
                f"  {rate:.3g} {self.unit}/s  elapsed {_fmt_time(elapsed)}  ETA {_fmt_time(eta)}")

    def update(self, done: int) -> None:
        """Record that ``done`` units (in total, not an increment) are finished; maybe redraw."""
        self.done = min(int(done), int(self.total))
        now = time.perf_counter()
        if now - self._last >= self.min_interval or self.done >= self.total:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        self._drawn = self.done
        text = self.line()
        try:
            if self._tty:
                self.stream.write("\r" + text + "\x1b[K")
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stream never stops the computation
            pass

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._closed:
            return
        self._closed = True
        if self._tty or self._drawn != self.done:
            self._draw()
        if self._tty:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
