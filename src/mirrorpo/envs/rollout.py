"""Batched rollouts: (policy function, its parameters, start keys, episode length) → trajectories,
one jit-compiled program (``jit(vmap(scan(step)))``) per (env, backend, length, policy function).

The policy is a function, as in brax's ``training/acting.py``: ``policy(params, obs [O], key) →
action [A]``, the action the env executes and the rollout stores. The environments know nothing of
how a policy is built (``mirrorpo.agents.mean_action`` and ``sample_action`` are the suite's)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mirrorpo.envs.core import DEFAULT_BACKEND, EnvError, get_spec, make

Policy = Callable[[Any, jax.Array, jax.Array], jax.Array]  # (params, obs [O], key) -> action [A]


class Rollout(NamedTuple):
    """Padded trajectories: obs [B, T, O] (s_t, the state each action was taken in), actions
    [B, T, A] (executed, clipped), rewards [B, T] (true per-step rewards), lengths [B]. Steps at and
    after ``lengths`` (an early termination) are zero."""

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    lengths: jax.Array

    @property
    def returns(self) -> jax.Array:
        return self.rewards.sum(axis=-1)


def _single(env, policy: Policy, params, key, reset_key, length: int):
    state = env.reset(reset_key)

    def step(carry, k):
        state, done = carry
        a = policy(params, state.obs, k)
        nstate = env.step(state, a)
        alive = 1.0 - done
        out = (state.obs * alive, a * alive, nstate.reward * alive, alive)
        new_done = jnp.maximum(done, nstate.done)
        # freeze the state after termination (no NaNs from a fallen body leak anywhere)
        nstate = jax.tree.map(lambda n, o: jnp.where(done > 0, o, n), nstate, state)
        return (nstate, new_done), out

    keys = jax.random.split(key, length)
    _, (obs, actions, rewards, alive) = jax.lax.scan(step, (state, jnp.zeros(())), keys)
    return obs, actions, rewards, alive.sum().astype(jnp.int32)


@functools.lru_cache(maxsize=64)
def _compiled(env_name: str, backend: str, length: int, policy: Policy):
    env = make(env_name, backend)

    def run(params, keys, reset_keys):
        f = lambda k, rk: _single(env, policy, params, k, rk, length)
        return Rollout(*jax.vmap(f)(keys, reset_keys))

    return jax.jit(run)


def split_keys(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Start keys [B] → (action keys [B], reset keys [B])."""
    ks = jax.vmap(lambda k: jax.random.split(k, 2))(keys)
    return ks[:, 0], ks[:, 1]


def rollout(env_name: str, policy: Policy, params, keys: jax.Array, length: int | None = None,
            backend: str = DEFAULT_BACKEND, reset_keys: jax.Array | None = None) -> Rollout:
    """Roll out ``policy`` with ``params`` from each start key [B].

    Each key gives its own start state and action noise; pass ``reset_keys`` [B] to choose the start
    states separately (e.g. equal reset keys for two trajectories that must start from the same
    state). ``length`` defaults to the env's episode length (1000). Pass a module-level function as
    ``policy`` (the compiled program is cached per function object)."""
    spec = get_spec(env_name)
    length = spec.episode_length if length is None else int(length)
    if length < 1:
        raise EnvError(f"episode length must be ≥ 1; got {length}.")
    keys = jnp.asarray(keys)
    if keys.ndim != 2 and not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        raise EnvError(f"keys must be a batch of PRNG keys [B, 2]; got shape {keys.shape}.")
    check_policy(env_name, policy, params)
    act_keys, default_reset = split_keys(keys)
    reset_keys = default_reset if reset_keys is None else jnp.asarray(reset_keys)
    return _compiled(env_name, backend, length, policy)(params, act_keys, reset_keys)


def check_policy(env_name: str, policy: Policy, params) -> None:
    """A clear error when ``policy(params, ·)`` does not map this env's observations to its actions."""
    spec = get_spec(env_name)
    obs = jax.ShapeDtypeStruct((spec.obs_dim,), jnp.float32)
    want = f"'{env_name}' has obs/act sizes {spec.obs_dim}/{spec.act_dim}"
    try:
        action = jax.eval_shape(policy, params, obs, jax.random.PRNGKey(0))
    except (TypeError, ValueError) as exc:
        raise EnvError(f"the policy does not take this env's observations: {want} "
                       f"({str(exc).splitlines()[0]}).") from None
    if getattr(action, "shape", None) != (spec.act_dim,):
        raise EnvError(f"the policy returns actions of shape {getattr(action, 'shape', None)}, but {want}.")


def rollout_single(env_name: str, policy: Policy, params, key: jax.Array, length: int | None = None,
                   backend: str = DEFAULT_BACKEND) -> Rollout:
    """One trajectory (the batched program on a batch of one; rows of a batched rollout with the
    same key are identical)."""
    r = rollout(env_name, policy, params, jnp.asarray(key)[None], length, backend)
    return Rollout(*(x[0] for x in r))
