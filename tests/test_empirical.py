"""gj.Empirical: a law fitted to samples (PCHIP body, generalized-Pareto tails).

Default run: fits to 1e5 draws (the threshold rule gives k = 2155 per tail), the splice, the
normalisation, the mean, the sampler, the tail fit, the file reading and spec, the command
line, bad input, and a small accuracy check of the exact conditioning.  ``-m slow``: the
accuracy goal of issue #15 on 1e6 draws (normal, Student t(3), lognormal, as value and as
error, wherever P(U >= t) >= 1e-4).
"""

from __future__ import annotations

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import goodhart_jax as gj
from goodhart_jax.empirical import fit_generalized_pareto, read_samples, tail_count

N = 100_000


@pytest.fixture(scope="module")
def fits():
    rng = np.random.default_rng(2026)
    data = {"normal": rng.standard_normal(N), "t3": rng.standard_t(3.0, N),
            "lognormal": rng.lognormal(0.0, 1.0, N)}
    return {k: (v, gj.Empirical.fit(v)) for k, v in data.items()}


def _splices(law):
    out = []
    for side in ("lower", "upper"):
        ft = getattr(law, side + "_tail")
        if ft is not None:
            out.append(ft.threshold)
    return out


def test_threshold_rule():
    assert [tail_count(n) for n in (600, 1000, 100_000, 10**6, 10**8)] == \
        [30, 50, 2155, 10000, 215444]


@pytest.mark.parametrize("name", ["normal", "t3", "lognormal"])
def test_continuous_at_the_splice(fits, name):
    _, law = fits[name]
    for u in _splices(law):
        x = jnp.asarray([u - 1e-9, u + 1e-9])
        for fn in (law.log_prob, law.log_sf, law.log_cdf):
            v = np.asarray(fn(x))
            assert np.all(np.isfinite(v)) and abs(v[1] - v[0]) < 1e-6, (fn.__name__, v)
    # the tails' mass is k / n exactly at the thresholds
    ft = law.upper_tail
    assert float(law.log_sf(ft.threshold)) == pytest.approx(math.log(ft.count / ft.n), abs=1e-12)


def _integrate(law, fn):
    """∫ fn(x) f(x) dx by SciPy's quad on the body and on each tail (split at the splices)."""
    from scipy import integrate

    pdf = jax.jit(lambda v: jnp.exp(law.log_prob(v)))  # compiled once: quad calls it per point

    def f(v):
        return fn(v) * float(pdf(v))

    lo, hi = (float(e) for e in law.support())
    cuts = [lo] + sorted(_splices(law)) + [hi]
    return sum(integrate.quad(f, a, b, limit=400, epsabs=1e-13, epsrel=1e-11)[0]
               for a, b in zip(cuts[:-1], cuts[1:]))


@pytest.mark.parametrize("name", ["normal", "t3", "lognormal"])
def test_integrates_to_one_and_mean_is_closed_form(fits, name):
    x, law = fits[name]
    assert _integrate(law, np.ones_like) == pytest.approx(1.0, abs=1e-8)
    assert _integrate(law, lambda v: v) == pytest.approx(float(law.mean()), abs=1e-7)
    # the fitted law's mean is the sample mean up to the tails' smoothing: well inside the
    # standard error of the sample mean (x.std() / sqrt(n))
    assert abs(float(law.mean()) - x.mean()) < 0.5 * x.std() / math.sqrt(x.size)


@pytest.mark.parametrize("name", ["normal", "t3", "lognormal"])
def test_log_sf_and_log_cdf_are_complementary_and_accurate_in_the_tails(fits, name):
    x, law = fits[name]
    grid = jnp.asarray(np.concatenate([np.quantile(x, np.linspace(0, 1, 101)),
                                       [x.max() * 2, x.max() * 10]]))
    ls, lc = np.asarray(law.log_sf(grid)), np.asarray(law.log_cdf(grid))
    assert np.allclose(np.logaddexp(ls, lc), 0.0, atol=1e-12)
    # far in the upper tail: log(k / n) + the GPD's own log_sf of the excess (no 1 - F)
    ft = law.upper_tail
    far = ft.threshold + 1e6 * ft.scale
    gpd = gj.GeneralizedPareto(ft.xi, ft.scale, ft.threshold)
    assert float(law.log_sf(far)) == pytest.approx(math.log(ft.mass) + float(gpd.log_sf(far)),
                                                   rel=1e-12)
    assert float(law.log_sf(far)) < -20.0


