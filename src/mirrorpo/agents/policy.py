"""The Gaussian policies and their trajectory log-likelihood (docs/design.md §2).

Observations are normalised with stored running statistics (``obs_mean``, ``obs_std``, clipped to
±``OBS_CLIP``). Three kinds of policy (``POLICY_KINDS``), told apart by the key of their network:

- ``gaussian`` (``actor`` + ``log_std``; purejaxrl style, the shipped agents): a tanh MLP gives the mean
  μ(s), a state-independent ``log_std`` gives σ; executed action ``clip(μ + σ·ε, −1, 1)``.
- ``gaussian_sd`` (``actor_sd``; brax's PPO network): one swish MLP gives (μ(s), ρ(s)) and a
  *state-dependent* σ(s) = softplus(ρ(s)) + ``MIN_STD``; executed action ``clip(μ + σ·ε, −1, 1)``.
- ``tanh_gaussian_sd`` (``actor_tanh_sd``; brax's policy of the paper's time): the same network, with
  the Gaussian squashed: executed action ``tanh(μ + σ·ε)``.

Deterministic actions use ε = 0. Rollouts store the executed action.

Probability convention (docs/design.md §2 — probabilities in (0, 1]): the per-step probability of a stored
action a ∈ [-1, 1]^A is the probability, under the clipped Gaussian, of the action's *bin* at
resolution ``RESOLUTION`` = h, independently per dimension:

    P(a_i) = Φ((u_i − μ_i)/σ_i) − Φ((l_i − μ_i)/σ_i),  [l_i, u_i] = [a_i − h/2, a_i + h/2],

where a bin that touches a bound of the action range extends to ±∞ (clipping sends the whole tail
there). For a tanh-squashed policy the bin is mapped back through the squashing, [atanh(l_i), atanh(u_i)]
(tanh is monotone, so this is the exact probability of the bin), again with ±∞ at the bounds.
``log π(a|s) = Σ_i log P(a_i)`` ≤ 0. It is computed in log space with a left-tail log Φ and a
stable log-diff-exp, evaluated in the left tail (by symmetry) so it stays finite and differentiable
far in the tails. :func:`step_log_probs` is the one function every loss uses.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

RESOLUTION = 0.05  # bin width h of the action-probability convention
OBS_CLIP = 10.0
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
MIN_STD = 1e-3  # brax's minimum scale of the state-dependent policies
MAX_STD = math.exp(LOG_STD_MAX)
ATANH_EDGE = 1.0 - 1e-6  # a stored tanh action is clipped to ±ATANH_EDGE before atanh
POLICY_KINDS = {"gaussian": "actor", "gaussian_sd": "actor_sd", "tanh_gaussian_sd": "actor_tanh_sd"}
_FAR = 1e3  # stands in for ±∞ at the edge bins (finite so gradients stay finite)

Params = dict[str, Any]


def init_mlp(key: jax.Array, sizes: tuple[int, ...], last_scale: float = 1.0) -> list[dict[str, jax.Array]]:
    """Orthogonal-initialised MLP layers [{"w", "b"}, ...] for layer sizes (in, h1, ..., out)."""
    layers = []
    keys = jax.random.split(key, len(sizes) - 1)
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        scale = last_scale if i == len(sizes) - 2 else jnp.sqrt(2.0)
        w = jax.nn.initializers.orthogonal(scale)(k, (n_in, n_out), jnp.float32)
        layers.append({"w": w, "b": jnp.zeros((n_out,), jnp.float32)})
    return layers


def mlp(layers, x: jax.Array, activation=jnp.tanh) -> jax.Array:
    for layer in layers[:-1]:
        x = activation(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def policy_kind(params: Params) -> str:
    """The kind of a policy (a key of ``POLICY_KINDS``), from the name of its network."""
    for kind, net in POLICY_KINDS.items():
        if net in params:
            return kind
    raise KeyError(f"not a policy: none of {sorted(POLICY_KINDS.values())} among {sorted(params)}")


def action_dim(params: Params) -> int:
    """Action size: ``log_std``'s for the state-independent policy, half the network's outputs else."""
    kind = policy_kind(params)
    return int(params["log_std"].shape[0] if kind == "gaussian" else params[POLICY_KINDS[kind]][-1]["b"].shape[0] // 2)


def init_policy(key: jax.Array, obs_dim: int, act_dim: int, hidden: tuple[int, ...] = (64, 64),
                init_log_std: float = -0.5, kind: str = "gaussian") -> Params:
    """A fresh policy of ``kind``; a state-dependent one starts with σ(s) ≈ exp(``init_log_std``)."""
    params = {"obs_mean": jnp.zeros((obs_dim,), jnp.float32), "obs_std": jnp.ones((obs_dim,), jnp.float32)}
    if kind == "gaussian":
        return {**params, "actor": init_mlp(key, (obs_dim, *hidden, act_dim), last_scale=0.01),
                "log_std": jnp.full((act_dim,), init_log_std, jnp.float32)}
    layers = init_mlp(key, (obs_dim, *hidden, 2 * act_dim), last_scale=0.01)
    rho = jnp.log(jnp.expm1(jnp.exp(init_log_std) - MIN_STD))  # softplus(ρ) + MIN_STD = exp(init_log_std)
    layers[-1]["b"] = layers[-1]["b"].at[act_dim:].set(rho)
    return {**params, POLICY_KINDS[kind]: layers}


def normalize(params: Params, obs: jax.Array) -> jax.Array:
    return jnp.clip((obs - params["obs_mean"]) / params["obs_std"], -OBS_CLIP, OBS_CLIP)


def distribution(params: Params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(μ, σ) of the (pre-squashing) Gaussian at observations [..., O] → ([..., A], [..., A])."""
    kind = policy_kind(params)
    if kind == "gaussian":
        mu = mlp(params["actor"], normalize(params, obs))
        sigma = jnp.exp(jnp.clip(params["log_std"], LOG_STD_MIN, LOG_STD_MAX))
        return mu, jnp.broadcast_to(sigma, mu.shape)
    out = mlp(params[POLICY_KINDS[kind]], normalize(params, obs), jax.nn.swish)
    mu, rho = jnp.split(out, 2, axis=-1)
    return mu, jnp.minimum(jax.nn.softplus(rho) + MIN_STD, MAX_STD)


