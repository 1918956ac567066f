"""The real tasks on brax physics with the shipped agents: pair sampling and a tiny end-to-end bench."""

import json
from dataclasses import replace

import numpy as np
import pytest

from mirrorpo.benchmark import Bench, get_preset
from mirrorpo.data import dataset_info, load_dataset
from mirrorpo.errors import MirrorpoError
from mirrorpo.tasks import get_task
from mirrorpo.train import TrainConfig

TINY = replace(get_preset("quick"), pairs=4, horizon=12, eval_episodes=2, eval_horizon=12, seeds=2,
               train=TrainConfig(epochs=2, sft_epochs=1, po_epochs=1))


@pytest.mark.parametrize("task", ["tla", "hopper"])
def test_sampler_pairs(task):
    sampler = get_task(task).sampler()
    agents = np.array([[0, 1], [1, 0], [0, 0]])
    import jax

    obs, actions, rewards, lengths = sampler(jax.random.PRNGKey(0), agents, 12, same_start=(task == "tla"))
    assert obs.shape[:3] == (3, 2, 12) and actions.shape[-1] == sampler.act_dim
    assert np.all(np.abs(actions) <= 1.0) and np.all((lengths >= 1) & (lengths <= 12))
    assert rewards.shape == (3, 2, 12) and np.all(np.isfinite(rewards))
    np.testing.assert_array_equal(rewards * (np.arange(12) >= lengths[..., None]), 0.0)  # zero past the end
    if task == "tla":
        np.testing.assert_array_equal(obs[:, 0, 0], obs[:, 1, 0])  # both trajectories start from one state
        assert not np.allclose(obs[:, 0, 1:], obs[:, 1, 1:])
    else:
        assert not np.allclose(obs[:, 0, 0], obs[:, 1, 0])
    assert [a["name"] for a in sampler.agents] == list(get_task(task).agent_names)
    assert all(len(a["sha256"]) == 64 for a in sampler.agents)


@pytest.mark.slow
def test_tiny_bench_on_tla_end_to_end(tmp_path):
    bench = Bench(get_task("tla"), TINY, tmp_path)
    records = bench.run(["sft", "orpo", "dpo"], ["base"])
    assert {r["algo"] for r in records} == {"sft", "orpo", "dpo"}
    assert all(r["variant"] == "base" and r["seeds"] == 2 and r["mean"] is not None for r in records)
    info = dataset_info(load_dataset(tmp_path / "data" / "base", task="tla"))
    assert info["agent_mix"]["tla_target-ant_original"] == 1.0
    assert json.loads((tmp_path / "cells" / "base" / "dpo.json").read_text())["hparams"] == {"beta": 0.1}


def test_unknown_task():
    with pytest.raises(MirrorpoError, match="unknown task 'walker'"):
        get_task("walker")


def test_suite_versions_set_the_likelihood_and_grids():
    from mirrorpo.cli.experiments import suite_grid
    from mirrorpo.tasks import DEFAULT_SUITE, get_suite

    assert DEFAULT_SUITE == "v2" and get_task("tla").uniform_weight == 0.05 == get_task("hopper", "v2").uniform_weight
    assert get_task("tla", "v1").uniform_weight == 0.0 and get_task("tla", "v1").settings["task"] == "tla"
    with pytest.raises(MirrorpoError, match="unknown suite version 'v9'; valid: v1, v2"):
        get_task("tla", "v9")
    # the version's grid entries apply only to the losses of the run
    assert suite_grid(get_suite("v2"), ["dpo", "simpo"]) == ["simpo.beta=0.5,2,10", "simpo.gamma=0,1,5,20,100"]
    assert suite_grid(get_suite("v1"), ["simpo", "lpo"]) == [] and suite_grid(get_suite(), ["mpo:x.mpo.safetensors"]) == []


def test_a_bench_folder_refuses_cells_of_another_suite(tmp_path):
    tiny = replace(get_preset("quick"), pairs=4, horizon=5, eval_episodes=2, eval_horizon=5, seeds=1,
                   train=TrainConfig(epochs=1, batch_pairs=2))
    Bench(get_task("tla", "v1"), tiny, tmp_path).run(["sft"], ["base"])
    assert json.loads((tmp_path / "task.json").read_text())["uniform_weight"] == 0.0
    with pytest.raises(MirrorpoError, match="task settings .* use another --out"):
        Bench(get_task("tla", "v2"), tiny, tmp_path).run(["sft"], ["base"], cached_only=True)
    assert Bench(get_task("tla", "v1"), tiny, tmp_path).run(["sft"], ["base"], cached_only=True)


def test_a_task_on_another_tla_environment_with_other_agents_records_both():
    task = replace(get_task("tla"), env_name="three_legged_ant_disabled", agent_files=("ant_original", "tla_target"))
    assert task.env == "three_legged_ant_disabled" and task.agent_names == ("ant_original", "tla_target")
    assert task.settings == {**get_task("tla").settings, "env": "three_legged_ant_disabled",
                             "agents": ["ant_original", "tla_target"]}
    assert "env" not in get_task("tla").settings and "agents" not in get_task("tla").settings  # folders stay valid
    sampler = task.sampler()
    assert sampler.env == "three_legged_ant_disabled" and [a["name"] for a in sampler.agents] == list(task.agent_names)


def test_agents_first_loaded_inside_a_jit_trace_leak_no_tracer():
    """A discovery worker process first touches the agents inside the training program's trace."""
    import jax

    task = get_task("tla")  # a fresh task: nothing loaded yet
    jax.jit(lambda k: task.initial_params(k)["log_std"])(jax.random.PRNGKey(0))
    one = jax.tree.map(lambda x: x[None], task.initial_params(jax.random.PRNGKey(0)))
    assert np.isfinite(np.asarray(task.evaluate(one, jax.random.PRNGKey(1), 2, 5))).all()
