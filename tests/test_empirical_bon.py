"""``gj.empirical_best_of_n``: Gao et al. (2022)'s unbiased best-of-n estimator from a scored pool.

Independent references, none of which uses the estimator's weights:

* brute force: the gold of the proxy-argmax (tied maxima averaged) over *every* ``n``-subset
  (``itertools.combinations``) of pools of ``N <= 10``, ties included, all ``n``: to ``1e-12``;
* Monte Carlo: the mean of many random best-of-``n`` subsets (NumPy, fixed seed), within 4
  standard errors;
* closed forms: ``n = 1`` is the mean gold, ``n = N`` the gold at the top proxy, and with gold
  equal to the proxy rank ``i``, ``R(n) = n (N + 1) / (n + 1)`` (hockey stick:
  ``Σ_i i C(i-1, n-1) = n C(N+1, n+1)``), at ``N = 1e6``, to ``1e-12``;
* groups: the grouped estimate equals the average of separate calls on each group;
* the bootstrap: at ``n = 1`` the standard error of a mean, ``std(gold) / sqrt(N)``; on a pool
  of 5 rows (with a tie) the exact bootstrap distribution, all ``5^5`` resamples enumerated and
  each scored by brute force.
"""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

import goodhart_jax as gj
from tests.compile_counting import SEEN


def brute_force(proxy, gold, n):
    """Mean over all n-subsets of the gold of the proxy-argmax, tied maxima averaged."""
    values = []
    for subset in itertools.combinations(range(len(proxy)), n):
        top = max(proxy[j] for j in subset)
        tied = [gold[j] for j in subset if proxy[j] == top]
        values.append(sum(tied) / len(tied))
    return sum(values) / len(values)


