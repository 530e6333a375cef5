"""Counting JAX's traces and compilations (its own monitoring events, not a timer).

``with compilations() as n: ...; n()`` gives the number of traces and backend compilations
inside the block.  One listener for the whole test run, registered on first import.
"""

from __future__ import annotations

import contextlib

from jax import monitoring

EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/backend_compile_duration")
SEEN: list[str] = []
monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: SEEN.append(event) if event in EVENTS else None)


@contextlib.contextmanager
def compilations():
    """Counts traces and compilations inside the block: ``with compilations() as n: ...; n()``."""
    start = len(SEEN)
    yield lambda: len(SEEN) - start
