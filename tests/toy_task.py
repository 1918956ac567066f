"""A physics-free task for pipeline tests: linear-Gaussian policies, true reward −‖a − W*·s‖²."""

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

OBS, ACT = 3, 2
W_GOOD = jnp.array([[1.0, -1.0], [0.5, 0.0], [0.0, 0.5]])
HALF_BIN = 0.05


def step_logp(params, obs, act):
    mu = obs @ params["w"] + params["b"]
    sigma = jnp.exp(params["log_std"])
    p = ndtr((act + HALF_BIN - mu) / sigma) - ndtr((act - HALF_BIN - mu) / sigma)
    return jnp.sum(jnp.log(jnp.maximum(p, 1e-30)), axis=-1)


def reward(obs, act):
    return -jnp.sum((act - obs @ W_GOOD) ** 2, axis=-1)


class ToySampler:
    env = "toy"
    obs_dim, act_dim = OBS, ACT
    agents: ClassVar[list[dict]] = [{"name": "good", "env": "toy", "sha256": "g"}, {"name": "bad", "env": "toy", "sha256": "b"}]

    def __call__(self, key, agent_ids, horizon, same_start):
        n = agent_ids.shape[0]
        k_obs, k_noise = jax.random.split(key)
        obs = jax.random.normal(k_obs, (n, 2, horizon, OBS))
        weights = jnp.where(jnp.asarray(agent_ids)[..., None, None, None] == 0, W_GOOD, 0.2 * W_GOOD)
        act = jnp.einsum("nkto,nkoa->nkta", obs, weights[:, :, 0]) + 0.3 * jax.random.normal(k_noise, (n, 2, horizon, ACT))
        return obs, act, reward(obs, act), np.full((n, 2), horizon, np.int32)


class ToyTask:
    name = "tla"  # datasets of this task are labelled as the TLA task
    tokens_per_step = ACT
    step_logp = staticmethod(step_logp)

    def initial_params(self, key):
        return {"w": 0.1 * jax.random.normal(key, (OBS, ACT)), "b": jnp.zeros(ACT), "log_std": jnp.zeros(ACT)}

    def sampler(self):
        return ToySampler()

    def evaluate(self, params, key, episodes, horizon):
        obs = jax.random.normal(key, (episodes, horizon, OBS))
        act = jnp.einsum("eto,poa->peta", obs, params["w"]) + params["b"][:, None, None, :]
        return reward(obs[None], act).sum(axis=-1)

    def reference_returns(self, key, episodes, horizon):
        good = {"w": W_GOOD[None], "b": jnp.zeros((1, ACT)), "log_std": jnp.zeros((1, ACT))}
        start = jax.tree.map(lambda x: x[None], self.initial_params(jax.random.PRNGKey(0)))
        return {"start policy": self.evaluate(start, key, episodes, horizon)[0].tolist(),
                "good": self.evaluate(good, key, episodes, horizon)[0].tolist()}
