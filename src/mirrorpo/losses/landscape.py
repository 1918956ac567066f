"""Gradient landscapes (the paper's Figure 5): ∂loss/∂ℓ_w and ∂loss/∂ℓ_l over a grid of (ℓ_w, ℓ_l).

Each grid point is one pair of length ``length`` with mean log-likelihoods (ℓ_w, ℓ_l), i.e.
L = ℓ·n, evaluated on its own (so batch-coupled losses such as AOT are handled correctly). Losses
with a reference use ℓ^ref = ``ref`` for both trajectories.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mirrorpo.losses.batch import PairBatch
from mirrorpo.losses.errors import LossInputError
from mirrorpo.losses.registry import LossSpec, get_spec, pair_loss


class Landscape(NamedTuple):
    name: str
    mean_w: np.ndarray  # [n, n] grid of ℓ_w (columns vary ℓ_w)
    mean_l: np.ndarray  # [n, n] grid of ℓ_l (rows vary ℓ_l)
    loss: np.ndarray  # [n, n]
    grad_w: np.ndarray  # ∂loss/∂ℓ_w
    grad_l: np.ndarray  # ∂loss/∂ℓ_l


def gradient_landscape(
    loss: str | LossSpec,
    *,
    lo: float = -4.0,
    hi: float = -0.05,
    n: int = 41,
    length: float = 1.0,
    ref: float = -2.0,
    progress: float = 0.0,
    **hparams,
) -> Landscape:
    """Loss and its gradient w.r.t. (ℓ_w, ℓ_l) on an n×n grid over [lo, hi]² (log-probabilities ≤ 0)."""
    spec = get_spec(loss)
    if not (lo < hi <= 0.0):
        raise LossInputError(f"landscape range must satisfy lo < hi ≤ 0 (mean log-probabilities); got [{lo}, {hi}].")
    if n < 2 or length <= 0 or ref > 0:
        raise LossInputError(f"need n ≥ 2, length > 0 and ref ≤ 0; got n={n}, length={length}, ref={ref}.")
    pair_loss(spec, _pair(jnp.array(lo), jnp.array(lo), length, ref), progress=progress, **hparams)  # validates

    def point_loss(mw, ml):
        return pair_loss(spec, _pair(mw, ml, length, ref), progress=progress, **hparams)[0]

    grid = jnp.linspace(lo, hi, n)
    mw, ml = jnp.meshgrid(grid, grid)
    value_and_grad = jax.jit(jax.vmap(jax.value_and_grad(point_loss, argnums=(0, 1))))
    values, (gw, gl) = value_and_grad(mw.ravel(), ml.ravel())
    shape = mw.shape
    return Landscape(spec.name, np.asarray(mw), np.asarray(ml), *(np.asarray(a).reshape(shape) for a in (values, gw, gl)))


def _pair(mean_w, mean_l, length, ref) -> PairBatch:
    n = jnp.full((1,), length)
    return PairBatch(
        jnp.reshape(mean_w * length, (1,)), jnp.reshape(mean_l * length, (1,)), n, n,
        jnp.full((1,), ref * length), jnp.full((1,), ref * length),
    )
