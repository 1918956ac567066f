"""The two diagnostic tasks (docs/design.md §1), assembled from envs + agents for data, bench and discover.

| task | PO env (true reward) | agents (0, 1) | PO starts from |
|---|---|---|---|
| ``tla`` | three_legged_ant | tla_target, ant_original | the original agent |
| ``hopper`` | hopper | hopper_expert, hopper_bad | a randomly initialised policy (per seed) |

Offline PO trains the policy's actor and log-std; its observation normalisation is frozen (the
original agent's for TLA, the expert's for Hopper — a statistic of the data's states, not a
behaviour). Evaluation: the policy's mean actions (``eval_actions="sample"``: sampled actions, as the paper's
100 sampled trajectories), random start states, true reward. ``uniform_weight`` > 0 bounds the
likelihood of a stored action below (a mixture with the uniform distribution; see agents.policy).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from mirrorpo.data.generation import TASKS
from mirrorpo.errors import MirrorpoError

FROZEN = ("obs_mean", "obs_std")  # policy entries offline PO does not train


@dataclass(frozen=True)
class SuiteTask:
    """A :class:`mirrorpo.benchmark.BenchTask` on brax physics with the shipped agents."""

    name: str
    random_init: bool  # PO starts from a random policy (Hopper) or from agent 1 (TLA's original agent)
    eval_actions: str = "mean"  # evaluation executes the policy's mean ("mean") or samples ("sample")
    uniform_weight: float = 0.0  # likelihood floor: weight of the uniform mixture (agents.action_log_prob_dims)
    env_name: str | None = None  # the PO environment instead of the task's (e.g. another TLA penalty)
    agent_files: tuple[str, str] | None = None  # agents (shipped names or checkpoint paths) instead of the task's

    def __post_init__(self):
        if self.eval_actions not in ("mean", "sample"):
            raise MirrorpoError(f"eval_actions must be 'mean' or 'sample'; got '{self.eval_actions}'.")
        if not 0.0 <= self.uniform_weight < 1.0:
            raise MirrorpoError(f"uniform_weight must be in [0, 1); got {self.uniform_weight}.")

    @property
    def settings(self) -> dict:
        """What a bench folder records, so that cells of another suite are never mixed into it."""
        changed = {k: v for k, v in (("env", self.env_name), ("agents", self.agent_files)) if v is not None}
        return {"task": self.name, "eval_actions": self.eval_actions, "uniform_weight": self.uniform_weight,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in changed.items()}}

    @property
    def eval_policy(self):
        """The rollout policy function of the evaluation protocol."""
        from mirrorpo.agents import mean_action, sample_action

        return mean_action if self.eval_actions == "mean" else sample_action

    @property
    def env(self) -> str:
        return self.env_name or TASKS[self.name].env

    @property
    def agent_names(self) -> tuple[str, str]:
        return self.agent_files or TASKS[self.name].agents

    @functools.cached_property
    def agents(self) -> list[tuple[dict, dict]]:
        """The two agents' (params, metadata), loaded once — eagerly even when first asked for inside a
        jit trace (e.g. by a discovery worker process, which never samples data), so no tracer leaks
        into the cache."""
        from mirrorpo.agents import load_agent

        with jax.ensure_compile_time_eval():
            return [load_agent(name, self.env) for name in self.agent_names]

    @property
    def tokens_per_step(self) -> int:
        from mirrorpo.envs import get_spec

        return get_spec(self.env).act_dim

    @functools.cached_property
    def frozen(self) -> dict:
        """Observation normalisation of the PO policy (agent 0's for a random start, else agent 1's)."""
        params = self.agents[0 if self.random_init else 1][0]
        return {k: params[k] for k in FROZEN}

    def full_params(self, trainable: dict) -> dict:
        return {**self.frozen, **trainable}

    def step_logp(self, trainable, obs, actions):
        from mirrorpo.agents import step_log_probs

        return step_log_probs(self.full_params(trainable), obs, actions, uniform_weight=self.uniform_weight)

    def initial_params(self, key: jax.Array) -> dict:
        """Trainable part (the network, and log_std where σ is state-independent) of the policy PO starts from."""
        if not self.random_init:
            params = self.agents[1][0]
            return {k: v for k, v in params.items() if k not in FROZEN}
        from mirrorpo.agents import init_policy
        from mirrorpo.envs import get_spec

        spec, meta = get_spec(self.env), self.agents[0][1]
        hidden = tuple(meta.get("policy_hidden", (64, 64)))
        params = init_policy(key, spec.obs_dim, spec.act_dim, hidden, kind=meta.get("policy_kind", "gaussian"))
        return {k: v for k, v in params.items() if k not in FROZEN}

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, trainable, key: jax.Array, episodes: int, horizon: int) -> jax.Array:
        """True returns [P, episodes] of a batch of P trained policies (``eval_actions``), as a jax
        array sharded like ``trainable`` (the caller gathers it)."""
        return _evaluate(self.env, horizon, episodes, self.eval_policy)(self.frozen, trainable, key)

    def reference_returns(self, key: jax.Array, episodes: int, horizon: int) -> dict[str, list[float]]:
        """Per-episode true returns, under the benchmark's evaluation protocol, of the policy PO starts
        from and of both agents (each with its own observation normalisation)."""
        from mirrorpo.envs import rollout

        start = self.full_params(self.initial_params(jax.random.PRNGKey(0)))
        policies = {"start policy": start, **{name: params for name, (params, _) in zip(self.agent_names, self.agents)}}
        keys = jax.random.split(key, episodes)
        return {name: np.asarray(rollout(self.env, self.eval_policy, p, keys, horizon).returns).tolist()
                for name, p in policies.items()}

    # -- data ------------------------------------------------------------------------------------
    def sampler(self) -> SuiteSampler:
        return SuiteSampler(self)


@functools.lru_cache(maxsize=16)
def _evaluate(env: str, horizon: int, episodes: int, policy):
    from mirrorpo.envs import rollout

    def run(frozen, trainable, key):
        keys = jax.random.split(key, episodes)  # the same start states (and action noise) for every policy

        def one(t):
            return rollout(env, policy, {**frozen, **t}, keys, horizon).returns

        return jax.vmap(one)(trainable)

    return jax.jit(run)


class SuiteSampler:
    """Samples trajectory pairs with the task's two shipped agents (stochastic actions)."""

    def __init__(self, task: SuiteTask):
        from mirrorpo.envs import get_spec

        self.task = task
        self.env = task.env
        spec = get_spec(task.env)
        self.obs_dim, self.act_dim = spec.obs_dim, spec.act_dim
        self.agents = [{"name": name, "env": meta.get("env"), "sha256": meta.get("sha256")}
                       for name, (_, meta) in zip(task.agent_names, task.agents)]
        self._stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), task.agents[0][0], task.agents[1][0])

    def __call__(self, key: jax.Array, agent_ids: np.ndarray, horizon: int, same_start: bool):
        n = agent_ids.shape[0]
        k_act, k_reset = jax.random.split(key)
        act_keys = jax.random.split(k_act, 2 * n)
        reset_keys = jax.random.split(k_reset, n if same_start else 2 * n)
        if same_start:
            reset_keys = jnp.repeat(reset_keys, 2, axis=0)  # both trajectories of pair i share a start
        out = _sample(self.env, horizon)(self._stacked, jnp.asarray(agent_ids).reshape(-1), act_keys, reset_keys)
        return tuple(np.asarray(x).reshape((n, 2) + x.shape[1:]) for x in out)


