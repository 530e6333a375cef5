"""The generic optax pressure search (goodhart_jax.optimize)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from goodhart_jax import optimize as opt


def quadratic(p):
    return 2.0 * p - p**2  # maximiser 1, maximum 1


def test_maximize_quadratic_converges():
    res = opt.maximize(quadratic, 0.1)
    assert bool(res.converged) and bool(res.bounded)
    np.testing.assert_allclose(res.pressure, 1.0, rtol=1e-12)
    np.testing.assert_allclose(res.value, 1.0, rtol=1e-12)
    np.testing.assert_allclose(res.grad, 0.0, atol=1e-10)
    assert res.trajectory.shape == (500 + 4 + 1,)
    assert res.values.shape == res.trajectory.shape
    assert float(res.trajectory[0]) == pytest.approx(0.1)
    assert float(res.trajectory[-1]) == float(res.pressure)
    # the ascent never ends lower than it started
    assert float(res.values[-1]) >= float(res.values[0])


@pytest.mark.parametrize(
    "make", [opt.log_transform, opt.softplus_transform, opt.identity_transform])
def test_transforms_round_trip_and_search(make):
    t = make()
    p = jnp.array([0.01, 0.5, 3.0, 40.0])
    np.testing.assert_allclose(t.forward(t.inverse(p)), p, rtol=1e-12)
    res = opt.maximize(quadratic, 0.3, transform=t)
    np.testing.assert_allclose(res.pressure, 1.0, rtol=1e-10)


def test_any_optax_optimizer_including_extra_args():
    res = opt.maximize(quadratic, 0.1, optimizer=optax.lbfgs(), steps=20, newton_steps=0)
    np.testing.assert_allclose(res.pressure, 1.0, rtol=1e-8)
    assert bool(res.converged)


def test_generic_objective_vmapped_over_scales():
    """One vmapped call over objectives whose maximisers span six orders of magnitude."""
    a = jnp.geomspace(1e-3, 1e3, 13)

    def one(a):
        return opt.maximize(lambda p: a * jnp.log(p) - p, 1.0, newton_steps=0)  # argmax p = a

    res = jax.jit(jax.vmap(one))(a)
    assert res.pressure.shape == a.shape and res.trajectory.shape == (13, 501)
    np.testing.assert_allclose(res.pressure, a, rtol=1e-4)


def test_unbounded_objective_is_not_converged():
    res = opt.maximize(lambda p: 0.5 * p, 1.0)  # no maximiser: more is always better
    assert not bool(res.converged) and not bool(res.bounded)
    assert bool(jnp.all(jnp.isfinite(res.trajectory)))
    assert bool(jnp.all(jnp.diff(res.trajectory) >= 0))  # it runs away upwards
    assert float(res.pressure) > 1e6


def test_record_false_and_bad_arguments():
    res = opt.maximize(quadratic, 0.5, record=False)
    assert res.trajectory.shape == (0,) and res.values.shape == (0,)
    with pytest.raises(ValueError, match="steps"):
        opt.maximize(quadratic, 0.5, steps=-1)
    with pytest.raises(ValueError, match="init_pressure"):
        opt.maximize(quadratic, float("nan"))
    with pytest.raises(ValueError, match="scalar"):
        opt.maximize(lambda p: jnp.stack([p, p]), 0.5)
