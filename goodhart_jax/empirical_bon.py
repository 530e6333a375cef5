"""Best-of-``n`` from scored samples: Gao, Schulman & Hilton (2022)'s unbiased estimator.

A pool of ``N`` samples scored by a proxy (a reward model) and a gold reward answers, for every
``n <= N`` at once, "what gold reward does best-of-``n`` selection on the proxy get?": sort the
pool by proxy ascending; the ``i``-th smallest is the proxy-argmax of a uniformly random
``n``-subset (drawn without replacement) with probability ``C(i-1, n-1) / C(N, n)``, so

    ``R(n) = Σ_{i=n..N} C(i-1, n-1) / C(N, n) · gold_(i)``

is the exact expectation of the gold of the best of ``n`` over all ``C(N, n)`` subsets, an
unbiased estimate of best-of-``n``'s gold reward for the population the pool was drawn from
(Gao, Schulman & Hilton 2022, "Scaling laws for reward model overoptimization", appendix;
docs/empirical_best_of_n.md).  ``n = 1`` gives the mean gold, ``n = N`` the gold at the largest
proxy.

* **Ties** in the proxy: the gold of tied entries is averaged, so the estimate is the
  expectation when the argmax among tied maxima is uniform.
* **Groups** (prompt groups): the estimate is made per group (each from its own rows, ranks and
  ``N_g``) and averaged over groups with equal weight per group.
* **Standard error**: a bootstrap, over rows (each replicate is the estimator on a resample of
  ``N`` rows with replacement), or over groups when groups are given (the mean of the per-group
  estimates of a resample of the groups); its standard deviation over ``bootstrap`` replicates.
* **Exactness** (float64): the weights are formed in log space as differences of log-gammas
  that never pass through ``lgamma(N)`` itself (``~1e7`` at ``N = 1e6``, whose rounding alone
  would cost ``~1e-9``): ``w_i = (n / N) C(i-1, n-1) / C(N-1, n-1)``, the log of the ratio
  ``D(i-n+1, s) - D(u, s)`` with the shorter shift ``s`` (``n - 1`` or ``N - i``) and
  ``D(x, a) = lgamma(x + a) - lgamma(x)`` from the Stirling series of the difference for
  ``x >= 8`` (``jax.scipy.special.gammaln`` below); then divided by their computed sum (1 in
  exact arithmetic).  Measured against the closed form ``n (N + 1) / (n + 1)`` (gold ``= i``)
  at ``N = 1e6``: ``2e-14`` relative at ``n = 1``, below ``1e-15`` for larger ``n``.

Example:
    >>> import numpy as np, goodhart_jax as gj
    >>> proxy = np.array([0.1, 0.5, 0.3, 0.9])
    >>> gold = np.array([1.0, 2.0, 3.0, 4.0])
    >>> est = gj.empirical_best_of_n(proxy, gold, [1, 2, 4])
    >>> [round(float(m), 12) for m in est.mean]  # mean; best of 2 of 4; gold at the top proxy
    [2.5, 3.166666666667, 4.0]
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from goodhart_jax.numerics import Estimate, float_dtype
from goodhart_jax.validation import check_finite, check_positive_int, is_concrete

__all__ = ["empirical_best_of_n"]

_OWNER = "empirical_best_of_n"
# Stirling's series of lgamma(y) - ((y - 1/2) log y - y + log(2 pi) / 2): B_2k / (2k (2k-1) y^(2k-1)).
# From y = 8 on, eight terms leave an error below 1e-16 (the first omitted, 0.18 / y^17: 8e-17).
_STIRLING = (1.0 / 12.0, -1.0 / 360.0, 1.0 / 1260.0, -1.0 / 1680.0, 1.0 / 1188.0,
             -691.0 / 360360.0, 1.0 / 156.0, -3617.0 / 122400.0)
_STIRLING_FROM = 8.0
# Row bootstrap memory bounds: elements of the (batch, len(n), N) arrays a batch of replicates
# holds at once, and of the (len(n), N + 1) cumulative weights held (2^25: 256 MiB in float64).
_BATCH_ELEMENTS = 1 << 22
_CW_ELEMENTS = 1 << 25
# Rows per chunk of the two-level group sums.
_CHUNK = 1024
DEFAULT_SEED = 0


def _stirling_tail(y):
    """``lgamma(y) - ((y - 1/2) log y - y + log(2 pi) / 2)`` for ``y >= 8``."""
    r = 1.0 / y
    r2 = r * r
    acc = jnp.zeros_like(y)
    for c in reversed(_STIRLING):
        acc = acc * r2 + c
    return acc * r


def _log_gamma_difference(x, a):
    """``lgamma(x + a) - lgamma(x)`` for ``x >= 1``, ``a >= 0``, accurate when ``a << x``.

    Math: for ``x >= 8``, ``(x - 1/2) log1p(a / x) + a (log(x + a) - 1) + s(x + a) - s(x)``
    (``s`` the Stirling tail): no term is larger than the result by more than ``~log x``, where
    ``lgamma(x + a) - lgamma(x)`` would lose ``eps lgamma(x)``.  Below 8, that plain difference
    (both terms small).  Exactly 0 at ``a = 0``.
    """
    big = x >= _STIRLING_FROM
    xs = jnp.where(big, x, _STIRLING_FROM)
    y = xs + a
    stirling = ((xs - 0.5) * jnp.log1p(a / xs) + a * (jnp.log(y) - 1.0)
                + (_stirling_tail(y) - _stirling_tail(xs)))
    xd = jnp.where(big, 1.0, x)
    return jnp.where(big, stirling, gammaln(xd + a) - gammaln(xd))


def _weights(pos, size, n):
    """``C(pos-1, n-1) / C(size, n)`` (0 for ``pos < n``): ``P(rank pos is the max of n)``.

    Math: ``(n / size) C(pos-1, n-1) / C(size-1, n-1)``, the ratio ``exp(L)`` with
    ``L = D(pos-n+1, n-1) - D(size-n+1, n-1)`` when ``n - 1 <= size - pos``, else
    ``L = D(pos-n+1, size-pos) - D(pos, size-pos)`` (``D`` the log-gamma difference): the
    shorter shift, so the rounding of ``L`` is ``~eps min(n, size - pos) log(size)``, which is
    ``<~ eps sqrt(size) log(size)`` where the weights are not negligible.
    """
    ok = pos >= n
    lo = jnp.where(ok, pos - n + 1.0, 1.0)
    top = size - pos  # rows above
    short_n = n - 1.0 <= top
    shift = jnp.where(short_n, n - 1.0, top)
    upper = jnp.where(short_n, size - n + 1.0, pos)
    log_ratio = _log_gamma_difference(lo, shift) - _log_gamma_difference(upper, shift)
    return jnp.where(ok, jnp.exp(log_ratio + jnp.log(n / size)), 0.0)


def _group_sums(x, chunk, chunk_group, num_chunks: int, num_groups: int):
    """Per-group sums of ``x`` in two levels: chunks of at most ``_CHUNK`` rows, then groups.

    A scatter-add accumulates in sequence (an error growing like the group's length: 8e-12
    relative for a mean of 1e6 numbers, measured); in two levels it was 2e-14.
    """
    partial_sums = jax.ops.segment_sum(x, chunk, num_segments=num_chunks)
    return jax.ops.segment_sum(partial_sums, chunk_group, num_segments=num_groups)


@partial(jax.jit, static_argnames=("num_chunks", "num_groups"))
def _group_estimates(gold_tied, pos, size, chunk, chunk_group, ns, *, num_chunks, num_groups):
    """Per-group estimates, shape ``(len(ns), num_groups)``: one pass over the rows per ``n``.

    The weights are divided by their computed sum per group (exactly 1 in exact arithmetic,
    ``Σ_i C(i-1, n-1) = C(N, n)``): that removes the part of their rounding common to a group.
    """

    def one(n):
        w = _weights(pos, size, n)
        top = _group_sums(w * gold_tied, chunk, chunk_group, num_chunks, num_groups)
        return top / _group_sums(w, chunk, chunk_group, num_chunks, num_groups)

    return jax.lax.map(one, ns)


@partial(jax.jit, static_argnames=("batch",))
def _row_bootstrap(gold, cls, pos, ns, keys, *, batch):
    """Row-bootstrap replicates, shape ``(len(ns), B)`` (one group: rows sorted by proxy).

    A replicate draws ``N`` rows with replacement: ``c_j`` copies of sorted row ``j``.  The copies
    of tie class ``T`` (``c_T`` of them, gold sum ``s_T``) fill the sorted positions
    ``(C_T - c_T, C_T]`` of the resample (``C_T`` the cumulative count), whose weights add up to
    ``cw[C_T] - cw[C_T - c_T]`` (``cw`` the cumulative weights), each at the class mean
    ``s_T / c_T``: the estimator on the resample, ties averaged, without sorting it.  One draw
    serves every ``n`` (the cumulative weights of all of them are held: ``len(ns) (N + 1)``).
    """
    num = gold.shape[0]

    def cumulative(n):
        w = _weights(pos, float(num), n)
        return jnp.concatenate([jnp.zeros((1,), w.dtype), jnp.cumsum(w) / jnp.sum(w)])

    cw = jax.lax.map(cumulative, ns)  # (len(ns), N + 1)

    def replicate(key):
        rows = jax.random.randint(key, (num,), 0, num)
        c = jax.ops.segment_sum(jnp.ones((num,), gold.dtype), rows, num_segments=num)
        c_cls = jax.ops.segment_sum(c, cls, num_segments=num)
        s_cls = jax.ops.segment_sum(c * gold, cls, num_segments=num)
        top = jnp.cumsum(c_cls).astype(jnp.int32)
        lo = top - c_cls.astype(jnp.int32)
        mean_cls = jnp.where(c_cls > 0, s_cls / jnp.where(c_cls > 0, c_cls, 1.0), 0.0)
        return (cw[:, top] - cw[:, lo]) @ mean_cls

    return jax.lax.map(replicate, keys, batch_size=batch).T


def _row_bootstrap_chunked(gold, cls, pos, ns, keys):
    """:func:`_row_bootstrap` over chunks of ``n`` of one size (the last padded with its last
    value), so that the held cumulative weights stay under ``_CW_ELEMENTS`` numbers."""
    num, m = gold.shape[0], ns.shape[0]
    k = max(1, min(m, _CW_ELEMENTS // (num + 1)))
    batch = max(1, min(keys.shape[0], _BATCH_ELEMENTS // (k * num)))
    pad = -m % k
    if pad:
        ns = jnp.concatenate([ns, jnp.broadcast_to(ns[-1:], (pad,))])
    reps = [_row_bootstrap(gold, cls, pos, ns[i:i + k], keys, batch=batch)
            for i in range(0, m + pad, k)]
    return jnp.concatenate(reps)[:m]


@jax.jit
def _group_bootstrap(per_group, keys):
    """Group-bootstrap replicates ``(len(ns), B)``: means of per-group estimates of resampled groups."""
    g = per_group.shape[1]

    def counts(key):
        picks = jax.random.randint(key, (g,), 0, g)
        return jax.ops.segment_sum(jnp.ones((g,), per_group.dtype), picks, num_segments=g)

    c = jax.vmap(counts)(keys)  # (B, G)
    return per_group @ c.T / g


def _vector(name: str, value) -> np.ndarray:
    """``value`` as a finite, non-empty 1-D float64 array (else ``ValueError`` naming it)."""
    if not is_concrete(value):
        raise ValueError(f"{_OWNER}: {name} must be concrete (not traced)")
    check_finite(name, value, owner=_OWNER)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"{_OWNER}: {name} must be a non-empty 1-D array, got shape {arr.shape}")
    return arr


def _group_ids(groups, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Group labels as indices ``0..G-1`` and the labels themselves (sorted)."""
    try:
        labels = np.asarray(groups)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{_OWNER}: groups must be a 1-D array of labels ({err})") from None
    if labels.ndim != 1 or labels.shape[0] != size:
        raise ValueError(f"{_OWNER}: groups must be 1-D with one label per row ({size}), "
                         f"got shape {labels.shape}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype.kind in "USb"):
        raise ValueError(f"{_OWNER}: groups must hold integer or string labels, "
                         f"got dtype {labels.dtype}")
    names, gid = np.unique(labels, return_inverse=True)
    return gid.reshape(-1), names


def _check_n(n, smallest: int, where: str) -> np.ndarray:
    """``n`` as a 1-D int64 array of integers in ``[1, smallest]``."""
    if not is_concrete(n):
        raise ValueError(f"{_OWNER}: n must be concrete integers (not traced)")
    try:
        arr = np.asarray(n, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{_OWNER}: n must be integers in [1, {smallest}], got {n!r}") from None
    if arr.ndim > 1 or arr.size == 0:
        raise ValueError(f"{_OWNER}: n must be an integer or a non-empty 1-D array of them, "
                         f"got shape {arr.shape}")
    bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (arr < 1) | (arr > smallest)
    if np.any(bad):
        raise ValueError(f"{_OWNER}: n must be integers in [1, {smallest}] ({where}), "
                         f"got {arr[bad].flat[0]:g}")
    return arr.reshape(-1).astype(np.int64)


def empirical_best_of_n(proxy, gold, n, *, groups=None, bootstrap: int = 200,
                        key=None) -> Estimate:
    """Gao et al. (2022)'s unbiased best-of-``n`` estimate of gold reward from a scored pool.

    The expected gold of the proxy-argmax of ``n`` samples drawn without replacement from the
    pool (ties in the proxy broken uniformly, i.e. their gold averaged): unbiased for the
    gold reward of best-of-``n`` on the population the pool samples.  With ``groups``, the
    estimate is made within each group and the groups are averaged with equal weight.  The
    standard error is a bootstrap: over rows, or over whole groups when ``groups`` is given.

    Math: rows sorted by proxy ascending, ``R(n) = Σ_{i=n..N} C(i-1, n-1) / C(N, n) gold_(i)``
    (``gold_(i)`` averaged over tied proxies); with groups ``R(n) = (1/G) Σ_g R_g(n)``.

    Args:
        proxy: proxy scores, a finite 1-D array of ``N >= 1`` numbers.
        gold: gold scores of the same rows, finite, shape ``(N,)``.
        n: an integer or a 1-D array of integers in ``[1, N]`` (with groups: ``[1, N_g]`` for
            every group size ``N_g``).  All of them in one compiled pass (compiled once per
            shape of ``proxy`` and ``n``).
        groups: optional labels per row (integers or strings), shape ``(N,)``: prompt groups.
        bootstrap: bootstrap replicates for the standard error (``0``: none, ``stderr`` is
            ``nan``; else ``>= 2``).  With groups, fewer than two groups give ``nan``.
        key: a ``jax.random`` key for the bootstrap; default ``jax.random.key(0)``, so repeated
            calls agree (pass keys of your own to vary it).

    Returns:
        :class:`goodhart_jax.Estimate` with ``mean``, ``stderr`` and ``count`` shaped like
        ``n``; ``count`` is the number of units the bootstrap resamples: ``N`` rows, or the
        number of groups when ``groups`` is given.

    Raises:
        ValueError: ``proxy`` or ``gold`` empty, not 1-D, of different lengths, or with NaN or
            infinities; ``n`` not integers in ``[1, N]`` (or above the smallest group's size);
            ``groups`` not one integer or string label per row; ``bootstrap`` negative, 1 or
            not an integer; ``key`` not a JAX array.

    Example:
        >>> import numpy as np, goodhart_jax as gj
        >>> rng = np.random.default_rng(0)
        >>> proxy = rng.standard_normal(10_000)
        >>> est = gj.empirical_best_of_n(proxy, proxy, [1, 10_000])
        >>> bool(abs(est.mean[0] - proxy.mean()) < 1e-15), bool(est.mean[1] == proxy.max())
        (True, True)
        >>> est.count.tolist()
        [10000, 10000]
    """
    proxy_arr = _vector("proxy", proxy)
    gold_arr = _vector("gold", gold)
    if proxy_arr.shape != gold_arr.shape:
        raise ValueError(f"{_OWNER}: proxy and gold must have the same length, got "
                         f"{proxy_arr.shape[0]} and {gold_arr.shape[0]}")
    num = proxy_arr.shape[0]
    bootstrap = check_positive_int("bootstrap", bootstrap, minimum=0, owner=_OWNER)
    if bootstrap == 1:
        raise ValueError(f"{_OWNER}: bootstrap must be 0 (no standard error) or >= 2, got 1")
    if key is not None and not isinstance(key, jax.Array):
        raise ValueError(f"{_OWNER}: key must be a jax.random key (e.g. jax.random.key(0)), "
                         f"got {key!r}")

    if groups is None:
        gid = np.zeros(num, dtype=np.int64)
        sizes = np.array([num])
        names = None
    else:
        gid, names = _group_ids(groups, num)
        sizes = np.bincount(gid)
    num_groups = sizes.shape[0]
    smallest = int(sizes.min())
    if groups is None:
        ns = _check_n(n, smallest, f"N = {num} rows")
    else:
        label = names[int(sizes.argmin())].item()
        ns = _check_n(n, smallest, f"groups: the smallest group, {label!r}, has {smallest} "
                                   f"row{'' if smallest == 1 else 's'}")
    shape = np.shape(n)

    # Host: sort by (group, proxy), tie classes within groups, tie-averaged gold, ranks.
    order = np.lexsort((proxy_arr, gid))
    p_s, g_s, gid_s = proxy_arr[order], gold_arr[order], gid[order]
    new_class = np.ones(num, dtype=bool)
    new_class[1:] = (p_s[1:] != p_s[:-1]) | (gid_s[1:] != gid_s[:-1])
    cls = np.cumsum(new_class) - 1
    gold_tied = (np.bincount(cls, weights=g_s) / np.bincount(cls))[cls]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(num) - starts[gid_s] + 1.0
    chunks_per_group = -(-sizes // _CHUNK)
    chunk = (np.concatenate([[0], np.cumsum(chunks_per_group)[:-1]])[gid_s]
             + (pos.astype(np.int64) - 1) // _CHUNK)
    chunk_group = np.repeat(np.arange(num_groups), chunks_per_group)

    dtype = float_dtype()
    ns_dev = jnp.asarray(ns, dtype)
    per_group = _group_estimates(jnp.asarray(gold_tied, dtype), jnp.asarray(pos, dtype),
                                 jnp.asarray(sizes[gid_s], dtype), jnp.asarray(chunk, jnp.int32),
                                 jnp.asarray(chunk_group, jnp.int32), ns_dev,
                                 num_chunks=int(chunk_group.shape[0]), num_groups=num_groups)
    mean = jnp.mean(per_group, axis=1)

    units = num if groups is None else num_groups
    if bootstrap == 0 or units < 2:
        stderr = jnp.full(mean.shape, jnp.nan, dtype)
    else:
        keys = jax.random.split(jax.random.key(DEFAULT_SEED) if key is None else key, bootstrap)
        if groups is None:
            reps = _row_bootstrap_chunked(jnp.asarray(g_s, dtype), jnp.asarray(cls, jnp.int32),
                                          jnp.asarray(pos, dtype), ns_dev, keys)
        else:
            reps = _group_bootstrap(per_group, keys)
        stderr = jnp.std(reps, axis=1, ddof=1)
    count = jnp.full(mean.shape, units)
    return Estimate(mean.reshape(shape), stderr.reshape(shape), count.reshape(shape))