@functools.lru_cache(maxsize=16)
def _sample(env: str, horizon: int):
    from mirrorpo.agents import sample_action
    from mirrorpo.envs import rollout

    def run(stacked, ids, act_keys, reset_keys):
        def one(i, k, rk):
            params = jax.tree.map(lambda x: x[i], stacked)
            r = rollout(env, sample_action, params, k[None], horizon, reset_keys=rk[None])
            return jax.tree.map(lambda x: x[0], tuple(r))

        return jax.vmap(one)(ids, act_keys, reset_keys)

    return jax.jit(run)


SUITE = {"tla": SuiteTask("tla", random_init=False), "hopper": SuiteTask("hopper", random_init=True)}


@dataclass(frozen=True)
class SuiteVersion:
    """A version of the diagnostic suite (the shipped v1 agents in every version): the likelihood of
    stored actions, and the grids every bench of this version searches on top of the preset's
    (``--grid`` entries, applied to the losses of the run that have them)."""

    name: str
    uniform_weight: float
    grid: tuple[str, ...]
    description: str


SUITE_VERSIONS = {
    "v1": SuiteVersion("v1", 0.0, (), "the clipped-Gaussian bin likelihood with no floor; the presets' grids"),
    "v2": SuiteVersion("v2", 0.05, ("simpo.beta=0.5,2,10", "simpo.gamma=0,1,5,20,100", "lpo.lam=0.01,0.1,1,10"),
                       "a 5 % uniform mixture per action coordinate (a likelihood floor); SimPO's β, γ and LPO's "
                       "λ searched wide (docs/results/fidelity/)"),
}
DEFAULT_SUITE = "v2"


def get_suite(version: str | None = None) -> SuiteVersion:
    """A suite version by name (None: the default, ``DEFAULT_SUITE``)."""
    version = DEFAULT_SUITE if version is None else version
    if version not in SUITE_VERSIONS:
        raise MirrorpoError(f"unknown suite version '{version}'; valid: {', '.join(SUITE_VERSIONS)}.")
    return SUITE_VERSIONS[version]


def get_task(name: str, suite: str | None = None) -> SuiteTask:
    """The task ``name`` (tla, hopper) of suite version ``suite`` (None: the default)."""
    if name not in SUITE:
        raise MirrorpoError(f"unknown task '{name}'; valid: {', '.join(SUITE)}.")
    return dataclasses.replace(SUITE[name], uniform_weight=get_suite(suite).uniform_weight)