def test_one_sided_data_get_a_bounded_lower_tail(fits):
    """Positive data: the lower tail of a lognormal is light, so its GPD fit has xi < 0 and the
    support starts at a finite point near the smallest sample."""
    x, law = fits["lognormal"]
    ft = law.lower_tail
    assert ft is not None and ft.count == tail_count(N) and ft.xi_ci[1] < 0.0
    lo, hi = law.support()
    assert 0.0 <= float(lo) < x.min() + 1e-3 and math.isinf(float(hi))
    assert float(law.log_prob(float(lo) - 1e-3)) == -math.inf
    assert float(law.log_cdf(float(lo) - 1e-3)) == -math.inf
    assert float(law.log_sf(float(lo) - 1e-3)) == 0.0
    # without tails, the body's ends are fitted, within a few sample spacings of the extremes
    none = gj.Empirical.fit(x, upper_tail=False, lower_tail=False)
    assert none.lower_tail is None and none.upper_tail is None
    top = float(none.support()[1])
    assert abs(top - x.max()) < 0.5 * x.max() and none.right_tail().kind == "bounded"


def test_tail_fit_t3_and_right_tail(fits):
    _, law = fits["t3"]
    for ft in (law.upper_tail, law.lower_tail):
        assert ft.count == 2155 and ft.n == N
        assert ft.xi_ci[0] < 1.0 / 3.0 < ft.xi_ci[1]
        lo, hi = ft.tail_exponent_ci()
        assert lo < 3.0 < hi
    tail = law.right_tail()
    assert tail.kind == "power" and tail.exponent == pytest.approx(1.0 / law.upper_tail.xi)
    assert law.tail == "heavy"
    _, nlaw = fits["normal"]
    assert nlaw.right_tail().kind == "bounded" and nlaw.tail == "light"  # penultimate xi < 0


@pytest.mark.parametrize("xi", [0.5, 0.0, -0.3])
def test_gpd_fit_recovers_known_parameters(xi):
    y = np.asarray(gj.GeneralizedPareto(xi, 2.0).sample(jax.random.key(7), (20_000,)))
    fxi, sigma, cov, ll = fit_generalized_pareto(y)
    se = np.sqrt(np.diag(cov))
    assert abs(fxi - xi) < 3.5 * se[0] and abs(sigma - 2.0) < 3.5 * se[1]
    # the asymptotic standard error of xi is (1 + xi) / sqrt(k)
    assert se[0] == pytest.approx((1 + xi) / math.sqrt(y.size), rel=0.1)
    # a maximum: the log-likelihood of the library's own law is no higher nearby
    def loglik(a, s):
        return float(jnp.sum(gj.GeneralizedPareto(a, s).log_prob(jnp.asarray(y))))
    assert loglik(fxi, sigma) == pytest.approx(ll, rel=1e-10)
    for da, ds in ((1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)):
        assert loglik(fxi + da, sigma + ds) <= ll + 1e-9


@pytest.mark.parametrize("xi", [-0.5, -0.1, 0.0, 0.2, 0.8])
def test_gpd_fit_is_at_least_scipys_maximum(xi):
    # the compiled fit against an independent optimiser on the same excesses, for several k (new
    # padded lengths): its log-likelihood is never below SciPy's genpareto.fit (floc=0) beyond
    # rounding, its shape agrees within a tenth of a standard error, and its score is ~0
    stats = pytest.importorskip("scipy.stats")
    for k, seed in ((45, 1), (700, 2), (2154, 3)):
        u = np.random.default_rng(seed).uniform(size=k)
        y = 1.7 * (np.expm1(-xi * np.log(u)) / xi if xi != 0 else -np.log(u))
        fxi, sigma, cov, ll = fit_generalized_pareto(y)
        c, _, scale = stats.genpareto.fit(y, floc=0)
        ll_scipy = float(np.sum(stats.genpareto.logpdf(y, c, 0.0, scale)))
        assert ll >= ll_scipy - 1e-9 * abs(ll), (k, ll, ll_scipy)
        assert abs(fxi - c) < 0.1 * math.sqrt(cov[0, 0]), (k, fxi, c)
        if fxi > -0.9:  # (an interior maximum: the score vanishes)
            h = 1e-6
            lp = [float(np.sum(stats.genpareto.logpdf(y, fxi + d, 0.0, sigma))) for d in (h, -h)]
            assert abs(lp[0] - lp[1]) / (2 * h) < 1e-3 * k