def squash(params: Params, raw: jax.Array) -> jax.Array:
    """The executed action of a raw Gaussian sample: tanh for a tanh policy, else clipping to [−1, 1]."""
    return jnp.tanh(raw) if policy_kind(params) == "tanh_gaussian_sd" else jnp.clip(raw, -1.0, 1.0)


def act(params: Params, obs: jax.Array, key: jax.Array, deterministic: bool | jax.Array = False) -> jax.Array:
    """Executed action squash(μ + σ·ε) (or squash(μ) when deterministic)."""
    mu, sigma = distribution(params, obs)
    eps = jax.random.normal(key, mu.shape, mu.dtype)
    return squash(params, jnp.where(deterministic, mu, mu + sigma * eps))


def mean_action(params: Params, obs: jax.Array, key: jax.Array) -> jax.Array:
    """The deterministic policy clip(μ(s), -1, 1), as a rollout policy function (``key`` unused)."""
    return act(params, obs, key, True)


def sample_action(params: Params, obs: jax.Array, key: jax.Array) -> jax.Array:
    """The stochastic policy clip(μ(s) + σ·ε, -1, 1), as a rollout policy function."""
    return act(params, obs, key, False)


def _log1mexp(x: jax.Array) -> jax.Array:
    """log(1 − eˣ) for x ≤ 0, to an absolute error of a few float eps everywhere (all a log-probability
    needs; one branch, where Mächler 2012's two would add relative accuracy far below eˣ ~ eps)."""
    return jnp.log(-jnp.expm1(jnp.minimum(x, -1e-30)))