POOLS = {
    "one": (np.array([0.3]), np.array([-1.5])),
    "distinct": (np.array([0.4, -1.0, 2.5, 0.1, 1.7]), np.array([1.0, -2.0, 0.5, 3.0, -0.25])),
    "ties": (np.array([1.0, 0.0, 1.0, 2.0, 0.0, 2.0, 1.0]),
             np.array([0.5, -1.0, 2.0, 4.0, 3.0, -2.5, 1.25])),
    "all_tied": (np.full(6, 0.7), np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_equals_brute_force_over_all_subsets(name):
    proxy, gold = POOLS[name]
    ns = np.arange(1, len(proxy) + 1)
    est = gj.empirical_best_of_n(proxy, gold, ns, bootstrap=0)
    want = np.array([brute_force(proxy, gold, int(n)) for n in ns])
    np.testing.assert_allclose(np.asarray(est.mean), want, rtol=1e-12, atol=1e-12)


def test_equals_brute_force_on_random_tied_pools_of_ten():
    rng = np.random.default_rng(3)
    for _ in range(3):
        proxy = rng.integers(0, 4, size=10).astype(float)  # many ties
        gold = rng.standard_normal(10)
        ns = np.arange(1, 11)
        est = gj.empirical_best_of_n(proxy, gold, ns, bootstrap=0)
        want = np.array([brute_force(proxy, gold, int(n)) for n in ns])
        np.testing.assert_allclose(np.asarray(est.mean), want, rtol=1e-12, atol=1e-12)


def test_matches_random_best_of_n_subsamples():
    rng = np.random.default_rng(11)
    size, draws = 40, 40_000
    proxy = rng.standard_normal(size)
    gold = proxy + rng.standard_normal(size)
    ns = np.array([1, 2, 5, 15, 40])
    est = gj.empirical_best_of_n(proxy, gold, ns, bootstrap=0)
    for k, n in enumerate(ns):
        subsets = np.argsort(rng.random((draws, size)), axis=1)[:, :n]  # without replacement
        best = subsets[np.arange(draws), np.argmax(proxy[subsets], axis=1)]
        picked = gold[best]
        se = picked.std(ddof=1) / np.sqrt(draws)
        assert abs(float(est.mean[k]) - picked.mean()) <= 4 * se + 1e-12, (n, se)


def test_closed_forms_mean_and_max():
    rng = np.random.default_rng(5)
    proxy, gold = rng.standard_normal(1000), rng.exponential(size=1000)
    est = gj.empirical_best_of_n(proxy, gold, [1, 1000], bootstrap=0)
    assert abs(float(est.mean[0]) - gold.mean()) <= 1e-12 * gold.mean()
    assert float(est.mean[1]) == gold[np.argmax(proxy)]


def test_rank_closed_form_at_a_million():
    size = 10**6
    rank = np.random.default_rng(0).permutation(size) + 1.0  # proxy = gold = rank, shuffled
    ns = np.array([1, 10, 1000, 10**6])
    est = gj.empirical_best_of_n(rank, rank, ns, bootstrap=0)
    want = ns * (size + 1.0) / (ns + 1.0)
    np.testing.assert_allclose(np.asarray(est.mean), want, rtol=1e-12)
    assert est.mean.dtype == np.float64


def test_groups_average_separate_calls():
    rng = np.random.default_rng(7)
    sizes = {"a": 7, "b": 12, "c": 30}
    labels = np.concatenate([[k] * s for k, s in sizes.items()])
    perm = rng.permutation(labels.shape[0])  # groups interleaved
    labels = labels[perm]
    proxy = np.round(rng.standard_normal(labels.shape[0]), 1)  # some ties
    gold = rng.standard_normal(labels.shape[0])
    ns = np.array([1, 3, 7])
    est = gj.empirical_best_of_n(proxy, gold, ns, groups=labels)
    sep = [np.asarray(gj.empirical_best_of_n(proxy[labels == k], gold[labels == k], ns,
                                             bootstrap=0).mean) for k in sizes]
    np.testing.assert_allclose(np.asarray(est.mean), np.mean(sep, axis=0), rtol=1e-13,
                               atol=1e-14)
    assert est.count.tolist() == [3, 3, 3]
    assert np.all(np.isfinite(np.asarray(est.stderr))) and np.all(np.asarray(est.stderr) > 0)
    # integer labels give the same estimate; one group is the ungrouped estimate (no stderr)
    codes = np.unique(labels, return_inverse=True)[1]
    same = gj.empirical_best_of_n(proxy, gold, ns, groups=codes, bootstrap=0)
    np.testing.assert_allclose(np.asarray(same.mean), np.asarray(est.mean), rtol=1e-15)
    one = gj.empirical_best_of_n(proxy, gold, ns, groups=np.zeros(labels.shape[0], int))
    whole = gj.empirical_best_of_n(proxy, gold, ns, bootstrap=0)
    np.testing.assert_allclose(np.asarray(one.mean), np.asarray(whole.mean), rtol=1e-14)
    assert np.all(np.isnan(np.asarray(one.stderr)))


def test_scalar_n_gives_scalars():
    est = gj.empirical_best_of_n([0.1, 0.2, 0.3], [1.0, 2.0, 3.0], 2)
    assert est.mean.shape == est.stderr.shape == est.count.shape == ()
    assert abs(float(est.mean) - (2.0 * 1 + 3.0 * 2) / 3) < 1e-15
    assert int(est.count) == 3


GOOD = dict(proxy=[0.1, 0.4, 0.2, 0.9], gold=[1.0, 0.0, 2.0, 1.0], n=2)


@pytest.mark.parametrize("change, names", [
    (dict(gold=[1.0, 2.0, 3.0]), ["proxy", "gold"]),
    (dict(proxy=[0.1, np.nan, 0.2, 0.9]), ["proxy"]),
    (dict(gold=[1.0, np.inf, 2.0, 1.0]), ["gold"]),
    (dict(proxy=[], gold=[], n=1), ["proxy"]),
    (dict(proxy=np.ones((2, 2)), gold=np.ones((2, 2))), ["proxy"]),
    (dict(proxy=["a", "b", "c", "d"]), ["proxy"]),
    (dict(n=0), ["n"]),
    (dict(n=5), ["n"]),
    (dict(n=2.5), ["n"]),
    (dict(n=[1, np.nan]), ["n"]),
    (dict(n=[[1, 2]]), ["n"]),
    (dict(n=[]), ["n"]),
    (dict(groups=[0, 0, 1]), ["groups"]),
    (dict(groups=[0.5, 0.5, 1.5, 1.5]), ["groups"]),
    (dict(groups=["x", "x", "x", "y"]), ["groups", "n"]),
    (dict(bootstrap=1), ["bootstrap"]),
    (dict(bootstrap=-3), ["bootstrap"]),
    (dict(bootstrap=2.5), ["bootstrap"]),
    (dict(key=0), ["key"]),
])
def test_bad_input_names_the_argument(change, names):
    kwargs = {**GOOD, **change}
    with pytest.raises(ValueError) as err:
        gj.empirical_best_of_n(kwargs.pop("proxy"), kwargs.pop("gold"), kwargs.pop("n"), **kwargs)
    message = str(err.value)
    assert message.startswith("empirical_best_of_n:")
    for name in names:
        assert name in message, message


def test_bootstrap_stderr_of_a_mean():
    rng = np.random.default_rng(2)
    proxy, gold = rng.standard_normal(10_000), rng.standard_normal(10_000)
    est = gj.empirical_best_of_n(proxy, gold, [1, 100])
    want = gold.std(ddof=1) / np.sqrt(gold.shape[0])
    assert abs(float(est.stderr[0]) / want - 1.0) < 0.15
    assert 0 < float(est.stderr[1]) < 1.0
    # the default key is fixed: the same call gives the same stderr; another key another one
    again = gj.empirical_best_of_n(proxy, gold, [1, 100])
    np.testing.assert_array_equal(np.asarray(again.stderr), np.asarray(est.stderr))
    other = gj.empirical_best_of_n(proxy, gold, [1, 100], key=jax.random.key(1))
    assert float(other.stderr[0]) != float(est.stderr[0])
    assert abs(float(other.stderr[0]) / want - 1.0) < 0.15


def test_bootstrap_matches_the_exact_bootstrap_distribution():
    proxy = np.array([0.2, 1.0, -0.5, 1.0, 0.7])  # a tie at the top
    gold = np.array([1.0, -1.0, 0.5, 2.0, 3.0])
    size = proxy.shape[0]
    ns = [1, 2, 3, 5]
    exact = []
    for n in ns:  # every resample of 5 rows (equally likely), scored by brute force
        values = [brute_force(proxy[list(rows)], gold[list(rows)], n)
                  for rows in itertools.product(range(size), repeat=size)]
        exact.append(np.std(values))
    est = gj.empirical_best_of_n(proxy, gold, ns, bootstrap=20_000)
    np.testing.assert_allclose(np.asarray(est.stderr), exact, rtol=0.05)




def test_new_values_of_the_same_shapes_compile_nothing():
    rng = np.random.default_rng(4)

    def call(i):
        proxy, gold = rng.standard_normal(300), rng.standard_normal(300)
        est = gj.empirical_best_of_n(proxy, gold, [1 + i, 5 + i, 50 + i], bootstrap=8,
                                     key=jax.random.key(i))
        return jax.block_until_ready(est)

    call(0)
    start = len(SEEN)
    call(1)
    call(2)
    assert len(SEEN) == start


def test_the_compile_counter_sees_a_new_shape():
    start = len(SEEN)
    jax.block_until_ready(gj.empirical_best_of_n(np.arange(301.0), np.arange(301.0), [1, 2, 3],
                                                 bootstrap=0))
    assert len(SEEN) > start


def test_bootstrap_in_chunks_of_n_is_the_same(monkeypatch):
    from goodhart_jax import empirical_bon

    rng = np.random.default_rng(8)
    proxy, gold = rng.standard_normal(200), rng.standard_normal(200)
    ns = [1, 2, 3, 10, 200]
    whole = gj.empirical_best_of_n(proxy, gold, ns, bootstrap=16)
    monkeypatch.setattr(empirical_bon, "_CW_ELEMENTS", 2 * 201)  # two n per chunk, one padded
    chunked = gj.empirical_best_of_n(proxy, gold, ns, bootstrap=16)
    np.testing.assert_allclose(np.asarray(chunked.stderr), np.asarray(whole.stderr), rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(chunked.mean), np.asarray(whole.mean))
