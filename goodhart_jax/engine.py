"""Streaming Monte Carlo: ``N`` samples in fixed-size chunks inside one jitted loop.

Chunk ``i`` draws with ``jax.random.fold_in(key, i)``, so the draws do not depend on how chunks
are scheduled, and memory is constant in ``N`` (one chunk at a time).  A chunk function maps
``(key, mask)`` to a pytree of statistics; statistics are merged by a ``combine`` function (a
monoid: plain sums by default, compensated so that 1e9 float32 terms keep their precision).

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

from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["stream", "Sums", "kahan_add", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 1 << 16

PyTree = Any


class Sums(NamedTuple):
    """A compensated running sum: ``total + compensation`` (Kahan–Babuška)."""

    total: PyTree
    compensation: PyTree


def kahan_add(acc: Sums, value: PyTree) -> Sums:
    """Add ``value`` to the compensated sum ``acc`` (elementwise over the pytree)."""

    leaves_s, treedef = jax.tree_util.tree_flatten(acc.total)
    leaves_c = treedef.flatten_up_to(acc.compensation)
    leaves_v = treedef.flatten_up_to(value)
    new_s, new_c = [], []
    for s, c, v in zip(leaves_s, leaves_c, leaves_v):
        t = s + v
        new_c.append(c + jnp.where(jnp.abs(s) >= jnp.abs(v), (s - t) + v, (v - t) + s))
        new_s.append(t)
    return Sums(treedef.unflatten(new_s), treedef.unflatten(new_c))


def _n_chunks(num_samples: int, chunk_size: int) -> int:
    return -(-num_samples // chunk_size)


@partial(jax.jit, static_argnames=("chunk_fn", "num_samples", "chunk_size"))
def _stream_sums(chunk_fn, key, args, num_samples: int, chunk_size: int):
    n_chunks = _n_chunks(num_samples, chunk_size)
    arange = jnp.arange(chunk_size)
    template = jax.eval_shape(chunk_fn, key, jnp.ones((chunk_size,), bool), *args)
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), template)
    init = Sums(zeros, zeros)

    def body(i, acc):
        mask = i * chunk_size + arange < num_samples
        stats = chunk_fn(jax.random.fold_in(key, i), mask, *args)
        return kahan_add(acc, stats)

    acc = jax.lax.fori_loop(0, n_chunks, body, init)
    return jax.tree_util.tree_map(lambda s, c: s + c, acc.total, acc.compensation)


def stream(chunk_fn: Callable[..., PyTree], key: jax.Array, *args: PyTree,
           num_samples: int, chunk_size: int = DEFAULT_CHUNK) -> PyTree:
    """Sum ``chunk_fn(fold_in(key, i), mask_i, *args)`` over the chunks covering ``num_samples``.

    Math: ``S = Σ_i chunk_fn(fold_in(key, i), mask_i)``, ``mask_i[j] = i·C + j < N``.

    Args:
        chunk_fn: ``(key, mask, *args) -> pytree`` of statistics of one chunk; ``mask`` (bool,
            ``(chunk_size,)``) marks the draws that count (the last chunk is partial).  It is a
            static argument: pass a module-level function (not a fresh lambda) so that repeated
            calls reuse the compiled loop; data go in ``args``.
        key: a PRNG key.
        *args: pytrees passed to ``chunk_fn`` (traced, e.g. distributions and thresholds).
        num_samples: total number of draws ``N >= 1``.
        chunk_size: draws per chunk.

    Returns:
        The compensated sums of the statistics over all chunks.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples}")
    chunk_size = min(int(chunk_size), int(num_samples))
    return _stream_sums(chunk_fn, key, args, int(num_samples), chunk_size)
