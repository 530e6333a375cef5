"""Multi-process (multi-host) start-up: ``jax.distributed.initialize`` from flags or the environment.

Every process runs the same program; once joined, ``jax.devices()`` lists the devices of all
processes and :func:`goodhart_jax.engine.stream` shards its chunks over all of them (the estimate
is the same, bit for bit, as on one process).  The environment variables :data:`ENV_COORDINATOR`,
:data:`ENV_NUM_PROCESSES` and :data:`ENV_PROCESS_ID` stand in for missing arguments (the command
line reads the same names).
"""

from __future__ import annotations

import os
from typing import Sequence

import jax

__all__ = ["initialize_distributed", "ENV_COORDINATOR", "ENV_NUM_PROCESSES", "ENV_PROCESS_ID",
           "ENV_NAMES"]

ENV_COORDINATOR = "GOODHART_JAX_COORDINATOR"
ENV_NUM_PROCESSES = "GOODHART_JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "GOODHART_JAX_PROCESS_ID"
#: All three, in that order.
ENV_NAMES = (ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID)


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, *, auto: bool = False,
                           local_device_ids: Sequence[int] | None = None,
                           timeout_s: int = 300) -> bool:
    """Join a multi-process (multi-host) run: ``jax.distributed.initialize``.

    Every process runs the same program; afterwards ``jax.devices()`` lists the devices of all
    processes and :func:`goodhart_jax.engine.stream` shards its chunks over all of them (the
    estimate is the same, bit for bit, as on one process).  Arguments left ``None`` are read from the environment
    (``GOODHART_JAX_COORDINATOR``, ``GOODHART_JAX_NUM_PROCESSES``, ``GOODHART_JAX_PROCESS_ID``).
    With none given anywhere, nothing happens unless ``auto`` is set, which lets JAX detect the
    cluster (Slurm, Open MPI, Kubernetes, TPU pods).

    Math: none (set-up).

    Args:
        coordinator: ``host:port`` of process 0 (it listens there).
        num_processes: the number of processes (>= 1).
        process_id: this process's index, ``0 <= process_id < num_processes``.
        auto: call ``jax.distributed.initialize()`` with cluster auto-detection when no
            coordinator is given.
        local_device_ids: restrict this process to these local devices (e.g. one GPU each).
        timeout_s: seconds to wait for the other processes.

    Returns:
        ``True`` if JAX was initialised for several processes, ``False`` if nothing was done.

    Raises:
        ValueError: a malformed coordinator address or process numbers out of range.

    Example:
        >>> from goodhart_jax import multihost
        >>> multihost.initialize_distributed()  # no flags, no environment: a single process
        False
    """
    env = os.environ
    coordinator = coordinator if coordinator is not None else env.get(ENV_COORDINATOR) or None
    if num_processes is None and env.get(ENV_NUM_PROCESSES):
        num_processes = env[ENV_NUM_PROCESSES]
    if process_id is None and env.get(ENV_PROCESS_ID):
        process_id = env[ENV_PROCESS_ID]
    if coordinator is None and num_processes is None and process_id is None:
        if not auto:
            return False
        jax.distributed.initialize(local_device_ids=local_device_ids,
                                   initialization_timeout=int(timeout_s))
        return True
    if coordinator is None or num_processes is None or process_id is None:
        raise ValueError("coordinator, num_processes and process_id must be given together "
                         f"(got coordinator={coordinator!r}, num_processes={num_processes!r}, "
                         f"process_id={process_id!r})")
    host, sep, port = str(coordinator).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator must be host:port, got {coordinator!r}")
    try:
        n = int(num_processes)
        pid = int(process_id)
    except (TypeError, ValueError):
        raise ValueError(f"num_processes and process_id must be integers, got "
                         f"{num_processes!r} and {process_id!r}") from None
    if n < 1:
        raise ValueError(f"num_processes must be an integer >= 1, got {num_processes!r}")
    if not 0 <= pid < n:
        raise ValueError(f"process_id must be an integer in [0, {n - 1}], got {process_id!r}")
    jax.distributed.initialize(coordinator_address=str(coordinator), num_processes=n,
                               process_id=pid, local_device_ids=local_device_ids,
                               initialization_timeout=int(timeout_s))
    return True
