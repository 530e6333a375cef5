"""The deceptive-alignment toy of Hubinger et al. (2019), "Risks from learned optimization".

A mesa-optimiser that wants B, trained on A, compares pursuing B at once (and being modified
away) with playing along until deployment (:func:`hubinger_toy`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax.validation import is_concrete
from goodhart_jax.mesa.domains import DOMAINS, check_params

__all__ = ["ToyPayoffs", "hubinger_toy"]

Array = jax.Array
ArrayLike = Any


class ToyPayoffs(NamedTuple):
    """How many episodes the mesa-optimiser gets its mesa-objective, per strategy.

    Attributes:
        pursue_immediately: go for the mesa-objective from the first episode: it gets it in
            the training episodes before gradient descent modifies it away
            (``episodes_to_modify`` of them), and in every episode if training ends first.
        deceive: play along with the base objective in training, defect in deployment.
        comply: always pursue the base objective (never gets the mesa-objective).
    """

    pursue_immediately: Array
    deceive: Array
    comply: Array


def hubinger_toy(
    training_episodes: ArrayLike = 2,
    deployment_episodes: ArrayLike = 3,
    *,
    episodes_to_modify: ArrayLike = 1,
) -> ToyPayoffs:
    """The payoff table of the deceptive-alignment toy of Hubinger et al. (2019), section 4.

    A mesa-optimiser wants B; the base objective is A.  Training lasts ``T`` episodes, after
    which the model is deployed for ``D`` episodes where nobody modifies it.  Going for B during
    training gets the model modified after ``k = episodes_to_modify`` episodes.

    Math: ``pursue_immediately = k if T >= k else T + D``; ``deceive = D``; ``comply = 0``.
    With ``T = 2, D = 3`` (the paper's example): pursuing B at once gets it about once
    (``1``) before modification; deceiving first gets it ``3`` times.

    Args:
        training_episodes: ``T >= 0`` (integers, broadcast).
        deployment_episodes: ``D >= 0``.
        episodes_to_modify: ``k >= 1``.

    Returns:
        :class:`ToyPayoffs` of integer arrays.

    Example:
        >>> t = hubinger_toy(2, 3)
        >>> int(t.pursue_immediately), int(t.deceive)
        (1, 3)
    """
    owner = "hubinger_toy"
    args = []
    for name, value in (("training_episodes", training_episodes),
                        ("deployment_episodes", deployment_episodes),
                        ("episodes_to_modify", episodes_to_modify)):
        check_params(owner=owner, **{name: value})
        lo = DOMAINS[name][0]
        if is_concrete(value):
            arr = np.asarray(value, dtype=float)
            if not np.all(np.floor(arr) == arr):
                raise ValueError(f"{owner}: {name} must be integers >= {lo}, got {value!r}")
            value = arr.astype(np.int64) if jax.config.jax_enable_x64 else arr.astype(np.int32)
        args.append(value)
    return _hubinger_toy(*args)


@jax.jit
def _hubinger_toy(t, d, k):
    t, d, k = jnp.broadcast_arrays(*(jnp.asarray(a).astype(int) for a in (t, d, k)))
    return ToyPayoffs(
        pursue_immediately=jnp.where(t >= k, k, t + d),
        deceive=d,
        comply=jnp.zeros_like(d),
    )
