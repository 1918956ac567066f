"""Discovery on the toy task: ES wiring, non-finite fitness, kill-and-resume, sharded = unsharded."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirrorpo.benchmark import get_preset
from mirrorpo.losses import load_objective
from mirrorpo.meta import Discovery, DiscoveryConfig, DiscoveryError, make_strategy
from mirrorpo.train import TrainConfig
from tests.processes import free_port, run_processes
from tests.toy_task import ToyTask

TINY = replace(get_preset("quick"), pairs=8, horizon=6, eval_episodes=3, eval_horizon=6,
               train=TrainConfig(epochs=2, lr=0.05))
CONFIG = DiscoveryConfig(task="tla", variant="base", population=4, generations=3, learn=("psi", "g"), temporal=True)


def test_es_improves_a_known_smooth_fitness():
    """The evosax wiring (antithetic OpenAI-ES, Adam, σ schedule) minimises a quadratic."""
    config = DiscoveryConfig(population=32, sigma0=0.1, lr=0.05)
    target = jnp.linspace(-1, 1, 10)
    strategy = make_strategy(config, jnp.zeros(10))
    state = strategy.init(jax.random.PRNGKey(0), jnp.zeros(10), strategy.default_params)
    start = float(jnp.sum(target**2))
    for g in range(150):
        k1, k2 = jax.random.split(jax.random.PRNGKey(g))
        pop, state = strategy.ask(k1, state, strategy.default_params)
        state, _ = strategy.tell(k2, pop, jnp.sum((pop - target) ** 2, axis=1), state, strategy.default_params)
    assert float(jnp.sum((state.mean - target) ** 2)) < 0.1 * start


def test_discovery_runs_exports_and_resumes_identically(tmp_path):
    full = Discovery(ToyTask(), TINY, CONFIG, tmp_path / "full").run()
    assert full["generations"] == 3 and len(full["log"]) == 3
    rows = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2, 3]
    assert {"return_mean", "return_max", "return_min", "nonfinite", "sigma", "train_s", "eval_s"} <= set(rows[0])
    assert rows[1]["sigma"] < rows[0]["sigma"] or rows[0]["sigma"] == pytest.approx(0.03, rel=1e-3)
    best = load_objective(full["paths"]["best"])
    assert best.structure.temporal and best.structure.learn == ("psi", "g")
    # discovery returns its log; the report draws it (the CLI does this after every run)
    from mirrorpo.report.discovery import plot_fitness

    assert not (tmp_path / "full" / "fitness.png").exists()
    assert plot_fitness(full["log"], tmp_path / "full" / "fitness.png", "toy").stat().st_size > 1000

    # kill after one generation, resume with the same command
    partial = Discovery(ToyTask(), TINY, CONFIG, tmp_path / "resumed").run(stop_after=1)
    assert partial["generations"] == 1
    resumed = Discovery(ToyTask(), TINY, CONFIG, tmp_path / "resumed").run()
    assert resumed["generations"] == 3
    np.testing.assert_array_equal(load_objective(resumed["paths"]["mean"]).flat,
                                  load_objective(full["paths"]["mean"]).flat)
    assert resumed["best_return"] == full["best_return"]
    with pytest.raises(DiscoveryError, match="other settings"):
        Discovery(ToyTask(), TINY, replace(CONFIG, population=6), tmp_path / "resumed").run()


def test_a_finished_run_extended_with_more_generations_equals_a_longer_run(tmp_path):
    longer = Discovery(ToyTask(), TINY, CONFIG, tmp_path / "longer").run()
    short = Discovery(ToyTask(), TINY, replace(CONFIG, generations=2), tmp_path / "extended").run()
    assert short["complete"] and short["generations"] == 2
    extended = Discovery(ToyTask(), TINY, CONFIG, tmp_path / "extended").run()
    assert extended["generations"] == 3 and len(extended["log"]) == 3
    np.testing.assert_array_equal(load_objective(extended["paths"]["mean"]).flat,
                                  load_objective(longer["paths"]["mean"]).flat)
    assert [r["return_mean"] for r in extended["log"]] == [r["return_mean"] for r in longer["log"]]
    assert json.loads((tmp_path / "extended" / "settings.json").read_text())["config"]["generations"] == 3


def test_nonfinite_fitness_is_worst_and_counted(tmp_path, monkeypatch):
    real = Discovery.evaluate_population

    def poisoned(self, train_population, population, pairs, key):
        returns, a, b = real(self, train_population, population, pairs, key)
        returns = returns.copy()
        returns[0] = np.nan
        return returns, a, b

    monkeypatch.setattr(Discovery, "evaluate_population", poisoned)
    out = Discovery(ToyTask(), TINY, replace(CONFIG, generations=2), tmp_path).run()
    assert [r["nonfinite"] for r in out["log"]] == [1, 1]
    assert np.isfinite(out["best_return"])


def test_discovery_climbs_the_return_through_its_own_loop(tmp_path, monkeypatch):
    """End to end through Discovery.run (fitness sign, ES update, best tracking, export): with the
    return replaced by a known smooth function of the candidate, the ES mean climbs towards its peak."""
    def smooth_return(self, train_population, population, pairs, key):
        peak = jnp.linspace(-0.5, 0.5, population.shape[1])
        return np.asarray(-jnp.sum((population - peak) ** 2, axis=1)), 0.0, 0.0

    monkeypatch.setattr(Discovery, "evaluate_population", smooth_return)
    config = replace(CONFIG, learn=("psi",), temporal=False, population=16, generations=60, sigma0=0.05, lr=0.05)
    start = np.asarray(Discovery(ToyTask(), TINY, config, tmp_path).center0)
    peak = np.linspace(-0.5, 0.5, start.size)
    out = Discovery(ToyTask(), TINY, config, tmp_path).run()
    mean = load_objective(out["paths"]["mean"]).flat
    assert np.sum((mean - peak) ** 2) < 0.5 * np.sum((start - peak) ** 2)
    assert out["log"][-1]["return_mean"] > out["log"][0]["return_mean"]
    assert out["best_return"] == max(r["return_max"] for r in out["log"])


def test_invalid_settings():
    for kw, msg in (({"population": 3}, "even"), ({"family": "two_step", "learn": ("g",)}, "subset"),
                    ({"variant": "noisy-0.9"}, "unknown variant"), ({"family": "two_step", "lam": 1.0}, "lam")):
        with pytest.raises(Exception, match=msg):
            DiscoveryConfig(**kw).validate()


SHARDED_SCRIPT = """
import sys, json, numpy as np, jax
sys.path.insert(0, {root!r})
from dataclasses import replace
from tests.meta.test_discovery import TINY, CONFIG
from tests.toy_task import ToyTask
from mirrorpo.meta import Discovery
from mirrorpo.losses import load_objective
out = Discovery(ToyTask(), TINY, replace(CONFIG, generations=2), {out!r}).run()
print(json.dumps({{"devices": len(jax.devices()), "mean": load_objective(out["paths"]["mean"]).flat.tolist(),
                  "returns": [r["return_mean"] for r in out["log"]]}}))
