"""Preference labels: a Bradley–Terry judge on true returns, label noise, and agent mixing.

    P(τ¹ ≻ τ²) = σ((R(τ¹) − R(τ²)) / T)            T = judge temperature

Labels are ``preferred`` ∈ {0, 1}: the index of the chosen trajectory within its pair.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def preference_probability(returns: jax.Array, temperature) -> jax.Array:
    """P(τ¹ ≻ τ²) for returns of shape [N, 2]."""
    return jax.nn.sigmoid((returns[:, 0] - returns[:, 1]) / temperature)


def judge(key: jax.Array, returns: jax.Array, temperature) -> jax.Array:
    """Sample ``preferred`` [N] (0 if τ¹ wins) from the Bradley–Terry model."""
    first_wins = jax.random.bernoulli(key, preference_probability(returns, temperature))
    return jnp.where(first_wins, 0, 1).astype(jnp.int8)


def flip_labels(key: jax.Array, preferred: jax.Array, epsilon) -> tuple[jax.Array, jax.Array]:
    """Flip each label independently with probability ε; returns (labels, flipped mask)."""
    flipped = jax.random.bernoulli(key, epsilon, preferred.shape)
    return jnp.where(flipped, 1 - preferred, preferred).astype(jnp.int8), flipped


def assign_agents(key: jax.Array, n: int, mixed: bool) -> jax.Array:
    """Agent index (0 or 1) of each trajectory, shape [N, 2].

    Not mixed: one trajectory from each agent, in random order within the pair. Mixed: each
    trajectory's agent drawn uniformly, giving ≈ ¼ 0-0, ½ 0-1, ¼ 1-1 pairs.
    """
    if mixed:
        return jax.random.bernoulli(key, 0.5, (n, 2)).astype(jnp.int8)
    first = jax.random.bernoulli(key, 0.5, (n,)).astype(jnp.int8)
    return jnp.stack([first, 1 - first], axis=1)
