"""Pools, tilts and optax pushing (goodhart_jax.pools) against independent numbers.

References: the closed-form maximiser of E_pi[u] - beta KL(pi || uniform) (softmax(u / beta),
Donsker-Varadhan), the mirror-descent recursion theta_k = (u / beta)(1 - (1 - lr beta)^k)
derived by hand, NumPy recomputations of the tracked statistics, math.comb for the
order-statistic weights, and the normal best-of-n closed form (e_n from mpmath).
"""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import optax
import pytest

from goodhart_jax.distributions import Normal, StudentT
from goodhart_jax.pools import (
    Pool,
    _bon_weights,
    best_of_n_pool,
    natural_gradient_betas,
    policy_stats,
    push,
    sample_pool,
    tilted_stats,
)


@pytest.fixture(scope="module")
def pool():
    return sample_pool(jax.random.key(7), Normal(), StudentT(3.0), 2000)


def _softmax(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max())
    return e / e.sum()


def test_kl_fixed_point_is_softmax_u_over_beta(pool):
    beta = 1.5
    target = _softmax(np.asarray(pool.proxy) / beta)
    # natural gradient (mirror descent), lr * beta = 0.5: error shrinks by 2 per step
    res = push(pool, beta=beta, steps=80, optimizer=optax.sgd(1.0 / 3.0))
    np.testing.assert_allclose(np.asarray(jax.nn.softmax(res.logits)), target, atol=1e-12, rtol=0)
    # plain (Euclidean) gradient with Adam and a decaying step: the same fixed point
    sched = optax.cosine_decay_schedule(0.05, 6000, alpha=1e-3)
    res = push(pool, beta=beta, steps=6000, optimizer=optax.adam(sched), geometry="euclidean")
    pi = np.asarray(jax.nn.softmax(res.logits))
    assert np.max(np.abs(pi - target)) < 1e-6
    assert 0.5 * np.sum(np.abs(pi - target)) < 1e-5
    # the objective never ends below the tilt's value, and the tilt is the maximiser
    obj_star = float(np.sum(target * np.asarray(pool.proxy))) - beta * float(
        np.sum(target * np.log(target * pool.size)))
    assert float(res.objective[-1]) <= obj_star + 1e-12  # the tilt is the maximiser
    assert obj_star - float(res.objective[-1]) < 1e-5


def test_mirror_descent_traces_the_tilted_family(pool):
    """Natural-gradient SGD from uniform lands on softmax(u / beta_k) at every step k."""
    lr, steps = 0.05, 60
    for beta in (0.0, 0.7):
        res = push(pool, beta=beta, steps=steps, optimizer=optax.sgd(lr), geometry="natural")
        k = np.arange(1, steps + 1)
        by_hand = 1.0 / (k * lr) if beta == 0.0 else beta / (1.0 - (1.0 - lr * beta) ** k)
        np.testing.assert_allclose(np.asarray(natural_gradient_betas(lr, beta, steps)), by_hand,
                                   rtol=1e-13)
        tilt = tilted_stats(pool, by_hand)
        for field in ("proxy", "value", "kl", "gap", "ess"):
            np.testing.assert_allclose(np.asarray(getattr(res.trace, field))[1:],
                                       np.asarray(getattr(tilt, field)), rtol=1e-9, atol=1e-11)


def test_trace_statistics_recomputed_in_numpy(pool):
    res = push(pool, beta=0.0, steps=25, learning_rate=0.02, geometry="euclidean")
    assert res.trace.kl.shape == (26,)
    assert float(res.trace.kl[0]) == pytest.approx(0.0, abs=1e-12)
    pi = _softmax(np.asarray(res.logits))
    u, v = np.asarray(pool.proxy), np.asarray(pool.value)
    kl = float(np.sum(pi * np.log(pi * pool.size)))
    assert float(res.trace.proxy[-1]) == pytest.approx(float(pi @ u), rel=1e-12)
    assert float(res.trace.value[-1]) == pytest.approx(float(pi @ v), rel=1e-12, abs=1e-14)
    assert float(res.trace.kl[-1]) == pytest.approx(kl, rel=1e-10)
    assert float(res.trace.ess[-1]) == pytest.approx(1.0 / float(pi @ pi), rel=1e-12)
    np.testing.assert_allclose(res.trace.gap, res.trace.proxy - res.trace.value, rtol=1e-12)
    assert np.all(np.diff(np.asarray(res.trace.proxy)) > 0)  # plain proxy ascent
    assert np.all(np.asarray(res.trace.kl) <= math.log(pool.size) + 1e-12)


