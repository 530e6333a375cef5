"""Finite mixtures of laws: ``Mixture(components, weights)``, mixtures included.

A mixture is a :class:`~goodhart_jax.Distribution` like any other (a pytree: the components are
non-leaf parameters, the weights one float array leaf, so gradients reach both), whose five
basic methods and hooks are exact combinations of its components':

* ``log_prob``, ``log_sf``, ``log_cdf``: ``logsumexp_i(log w_i + component i's value)``;
* ``mean()``: ``Σ w_i m_i`` (``inf`` or ``nan`` where a component's mean is, and ``nan`` for
  ``inf - inf``);
* ``log_mean_excess(y)``: ``G(y) = E[(V - m) 1{V > y}]`` as a sum of positive terms (below);
* ``support()``: the hull of the components' supports;
* ``right_tail()``: the heaviest component's tail (a power law beats a lognormal tail, which
  beats a Weibull tail; among power laws the smallest exponent, among lognormal tails the
  largest ``sigma``, among Weibull tails the smallest ``c``, then the largest scale); for a
  power law the coefficient is ``Σ w_i A_i`` over the components with that exponent
  (``S(x) ~ w_i A_i x^-a`` each);
* ``sample``: a component index from ``jax.random.categorical``, a draw from every component,
  the indexed one kept.

Weights are relative: any positive finite numbers, normalised to sum to 1 where they are used
(``Mixture([a, b], [3, 1])`` is ``0.75 a + 0.25 b``; the weights are stored as given, so a
spec round-trips exactly).  Without weights the components weigh equally.

The exact conditioning (``conditional_value``, ``log_tail_prob``, ``value_given_proxy``,
``best_of_n_value``, ``conditional_density``) treats a mixture as one law whose pointwise
functions are the exact combinations above.  Where its mass is, is read off the leaves of
:func:`leaf_components` (the flattened mixture): the quadrature's layout puts an anchor at every
component's bulk, lower support end and, for every pair of a value and an error component, the
saddle of that pair's integrand (``docs/design.md``, section C).

Math: with ``m = Σ w_i m_i``, for ``y >= m``
``G(y) = Σ w_i E[(V_i - m) 1{V_i > y}] = Σ w_i [G_i(y) + (m_i - m) S_i(y)]``, and for ``y < m``
``G(y) = Σ w_i E[(m - V_i) 1{V_i <= y}] = Σ w_i [G_i(y) + (m - m_i) F_i(y)]``: every term of
the outer sum is ``>= 0``; a term's inner sum is a difference only when the component's mean
lies on the other side of ``m``, where it is kept to the precision of ``G_i`` (a component
far out in its own tail there carries a negligible share).

Spec syntax (``parse_dist``): ``mixture(0.99*normal(0, 1), 0.01*pareto(alpha=1.5))``; also
``mixture(0.99 normal(0, 1), 0.01 pareto(alpha=1.5))`` (a number, a space, a law),
``mixture(normal, student_t(3), weights=[3, 1])`` and, without weights, equal weights.  Mixtures
nest.

Example:
    >>> import goodhart_jax as gj
    >>> mix = gj.Mixture([gj.Normal(0.0, 1.0), gj.Pareto(1.5)], [0.99, 0.01])
    >>> round(float(mix.mean()), 6)  # 0.99 * 0 + 0.01 * 3
    0.03
    >>> mix.right_tail().kind, mix.right_tail().exponent, round(mix.right_tail().coef, 6)
    ('power', 1.5, 0.01)
    >>> gj.parse_dist(mix.spec) == mix
    True
"""

from __future__ import annotations

import ast
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from goodhart_jax.distributions import FAMILIES, POSITIVE, Constraint, Distribution, Tail
from goodhart_jax.numerics import float_dtype, log_sub_exp
from goodhart_jax.validation import is_concrete

__all__ = ["Mixture", "leaf_components"]


class _ComponentsConstraint(Constraint):
    """The ``components`` parameter: a tuple of distributions (checked by :class:`Mixture`)."""

    __slots__ = ()

    def check(self, name: str, value: Any, owner: str = "") -> Any:
        return value


