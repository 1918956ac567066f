"""A compact purejaxrl-style PPO on the brax environments of :mod:`mirrorpo.envs`.

The whole run is one jit-compilable function of the key for a given (static) :class:`PPOConfig`:
``make_train(config)(key)`` (vmappable over keys). The CLI drives the *same* pieces chunk by chunk
(``init`` then ``update`` scanned ``n`` times) so it can show progress and checkpoint periodically.
(brax's own trainer calls ``jax.device_put_replicated``, removed in jax 0.10, hence this one.)

Algorithm: ``num_envs`` parallel environments with auto-reset (fresh reset key on every episode
end; truncation at ``episode_length`` is treated as termination, as in purejaxrl), rollouts of
``unroll_length`` steps, GAE(γ, λ), ``update_epochs`` epochs of ``num_minibatches`` clipped-surrogate
Adam steps with a value loss and an entropy bonus, global-norm gradient clipping, linearly annealed
learning rate, running observation normalisation (statistics stored in the policy parameters), and a
constant reward scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mirrorpo.agents.policy import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    distribution,
    gaussian_log_density,
    init_mlp,
    init_policy,
    mlp,
    normalize,
    squash,
)
from mirrorpo.envs.core import DEFAULT_BACKEND, get_spec, make


@dataclass(frozen=True)
class PPOConfig:
    env: str = "ant"
    backend: str = DEFAULT_BACKEND
    total_steps: int = 5_000_000
    num_envs: int = 128
    unroll_length: int = 16
    update_epochs: int = 4
    num_minibatches: int = 8
    gamma: float = 0.97
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 1e-3
    vf_coef: float = 0.5
    lr: float = 3e-4
    anneal_lr: bool = True
    max_grad_norm: float = 0.5
    reward_scale: float = 0.1
    episode_length: int = 1000
    policy_hidden: tuple[int, ...] = (64, 64)
    value_hidden: tuple[int, ...] = (128, 128)
    init_log_std: float = -0.5
    policy_kind: str = "gaussian"  # agents.policy.POLICY_KINDS

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.unroll_length

    @property
    def num_updates(self) -> int:
        return max(1, self.total_steps // self.steps_per_update)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["policy_hidden"] = list(self.policy_hidden)
        d["value_hidden"] = list(self.value_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PPOConfig:
        d = dict(d)
        d["policy_hidden"] = tuple(d["policy_hidden"])
        d["value_hidden"] = tuple(d["value_hidden"])
        return cls(**d)


class ObsStats(NamedTuple):
    mean: jax.Array
    var: jax.Array
    count: jax.Array


class RunnerState(NamedTuple):
    policy: Any
    value: Any
    opt_state: Any
    obs_stats: ObsStats
    env_state: Any
    step_count: jax.Array  # per-env steps into the current episode [N]
    ep_return: jax.Array  # running (unscaled) return of the current episode [N]
    key: jax.Array
    update: jax.Array


class Metrics(NamedTuple):
    episode_return: jax.Array  # mean return of episodes finished during the update (nan if none)
    episodes: jax.Array
    loss: jax.Array
    steps: jax.Array


def _optimizer(cfg: PPOConfig):
    if cfg.anneal_lr:
        n_opt = cfg.num_updates * cfg.update_epochs * cfg.num_minibatches
        lr = optax.linear_schedule(cfg.lr, 0.0, n_opt)
    else:
        lr = cfg.lr
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(lr, eps=1e-5))


def _update_stats(stats: ObsStats, x: jax.Array) -> ObsStats:
    x = x.reshape(-1, x.shape[-1])
    n = x.shape[0]
    bmean, bvar = x.mean(0), x.var(0)
    tot = stats.count + n
    delta = bmean - stats.mean
    mean = stats.mean + delta * n / tot
    m2 = stats.var * stats.count + bvar * n + delta**2 * stats.count * n / tot
    return ObsStats(mean, m2 / tot, tot)


def _with_stats(policy, stats: ObsStats):
    return {**policy, "obs_mean": stats.mean, "obs_std": jnp.sqrt(stats.var + 1e-6)}


def make_fns(cfg: PPOConfig):
    """(init(key) → RunnerState, update(RunnerState) → (RunnerState, Metrics), final_policy)."""
    spec = get_spec(cfg.env)
    env = make(cfg.env, cfg.backend)
    opt = _optimizer(cfg)
    n = cfg.num_envs

    def reset_batch(keys):
        return jax.vmap(env.reset)(keys)

    def init(key):
        k_pol, k_val, k_env, key = jax.random.split(key, 4)
        policy = init_policy(k_pol, spec.obs_dim, spec.act_dim, cfg.policy_hidden, cfg.init_log_std,
                             cfg.policy_kind)
        value = init_mlp(k_val, (spec.obs_dim, *cfg.value_hidden, 1), last_scale=1.0)
        env_state = reset_batch(jax.random.split(k_env, n))
        stats = ObsStats(jnp.zeros(spec.obs_dim), jnp.ones(spec.obs_dim), jnp.asarray(1e-4))
        stats = _update_stats(stats, env_state.obs)
        return RunnerState(policy, value, opt.init((policy, value)), stats, env_state,
                           jnp.zeros(n, jnp.int32), jnp.zeros(n), key, jnp.asarray(0))

    def env_step(carry, _):
        rs_policy, env_state, step_count, ep_ret, key = carry
        key, k_act, k_reset = jax.random.split(key, 3)
        obs = env_state.obs
        mu, sigma = distribution(rs_policy, obs)
        raw = mu + sigma * jax.random.normal(k_act, mu.shape)
        logp = gaussian_log_density(rs_policy, obs, raw)
        nstate = jax.vmap(env.step)(env_state, squash(rs_policy, raw))
        step_count = step_count + 1
        ep_ret = ep_ret + nstate.reward
        done = jnp.logical_or(nstate.done > 0, step_count >= cfg.episode_length)
        fresh = reset_batch(jax.random.split(k_reset, n))
        next_state = jax.tree.map(
            lambda f, s: jnp.where(done.reshape((-1,) + (1,) * (s.ndim - 1)), f, s), fresh, nstate)
        trans = (obs, raw, logp, nstate.reward * cfg.reward_scale, done.astype(jnp.float32),
                 jnp.where(done, ep_ret, 0.0), done)
        step_count = jnp.where(done, 0, step_count)
        ep_ret = jnp.where(done, 0.0, ep_ret)
        return (rs_policy, next_state, step_count, ep_ret, key), trans

    def value_fn(value, policy, obs):
        return mlp(value, normalize(policy, obs))[..., 0]

    def update(rs: RunnerState):
        policy = _with_stats(rs.policy, rs.obs_stats)
        carry = (policy, rs.env_state, rs.step_count, rs.ep_return, rs.key)
        (_, env_state, step_count, ep_ret, key), traj = jax.lax.scan(env_step, carry, None, cfg.unroll_length)
        obs, raw, logp, rew, done, fin_ret, fin = traj
        values = value_fn(rs.value, policy, obs)
        last_v = value_fn(rs.value, policy, env_state.obs)

        def gae_step(carry, x):
            gae, next_v = carry
            r, d, v = x
            delta = r + cfg.gamma * next_v * (1 - d) - v
            gae = delta + cfg.gamma * cfg.gae_lambda * (1 - d) * gae
            return (gae, v), gae

        _, adv = jax.lax.scan(gae_step, (jnp.zeros(n), last_v), (rew, done, values), reverse=True)
        targets = adv + values

        batch = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), (obs, raw, logp, adv, targets))
        bs = cfg.steps_per_update
        mb = bs // cfg.num_minibatches

        def loss_fn(pv, b):
            pol, val = pv
            pol = {**pol, "obs_mean": jax.lax.stop_gradient(pol["obs_mean"]),
                   "obs_std": jax.lax.stop_gradient(pol["obs_std"])}
            o, a, lp_old, ad, tg = b
            lp = gaussian_log_density(pol, o, a)
            ratio = jnp.exp(lp - lp_old)
            ad = (ad - ad.mean()) / (ad.std() + 1e-8)
            pg = -jnp.minimum(ratio * ad, jnp.clip(ratio, 1 - cfg.clip_eps, 1 + cfg.clip_eps) * ad).mean()
            v = value_fn(val, pol, o)
            vl = 0.5 * jnp.square(v - tg).mean()
            # entropy of the (pre-squashing) Gaussian, averaged over the minibatch's states
            log_std = jnp.clip(jnp.log(distribution(pol, o)[1]), LOG_STD_MIN, LOG_STD_MAX)
            ent = jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e), axis=-1).mean()
            return pg + cfg.vf_coef * vl - cfg.ent_coef * ent

        def epoch(carry, _):
            pv, opt_state, key = carry
            key, k = jax.random.split(key)
            perm = jax.random.permutation(k, bs)
            shuffled = jax.tree.map(lambda x: x[perm].reshape((cfg.num_minibatches, mb) + x.shape[1:]), batch)

            def minibatch(c, b):
                pv, opt_state = c
                loss, g = jax.value_and_grad(loss_fn)(pv, b)
                upd, opt_state = opt.update(g, opt_state, pv)
                return (optax.apply_updates(pv, upd), opt_state), loss

            (pv, opt_state), losses = jax.lax.scan(minibatch, (pv, opt_state), shuffled)
            return (pv, opt_state, key), losses.mean()

        (pv, opt_state, key), losses = jax.lax.scan(epoch, ((policy, rs.value), rs.opt_state, key), None,
                                                    cfg.update_epochs)
        new_policy, new_value = pv
        stats = _update_stats(rs.obs_stats, obs)  # statistics move after the update (purejaxrl order)
        n_fin = fin.sum()
        ep_mean = jnp.where(n_fin > 0, fin_ret.sum() / jnp.maximum(n_fin, 1), jnp.nan)
        new = RunnerState(new_policy, new_value, opt_state, stats, env_state, step_count, ep_ret, key, rs.update + 1)
        return new, Metrics(ep_mean, n_fin, losses.mean(), (rs.update + 1) * bs)

    def final_policy(rs: RunnerState):
        return _with_stats(rs.policy, rs.obs_stats)

    return init, update, final_policy


def make_train(cfg: PPOConfig):
    """The whole PPO run as one function of the key (jit / vmap it): key → (policy, metrics per update)."""
    init, update, final_policy = make_fns(cfg)

    def train(key):
        rs = init(key)
        rs, metrics = jax.lax.scan(lambda r, _: update(r), rs, None, cfg.num_updates)
        return final_policy(rs), metrics

    return train


def make_chunk(cfg: PPOConfig):
    """jit-compiled ``(runner_state, n_updates static) → (runner_state, metrics)`` for chunked runs."""
    init, update, final_policy = make_fns(cfg)

    def chunk(rs, n: int):
        return jax.lax.scan(lambda r, _: update(r), rs, None, n)

    return jax.jit(init), jax.jit(chunk, static_argnums=1), jax.jit(final_policy)