def test_tilted_stats_two_point_pool_closed_form():
    pool = Pool(jnp.array([0.0, 1.0]), jnp.array([0.0, 2.0]))
    for beta in (0.5, 1.0, 4.0):
        p = 1.0 / (1.0 + math.exp(-2.0 / beta))
        st = tilted_stats(pool, beta)
        assert float(st.value) == pytest.approx(p, rel=1e-14)
        assert float(st.proxy) == pytest.approx(2 * p, rel=1e-14)
        kl = p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))
        assert float(st.kl) == pytest.approx(kl, rel=1e-12)
    assert float(policy_stats(jnp.zeros(2), pool).kl) == 0.0


def test_order_statistic_weights_against_math_comb():
    m = 30
    w = _bon_weights(m, [1, 3, 7, 30])
    for row, n in zip(w, [1, 3, 7, 30]):
        exact = [math.comb(i - 1, n - 1) / math.comb(m, n) for i in range(1, m + 1)]
        np.testing.assert_allclose(row, exact, rtol=1e-11, atol=1e-300)
        assert abs(row.sum() - 1.0) < 1e-12


def test_best_of_n_pool_unbiased_against_normal_closed_form():
    pool = sample_pool(jax.random.key(11), Normal(), Normal(), 1 << 17)
    ns = np.array([1, 4, 64, 1024])
    est = best_of_n_pool(pool, ns)
    with mp.workdps(20):
        def e_n(n):
            f = lambda x: n * x * mp.npdf(x) * mp.ncdf(x) ** (n - 1)
            return float(mp.quad(f, [-mp.inf, -3, 0, 2, 4, mp.inf]))
        exact = np.array([e_n(int(n)) for n in ns]) / math.sqrt(2.0)
    z = (np.asarray(est.mean) - exact) / np.asarray(est.stderr)
    assert np.all(np.abs(z) < 4), z


def test_validation():
    pool = Pool(jnp.zeros(64), jnp.arange(64.0))
    with pytest.raises(ValueError, match="beta"):
        push(pool, beta=-1.0)
    with pytest.raises(ValueError, match="steps"):
        push(pool, steps=0)
    with pytest.raises(ValueError, match="geometry"):
        push(pool, geometry="riemann")
    with pytest.raises(ValueError, match="beta"):
        tilted_stats(pool, 0.0)
    with pytest.raises(ValueError, match="n must be"):
        best_of_n_pool(pool, 5, num_batches=16)  # 64 / 16 = 4 < 5
    with pytest.raises(ValueError, match="size"):
        sample_pool(jax.random.key(0), Normal(), Normal(), 0)


def test_float32_tilts_of_huge_proxies_stay_exact_at_the_top():
    """Lévy errors put proxies near 1e10: u / beta ~ 1e13, where a float32 ulp is ~1e6."""
    from goodhart_jax.distributions import Levy

    pool = sample_pool(jax.random.key(0), Normal(0.0, 2.0), Levy(1.0), 1 << 12, dtype=jnp.float32)
    st = tilted_stats(pool, np.array([1e-3, 1.0]))
    i = int(np.argmax(np.asarray(pool.proxy)))  # the greedy limit: all weight on the best proxy
    np.testing.assert_allclose(np.asarray(st.value), float(pool.value[i]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(st.ess), 1.0, rtol=1e-6)
