"""The public API compiles once per family structure, shape bucket and dtype.

Counted with JAX's own monitoring events (traces and backend compilations), never a timer:
after a first call, new values of the same shape and new parameter values of the same
families trace and compile nothing.  Threshold counts are padded to buckets
(:func:`goodhart_jax.conditioning.bucket_size`): 1,000 and 1,020 thresholds share a program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import goodhart_jax as gj
from goodhart_jax import mesa
from goodhart_jax.conditioning import bucket_size
from tests.compile_counting import compilations



def _ready(x):
    return jax.block_until_ready(x)


def _twice(make_call):
    """Run ``make_call(0)`` (compiles), then count what ``make_call(1)`` and ``make_call(2)``
    (new values, same shapes and families) compile."""
    _ready(make_call(0))
    with compilations() as n:
        _ready(make_call(1))
        _ready(make_call(2))
    return n()


T = np.linspace(0.0, 20.0, 7)
PAIRS = {
    "normal/t": lambda i: (gj.Normal(0.1 * i, 1.0 + 0.1 * i), gj.StudentT(3.0 + i, 0.0, 1.0)),
    "gennorm/exp": lambda i: (gj.GenNormal(0.5 + 0.1 * i), gj.Exponential(1.0 + i)),
    "lognormal/pareto": lambda i: (gj.LogNormal(0.5 + 0.1 * i), gj.Pareto(2.5 + i)),
}


@pytest.mark.parametrize("fn, pair", [
    ("conditional_value", "normal/t"), ("conditional_value", "gennorm/exp"),
    ("conditional_value", "lognormal/pareto"), ("log_tail_prob", "normal/t"),
    ("log_value_excess", "normal/t"), ("value_given_proxy", "normal/t")])
def test_exact_conditioning_compiles_once(fn, pair):
    f = getattr(gj, fn)
    assert _twice(lambda i: f(*PAIRS[pair](i), T + i)) == 0


def test_conditional_density_compiles_once():
    assert _twice(lambda i: gj.conditional_density(*PAIRS["normal/t"](i), np.linspace(-2, 2, 5) + i,
                                                   3.0 + i)) == 0


def test_threshold_counts_share_buckets():
    assert [bucket_size(n) for n in (1, 2, 3, 5, 100, 1000, 1020, 100_000)] == \
        [1, 2, 3, 6, 128, 1024, 1024, 131072]
    value, error = PAIRS["normal/t"](0)
    _ready(gj.conditional_value(value, error, np.linspace(0, 50, 1000)))
    with compilations() as n:
        for size in (1000, 1010, 1024, 900):  # all in the bucket of 1024
            out = gj.conditional_value(value, error, np.linspace(0, 50, size))
            assert out.shape == (size,)
    assert n() == 0
    with compilations() as n:  # a list, a NumPy array and a JAX array of the same floats
        for t in ([1.0, 2.0, 3.0], np.array([1.0, 2.0, 3.0]), jnp.asarray([1.0, 2.0, 3.0])):
            _ready(gj.log_tail_prob(value, error, t))
        first = n()
        for t in ([4.0, 5.0, 6.0], np.array([4.0, 5.0, 6.0]), jnp.asarray([4.0, 5.0, 6.0])):
            _ready(gj.log_tail_prob(value, error, t))
    assert n() == first


def test_one_threshold_compiles_once_in_any_container():
    """A scalar threshold (Python float, 0-d NumPy or JAX array) runs without padding, and its
    result is the closed form E[V | V + X >= t] = phi(z) / (sqrt 2 Q(z)), z = t / sqrt 2, for
    standard normal V and X; new scalar values compile nothing, whatever their container."""
    from scipy import stats

    def closed(t):
        z = t / np.sqrt(2.0)
        return stats.norm.pdf(z) / (np.sqrt(2.0) * stats.norm.sf(z))

    value, error = gj.Normal(), gj.Normal()
    kinds = (float, np.float64, np.asarray, jnp.asarray, lambda t: jnp.asarray(t, jnp.float64))
    for kind in kinds:
        _ready(gj.conditional_value(value, error, kind(0.5)))
    with compilations() as n:
        for kind in kinds:
            for t in (1.0, 3.0):
                out = gj.conditional_value(value, error, kind(t))
                assert isinstance(out, jax.Array) and out.shape == ()
                np.testing.assert_allclose(float(out), closed(t), rtol=1e-12)
    assert n() == 0


@pytest.mark.parametrize("fn", ["best_of_n_value", "best_of_n_quantile"])
def test_best_of_n_compiles_once(fn):
    f = getattr(gj, fn)
    ns = np.array([1.0, 4.0, 16.0, 64.0])
    assert _twice(lambda i: f(*PAIRS["normal/t"](i), ns * (i + 1))) == 0


@pytest.mark.parametrize("method", ["mc", "cmc"])
def test_sampled_conditioning_compiles_once(method):
    def call(i):
        return gj.sample_conditional_value(jax.random.key(i), *PAIRS["normal/t"](i), [1.0 + i, 2.0],
                                           num_samples=20_000 + 1000 * i, chunk_size=4096,
                                           method=method)
    assert _twice(call) == 0


def test_sampled_best_of_n_compiles_once():
    def call(i):
        return gj.sample_best_of_n_value(jax.random.key(i), *PAIRS["normal/t"](i), 8,
                                         num_draws=200 + i)
    assert _twice(call) == 0


def test_pools_compile_once():
    def call(i):
        pool = gj.sample_pool(jax.random.key(i), *PAIRS["normal/t"](i), 4096)
        stats = gj.tilted_stats(pool, jnp.asarray([0.5 + i, 1.0, 2.0]))
        logits = gj.tilted_logits(pool, 1.0 + i)
        res = gj.push(pool, beta=0.1 + 0.1 * i, steps=20)
        bon = gj.best_of_n_pool(pool, np.array([1, 4, 16]) + i)
        return stats, gj.policy_stats(logits, pool), res, bon
    assert _twice(call) == 0


def test_mesa_compiles_once():
    def call(i):
        p = np.linspace(0, 5, 11) + i
        rho, shift = 0.5 + 0.1 * i, 0.5 + 0.1 * i
        return (mesa.true_performance(p, rho, shift), mesa.goodhart_gap(p, rho, shift),
                mesa.misalignment(rho, shift), mesa.deception_probability(50.0 + i, 0.5),
                mesa.optimal_pressure(rho, shift),
                mesa.sample_objectives(jax.random.key(i), 100, rho, shift),
                mesa.sample_objectives(jax.random.key(i), 100, rho, shift, deployment=True),
                mesa.search_optimal_pressure(rho, shift, steps=50).pressure)
    assert _twice(call) == 0