def test_sample_follows_the_law(fits):
    _, law = fits["t3"]
    s = np.asarray(law.sample(jax.random.key(3), (200_000,)))
    p = np.array([1e-3, 0.02, 0.2, 0.5, 0.8, 0.98, 0.999])
    q = np.asarray(law.quantile(jnp.asarray(p)))
    emp = np.array([(s <= v).mean() for v in q])
    assert np.all(np.abs(emp - p) < 4 * np.sqrt(p * (1 - p) / s.size) + 1e-6)
    assert np.allclose(np.exp(np.asarray(law.log_cdf(jnp.asarray(q)))), p, rtol=1e-10)
    assert law.sample(jax.random.key(3), (2, 3), jnp.float32).dtype == jnp.float32


def test_pytree_jit_and_static_structure(fits):
    _, law = fits["t3"]
    leaves, tree = jax.tree_util.tree_flatten(law)
    again = jax.tree_util.tree_unflatten(tree, leaves)
    assert again == law and again.tail == "heavy"
    x = jnp.linspace(-10.0, 10.0, 7)
    assert np.allclose(jax.jit(lambda d, v: d.log_prob(v))(law, x), law.log_prob(x))
    assert np.allclose(jax.vmap(law.log_sf)(x), law.log_sf(x))
    g = jax.grad(lambda v: law.log_sf(v))(3.0)
    assert np.isfinite(g) and g < 0


def test_conditional_value_small(fits):
    """E[V | V + X >= t] on 1e5 draws at P(U >= t) = 0.5, 1e-2, 1e-3, t(3) as error (normal
    value), within 5% of the true law's (the normal fit, as error, runs in the command-line
    test; each pairing compiles for ~15 s).  The goal of issue #15 is 2% on 1e6
    draws (slow test below); the error is sampling error, which grows like 1/sqrt(n): the worst
    at P >= 1e-3 on 1e6 draws is 1.6% (t(3) as error), times sqrt(10) is 5%.  (Measured on
    these draws: normal as value -1.3% at worst, t(3) as error -2.8% at P = 1e-2.)"""
    p = np.log(np.array([0.5, 1e-2, 1e-3]))
    for name, true, role in (("t3", gj.StudentT(3.0), "error"),):
        _, law = fits[name]
        pair = (true, gj.Normal()) if role == "value" else (gj.Normal(), true)
        emp = (law, gj.Normal()) if role == "value" else (gj.Normal(), law)
        t = _thresholds(*pair, p)
        ref = np.asarray(gj.conditional_value(*pair, jnp.asarray(t)))
        got = np.asarray(gj.conditional_value(*emp, jnp.asarray(t)))
        assert np.all(np.abs(got / ref - 1) < 0.05), (name, got / ref - 1)


def test_light_tails_fit_their_penultimate_shape(fits):
    """Normal and lognormal data: xi = 0 only asymptotically.  Above a finite threshold u the
    excesses look like a GPD with the penultimate shape xi(u) = (S/f)'(u) (Mills ratio R:
    u R(u) - 1 < 0 for the normal, R(z)(1 + z) - 1 > 0 for the lognormal, z = log u); the
    fit averages the local shape over the tail, so it lies between xi(u) and 0 (its CI, at
    1e5 draws, excludes 0)."""
    from scipy import stats

    def mills(z):
        return stats.norm.sf(z) / stats.norm.pdf(z)

    u = fits["normal"][1].upper_tail
    assert u.threshold * mills(u.threshold) - 1.0 < u.xi < 0.0 and u.xi_ci[1] < 0.0
    u = fits["lognormal"][1].upper_tail
    z = math.log(u.threshold)
    assert 0.0 < u.xi < mills(z) * (1.0 + z) - 1.0 and u.xi_ci[0] > 0.0


def _thresholds(value, error, log_p):
    """``t`` with ``log P(V + X >= t)`` near ``log_p`` (interpolated on a grid of the exact
    ``log_tail_prob``; the comparison needs the same ``t`` for both laws, not an exact one)."""
    grid = np.concatenate([np.linspace(-10.0, 10.0, 81), np.geomspace(10.0, 200.0, 60)[1:]])
    lp = np.asarray(gj.log_tail_prob(value, error, jnp.asarray(grid)))
    return np.interp(-log_p, -lp, grid)


