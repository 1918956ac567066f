"""Environments: the TLA penalty, rollout determinism, batched vs single rollouts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirrorpo.agents.policy import init_policy, sample_action
from mirrorpo.envs import (
    ENV_NAMES,
    TLA_ENVS,
    TLA_FOOT_PENALTY,
    TLA_LEG4_ACTUATORS,
    TLA_PENALTY,
    EnvError,
    fourth_foot_height,
    get_spec,
    make,
    rollout,
    rollout_single,
    tla_foot_penalty,
)


def test_specs_and_spaces():
    assert set(ENV_NAMES) == {"ant", *TLA_ENVS, "hopper"}
    assert (get_spec("ant").obs_dim, get_spec("ant").act_dim) == (27, 8)
    assert (get_spec("three_legged_ant").obs_dim, get_spec("three_legged_ant").act_dim) == (27, 8)
    assert (get_spec("hopper").obs_dim, get_spec("hopper").act_dim) == (11, 3)
    with pytest.raises(EnvError, match="unknown environment"):
        get_spec("humanoid")
    with pytest.raises(EnvError, match="backend"):
        make("ant", "warp")


def test_tla_penalty_is_exactly_fourth_leg_actuation():
    ant, tla = make("ant"), make("three_legged_ant")
    assert ant.observation_size == tla.observation_size and ant.action_size == tla.action_size

    def transitions(env, keys, actions):
        return jax.vmap(lambda k, a: env.step(env.reset(k), a))(keys, actions)

    keys = jax.random.split(jax.random.PRNGKey(0), 6)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (6, 8), minval=-1.5, maxval=1.5)
    leg4 = np.zeros(8, bool)
    leg4[list(TLA_LEG4_ACTUATORS)] = True
    actions = actions.at[0].set(jnp.where(leg4, 0.0, actions[0]))  # other legs only: no penalty
    actions = actions.at[1].set(jnp.where(leg4, actions[1], 0.0))  # fourth leg only
    actions = actions.at[2].set(jnp.zeros(8))
    f_ant, f_tla = jax.jit(lambda k, a: transitions(ant, k, a)), jax.jit(lambda k, a: transitions(tla, k, a))
    s_ant, s_tla = f_ant(keys, actions), f_tla(keys, actions)
    # identical physics and observations
    np.testing.assert_array_equal(np.asarray(s_ant.obs), np.asarray(s_tla.obs))
    clipped = np.clip(np.asarray(actions), -1, 1)
    expected = TLA_PENALTY * (clipped[:, leg4] ** 2).sum(-1)
    diff = np.asarray(s_ant.reward) - np.asarray(s_tla.reward)
    np.testing.assert_allclose(diff, expected, rtol=1e-5, atol=1e-5)
    assert diff[0] == pytest.approx(0.0, abs=1e-6) and diff[2] == pytest.approx(0.0, abs=1e-6)
    assert diff[1] > 0.1


def test_foot_penalty_formula_on_hand_made_heights():
    heights = jnp.array([0.08, 0.14, 0.2, 0.5, -0.1])  # on the ground, half-way, clear, high, below
    np.testing.assert_allclose(np.asarray(tla_foot_penalty(heights)), TLA_FOOT_PENALTY * np.array([1, 0.5, 0, 0, 1]),
                               rtol=1e-6, atol=1e-6)


def test_fourth_foot_height_against_the_rotation_matrix():
    """z of link 8's position + R(q)·(0.4, −0.4, 0), R from a float64 NumPy quaternion, on random poses."""
    rng = np.random.default_rng(0)
    pos, rot = rng.normal(size=(5, 9, 3)), rng.normal(size=(5, 9, 4))
    rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    expected = []
    for p, q in zip(pos[:, 8], rot[:, 8]):
        w, x, y, z = q
        r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                      [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                      [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
        expected.append((p + r @ np.array([0.4, -0.4, 0.0]))[2])
    got = fourth_foot_height(jnp.asarray(pos, jnp.float32), jnp.asarray(rot, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)


def test_tla_variants_charge_the_foot_or_disable_the_leg():
    ant, foot, disabled = make("ant"), make("three_legged_ant_foot"), make("three_legged_ant_disabled")
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (4, 8), minval=-1, maxval=1)
    leg4 = np.zeros(8, bool)
    leg4[list(TLA_LEG4_ACTUATORS)] = True
    still = jnp.where(leg4, 0.0, actions)  # the same commands with the fourth leg at rest

    jitted = {}

    def step(env, a):  # one compiled program per environment
        if env not in jitted:
            jitted[env] = jax.jit(jax.vmap(lambda k, a: env.step(env.reset(k), a)))
        return jitted[env](keys, a)

    s_ant, s_foot = step(ant, actions), step(foot, actions)
    np.testing.assert_array_equal(np.asarray(s_ant.obs), np.asarray(s_foot.obs))  # the same physics
    x = s_foot.pipeline_state.x
    expected = np.asarray(tla_foot_penalty(fourth_foot_height(x.pos, x.rot)))
    np.testing.assert_allclose(np.asarray(s_ant.reward - s_foot.reward), expected, rtol=1e-5, atol=1e-5)
    s_off, s_still = step(disabled, actions), step(ant, still)  # commands on the fourth leg have no effect
    np.testing.assert_allclose(np.asarray(s_off.obs), np.asarray(s_still.obs), atol=1e-6)
    np.testing.assert_allclose(np.asarray(s_off.reward), np.asarray(s_still.reward), atol=1e-5)


@pytest.fixture(scope="module")
def hopper_policy():
    return init_policy(jax.random.PRNGKey(3), 11, 3)


def test_rollout_deterministic_and_batched_equals_single(hopper_policy):
    keys = jax.random.split(jax.random.PRNGKey(7), 3)
    r1 = rollout("hopper", sample_action, hopper_policy, keys, 60)
    r2 = rollout("hopper", sample_action, hopper_policy, keys, 60)
    for a, b in zip(r1, r2, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert r1.obs.shape == (3, 60, 11) and r1.actions.shape == (3, 60, 3) and r1.rewards.shape == (3, 60)
    assert np.all(np.abs(np.asarray(r1.actions)) <= 1.0)
    single = rollout_single("hopper", sample_action, hopper_policy, keys[1], 60)
    for a, b in zip(single, r1, strict=True):
        # different XLA vectorisation: float rounding only (contact dynamics amplify it slightly)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b[1]), rtol=1e-3, atol=1e-3)
    # different keys give different trajectories
    assert not np.allclose(np.asarray(r1.obs[0]), np.asarray(r1.obs[1]))


def test_rollout_pads_after_termination(hopper_policy):
    # a random policy's hopper falls well within 1000 steps: padding is zero, lengths count steps taken
    keys = jax.random.split(jax.random.PRNGKey(11), 3)
    r = rollout("hopper", sample_action, hopper_policy, keys, 60)
    lengths = np.asarray(r.lengths)
    assert lengths.dtype == np.int32 and np.all((lengths >= 1) & (lengths <= 60))
    for i, n in enumerate(lengths):
        assert np.all(np.asarray(r.rewards[i, n:]) == 0) and np.all(np.asarray(r.obs[i, n:]) == 0)
        assert np.all(np.isfinite(np.asarray(r.obs[i])))


def test_rollout_rejects_mismatched_policy(hopper_policy):
    with pytest.raises(EnvError, match="obs/act sizes"):
        rollout("ant", sample_action, hopper_policy, jax.random.split(jax.random.PRNGKey(0), 2), 10)


def test_make_inside_a_trace_builds_eagerly_and_spellings_share_one_env():
    from mirrorpo.envs import DEFAULT_BACKEND
    from mirrorpo.envs.core import _build

    _build.cache_clear()

    @jax.jit
    def first_use(key):  # the env is first built inside this trace
        return make("hopper").reset(key).obs.sum()

    first_use(jax.random.PRNGKey(0))
    env = make("hopper", DEFAULT_BACKEND)
    assert env is make("hopper")
    obs = jax.jit(lambda k: env.step(env.reset(k), jnp.zeros(3)).obs)(jax.random.PRNGKey(1))  # no leaked tracer
    assert np.isfinite(np.asarray(obs)).all()
