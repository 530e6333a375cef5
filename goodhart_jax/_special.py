"""Far-tail special functions in log space (private).

``t_log_sf(z, df)``      log P(T > z) for a standard Student t with ``df`` degrees of freedom.
``log_gammaincc(a, y)``  log Q(a, y), the regularised upper incomplete gamma function.

First version: thin wrappers over jax.scipy.special; to be replaced by forms that stay accurate
(and differentiable in every argument) far into the tail.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy import special as jsp

__all__ = ["t_log_sf", "log_gammaincc"]


def t_log_sf(z, df):
    z = jnp.asarray(z)
    x = df / (df + z * z)
    tail = jnp.log(0.5) + jnp.log(jsp.betainc(0.5 * df, 0.5, x))
    return jnp.where(z > 0, tail, jnp.log1p(-jnp.exp(tail)))


def log_gammaincc(a, y):
    return jnp.log(jsp.gammaincc(a, y))