# erfc(z) = t·exp(−z² + poly(t)), t = 1/(1 + z/2), z ≥ 0: Numerical Recipes' erfcc (Press et al.,
# 3rd ed., §6.2.2), fractional error < 1.2e-7 for every z ≥ 0; these are poly's coefficients, t⁰ first.
_ERFC_POLY = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
              1.48851587, -0.82215223, 0.17087277)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _log_ndtr_left(x: jax.Array) -> jax.Array:
    """log Φ(x) for x ≤ 0. float32: log(erfc(z)/2), z = −x/√2, from ``_ERFC_POLY`` in log space (one
    division, one log, a polynomial: no underflow however far the tail, and a fraction of
    ``log_ndtr``'s branches; error below float32's own); float64: ``jax.scipy.special.log_ndtr``."""
    if x.dtype == jnp.float64:
        return jax.scipy.special.log_ndtr(x)
    z = x * -math.sqrt(0.5)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = _ERFC_POLY[-1]
    for c in reversed(_ERFC_POLY[:-1]):
        poly = c + t * poly
    return jnp.log(0.5 * t) - z * z + poly


def log_interval_prob(z_lo: jax.Array, z_hi: jax.Array) -> jax.Array:
    """log(Φ(z_hi) − Φ(z_lo)) for z_lo < z_hi, stable in both tails and differentiable."""
    flip = (z_lo + z_hi) > 0  # use Φ(b) − Φ(a) = Φ(−a) − Φ(−b) to stay in the left tail
    lo = jnp.where(flip, -z_hi, z_lo)  # ≤ 0, as lo ≤ hi and lo + hi ≤ 0
    hi = jnp.where(flip, -z_lo, z_hi)
    hi_tail = _log_ndtr_left(-jnp.abs(hi))
    log_hi = jnp.where(hi <= 0, hi_tail, _log1mexp(hi_tail))  # Φ(hi) = 1 − Φ(−hi) for hi > 0
    return log_hi + _log1mexp(_log_ndtr_left(lo) - log_hi)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _bin_log_prob(mu, sigma, lo, hi, log_floor, uniform_weight: float):
    """V = log((1 − w)·(Φ(z_hi) − Φ(z_lo)) + floor), z = (bound − μ)/σ (floor = e^log_floor, or
    none for w = 0), clipped at 0. Its gradient is the closed form, computed with the value: with
    r(z) = (1 − w)·φ(z)/e^V, ∂V/∂μ = (r(z_lo) − r(z_hi))/σ, ∂V/∂σ = (r(z_lo)·z_lo − r(z_hi)·z_hi)/σ,
    ∂V/∂hi = r(z_hi)/σ, ∂V/∂lo = −r(z_lo)/σ, ∂V/∂log_floor = floor/e^V."""
    return _bin_log_prob_fwd(mu, sigma, lo, hi, log_floor, uniform_weight)[0]


def _bin_log_prob_fwd(mu, sigma, lo, hi, log_floor, uniform_weight):
    inv_sigma = 1.0 / sigma
    z_lo, z_hi = (lo - mu) * inv_sigma, (hi - mu) * inv_sigma
    value = log_interval_prob(z_lo, z_hi)
    log_keep = math.log1p(-uniform_weight)
    if uniform_weight:
        value = jnp.logaddexp(log_keep + value, log_floor)
    ratio = lambda z: jnp.exp(log_keep - 0.5 * z * z - _LOG_SQRT_2PI - value)  # (1 − w)·φ(z)/e^V
    r_lo, r_hi = ratio(z_lo) * inv_sigma, ratio(z_hi) * inv_sigma
    floor_share = jnp.exp(log_floor - value) if uniform_weight else jnp.zeros_like(value)
    return jnp.minimum(value, 0.0), (r_lo - r_hi, r_lo * z_lo - r_hi * z_hi, -r_lo, r_hi, floor_share)


