"""The live explorer, driven under Agg: sliders move the panels to the formulas' values."""

import jax
import matplotlib
import numpy as np
import pytest

import goodhart_jax.mesa as mesa
from goodhart_jax import cli, explorer


@pytest.fixture(scope="module")
def ex():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    built = explorer.build_explorer()
    built.fig.canvas.draw()  # it renders; later redraws are skipped to keep the test fast
    built.fig.canvas.draw_idle = lambda *args, **kwargs: None
    yield built
    plt.close(built.fig)


def _check_panels(ex, pressure, rho, shift, capability, oversight):
    a = ex.artists
    ps = np.asarray(a["true"].get_xdata())
    assert ps[0] == 0.0 and ps[-1] == pytest.approx(explorer.SLIDERS["pressure"][2])
    # panel 1: proxy and true performance, the optimum and the chosen pressure
    np.testing.assert_allclose(a["proxy"].get_ydata(), ps)
    np.testing.assert_allclose(a["true"].get_ydata(), mesa.true_performance(ps, rho, shift),
                               rtol=1e-12, atol=1e-12)
    p_star = float(mesa.optimal_pressure(rho, shift))
    assert a["optimum_line"].get_visible() == np.isfinite(p_star)
    if np.isfinite(p_star):
        np.testing.assert_allclose(a["optimum_line"].get_xdata(), [p_star, p_star], rtol=1e-12)
        np.testing.assert_allclose(a["optimum_point"].get_ydata(),
                                   [rho**2 / (4 * shift * (1 - rho))], rtol=1e-12)
    else:
        assert "unbounded" in a["perf_text"].get_text()
    np.testing.assert_allclose(a["pressure_point"].get_xdata(), [pressure])
    np.testing.assert_allclose(a["pressure_point"].get_ydata(),
                               [mesa.true_performance(pressure, rho, shift)], rtol=1e-12)
    # panel 2: the gap
    np.testing.assert_allclose(a["gap"].get_ydata(), mesa.goodhart_gap(ps, rho, shift),
                               rtol=1e-12, atol=1e-12)
    # panel 3: P(deception) at the chosen oversight, and the chosen point
    caps = np.asarray(a["deception"].get_xdata())
    np.testing.assert_allclose(a["deception"].get_ydata(),
                               mesa.deception_probability(caps, oversight), rtol=1e-12)
    np.testing.assert_allclose(a["deception_point"].get_ydata(),
                               [mesa.deception_probability(capability, oversight)], rtol=1e-12)
    # panel 4: the scatter is sample_objectives with the explorer's key
    k_train, k_dep = jax.random.split(ex.key)
    tp, tt = mesa.sample_objectives(k_train, ex.n_scatter, rho, shift)
    dp, dt = mesa.sample_objectives(k_dep, ex.n_scatter, rho, shift, deployment=True)
    np.testing.assert_allclose(a["train"].get_offsets(), np.column_stack([tp, tt]), rtol=1e-12)
    np.testing.assert_allclose(a["deploy"].get_offsets(), np.column_stack([dp, dt]), rtol=1e-12)


def test_initial_panels_match_formulas(ex):
    v = ex.values()
    assert set(v) == {"pressure", "rho", "shift", "capability", "oversight"}
    _check_panels(ex, **v)


def test_sliders_redraw_to_the_formulas(ex):
    before_true = np.array(ex.artists["true"].get_ydata())
    before_dec = np.array(ex.artists["deception"].get_ydata())
    before_train = np.array(ex.artists["train"].get_offsets())
    redraws = ex.redraws
    settings = {"pressure": 3.0, "rho": 0.9, "shift": 0.25, "capability": 150.0,
                "oversight": 0.8}
    for name, value in settings.items():
        ex.sliders[name].set_val(value)
    assert ex.redraws == redraws + len(settings)
    assert ex.values() == pytest.approx(settings)
    _check_panels(ex, **settings)
    assert not np.allclose(ex.artists["true"].get_ydata(), before_true)
    assert not np.allclose(ex.artists["deception"].get_ydata(), before_dec)
    assert not np.allclose(ex.artists["train"].get_offsets(), before_train)
    assert float(ex.data.optimal_pressure) == pytest.approx(0.9 / (2 * 0.25 * 0.1))


def test_shift_zero_shows_an_unbounded_optimum(ex):
    ex.sliders["shift"].set_val(0.0)
    _check_panels(ex, **ex.values())
    assert not ex.artists["optimum_line"].get_visible()
    ex.sliders["shift"].set_val(1.0)
    assert ex.artists["optimum_line"].get_visible()


def test_main_without_display_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if explorer.sys.platform.startswith("linux"):
        assert not explorer._has_display()
    monkeypatch.setattr(explorer, "_has_display", lambda: False)
    with pytest.raises(ValueError, match="display"):
        explorer.main()
    assert cli.main(["explore"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("goodhart-jax: error:") and "display" in err[0]


def test_main_with_backends(capsys):
    assert explorer.main(backend="Agg") == 0  # non-interactive: built, no window
    assert cli.main(["explore", "--backend", "no_such_backend"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("goodhart-jax: error:") and "no_such_backend" in err[-1]


def test_bad_initial_values():
    with pytest.raises(ValueError, match="rho"):
        explorer.build_explorer(rho=1.5)
    with pytest.raises(ValueError, match="unknown slider"):
        explorer.build_explorer(speed=1.0)
