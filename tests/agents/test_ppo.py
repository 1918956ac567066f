"""PPO: the whole run is one jit-compiled, vmappable function of the key; configs round-trip."""

import jax
import numpy as np
import pytest

from mirrorpo.agents.ppo import PPOConfig, make_train


def test_config_round_trip():
    cfg = PPOConfig(env="hopper", total_steps=1234, policy_hidden=(8, 8))
    assert PPOConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.num_updates == max(1, 1234 // cfg.steps_per_update)


@pytest.mark.slow
def test_tiny_ppo_run_is_one_vmappable_program():
    cfg = PPOConfig(env="hopper", total_steps=3 * 4 * 8, num_envs=4, unroll_length=8, num_minibatches=2,
                    update_epochs=2, policy_hidden=(8,), value_hidden=(8,))
    train = jax.jit(jax.vmap(make_train(cfg)))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    policies, metrics = train(keys)
    assert policies["actor"][0]["w"].shape == (2, 11, 8)
    assert metrics.loss.shape == (2, 3) and np.all(np.isfinite(np.asarray(metrics.loss)))
    assert int(metrics.steps[0, -1]) == 96
    # different keys, different runs; same key, same run
    assert not np.allclose(np.asarray(policies["actor"][0]["w"][0]), np.asarray(policies["actor"][0]["w"][1]))
    again, _ = train(keys)
    np.testing.assert_array_equal(np.asarray(again["log_std"]), np.asarray(policies["log_std"]))