"""


@pytest.mark.slow
def test_sharded_over_two_devices_equals_unsharded(tmp_path):
    root = str(Path(__file__).resolve().parents[2])
    results = []
    for devices in (1, 2):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
        code = SHARDED_SCRIPT.format(root=root, out=str(tmp_path / f"d{devices}"))
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert [r["devices"] for r in results] == [1, 2]
    np.testing.assert_allclose(results[0]["mean"], results[1]["mean"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(results[0]["returns"], results[1]["returns"], rtol=1e-4)


DISTRIBUTED_SCRIPT = """
import sys, json
sys.path.insert(0, {root!r})
from mirrorpo.meta import init_distributed
init_distributed()
import jax
from dataclasses import replace
from tests.meta.test_discovery import TINY, CONFIG
from tests.toy_task import ToyTask
from mirrorpo.meta import Discovery
from mirrorpo.losses import load_objective
out = Discovery(ToyTask(), TINY, replace(CONFIG, generations=2), {out!r}).run()
print(json.dumps({{"process": jax.process_index(), "devices": len(jax.devices()),
                  "mean": load_objective(out["paths"]["mean"]).flat.tolist(),
                  "returns": [r["return_mean"] for r in out["log"]]}}))
"""


@pytest.mark.slow
def test_two_processes_on_jax_distributed_equal_one_process(tmp_path):
    """Two processes on 127.0.0.1 sharing one --out: the population is split over both, only process 0
    writes the run folder, and both end with the single-process run's objective."""
    root = str(Path(__file__).resolve().parents[2])
    single = Discovery(ToyTask(), TINY, replace(CONFIG, generations=2), tmp_path / "single").run()
    shared = tmp_path / "shared"
    results = run_processes(DISTRIBUTED_SCRIPT.format(root=root, out=str(shared)))
    assert [r["process"] for r in results] == [0, 1] and [r["devices"] for r in results] == [2, 2]
    want = load_objective(single["paths"]["mean"]).flat
    for r in results:
        np.testing.assert_allclose(r["mean"], want, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(r["returns"], [row["return_mean"] for row in single["log"]], rtol=1e-4)
    assert sorted(p.name for p in shared.iterdir()) == sorted(p.name for p in (tmp_path / "single").iterdir())
    assert not list(shared.glob("**/*.tmp*"))  # no half-written file left by two writers


def test_distributed_settings_and_an_unreachable_coordinator_give_one_clear_line(tmp_path):
    from mirrorpo.errors import MirrorpoError
    from mirrorpo.meta.sharding import distributed_settings, wait_for_coordinator

    env = {"MIRRORPO_COORDINATOR": "127.0.0.1:1234", "MIRRORPO_NUM_PROCESSES": "2", "MIRRORPO_PROCESS_ID": "1"}
    assert distributed_settings(env) == {"coordinator_address": "127.0.0.1:1234", "num_processes": 2,
                                         "process_id": 1, "initialization_timeout": 60}
    assert distributed_settings({}) == {"initialization_timeout": 60}
    for bad, msg in (({**env, "MIRRORPO_PROCESS_ID": "2"}, "0 ≤ MIRRORPO_PROCESS_ID < N"),
                     ({"MIRRORPO_COORDINATOR": "x:1"}, "missing MIRRORPO_NUM_PROCESSES"),
                     ({**env, "MIRRORPO_INIT_TIMEOUT": "soon"}, "whole number of seconds")):
        with pytest.raises(MirrorpoError, match=msg):
            distributed_settings(bad)
    import time

    t0 = time.monotonic()
    with pytest.raises(MirrorpoError, match="cannot reach the coordinator at 127.0.0.1:.* within 1 s"):
        wait_for_coordinator(f"127.0.0.1:{free_port()}", 1)
    assert time.monotonic() - t0 < 10
    from tests.test_cli import mirrorpo

    proc = mirrorpo("discover", "--task", "tla", "--variant", "base", "--preset", "quick", "--population", "4",
                    "--generations", "1", "--distributed", "--out", str(tmp_path),
                    env={**env, "MIRRORPO_COORDINATOR": f"127.0.0.1:{free_port()}", "MIRRORPO_INIT_TIMEOUT": "2"})
    assert proc.returncode == 2 and "cannot reach the coordinator" in proc.stderr and "Traceback" not in proc.stderr


def test_a_time_budget_stops_at_generation_boundaries_and_resuming_equals_an_uninterrupted_run(tmp_path):
    full = Discovery(ToyTask(), TINY, CONFIG, tmp_path / "full").run()
    runs = []
    while not runs or not runs[-1]["complete"]:  # a budget no generation fits: one generation per run
        runs.append(Discovery(ToyTask(), TINY, CONFIG, tmp_path / "budget").run(time_budget=1e-9))
        assert len(runs) <= CONFIG.generations
    assert [r["generations"] for r in runs] == [1, 2, 3] and not runs[0]["complete"]
    np.testing.assert_array_equal(load_objective(runs[-1]["paths"]["mean"]).flat,
                                  load_objective(full["paths"]["mean"]).flat)
    assert [r["best_return"] for r in runs[-1]["log"]] == [r["best_return"] for r in full["log"]]
    generous = Discovery(ToyTask(), TINY, CONFIG, tmp_path / "generous").run(time_budget=3600)
    assert generous["complete"] and generous["generations"] == CONFIG.generations


def test_presets_set_the_es_scale():
    from mirrorpo.meta import default_scale

    assert default_scale("quick", "tla") == (8, 5) and default_scale("full", "hopper") == (256, 128)
    assert default_scale("full", "tla") == (256, 256)


def test_fixed_keys_give_every_generation_the_same_deterministic_fitness(tmp_path):
    fixed = Discovery(ToyTask(), TINY, replace(CONFIG, fixed_keys=True), tmp_path)
    fresh = Discovery(ToyTask(), TINY, CONFIG, tmp_path / "fresh")
    assert np.array_equal(fixed.fitness_key(0), fixed.fitness_key(7))
    assert not np.array_equal(fresh.fitness_key(0), fresh.fitness_key(7))
    [pairs] = fixed.dataset_pairs()
    train_population = fixed._fitness_fns(pairs.num_pairs)
    population = jnp.stack([fixed.center0] * 4) + 0.01 * jax.random.normal(jax.random.PRNGKey(3), (4, fixed.center0.size))
    first, _, _ = fixed.evaluate_population(train_population, population, [pairs], fixed.fitness_key(0))
    again, _, _ = fixed.evaluate_population(train_population, population, [pairs], fixed.fitness_key(9))
    np.testing.assert_array_equal(first, again)


def test_fitness_averages_over_training_seeds(tmp_path):
    two = Discovery(ToyTask(), TINY, replace(CONFIG, train_seeds=2), tmp_path)
    [pairs] = two.dataset_pairs()
    train_population = two._fitness_fns(pairs.num_pairs)
    population = jnp.stack([two.center0] * 4)
    key = two.fitness_key(0)
    mean, _, _ = two.evaluate_population(train_population, population, [pairs, pairs], key)
    k_train, k_eval = jax.random.split(key)
    singles = [np.asarray(ToyTask().evaluate(train_population(population, pairs, k), k_eval, TINY.eval_episodes,
                                             TINY.eval_horizon)).mean(axis=1)
               for k in jax.random.split(k_train, 2)]  # each training seed on its own, same evaluation key
    assert not np.allclose(singles[0], singles[1])  # the seeds differ, so the mean is a real average
    np.testing.assert_allclose(mean, np.mean(singles, axis=0), rtol=1e-6)
    with pytest.raises(DiscoveryError, match="train-seeds"):
        replace(CONFIG, train_seeds=0).validate()


def test_generations_rotate_over_datasets_drawn_with_their_own_seeds(tmp_path, monkeypatch):
    """--datasets K: dataset k is the variant's data at seed + 1000·k, and generation g trains on
    dataset g mod K; K = 1 is the single dataset of the base seed."""
    three = Discovery(ToyTask(), TINY, replace(CONFIG, datasets=3, generations=4), tmp_path)
    datasets = three.dataset_pairs()
    [single] = Discovery(ToyTask(), TINY, CONFIG, tmp_path / "one").dataset_pairs()
    np.testing.assert_array_equal(datasets[0].act_w, single.act_w)
    assert not np.array_equal(datasets[0].act_w, datasets[1].act_w)
    assert not np.array_equal(datasets[1].act_w, datasets[2].act_w)
    seen = []
    real = Discovery.evaluate_population

    def spy(self, train_population, population, pairs_per_seed, key):
        seen.append([next(k for k, d in enumerate(datasets) if np.array_equal(d.act_w, pairs.act_w))
                     for pairs in pairs_per_seed])
        return real(self, train_population, population, pairs_per_seed, key)

    monkeypatch.setattr(Discovery, "evaluate_population", spy)
    three.run()
    assert seen == [[0], [1], [2], [0]]
    seen.clear()  # with two training seeds, each trains on its own dataset: seed j of g on (2g + j) mod 3
    Discovery(ToyTask(), TINY, replace(CONFIG, datasets=3, train_seeds=2, generations=3), tmp_path / "two").run()
    assert seen == [[0, 1], [2, 0], [1, 2]]
    with pytest.raises(DiscoveryError, match="datasets"):
        replace(CONFIG, datasets=0).validate()