def _bin_log_prob_bwd(uniform_weight, partials, cotangent):
    return tuple(cotangent * d for d in partials)


_bin_log_prob.defvjp(_bin_log_prob_fwd, _bin_log_prob_bwd)


def action_log_prob_dims(mu: jax.Array, sigma: jax.Array, action: jax.Array, resolution: float = RESOLUTION,
                         uniform_weight: float = 0.0, tanh: bool = False) -> jax.Array:
    """Per-dimension log-probability of each action's bin [..., A] (all ≤ 0).

    ``uniform_weight`` = w > 0 mixes each coordinate's clipped Gaussian with the uniform distribution
    on [−1, 1]: P(a_i) = (1 − w)·P_gauss(bin) + w·|bin ∩ [−1, 1]| / 2. A product of per-coordinate
    mixtures is still a distribution, so every probability stays in (0, 1], and log P(a_i) is
    bounded below by log(w·h/4) (an edge bin is half as wide): a loss can no longer push a rejected
    action's log-probability to −∞, and its gradient there fades instead of staying at full size.
    ``tanh``: μ, σ are those of the pre-squashing Gaussian, and the bin is mapped through atanh.
    The gradient is the closed form, computed in the forward pass (``_bin_log_prob``): no
    differentiation through the tail approximations, and ≈ 1.2× faster training (benchmarks/bench_train.py)."""
    half = 0.5 * resolution
    lo, hi = action - half, action + half
    if tanh:
        lo, hi = (jnp.arctanh(jnp.clip(b, -ATANH_EDGE, ATANH_EDGE)) for b in (lo, hi))
    lo = jnp.where(action - half <= -1.0, -_FAR, lo)
    hi = jnp.where(action + half >= 1.0, _FAR, hi)
    width = jnp.minimum(action + half, 1.0) - jnp.maximum(action - half, -1.0)
    log_floor = jnp.log(uniform_weight * 0.5 * width) if uniform_weight else jnp.zeros_like(width)
    dtype = jnp.result_type(mu, sigma, action)
    mu, sigma, lo, hi, log_floor = (x.astype(dtype) for x in jnp.broadcast_arrays(mu, sigma, lo, hi, log_floor))
    return _bin_log_prob(mu, sigma, lo, hi, log_floor, float(uniform_weight))


def step_log_probs(params: Params, obs: jax.Array, actions: jax.Array, resolution: float = RESOLUTION,
                   uniform_weight: float = 0.0) -> jax.Array:
    """log π(a_t|s_t) per step: (params, obs [..., T, O], actions [..., T, A]) → [..., T], each ≤ 0."""
    mu, sigma = distribution(params, obs)
    tanh = policy_kind(params) == "tanh_gaussian_sd"
    return action_log_prob_dims(mu, sigma, actions, resolution, uniform_weight, tanh).sum(axis=-1)


def trajectory_log_likelihood(params: Params, obs: jax.Array, actions: jax.Array, lengths: jax.Array,
                              resolution: float = RESOLUTION) -> jax.Array:
    """Summed log-likelihood L = Σ_{t < length} log π(a_t|s_t) ≤ 0 of padded trajectories
    (obs [..., T, O], actions [..., T, A], lengths [...]) → [...]. Differentiable in ``params``."""
    lp = step_log_probs(params, obs, actions, resolution)
    mask = jnp.arange(lp.shape[-1]) < jnp.asarray(lengths)[..., None]
    return jnp.sum(jnp.where(mask, lp, 0.0), axis=-1)


def gaussian_log_density(params: Params, obs: jax.Array, raw_actions: jax.Array) -> jax.Array:
    """Log-density of raw (pre-clipping / pre-tanh) actions; PPO's ratio only, not the PO losses (the
    tanh's Jacobian depends on the raw action alone, so it cancels in the ratio)."""
    mu, sigma = distribution(params, obs)
    z = (raw_actions - mu) / sigma
    return jnp.sum(-0.5 * z**2 - jnp.log(sigma) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