# --- files, spec, command line ---------------------------------------------------------------


def test_files_and_spec(tmp_path, monkeypatch):
    x = np.random.default_rng(5).standard_normal(5000)
    np.save(tmp_path / "s.npy", x)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "s.csv").write_text("score\n" + "\n".join(repr(float(v)) for v in x) + "\n")
    a = gj.parse_dist(f"empirical({tmp_path / 's.npy'})")
    b = gj.parse_dist(f"empirical('{tmp_path / 'data' / 's.csv'}')")
    assert isinstance(a, gj.Empirical) and a == b and a == gj.Empirical.fit(x)
    assert a.spec == f"empirical({tmp_path / 's.npy'})"
    assert np.array_equal(read_samples(str(tmp_path / "data" / "s.csv")), x)
    np.save(tmp_path / "col.npy", x[:, None])
    assert np.array_equal(read_samples(str(tmp_path / "col.npy")), x)
    monkeypatch.chdir(tmp_path)  # inside a larger spec the file name is a Python expression
    mix = gj.parse_dist("mixture(0.5*empirical(s.npy), 0.5*normal)")
    assert isinstance(mix, gj.Mixture) and mix.components[0] == a
    with pytest.raises(ValueError, match="in memory has no spec"):
        gj.Empirical.fit(x).spec


@pytest.mark.parametrize("content, needle", [
    ("1\n2,3\n", "more than one column"),
    ("x\n1\nabc\n", "line 3 is not a number"),
    ("a b\n", "more than one column"),
])
def test_bad_files(tmp_path, content, needle):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(ValueError, match=needle):
        gj.parse_dist(f"empirical({p})")


def test_bad_input():
    x = np.random.default_rng(0).standard_normal(2000)
    with pytest.raises(ValueError, match="samples: the sample set is empty"):
        gj.Empirical.fit([])
    with pytest.raises(ValueError, match="samples must be finite"):
        gj.Empirical.fit(np.append(x, np.nan))
    with pytest.raises(ValueError, match="samples: 5 point"):
        gj.Empirical.fit(x, upper_threshold=np.sort(x)[-6])
    with pytest.raises(ValueError, match="24 point.*at least 30 are needed"):
        gj.Empirical.fit(x[:25], lower_tail=False)
    with pytest.raises(ValueError, match="at least 8 are needed for the body"):
        gj.Empirical.fit(x[:65])
    with pytest.raises(ValueError, match="tail_fraction must be"):
        gj.Empirical.fit(x, tail_fraction=0.7)
    with pytest.raises(ValueError, match="1-D"):
        gj.Empirical.fit(x.reshape(40, 50))
    with pytest.raises(ValueError, match="does not exist"):
        gj.parse_dist("empirical(/no/such/file.npy)")
    with pytest.raises(ValueError, match="all 30 points above"):
        gj.Empirical.fit(np.concatenate([x, np.full(40, 99.0)]), tail_fraction=30 / 2040)


