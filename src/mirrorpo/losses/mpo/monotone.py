"""Monotone networks for the learnable MPO functions ϕ⁻¹, ψ and g (docs/design.md §4).

    f(x)    = base(x) + Σ_j |v_j| · a_j(|u_j|·x + b_j)                                (static)
    f(x, t) = base(x) + Σ_j |v_j + v'_j·t| · a_j(|u_j|·x + w_j·t + b_j)              (temporally aware)

One hidden layer of ``hidden`` units (126 by default), split equally over the increasing
activations of :data:`ACTIVATIONS`; |·| keeps the effective weights non-negative, so f is
non-decreasing in x for any parameters, and free in t ∈ [0, 1] (training progress). With v = v' = 0
(the initialisation) f *is* its base function, so generation 0 of a search is DPO / ORPO.
Written once against :mod:`mirrorpo.losses.ops`: the networks run on JAX arrays and torch tensors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mirrorpo.losses.ops import Array, ops_for

EPS = 1e-6
EXP_MAX = 30.0  # e^x is evaluated at min(x, EXP_MAX): still non-decreasing, never overflows


def _logit_clipped(ops, x):
    c = ops.clip(x, EPS, 1.0 - EPS)
    return ops.log(c) - ops.log1p(-c)


# (name, a(ops, x)): increasing activations, each applied through the namespace ``ops`` of x's backend
ACTIVATIONS: tuple[tuple[str, object], ...] = (
    ("identity", lambda ops, x: x),
    ("relu_square", lambda ops, x: ops.relu(x) ** 2),
    ("cube", lambda ops, x: x**3),
    ("sqrt_relu", lambda ops, x: ops.sqrt(ops.relu(x) + EPS)),
    ("cbrt_relu", lambda ops, x: ops.cbrt(ops.relu(x) + EPS)),
    ("log_relu", lambda ops, x: ops.log(ops.relu(x) + EPS)),
    ("exp", lambda ops, x: ops.exp(ops.minimum(x, EXP_MAX))),
    ("tanh", lambda ops, x: ops.tanh(x)),
    ("logit_clip", _logit_clipped),
)
ACTIVATION_NAMES = tuple(name for name, _ in ACTIVATIONS)

STATIC_FIELDS = ("u", "b", "v")
TEMPORAL_FIELDS = ("u", "b", "v", "w", "vt")


def fields(temporal: bool) -> tuple[str, ...]:
    return TEMPORAL_FIELDS if temporal else STATIC_FIELDS


def init_params(key: jax.Array, hidden: int, temporal: bool) -> dict[str, jax.Array]:
    """u ~ |N(0, 1)|, b ~ N(0, 1), w ~ N(0, 1); output weights v = v' = 0 (so f = base)."""
    ku, kb, kw = jax.random.split(key, 3)
    params = {
        "u": jnp.abs(jax.random.normal(ku, (hidden,))),
        "b": jax.random.normal(kb, (hidden,)),
        "v": jnp.zeros((hidden,)),
    }
    if temporal:
        params["w"] = jax.random.normal(kw, (hidden,))
        params["vt"] = jnp.zeros((hidden,))
    return params


def network(params: dict[str, Array], x: Array, t=0.0) -> Array:
    """Σ_j |v_j(t)| a_j(|u_j| x + w_j t + b_j), elementwise over x (any shape).

    Evaluated group by group (one activation each) as a dot product with the output weights, which
    keeps intermediates small: ~30% faster on CPU than materialising all hidden units at once.
    ``params`` and ``x`` are of one backend (parameters placed on x's device and dtype for torch)."""
    ops = ops_for(x)
    group = params["u"].shape[-1] // len(ACTIVATIONS)
    u, b, v = ops.abs(params["u"]), params["b"], ops.abs(params["v"])
    if "w" in params:
        b = b + params["w"] * t
        v = ops.abs(params["v"] + params["vt"] * t)
    out = 0.0
    for i, (_, activation) in enumerate(ACTIVATIONS):
        units = slice(i * group, (i + 1) * group)
        out = out + activation(ops, u[units] * x[..., None] + b[units]) @ v[units]
    return out


def apply(params: dict[str, Array] | None, x: Array, base_value: Array, t=0.0) -> Array:
    """f(x[, t]) = base(x) + network(x[, t]); ``base_value`` = base(x), computed by the caller in log
    space for accuracy. With ``params`` None, f is its base."""
    return base_value if params is None else base_value + network(params, x, t)
