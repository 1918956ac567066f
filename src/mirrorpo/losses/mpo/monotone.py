"""Monotone networks for the learnable MPO functions ϕ⁻¹, ψ and g (DESIGN §4).

    f(x)    = base(x) + Σ_j |v_j| · a_j(|u_j|·x + b_j)                                (static)
    f(x, t) = base(x) + Σ_j |v_j + v'_j·t| · a_j(|u_j|·x + w_j·t + b_j)              (temporally aware)

One hidden layer of ``hidden`` units (126 by default), split equally over the increasing
activations of :data:`ACTIVATIONS`; |·| keeps the effective weights non-negative, so f is
non-decreasing in x for any parameters, and free in t ∈ [0, 1] (training progress). With v = v' = 0
(the initialisation) f *is* its base function, so generation 0 of a search is DPO / ORPO.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

EPS = 1e-6
EXP_MAX = 30.0  # e^x is evaluated at min(x, EXP_MAX): still non-decreasing, never overflows


def _logit_clipped(x):
    c = jnp.clip(x, EPS, 1.0 - EPS)
    return jnp.log(c) - jnp.log1p(-c)


ACTIVATIONS: tuple[tuple[str, object], ...] = (
    ("identity", lambda x: x),
    ("relu_square", lambda x: jax.nn.relu(x) ** 2),
    ("cube", lambda x: x**3),
    ("sqrt_relu", lambda x: jnp.sqrt(jax.nn.relu(x) + EPS)),
    ("cbrt_relu", lambda x: jnp.cbrt(jax.nn.relu(x) + EPS)),
    ("log_relu", lambda x: jnp.log(jax.nn.relu(x) + EPS)),
    ("exp", lambda x: jnp.exp(jnp.minimum(x, EXP_MAX))),
    ("tanh", jnp.tanh),
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


def network(params: dict[str, jax.Array], x: jax.Array, t=0.0) -> jax.Array:
    """Σ_j |v_j(t)| a_j(|u_j| x + w_j t + b_j), elementwise over x (any shape).

    Evaluated group by group (one activation each) as a dot product with the output weights, which
    keeps intermediates small: ~30% faster on CPU than materialising all hidden units at once."""
    group = params["u"].shape[-1] // len(ACTIVATIONS)
    u, b, v = jnp.abs(params["u"]), params["b"], jnp.abs(params["v"])
    if "w" in params:
        b = b + params["w"] * t
        v = jnp.abs(params["v"] + params["vt"] * t)
    out = jnp.zeros(jnp.shape(x), dtype=jnp.result_type(x, u))
    for i, (_, fn) in enumerate(ACTIVATIONS):
        units = slice(i * group, (i + 1) * group)
        out = out + fn(u[units] * x[..., None] + b[units]) @ v[units]
    return out


def apply(params: dict[str, jax.Array] | None, x: jax.Array, base_value: jax.Array, t=0.0) -> jax.Array:
    """f(x[, t]) = base(x) + network(x[, t]); ``base_value`` = base(x), computed by the caller in log
    space for accuracy. With ``params`` None, f is its base."""
    return base_value if params is None else base_value + network(params, x, t)
