"""The heavy-tails figure experiments (quick mode), checked against independent references.

Each experiment is run once through ``experiments.run`` into a temporary folder; its saved
numbers are compared with closed forms (normal/normal), SciPy densities, ``brentq`` roots and
``scipy.integrate.quad`` of ``∫ v f_V(v) S_X(t - v) dv / ∫ f_V(v) S_X(t - v) dv``, never with
numbers the code itself printed.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from goodhart_jax import experiments
from goodhart_jax.results import load_json


def _run(tmp_path_factory, name: str, params: dict | None = None):
    out = tmp_path_factory.mktemp(name)
    experiments.run(name, quick=True, out=out, params=params)
    manifest = load_json(out / "manifest.json")
    assert manifest["experiment"] == name and manifest["quick"] is True
    return out, load_json(out / "numbers.json")


def _normal_closed_form(t, sv, sx):
    """E[V | V + X >= t] for V ~ N(0, sv^2), X ~ N(0, sx^2): (sv^2 / su) phi(a) / (1 - Phi(a))."""
    su = math.hypot(sv, sx)
    a = np.asarray(t, dtype=float) / su
    return sv ** 2 / su * np.exp(stats.norm.logpdf(a) - stats.norm.logsf(a))


def _quad_conditional(f_v, sf_x, t):
    """(E[V | U >= t], P(U >= t)) by quad, split where the integrands have kinks (0 and t)."""
    def integral(g):
        cuts = sorted({0.0, float(t)})
        pieces = [(-np.inf, cuts[0])] + list(itertools.pairwise(cuts)) + [(cuts[-1], np.inf)]
        return sum(integrate.quad(g, a, b, epsabs=0.0, epsrel=1e-13, limit=400)[0]
                   for a, b in pieces)

    den = integral(lambda v: f_v(v) * sf_x(t - v))
    num = integral(lambda v: v * f_v(v) * sf_x(t - v))
    return num / den, den


# --- a. elliptical regression ------------------------------------------------------------------

SV, SX = 1.5, 0.7


@pytest.fixture(scope="module")
def elliptical(tmp_path_factory):
    return _run(tmp_path_factory, "elliptical_regression",
                {"value_scale": SV, "error_scale": SX})


def test_elliptical_regression_against_closed_forms(elliptical):
    out, num = elliptical
    assert (out / "elliptical_regression.png").stat().st_size > 10_000
    su2 = SV ** 2 + SX ** 2
    # regression E[V | U = u] = (s_V^2 / s_U^2) u, at every saved point and as a slope
    assert num["regression_slope"] == pytest.approx(SV ** 2 / su2, rel=1e-12)
    np.testing.assert_allclose(num["regression_value"],
                               SV ** 2 / su2 * np.asarray(num["regression_u"]), atol=1e-12)
    # the principal axis of Cov(U, V), from numpy's eigensolver
    w, vecs = np.linalg.eigh(np.array([[su2, SV ** 2], [SV ** 2, SV ** 2]]))
    major = vecs[:, np.argmax(w)]
    assert num["major_axis_slope"] == pytest.approx(major[1] / major[0], rel=1e-12)
    assert num["major_axis_slope"] > num["regression_slope"]  # the eyeballed line is steeper
    # E[V | U >= t] against the normal closed form, to 1e-10 relative
    t = np.asarray(num["t"])
    assert t[-1] > 5 * math.sqrt(su2)  # far enough out to be a real test of the tail
    np.testing.assert_allclose(num["conditional_value"], _normal_closed_form(t, SV, SX),
                               rtol=1e-10)


# --- b. joint density on the half-plane ----------------------------------------------------------


@pytest.fixture(scope="module")
def triangle(tmp_path_factory):
    return _run(tmp_path_factory, "joint_density_triangle")


def test_joint_density_triangle_curves(triangle):
    out, num = triangle
    assert (out / "joint_density_triangle.png").stat().st_size > 10_000
    t = np.asarray(num["t"])
    t_mark = num["t_mark"]
    assert t_mark in t.tolist()
    cases = num["cases"]
    # normal/normal: the closed form
    np.testing.assert_allclose(cases["normal"]["conditional_value"],
                               _normal_closed_form(t, 1.0, 1.0), rtol=1e-10)
    # heavy pairs: quad with SciPy's gennorm (density ∝ exp(-|x|^beta), as GenNormal(p))
    pairs = {"equal_heavy": (0.5, 0.5), "error_heavier": (0.8, 0.5)}
    for name, (cv, cx) in pairs.items():
        fv, sx = stats.gennorm(cv).pdf, stats.gennorm(cx).sf
        for k in (1, int(np.flatnonzero(t == t_mark)[0]), len(t) - 1):
            want, _ = _quad_conditional(fv, sx, t[k])
            assert cases[name]["conditional_value"][k] == pytest.approx(want, rel=1e-7), (name, t[k])
    # exchangeable V, X: E[V | U >= t] = E[U | U >= t] / 2 >= t / 2 at every t
    assert np.all(np.asarray(cases["equal_heavy"]["conditional_value"]) >= t / 2)
    # error heavier (Theorem 5): rises, then falls back towards E[V] = 0
    heavier = np.asarray(cases["error_heavier"]["conditional_value"])
    assert 0 < heavier[-1] < 0.5 * heavier.max() and np.argmax(heavier) < len(t) - 1


def test_joint_density_triangle_modes(triangle):
    _, num = triangle
    t = num["t_mark"]
    modes = {name: c["modes_on_boundary"] for name, c in num["cases"].items()}
    # normal: one mode, the middle of the line v + x = t
    assert len(modes["normal"]) == 1
    assert modes["normal"][0]["v"] == pytest.approx(t / 2, abs=1e-12)
    assert modes["normal"][0]["log_density"] == pytest.approx(2 * stats.norm.logpdf(t / 2), rel=1e-12)
    # c < 1: the two corners (0, t) and (t, 0); equal tails make them equally dense, and with
    # the heavier error the corner where the error does all the work wins
    for name, (cv, cx) in {"equal_heavy": (0.5, 0.5), "error_heavier": (0.8, 0.5)}.items():
        got = sorted((m["v"], m["log_density"]) for m in modes[name])
        assert [v for v, _ in got] == [0.0, t]
        want = [stats.gennorm(cv).logpdf(0.0) + stats.gennorm(cx).logpdf(t),
                stats.gennorm(cv).logpdf(t) + stats.gennorm(cx).logpdf(0.0)]
        np.testing.assert_allclose([d for _, d in got], want, rtol=1e-12)
    assert modes["equal_heavy"][0]["log_density"] == pytest.approx(modes["equal_heavy"][1]["log_density"])


# --- c. tail pdfs ------------------------------------------------------------------------------


@pytest.mark.parametrize("value,error,ref_v,ref_x", [
    (None, None, stats.norm, stats.t(3)),
    ("gennorm(2)", "gennorm(0.5)", stats.gennorm(2.0), stats.gennorm(0.5)),
])
def test_tail_pdfs_against_scipy(tmp_path_factory, value, error, ref_v, ref_x):
    params = {} if value is None else {"value": value, "error": error}
    out, num = _run(tmp_path_factory, "tail_pdfs", params)
    assert (out / "tail_pdfs.png").stat().st_size > 10_000
    x = np.asarray(num["x"])
    np.testing.assert_allclose(num["log_pdf_value"], ref_v.logpdf(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(num["log_pdf_error"], ref_x.logpdf(x), rtol=1e-12, atol=1e-12)

    def diff(z):
        return ref_x.logpdf(z) - ref_v.logpdf(z)

    # symmetric pairs: exactly one crossing on each side, and X's density wins beyond it
    root = optimize.brentq(diff, 0.5, 5.0, xtol=1e-15, rtol=1e-15)
    assert num["overtake"] == pytest.approx(root, rel=1e-12)
    np.testing.assert_allclose(num["crossings"], [-root, root], rtol=1e-12)
    assert diff(root + 1.0) > 0 > diff(root - 1.0)


# --- d. conditional animation ------------------------------------------------------------------


@pytest.fixture(scope="module")
def animation(tmp_path_factory):
    return _run(tmp_path_factory, "conditional_animation")


def test_conditional_animation_files_and_mass(animation):
    from PIL import Image

    out, num = animation
    t = np.asarray(num["t"])
    assert len(t) == 6
    with Image.open(out / "conditional_animation.gif") as im:
        assert im.n_frames == len(t)
    assert (out / "conditional_frames.png").stat().st_size > 10_000
    v, density = np.asarray(num["v"]), np.asarray(num["density"])
    assert density.shape == (len(t), len(v)) and np.all(density >= 0)
    np.testing.assert_allclose(integrate.trapezoid(density, v, axis=1), 1.0, atol=1e-4)


def test_conditional_animation_against_quad(animation):
    _, num = animation
    t = np.asarray(num["t"])
    w = num["window"]
    fv, sx = stats.laplace.pdf, stats.t(3).sf  # the defaults: gennorm(p=1) is Laplace(0, 1)
    for k in (0, 2, len(t) - 1):
        mean, p = _quad_conditional(fv, sx, t[k])
        assert num["conditional_value"][k] == pytest.approx(mean, rel=1e-7)
        assert num["log_tail_prob"][k] == pytest.approx(math.log(p), rel=1e-9)

        def cond(z, tk=t[k], p=p):
            return fv(z) * sx(tk - z) / p

        near0 = integrate.quad(cond, -w, 0.0, epsabs=0, epsrel=1e-13)[0] + integrate.quad(
            cond, 0.0, w, epsabs=0, epsrel=1e-13)[0]
        near_t = integrate.quad(cond, t[k] - w, t[k] + w, points=[0.0] if t[k] < w else None,
                                epsabs=0, epsrel=1e-13)[0]
        assert num["mass_near_zero"][k] == pytest.approx(near0, rel=1e-7)
        assert num["mass_near_t"][k] == pytest.approx(near_t, rel=1e-7)
    # the spike near v = t shrinks and the mass returns near v = 0; the mean falls back
    near_t = np.asarray(num["mass_near_t"])
    assert np.all(np.diff(near_t[1:]) < 0) and near_t[-1] < 1e-3
    near_zero = np.asarray(num["mass_near_zero"])
    assert near_zero[-1] > near_zero[1] and near_zero[-1] > 0.5
    means = np.asarray(num["conditional_value"])
    assert means[-1] < 0.5 * means.max()


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,params,word", [
    ("elliptical_regression", {"error_scale": -1.0}, "error_scale"),
    ("joint_density_triangle", {"c": 1.5}, "c must"),
    ("joint_density_triangle", {"c_value": 0.3}, "c_value"),
    ("tail_pdfs", {"x_max": 0.0}, "x_max"),
    ("tail_pdfs", {"error": "cauchy(1)"}, "unknown distribution"),
    ("conditional_animation", {"num_frames": 1}, "num_frames"),
    ("conditional_animation", {"window": -1.0}, "window"),
])
def test_bad_tunables_raise(tmp_path, name, params, word):
    with pytest.raises(ValueError, match=word):
        experiments.run(name, quick=True, out=tmp_path, params=params)