def _logsumexp(a: jax.Array, axis: int = -1) -> jax.Array:
    """``log Σ exp(a)`` along ``axis``: ``-inf`` (with zero derivatives) where every term is."""
    top = jax.lax.stop_gradient(jnp.max(a, axis=axis, keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    s = jnp.sum(jnp.exp(a - top), axis=axis)
    pos = s > 0
    return jnp.where(pos, jnp.squeeze(top, axis) + jnp.log(jnp.where(pos, s, 1.0)), -jnp.inf)


def _stack(values: Sequence[Any], dtype=None) -> jax.Array:
    """The arrays ``values`` broadcast together and stacked along a new last axis."""
    arrays = jnp.broadcast_arrays(*(jnp.asarray(v, dtype) for v in values))
    return jnp.stack(arrays, axis=-1)


def _float_dtypes(tree) -> set:
    """The float dtypes of the array leaves of ``tree`` (Python floats have none)."""
    out = set()
    for leaf in jax.tree_util.tree_leaves(tree):
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
            out.add(np.dtype(dtype))
    return out


def _check_weights(weights: Any, k: int) -> Any:
    """The weights as a 1-D float array of length ``k`` (concrete ones checked)."""
    allowed = ("weights must be positive finite numbers, one per component (relative weights: "
               "they are normalised to sum to 1)")
    if not is_concrete(weights):
        if jnp.ndim(weights) != 1 or jnp.shape(weights)[0] != k:
            raise ValueError(f"mixture: {allowed}; got shape {jnp.shape(weights)} for {k} components")
        return weights
    try:
        arr = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"mixture: {allowed}; got {weights!r}") from None
    if arr.ndim != 1 or arr.shape[0] != k:
        raise ValueError(f"mixture: {allowed}; got {arr.size} weight(s) of shape {arr.shape} for "
                         f"{k} components")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise ValueError(f"mixture: {allowed}; got {arr[bad][0]:g}")
    if not np.isfinite(arr.sum()):
        raise ValueError(f"mixture: {allowed}; their sum overflows")
    dtype = getattr(weights, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return np.asarray(weights)
    return arr.astype(np.dtype(float_dtype()))


class Mixture(Distribution):
    """A finite mixture ``Σ_i w_i P_i`` of laws (mixtures included).

    Math: ``f(x) = Σ w_i f_i(x)``, ``S(x) = Σ w_i S_i(x)``, ``E V = Σ w_i m_i``, with
    ``w_i = weights_i / Σ_j weights_j``.

    Args:
        components: a non-empty sequence of :class:`~goodhart_jax.Distribution` (their
            parameters of one float dtype).
        weights: positive finite relative weights, one per component (normalised to sum to 1;
            default: equal).

    Raises:
        ValueError: no components, a component that is not a distribution, parameters of mixed
            dtype, or weights that are not positive and finite or not one per component (the
            message names the argument).

    Example:
        >>> import goodhart_jax as gj
        >>> mix = gj.Mixture([gj.Normal(-1.0), gj.Normal(1.0)], [1.0, 3.0])
        >>> # 0.25 Q(2) + 0.75 Q(0)
        >>> round(float(mix.mean()), 6), round(float(jnp.exp(mix.log_sf(1.0))), 6)
        (0.5, 0.380688)
    """

    name = "mixture"
    constraints = {"components": _ComponentsConstraint(leaf=False), "weights": POSITIVE}

    def __init__(self, components: Sequence[Distribution], weights: Any = None):
        if isinstance(components, Distribution) or not isinstance(components, (list, tuple)):
            raise ValueError("mixture: components must be a non-empty list or tuple of "
                             f"goodhart_jax distributions, got {components!r}")
        components = tuple(components)
        if not components:
            raise ValueError("mixture: components must hold at least one distribution, got none")
        for i, c in enumerate(components):
            if not isinstance(c, Distribution):
                raise ValueError(f"mixture: components must be goodhart_jax distributions; "
                                 f"component {i} is {c!r}")
        dtypes = _float_dtypes(components)
        if len(dtypes) > 1:
            raise ValueError("mixture: components must have parameters of one float dtype, got "
                             + " and ".join(sorted(str(d) for d in dtypes)))
        if weights is None:
            weights = np.ones(len(components), np.dtype(dtypes.pop() if dtypes else float_dtype()))
        weights = _check_weights(weights, len(components))
        super().__init__(components=components, weights=weights)

    # --- structure -----------------------------------------------------------------------
    def log_weights(self) -> jax.Array:
        """``log w_i``, the normalised weights' logarithms (1-D)."""
        w = jnp.asarray(self.weights)
        if not jnp.issubdtype(w.dtype, jnp.floating):
            w = w.astype(float_dtype())
        return jnp.log(w) - jnp.log(jnp.sum(w))

    def mixture_components(self):
        return self.log_weights(), self.components

    def __repr__(self) -> str:
        parts = ", ".join(repr(c) for c in self.components)
        if is_concrete(self.weights):
            w = ", ".join(f"{float(v):g}" for v in np.asarray(self.weights))
        else:
            w = "traced"
        return f"Mixture([{parts}], weights=[{w}])"

    @property
    def spec(self) -> str:
        """``mixture(w1*spec1, w2*spec2, ...)`` with the weights as stored (exact round trip)."""
        w = np.asarray(self.weights, dtype=float)
        return "mixture(" + ", ".join(f"{float(v)!r}*{c.spec}"
                                      for v, c in zip(w, self.components)) + ")"

    @property
    def smooth(self) -> bool:
        return all(c.smooth for c in self.components)

    @property
    def cusp(self) -> bool:
        return any(c.cusp for c in self.components)

    # --- the five basic methods ----------------------------------------------------------
    def _combine(self, values: Sequence[Any]) -> jax.Array:
        lw = self.log_weights()
        terms = _stack(values)
        return _logsumexp(terms + lw.astype(terms.dtype))

    def log_prob(self, x):
        x = jnp.asarray(x)
        return self._combine([c.log_prob(x) for c in self.components])

    def log_sf(self, x):
        x = jnp.asarray(x)
        return self._combine([c.log_sf(x) for c in self.components])

    def log_cdf(self, x):
        x = jnp.asarray(x)
        return self._combine([c.log_cdf(x) for c in self.components])

    def log_cdf_or_sf(self, x, upper):
        x = jnp.asarray(x)
        return self._combine([c.log_cdf_or_sf(x, upper) for c in self.components])

    def mean(self):
        means = _stack([c.mean() for c in self.components])
        w = jnp.exp(self.log_weights()).astype(means.dtype)
        return jnp.sum(w * means, axis=-1)

    def sample(self, key, shape=(), dtype=None):
        dtype = float_dtype(dtype)
        shape = tuple(shape)
        k_index, k_draw = jax.random.split(key)
        index = jax.random.categorical(k_index, self.log_weights().astype(dtype), shape=shape)
        draws = _stack([c.sample(jax.random.fold_in(k_draw, i), shape, dtype)
                        for i, c in enumerate(self.components)], dtype)
        return jnp.take_along_axis(draws, index[..., None], axis=-1)[..., 0].astype(dtype)

    # --- hooks ---------------------------------------------------------------------------
    def support(self):
        lo = _stack([c.support()[0] for c in self.components])
        hi = _stack([c.support()[1] for c in self.components])
        return jnp.min(lo, axis=-1), jnp.max(hi, axis=-1)

    def log_mean_excess(self, y):
        """``log G(y)``, ``G(y) = E[(V - E V) 1{V > y}]``: positive terms per component.

        Math: ``G = Σ w_i [G_i + (m_i - m) S_i]`` for ``y >= m``,
        ``Σ w_i [G_i + (m - m_i) F_i]`` below (each bracket ``>= 0``).

        Raises:
            ValueError: the mean is not finite (concrete parameters).
        """
        y = jnp.asarray(y)
        m = jnp.asarray(self.mean())
        if is_concrete(m) and not bool(jnp.all(jnp.isfinite(m))):
            raise ValueError(f"{self.name} has no finite mean")
        upper = y >= m
        terms = []
        for c in self.components:
            g = c.log_mean_excess(y)
            d = jnp.where(upper, 1.0, -1.0) * (jnp.asarray(c.mean()) - m)  # coefficient of S or F
            nz = d != 0
            ld = jnp.where(nz, jnp.log(jnp.where(nz, jnp.abs(d), 1.0)) + c.log_cdf_or_sf(y, upper),
                           -jnp.inf)
            add = _logsumexp(_stack([g, ld]))
            below = ld < g  # the difference G_i - |d| T_i is positive (else rounding: 0)
            sub = jnp.where(below, log_sub_exp(jnp.where(below, g, 0.0), jnp.where(below, ld, -1.0)),
                            -jnp.inf)  # (finite arguments off the branch: no NaN derivatives)
            terms.append(jnp.where(d >= 0, add, sub))
        terms = _stack(terms)
        out = _logsumexp(terms + self.log_weights().astype(terms.dtype))
        return jnp.where(jnp.isnan(out), -jnp.inf, out)

    def right_tail(self) -> Tail:
        """The heaviest component's tail; a power law's coefficient is ``Σ w_i A_i`` over the
        components with the smallest exponent (concrete weights and scalar parameters)."""
        if not is_concrete(self.weights) or np.ndim(self.weights) != 1:
            raise ValueError("mixture must have concrete 1-D weights to read its right tail")
        w = np.asarray(self.weights, dtype=float)
        w = w / w.sum()
        tails = [c.right_tail() for c in self.components]
        best = min(tails, key=_heaviness)
        same = [i for i, t in enumerate(tails) if _same_tail(t, best)]
        if best.kind == "power":
            return best._replace(coef=float(sum(w[i] * tails[i].coef for i in same)))
        return best

    def tilted_mean(self, lam: float) -> float:
        """``E[V e^(lam V)] / E[e^(lam V)] = Σ w_i Z_i μ_i / Σ w_i Z_i`` (concrete parameters).

        Math: ``Z_i = E[e^(lam V_i)]`` by a trapezoid rule in ``u``, ``v = c_i + s_i sinh(u)``
        around each component's bulk (exponentially convergent for a smooth density), ``μ_i``
        the component's own ``tilted_mean``; ``inf`` when some ``Z_i`` is.
        """
        if not is_concrete(self) or np.ndim(self.weights) != 1:
            raise ValueError("mixture must have concrete 1-D weights and parameters for its "
                             "tilted mean")
        lam = float(lam)
        lw = np.asarray(self.log_weights(), dtype=float)
        log_z, mu = [], []
        for c in self.components:
            m = float(c.tilted_mean(lam))
            if not math.isfinite(m):
                return math.inf
            log_z.append(_log_mgf(c, lam))
            mu.append(m)
        a = lw + np.asarray(log_z)
        if not np.all(np.isfinite(a)):
            return math.inf
        p = np.exp(a - a.max())
        return float(np.sum(p * np.asarray(mu)) / np.sum(p))

    @classmethod
    def from_spec_args(cls, args, keywords, parse_node, spec: str) -> "Mixture":
        """The ``parse_dist`` hook: see :func:`parse_mixture_args`."""
        return parse_mixture_args(args, keywords, parse_node, spec)


def _log_mgf(dist: Distribution, lam: float) -> float:
    """``log E[e^(lam V)]`` by the trapezoid rule on ``v = c + s sinh(u)``, ``u`` in [-40, 40]
    (``inf`` when the tilted density does not decay within reach)."""
    c, w = (float(a) for a in dist.bulk())
    u = np.linspace(-40.0, 40.0, 160_001)
    v = c + w * np.sinh(u)
    with np.errstate(invalid="ignore", over="ignore"):
        g = lam * v + np.asarray(dist.log_prob(jnp.asarray(v)), np.float64) + np.log(w * np.cosh(u))
    g = np.where(np.isnan(g), -np.inf, g)
    top = g.max()
    if not np.isfinite(top) or g[0] > top - 40.0 or g[-1] > top - 40.0:
        return math.inf
    return float(top + np.log(np.sum(np.exp(g - top)) * (u[1] - u[0])))


_KIND_ORDER = {"power": 0, "lognormal": 1, "weibull": 2}


def _heaviness(t: Tail) -> tuple:
    """Sort key: the heaviest tail first."""
    if t.kind == "power":
        return (0, t.exponent, 0.0)
    if t.kind == "lognormal":
        return (1, -t.exponent, 0.0)
    if t.kind == "bounded":  # the highest end, then the slowest approach to it
        return (3, -t.end, t.exponent)
    return (_KIND_ORDER.get(t.kind, 3), t.exponent, -t.scale)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _same_tail(a: Tail, b: Tail) -> bool:
    if a.kind != b.kind or not _close(a.exponent, b.exponent):
        return False
    return a.kind != "weibull" or _close(a.scale, b.scale)


def leaf_components(dist: Distribution) -> tuple[tuple[Any, Distribution], ...]:
    """The law as a mixture of laws that are not mixtures: ``((log w, leaf), ...)``.

    A law that is not a mixture (its ``mixture_components()`` is ``None``) is its own single
    leaf, with log weight ``None`` (weight 1); nested mixtures are flattened, their log weights
    added.  The structure (how many leaves, of which families) is static: it depends on the
    pytree structure only.

    Example:
        >>> import goodhart_jax as gj
        >>> inner = gj.Mixture([gj.Normal(), gj.Normal(5.0)], [1.0, 1.0])
        >>> [type(d).__name__ for _, d in leaf_components(gj.Mixture([inner, gj.Pareto(2.0)]))]
        ['Normal', 'Normal', 'Pareto']
    """
    parts = dist.mixture_components()
    if parts is None:
        return ((None, dist),)
    log_w, comps = parts
    out = []
    for i, c in enumerate(comps):
        for lw, leaf in leaf_components(c):
            out.append((log_w[i] if lw is None else log_w[i] + lw, leaf))
    return tuple(out)


# --- spec syntax ------------------------------------------------------------------------


def _number(node, spec: str) -> float:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"spec {spec!r}: a mixture weight must be a number, got "
                         f"{ast.unparse(node)!r}")
    return float(value)


def _is_number(node) -> bool:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return False
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_mixture_args(args, keywords, parse_node, spec: str) -> Mixture:
    """A :class:`Mixture` from the arguments of ``mixture(...)`` in a spec (``ast`` nodes).

    Each positional argument is ``w*law``, ``law*w`` or a bare ``law`` (``parse_node`` parses
    a law, nested mixtures included); ``weights=[...]`` gives the weights of bare laws; no
    weights at all means equal weights.
    """
    usage = ("expected mixture(w1*law1, w2*law2, ...), e.g. "
             "mixture(0.99*normal(0, 1), 0.01*pareto(alpha=1.5))")
    if not args:
        raise ValueError(f"spec {spec!r}: mixture: components must hold at least one "
                         f"distribution, got none; {usage}")
    comps, weights = [], []
    for a in args:
        if isinstance(a, ast.BinOp) and isinstance(a.op, ast.Mult):
            if _is_number(a.left):
                w, law = _number(a.left, spec), a.right
            elif _is_number(a.right):
                w, law = _number(a.right, spec), a.left
            else:
                raise ValueError(f"spec {spec!r}: mixture: {ast.unparse(a)!r} is not weight*law; "
                                 f"{usage}")
            weights.append(w)
        else:
            law = a
            weights.append(None)
        comps.append(parse_node(law))
    kw = {}
    for k in keywords:
        if k.arg != "weights":
            raise ValueError(f"spec {spec!r}: mixture takes components and weights=[...], got "
                             f"{k.arg!r}; {usage}")
        if not isinstance(k.value, (ast.List, ast.Tuple)):
            raise ValueError(f"spec {spec!r}: mixture: weights must be a list of numbers")
        kw["weights"] = [_number(e, spec) for e in k.value.elts]
    given = [w is not None for w in weights]
    if "weights" in kw:
        if any(given):
            raise ValueError(f"spec {spec!r}: mixture: give the weights either as w*law or as "
                             "weights=[...], not both")
        weights = kw["weights"]
    elif any(given):
        if not all(given):
            raise ValueError(f"spec {spec!r}: mixture: weights must be given for every "
                             f"component or for none; {usage}")
    else:
        weights = None
    try:
        return Mixture(comps, weights)
    except ValueError as exc:
        raise ValueError(f"spec {spec!r}: {exc}") from None


FAMILIES.setdefault(Mixture.name, Mixture)