def _cli(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "goodhart_jax.cli", *argv], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.slow  # ~40 s: the exact conditioning compiles for the fitted law twice
def test_cli_condition_with_an_empirical_error(tmp_path):
    x = np.random.default_rng(1).standard_normal(20_000)
    np.save(tmp_path / "scores.npy", x)
    proc = _cli("condition", "--value", "normal(0,1)", "--error", "empirical(scores.npy)",
                "--threshold", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    want = float(gj.conditional_value(gj.Normal(), gj.Empirical.fit(x), 2.0))
    assert f"{want:.6g}"[:6] in proc.stdout


def test_cli_condition_refuses_an_unreadable_empirical_file(tmp_path):
    bad = _cli("condition", "--value", "normal", "--error", "empirical(missing.csv)",
               "--threshold", "2", cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "missing.csv" in bad.stderr and "Traceback" not in bad.stderr


# --- the accuracy goal on 1e6 draws (slow) ---------------------------------------------------

_LAWS = {"normal": (gj.Normal(), lambda r, n: r.standard_normal(n)),
         "t3": (gj.StudentT(3.0), lambda r, n: r.standard_t(3.0, n)),
         "lognormal": (gj.LogNormal(1.0), lambda r, n: r.lognormal(0.0, 1.0, n))}


# Measured (seed 12345, 1e6 draws): at P = 1e-4 the answer rests on the GPD's extrapolation,
# whose own spread over seeds is 2.5% to 5% for these cases (tests/reference/empirical_spread.py;
# the plain empirical law of the draws spreads 6% to 17%): the 2% goal there is not reachable
# from 1e6 draws (docs/empirical.md).  Strict: a change in these numbers shows.
_MISSES = {("t3", "value"): "-3.26% at P = 1e-4", ("t3", "error"): "+5.74% at P = 1e-4",
           ("lognormal", "error"): "-2.90% at P = 1e-4"}


@pytest.mark.slow
@pytest.mark.parametrize("role", ["value", "error"])
@pytest.mark.parametrize("name", ["normal", "t3", "lognormal"])
def test_conditional_value_within_two_percent_1e6(name, role, request):
    """Issue #15: E[V | U >= t] within 2% of the true law's wherever P(U >= t) >= 1e-4."""
    if (name, role) in _MISSES:
        request.applymarker(pytest.mark.xfail(reason="measured miss: " + _MISSES[name, role],
                                              strict=True))
    true, draw = _LAWS[name]
    law = gj.Empirical.fit(draw(np.random.default_rng(12345), 10**6))
    pair = (true, gj.Normal()) if role == "value" else (gj.Normal(), true)
    emp = (law, gj.Normal()) if role == "value" else (gj.Normal(), law)
    t = _thresholds(*pair, np.log(np.array([0.5, 0.1, 1e-2, 1e-3, 1e-4])))
    ref = np.asarray(gj.conditional_value(*pair, jnp.asarray(t)))
    got = np.asarray(gj.conditional_value(*emp, jnp.asarray(t)))
    assert np.all(np.abs(got / ref - 1) < 0.02), got / ref - 1


# --- the profile search against the grid-and-golden-section version it replaced (issue #16) ---

_REF_NEG_NEAR = -(1.0 - np.logspace(-12, 0, 12)[::-1][:-1])
_REF_NEG_SMALL = np.linspace(0.0, 1.0, 6)
_REF_POS = np.logspace(-8, 6, 15)


def _reference_kernel(y, k, ybar, ymax):
    """The fit before issue #16's change (verbatim but for names): a 34-point profile grid,
    56 golden-section steps, then the same Newton polish; returns ``(xi, sigma, loglik)``."""
    from goodhart_jax import empirical as E

    lo_small, hi_small = jnp.log(1e-8 / ybar), jnp.log(0.999 / ymax)
    grid = jnp.sort(jnp.concatenate([
        jnp.asarray(_REF_NEG_NEAR) / ymax,
        -jnp.exp(lo_small + jnp.asarray(_REF_NEG_SMALL) * (hi_small - lo_small)),
        jnp.zeros(1), jnp.asarray(_REF_POS) / ybar]))
    ll, _, _ = E._profile(grid, y, k)
    i = jnp.argmax(ll)
    a, b = grid[jnp.maximum(i - 1, 0)], grid[jnp.minimum(i + 1, grid.size - 1)]
    gr = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - gr * (b - a), a + gr * (b - a)
    fc, fd = E._profile(jnp.stack([c, d]), y, k)[0]

    def golden(_, s):
        a, b, c, d, fc, fd = s
        left = fc >= fd
        na, nb = jnp.where(left, a, c), jnp.where(left, d, b)
        nc = jnp.where(left, nb - gr * (nb - na), d)
        nd = jnp.where(left, c, na + gr * (nb - na))
        fnew = E._profile(jnp.where(left, nc, nd), y, k)[0]
        return na, nb, nc, nd, jnp.where(left, fnew, fd), jnp.where(left, fc, fnew)

    a, b, c, d, fc, fd = jax.lax.fori_loop(0, 56, golden, (a, b, c, d, fc, fd))
    lls, xis, sigmas = E._profile(jnp.stack([grid[i], c, d]), y, k)
    j = jnp.argmax(lls)
    fin = jnp.isfinite(lls[j])
    xi, sigma = jnp.where(fin, xis[j], 0.0), jnp.where(fin, sigmas[j], ybar)
    best = E._gpd_loglik(xi, sigma, y, k)

    def polish(s):
        i, xi, sigma, best, done = s
        g, h = E._gpd_derivatives(xi, sigma, y, k)
        det = h[0, 0] * h[1, 1] - h[0, 1] * h[1, 0]
        dx = -(h[1, 1] * g[0] - h[0, 1] * g[1]) / det
        ds = -(h[0, 0] * g[1] - h[1, 0] * g[0]) / det
        xn, sn = xi + dx, sigma + ds
        stop = done | ~(det != 0) | ~jnp.isfinite(dx) | ~jnp.isfinite(ds) | (xn < -1.0) | ~(sn > 0)
        ln = E._gpd_loglik(jnp.where(stop, xi, xn), jnp.where(stop, sigma, sn), y, k)
        stop = stop | ~(ln >= best)
        return (i + 1, jnp.where(stop, xi, xn), jnp.where(stop, sigma, sn),
                jnp.where(stop, best, ln), stop)

    _, xi, sigma, best, _ = jax.lax.while_loop(
        lambda s: (s[0] < 6) & ~s[4], polish,
        (jnp.zeros((), jnp.int32), xi, sigma, best, jnp.zeros((), bool)))
    return xi, sigma, best


_reference_jit = jax.jit(_reference_kernel)


def _reference_fit(y):
    from goodhart_jax.empirical import _bucket
    y = np.asarray(y, dtype=np.float64)
    padded = np.zeros(_bucket(y.size))
    padded[:y.size] = y
    with jax.enable_x64(True):
        out = _reference_jit(padded, float(y.size), float(y.mean()), float(y.max()))
        return tuple(float(v) for v in out)


def _check_cases(full: bool):
    stats = pytest.importorskip("scipy.stats")
    xis = (-0.9, -0.5, -0.1, 0.0, 0.2, 0.8, 2.0) if full else (-0.9, 0.0, 0.8, 2.0)
    ks = (30, 100, 2155, 10_000) if full else (30, 60)
    for xi in xis:
        for k in ks:
            for seed in ((0, 1) if full else (0,)):
                rng = np.random.default_rng(seed * 1000 + k)
                yield f"gpd({xi}) k={k} seed={seed}", stats.genpareto.rvs(xi, size=k, random_state=rng)
    draws = {"exponential": lambda r, n: r.exponential(size=n),
             "normal": lambda r, n: r.standard_normal(n),
             "|t(2)|": lambda r, n: np.abs(r.standard_t(2, n)),
             "uniform": lambda r, n: r.uniform(size=n),
             "lognormal": lambda r, n: r.lognormal(size=n)}
    # (the default run keeps to two padded lengths: 64, where the robust search runs alone, and
    # 768, above which a subsample's fit starts Newton steps over all the excesses)
    sizes = (((100_000, 2155), (1_000_000, 10_000), (100_000, 100)) if full
             else ((20_000, 60), (20_000, 600)))
    for name, draw in draws.items():
        if not full and name == "exponential":
            continue
        for n, k in sizes:
            for seed in ((0, 1, 2) if full else (2,)):
                x = draw(np.random.default_rng(seed + 7 * k), n)
                top = np.sort(np.partition(x, n - k - 1)[n - k - 1:])[::-1]
                yield f"{name} n={n} k={k} seed={seed}", top[:k] - top[k]


def _assert_matches_reference(full: bool):
    # the same maximum as the grid-and-golden-section search: (xi, sigma) to 1e-7 (xi relative
    # to max(1, |xi|): near xi = 0 the likelihood is flat at rounding level there) or a higher
    # log-likelihood, and never a log-likelihood lower by more than 1e-9 relative
    count = 0
    for name, y in _check_cases(full):
        xi, sigma, _, ll = fit_generalized_pareto(y)
        rxi, rsigma, rll = _reference_fit(y)
        gap = (ll - rll) / abs(rll)
        close = abs(xi - rxi) <= 1e-7 * max(1.0, abs(rxi)) and abs(sigma - rsigma) <= 1e-7 * rsigma
        assert (close or gap > 0) and gap >= -1e-9, (name, (xi, sigma, ll), (rxi, rsigma, rll))
        count += 1
    assert count == (101 if full else 16)


def test_gpd_fit_matches_the_grid_search():
    _assert_matches_reference(full=False)


@pytest.mark.slow
def test_gpd_fit_matches_the_grid_search_everywhere():
    _assert_matches_reference(full=True)
