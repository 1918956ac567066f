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
