"""Streaming Monte Carlo over devices and hosts: one engine for every sampled estimator.

``N`` samples are drawn in fixed-size chunks.  Chunk ``i`` (its *global* index) draws with
``jax.random.fold_in(key, i)``, so the draws never depend on which device or host computes
them, and memory is constant in ``N`` (a device holds one chunk at a time).  A chunk
function maps ``(key, mask, *args)`` to a pytree of statistics; the engine adds them up.

Layout (:func:`stream`).  The chunks are processed in *rounds* of ``R = D * k`` chunks, ``D``
devices (all devices of all processes by default, one ``jax.shard_map`` over a 1-D mesh) and
``k`` chunks per device per round (device ``d`` takes chunks ``r R + d k + j``, ``j < k``).
After each round every device holds the ``k`` statistics it computed in its slot of a
``(R, ...)`` buffer of zeros; one ``psum`` over the mesh fills the buffer (each entry is a sum
of one value and ``D - 1`` exact zeros, so it is exact: this ``psum`` is an all-gather), and
every device then adds the ``R`` chunk statistics to its running, compensated
(Kahan–Babuška) sum in global chunk order ``0, 1, 2, ...``.  The sequence of floating-point
operations is therefore the same for any ``D`` and ``k``: the estimate is bit for bit the same
on 1, 2 or 8 devices, on one host or several (for the same compiled chunk kernel, i.e. the same
backend and CPU features).  Empty chunks past ``N`` (the last round is padded) are skipped by
``lax.cond`` and add exact zeros.  All rounds run inside one jitted ``fori_loop``; with a
progress bar (:mod:`goodhart_jax.progress`) the same jitted program runs a few rounds at a
time from a Python loop, with the same result.

The random numbers a chunk draws (a fused Threefry stream, Box–Muller normals, a vectorised
gamma) live in :mod:`goodhart_jax.rng`; joining several hosts, in :mod:`goodhart_jax.multihost`.

Chunk size.  ``DEFAULT_CHUNK = 2**16`` draws on CPU.  Samples per CPU-second by chunk size
(two runs): 2^13 188/216, 2^14 232/226, 2^15 238/233, 2^16 203/227, 2^17 213/216,
2^18 171/176 M: a plateau from 2^14 to 2^16 (within the noise), a drop below (per-chunk
overhead: a ``fold_in``, a ``cond``, the loop) and above (the pinned pair, 8 bytes a draw,
leaves the 2 MB L2 cache).  2^16 is the plateau's top end and keeps earlier estimates
unchanged.  On GPU :func:`default_chunk_size` returns ``2**24`` so that a chunk fills the
device and loop overheads stay small (not measured here: no GPU; ``bench sampling`` sweeps
it).

Example:
    >>> import jax, jax.numpy as jnp
    >>> from goodhart_jax import engine
    >>> def chunk(key, mask, loc):
    ...     z = loc + jax.random.normal(key, mask.shape)
    ...     return {"n": mask.sum(dtype=z.dtype), "s": jnp.where(mask, z, 0.0).sum()}
    >>> out = engine.stream(chunk, jax.random.key(0), 1.0, num_samples=10_000, chunk_size=1024)
    >>> int(out["n"])
    10000
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from goodhart_jax import progress as _progress
from goodhart_jax import rng
from goodhart_jax.validation import check_positive_int

__all__ = [
    "stream",
    "Sums",
    "kahan_add",
    "DEFAULT_CHUNK",
    "default_chunk_size",
    "MAX_CHUNKS",
]

DEFAULT_CHUNK = 1 << 16
#: Chunks one device draws per round (between two psums); the result does not depend on it.
CHUNKS_PER_DEVICE = 4
#: The most chunks one run may have (chunk indices are int32 and fold_in takes uint32).
MAX_CHUNKS = (1 << 31) - 1
AXIS = "chunks"

PyTree = Any


class Sums(NamedTuple):
    """A compensated running sum: ``total + compensation`` (Kahan–Babuška)."""

    total: PyTree
    compensation: PyTree


def kahan_add(acc: Sums, value: PyTree) -> Sums:
    """Add ``value`` to the compensated sum ``acc`` (elementwise over the pytree).

    Math: ``t = s + v``; ``c += (s - t) + v`` if ``|s| >= |v|`` else ``(v - t) + s``; ``s = t``.
    """

    leaves_s, treedef = jax.tree_util.tree_flatten(acc.total)
    leaves_c = treedef.flatten_up_to(acc.compensation)
    leaves_v = treedef.flatten_up_to(value)
    new_s, new_c = [], []
    for s, c, v in zip(leaves_s, leaves_c, leaves_v):
        t = s + v
        new_c.append(c + jnp.where(jnp.abs(s) >= jnp.abs(v), (s - t) + v, (v - t) + s))
        new_s.append(t)
    return Sums(treedef.unflatten(new_s), treedef.unflatten(new_c))


def default_chunk_size(backend: str | None = None) -> int:
    """Draws per chunk for ``backend`` (default: JAX's default backend).

    Math: ``C = 2^16`` on CPU (measured), ``2^24`` on GPU/TPU (one chunk fills the device).

    Example:
        >>> from goodhart_jax import engine
        >>> engine.default_chunk_size("cpu")
        65536
    """
    backend = jax.default_backend() if backend is None else backend
    return DEFAULT_CHUNK if backend == "cpu" else 1 << 24


# --- the streaming loop ------------------------------------------------------------------------

class _Plan(NamedTuple):
    """The static part of a run (one compilation each); the sample count is traced."""

    chunk_size: int
    per_device: int
    mesh: Mesh
    impl: Any


@lru_cache(maxsize=32)
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices, dtype=object), (AXIS,))


def _zeros_like_tree(template):
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), template)


#: XLA options for the CPU compilation of the streaming loop.  Preferring 512-bit vectors
#: measured 1.6-1.8x the samples per CPU-second of XLA's default (256) on the AVX-512 CPU
#: of the benchmark machine; on CPUs without AVX-512 the hint has no effect.  Set to ``{}``
#: to compile with XLA's defaults.
CPU_COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_prefer_vector_width": 512}


@lru_cache(maxsize=8)
def _jitted_advance(options: tuple):
    return jax.jit(_advance_impl, static_argnames=("chunk_fn", "plan"),
                   compiler_options=dict(options) or None)


def _advance(chunk_fn, key_data, args, acc, sched, plan: "_Plan"):
    """Run the rounds ``sched = [start_round, num_rounds, n_chunks, last_valid]`` (int32)."""
    platform = plan.mesh.devices.flat[0].platform
    leaves = jax.tree_util.tree_leaves((key_data, args, acc))
    traced = any(isinstance(x, jax.core.Tracer) for x in leaves)
    # compiler options are allowed on top-level jit only (not under an outer jit or vmap)
    options = ()
    if platform == "cpu" and not traced:
        options = tuple(sorted(CPU_COMPILER_OPTIONS.items()))
    return _jitted_advance(options)(chunk_fn, key_data, args, acc, sched, plan=plan)


def _advance_impl(chunk_fn, key_data, args, acc, sched, plan: _Plan):
    """Run rounds ``[start_round, start_round + num_rounds)`` and add them to ``acc``."""
    mesh = plan.mesh
    k = plan.per_device
    R = mesh.size * k
    C = plan.chunk_size

    def body(key_data, args, acc, sched):
        start_round, num_rounds, n_chunks, last_valid = sched[0], sched[1], sched[2], sched[3]
        key = jax.random.wrap_key_data(key_data, impl=plan.impl)
        d = lax.axis_index(AXIS)
        arange = lax.iota(jnp.int32, C)
        template = jax.eval_shape(chunk_fn, key, jax.ShapeDtypeStruct((C,), jnp.bool_), *args)
        zeros = _zeros_like_tree(template)

        def compute(i):
            valid = jnp.where(i == n_chunks - 1, last_valid, C)
            out = chunk_fn(jax.random.fold_in(key, i), arange < valid, *args)
            return jax.tree_util.tree_map(lambda o, s: jnp.asarray(o, s.dtype), out, template)

        def skip(i):
            return zeros

        def round_body(r, acc):
            base = (start_round + r) * R + d * k

            def one(j, buf):
                i = base + j
                stats = lax.cond(i < n_chunks, compute, skip, i)
                return jax.tree_util.tree_map(
                    lambda b, s: lax.dynamic_update_index_in_dim(b, s, j, 0), buf, stats)

            empty = jax.tree_util.tree_map(lambda s: jnp.zeros((k,) + s.shape, s.dtype), template)
            local = lax.fori_loop(0, k, one, empty)
            full = jax.tree_util.tree_map(
                lambda s, part: lax.dynamic_update_slice_in_dim(
                    jnp.zeros((R,) + s.shape, s.dtype), part, d * k, 0), template, local)
            full = lax.psum(full, AXIS)  # one value and D - 1 exact zeros per entry: exact

            def add(j, acc):
                return kahan_add(acc, jax.tree_util.tree_map(
                    lambda f: lax.dynamic_index_in_dim(f, j, 0, keepdims=False), full))

            return lax.fori_loop(0, R, add, acc)

        return lax.fori_loop(0, num_rounds, round_body, acc)

    spec = PartitionSpec()
    run = jax.shard_map(body, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    return run(key_data, args, acc, sched)


def _global(tree: PyTree, mesh: Mesh) -> PyTree:
    """Concrete leaves as arrays replicated over ``mesh`` (needed when it spans processes)."""
    if jax.process_count() == 1:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec())

    def conv(x):
        if isinstance(x, jax.core.Tracer):
            return x
        if isinstance(x, jax.Array) and x.sharding == sharding:
            return x
        a = np.asarray(jnp.asarray(x))
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])

    return jax.tree_util.tree_map(conv, tree)


def _resolve_devices(devices) -> tuple:
    if devices is None:
        return tuple(jax.devices())
    if isinstance(devices, int):
        all_devices = jax.devices()
        devices = check_positive_int("devices", devices)
        if devices > len(all_devices):
            raise ValueError(f"devices must be between 1 and {len(all_devices)}, got {devices}")
        return tuple(all_devices[:devices])
    devs = tuple(devices)
    if not devs:
        raise ValueError("devices must name at least one device")
    return devs


def stream(chunk_fn: Callable[..., PyTree], key: jax.Array, *args: PyTree,
           num_samples: int, chunk_size: int | None = DEFAULT_CHUNK,
           devices: int | Sequence[jax.Device] | None = None,
           progress: bool | None = None, chunks_per_device: int = CHUNKS_PER_DEVICE) -> PyTree:
    """Sum ``chunk_fn(fold_in(key, i), mask_i, *args)`` over the chunks covering ``num_samples``.

    Math: ``S = Σ_i chunk_fn(fold_in(key, i), mask_i)``, ``mask_i[j] = i·C + j < N``, summed
    (compensated) in the order ``i = 0, 1, 2, ...`` whatever the number of devices.

    Args:
        chunk_fn: ``(key, mask, *args) -> pytree`` of statistics of one chunk; ``mask`` (bool,
            ``(chunk_size,)``) marks the draws that count (the last chunk is partial).  It is a
            static argument: pass a module-level function (not a fresh lambda) so that repeated
            calls reuse the compiled loop; data go in ``args``.
        key: a PRNG key (typed, or a raw ``uint32`` key).
        *args: pytrees passed to ``chunk_fn`` (traced, e.g. distributions and thresholds).
        num_samples: total number of draws ``N >= 1``.
        chunk_size: draws per chunk (``None``: :func:`default_chunk_size`).  The estimate
            depends on it (it fixes which key draws which sample), not on the devices.
        devices: the devices to shard the chunks over: ``None`` for all devices of all
            processes (``jax.devices()``), an integer for the first that many, or a sequence.
        progress: show a progress bar (rate, ETA) on stderr: ``True``, ``False``, or ``None``
            for long runs on a terminal (see :mod:`goodhart_jax.progress`).  The result is
            the same either way.
        chunks_per_device: chunks a device draws between two reductions (no effect on the
            result).

    Returns:
        The compensated sums of the statistics over all chunks.

    Raises:
        ValueError: ``num_samples``, ``chunk_size``, ``devices`` or ``chunks_per_device`` out of
            range, or more than ``MAX_CHUNKS`` chunks.
    """
    num_samples = check_positive_int("num_samples", num_samples)
    if chunk_size is None:
        chunk_size = default_chunk_size()
    chunk_size = check_positive_int("chunk_size", chunk_size)
    chunks_per_device = check_positive_int("chunks_per_device", chunks_per_device)
    chunk_size = min(chunk_size, num_samples)
    n_chunks = -(-num_samples // chunk_size)
    if n_chunks > MAX_CHUNKS:
        raise ValueError(f"num_samples / chunk_size must be at most {MAX_CHUNKS} chunks, got "
                         f"{n_chunks}; raise chunk_size")
    devs = _resolve_devices(devices)
    mesh = _mesh(devs)
    n_dev = mesh.size
    k = max(1, min(int(chunks_per_device), -(-n_chunks // n_dev)))
    per_round = n_dev * k
    n_rounds = -(-n_chunks // per_round)

    key = rng.typed_key(key)
    impl = jax.random.key_impl(key)
    key_data = jax.random.key_data(key)
    plan = _Plan(chunk_size, k, mesh, impl)
    counts = (n_chunks, num_samples - (n_chunks - 1) * chunk_size)

    template = _template(chunk_fn, key, chunk_size, args)
    zeros = _zeros_like_tree(template)
    acc = Sums(zeros, zeros)
    key_data, args, acc = _global((key_data, args, acc), mesh)

    concrete = not any(isinstance(x, jax.core.Tracer)
                       for x in jax.tree_util.tree_leaves((key_data, args)))
    if concrete and _progress.should_show(progress, num_samples):
        acc = _run_with_progress(chunk_fn, key_data, args, acc, plan, counts, num_samples,
                                 n_rounds, per_round)
    else:
        acc = _advance(chunk_fn, key_data, args, acc, _sched(0, n_rounds, counts, mesh), plan)
    return jax.tree_util.tree_map(lambda s, c: s + c, acc.total, acc.compensation)


def _template(chunk_fn, key, chunk_size: int, args) -> PyTree:
    """The shapes of ``chunk_fn``'s statistics, traced once per function, key type, chunk size
    and argument structure (a second call with new values of the same shapes traces nothing)."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    avals = tuple(jax.typeof(x) if isinstance(x, jax.Array) else
                  (type(x), np.shape(x), np.result_type(x)) for x in leaves)
    return _template_cached(chunk_fn, jax.typeof(key), chunk_size, treedef, avals,
                            lambda: jax.eval_shape(chunk_fn, key,
                                                   jax.ShapeDtypeStruct((chunk_size,), jnp.bool_),
                                                   *args))


