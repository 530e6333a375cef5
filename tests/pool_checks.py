"""Shared checks on pools for the tests."""

from __future__ import annotations

import math

import numpy as np

import goodhart_jax as gj


def push_fixed_point(pool, beta, *, steps=400, learning_rate=0.5):
    """Push ``pool`` with ``beta`` and return ``(E_pi[V] after the push, the same at the
    tilted policy pi ∝ e^(u / beta) computed directly from the pool, its standard error)``.

    With ``beta > 0`` push converges to ``pi ∝ e^(u / beta)``; its ``E_pi[V]`` is a
    self-normalised importance-weighted mean of the pool's values (the standard error is the
    delta method's).
    """
    res = gj.push(pool, beta=beta, steps=steps, learning_rate=learning_rate)
    got = float(res.trace.value[-1])
    w = np.exp((np.asarray(pool.proxy) - np.max(np.asarray(pool.proxy))) / beta)
    v = np.asarray(pool.value)
    est = np.sum(w * v) / np.sum(w)
    se = math.sqrt(np.sum(w ** 2 * (v - est) ** 2)) / np.sum(w)
    return got, est, se
