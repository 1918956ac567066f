"""Preference datasets: judge statistics, variants, determinism, resume and file validation,
using a synthetic sampler (agent 0 earns more than agent 1) so no physics is needed."""

import json
import math
from typing import ClassVar

import jax
import numpy as np
import pytest

from mirrorpo.data import (
    DatasetError,
    GenerationConfig,
    dataset_info,
    generate,
    load_dataset,
    preference_probability,
)

T, O, A = 5, 3, 2


class FakeSampler:
    env = "fake_env"
    obs_dim, act_dim = O, A
    agents: ClassVar[list[dict]] = [{"name": "good", "env": "fake_env", "sha256": "0" * 64},
              {"name": "bad", "env": "fake_env", "sha256": "1" * 64}]

    def __call__(self, key, agent_ids, horizon, same_start):
        n = agent_ids.shape[0]
        k_obs, k_rew, k_len = jax.random.split(key, 3)
        obs = np.array(jax.random.normal(k_obs, (n, 2, horizon, O)))
        if same_start:
            obs[:, 1, 0] = obs[:, 0, 0]
        mean = np.where(agent_ids == 0, 3.0, 1.0)[..., None]  # per-step reward by agent
        rewards = mean + np.array(jax.random.normal(k_rew, (n, 2, horizon)))
        lengths = np.array(jax.random.randint(k_len, (n, 2), 1, horizon + 1)) if not same_start \
            else np.full((n, 2), horizon)
        steps = np.arange(horizon)[None, None, :]
        rewards = np.where(steps < lengths[..., None], rewards, 0.0)
        obs = np.where((steps < lengths[..., None])[..., None], obs, 0.0)
        actions = np.tanh(obs[..., :A])
        return obs, actions, rewards, lengths


def make(tmp_path, name="ds", **kw):
    kw = {"task": "tla", "pairs": 40, "horizon": T, "chunk_size": 16, **kw}
    return load_dataset(generate(GenerationConfig(**kw), tmp_path / name, FakeSampler()))


def binomial_ok(successes, n, p, z=4.5):
    return abs(successes - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


def test_realised_flip_rate_matches_epsilon(tmp_path):
    ds = make(tmp_path, variant="noisy", epsilon=0.2, pairs=1500, chunk_size=500, horizon=2)
    info = dataset_info(ds)
    assert binomial_ok(ds.flipped.sum(), 1500, 0.2)
    assert info["flip_rate"] == pytest.approx(ds.flipped.mean())


def test_mixed_proportions(tmp_path):
    ds = make(tmp_path, variant="mixed", pairs=1600, chunk_size=800, horizon=2)
    mix = dataset_info(ds)["agent_mix"]
    for key, p in (("good-good", 0.25), ("good-bad", 0.5), ("bad-bad", 0.25)):
        assert binomial_ok(mix[key] * 1600, 1600, p), mix
    base = dataset_info(make(tmp_path, "base", pairs=100))["agent_mix"]
    assert base["good-bad"] == 1.0


def test_labels_follow_bradley_terry(tmp_path):
    """Aggregate agreement of the judge with σ(ΔR/T): observed first-wins count vs its expectation."""
    ds = make(tmp_path, variant="bad-judge", temperature=3.0, pairs=2000, chunk_size=1000, horizon=2)
    p_first = np.asarray(preference_probability(ds.returns, 3.0))
    first_wins = (ds.preferred == 0).sum()
    expected, var = p_first.sum(), (p_first * (1 - p_first)).sum()
    assert abs(first_wins - expected) <= 4.5 * math.sqrt(var)
    info = dataset_info(ds)
    assert info["label_agreement"] == pytest.approx(info["expected_agreement"], abs=0.05)


def test_same_seed_same_dataset_and_shared_start(tmp_path):
    a, b = make(tmp_path, "a", seed=3), make(tmp_path, "b", seed=3)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    np.testing.assert_array_equal(a.obs[:, 0, 0], a.obs[:, 1, 0])  # TLA: same first state
    c = make(tmp_path, "c", seed=4)
    assert not np.array_equal(a.returns, c.returns)


def test_interrupted_generation_resumes_to_same_dataset(tmp_path, monkeypatch):
    full = make(tmp_path, "full", task="hopper", pairs=50)
    import mirrorpo.data.generation as gen

    calls = {"n": 0}
    real = gen.generate_chunk

    def dying(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(gen, "generate_chunk", dying)
    cfg = GenerationConfig(task="hopper", pairs=50, horizon=T, chunk_size=16)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, tmp_path / "resumed", FakeSampler())
    assert not (tmp_path / "resumed" / "meta.json").exists()
    assert len(list((tmp_path / "resumed" / "chunks").glob("chunk_*.npz"))) == 2
    monkeypatch.setattr(gen, "generate_chunk", real)
    done = []
    resumed = load_dataset(generate(cfg, tmp_path / "resumed", FakeSampler(), on_chunk=lambda d, t: done.append(d)))
    assert done == [1, 2, 3, 4]
    for k in full.arrays:
        np.testing.assert_array_equal(full.arrays[k], resumed.arrays[k])
    with pytest.raises(DatasetError, match="different"):
        generate(GenerationConfig(task="hopper", pairs=51, horizon=T), tmp_path / "resumed", FakeSampler())


def test_bad_files_are_rejected(tmp_path):
    make(tmp_path, "ok")
    ok = tmp_path / "ok"
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="'hopper' dataset is needed"):
        load_dataset(ok, task="hopper")
    data = (ok / "pairs.npz").read_bytes()
    (ok / "pairs.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        load_dataset(ok)
    make(tmp_path, "v")
    meta = json.loads((tmp_path / "v" / "meta.json").read_text())
    (tmp_path / "v" / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(DatasetError, match="version 99"):
        load_dataset(tmp_path / "v")
    (tmp_path / "v" / "meta.json").write_text(json.dumps({**meta, "pairs": 41}))
    with pytest.raises(DatasetError, match="shape"):
        load_dataset(tmp_path / "v")
    (tmp_path / "v" / "meta.json").write_text("{not json")
    with pytest.raises(DatasetError, match="JSON"):
        load_dataset(tmp_path / "v")


def test_invalid_settings():
    for kw, msg in (({"task": "walker"}, "unknown task"), ({"task": "tla", "variant": "x"}, "unknown variant"),
                    ({"task": "tla", "variant": "noisy", "epsilon": 0.7}, r"\(0, 0.5\)"),
                    ({"task": "tla", "epsilon": 0.1}, "noisy variant only"),
                    ({"task": "tla", "pairs": 0}, "≥ 1")):
        with pytest.raises(DatasetError, match=msg):
            GenerationConfig(**kw).resolved()