_TEMPLATES: dict = {}


def _template_cached(chunk_fn, key_type, chunk_size, treedef, avals, make):
    k = (chunk_fn, key_type, chunk_size, treedef, avals)
    try:
        return _TEMPLATES[k]
    except TypeError:  # something unhashable: no caching
        return make()
    except KeyError:
        if len(_TEMPLATES) > 4096:
            _TEMPLATES.clear()
        out = _TEMPLATES[k] = make()
        return out


def _sched(start: int, n: int, counts: tuple[int, int], mesh: Mesh):
    return _global(np.array([start, n, *counts], np.int32), mesh)


_CALL_SECONDS = 1.0


def _run_with_progress(chunk_fn, key_data, args, acc, plan, counts, num_samples, n_rounds,
                       per_round):
    """The same rounds as one call, a few at a time, with a bar between them.

    Calls are pipelined: call ``j + 1`` is dispatched (JAX dispatches asynchronously; it waits
    on call ``j``'s accumulator on the device) before the host waits for call ``j`` and redraws
    the bar, so the devices never idle on the host.  Calls grow from ``2^24`` samples to about
    a second each.
    """
    C = plan.chunk_size
    bar = _progress.Progress(num_samples)
    dispatched = 0
    step = max(1, min(n_rounds, (1 << 24) // (per_round * C)))
    in_flight: list[tuple[Any, int, int]] = []  # (accumulator, rounds done when it is ready, n)
    last = time.perf_counter()
    try:
        while dispatched < n_rounds or in_flight:
            if dispatched < n_rounds and len(in_flight) < 2:
                n = min(step, n_rounds - dispatched)
                acc = _advance(chunk_fn, key_data, args, acc,
                               _sched(dispatched, n, counts, plan.mesh), plan)
                dispatched += n
                in_flight.append((acc, dispatched, n))
                continue
            ready, done, n = in_flight.pop(0)
            jax.block_until_ready(ready)
            now = time.perf_counter()
            bar.update(min(done * per_round * C, num_samples))
            step = max(1, int(n * min(4.0, _CALL_SECONDS / max(now - last, 1e-6))))
            last = now
    finally:
        bar.close()
    return acc
