"""Discovering MPO objectives with OpenAI-ES (docs/design.md §5).

Each generation: ask evosax's antithetic OpenAI-ES for a population of flat MPO parameter vectors;
train one policy per candidate with the inner loop (one program sharded over every visible device,
each device training its rows ``chunk`` at a time); evaluate each policy's true return, ``chunk``
at a time too; tell ES the negated returns (evosax minimises). All candidates of a generation share the training and evaluation keys (common
random numbers), so fitness differences come from the objectives. A non-finite return is the worst
fitness, counted in the log, never a crash.

After every generation an atomic checkpoint (ES state, generation, best objective, log) lets a
killed run resume; generation g's randomness is fold_in(seed, g), so a resumed run ends exactly
where an uninterrupted one does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from jax.sharding import PartitionSpec

from mirrorpo.benchmark.presets import Preset, parse_variant
from mirrorpo.benchmark.runner import Bench, BenchTask, dataset_pairs
from mirrorpo.data import load_dataset
from mirrorpo.errors import MirrorpoError
from mirrorpo.fileio import atomic_write_bytes, atomic_write_text, run_lock
from mirrorpo.losses import MPOObjective, MPOStructure, save_objective
from mirrorpo.losses.mpo.objective import MPO_HPARAMS, SUFFIX
from mirrorpo.meta.sharding import agree, barrier, is_main_process, map_local_shards, population_sharding
from mirrorpo.train import make_train, registry_objective

WORST_FITNESS = 1e30  # evosax minimises: a diverged candidate ranks last
# (population, generations) for a preset when not given: ``quick`` is a complete run in a few minutes
# on a 2-core CPU; ``full`` is the paper's (Appendix I: 256 × 256 on TLA, 256 × 128 on Hopper), for a GPU
SCALES = {"quick": {"tla": (8, 5), "hopper": (8, 5)}, "full": {"tla": (256, 256), "hopper": (256, 128)}}


def default_scale(preset: str, task: str) -> tuple[int, int]:
    """The (population, generations) a discovery at this bench preset and task runs by default."""
    return SCALES.get(preset, SCALES["full"]).get(task, SCALES["full"]["tla"])


class DiscoveryError(MirrorpoError):
    """Invalid discovery settings or a checkpoint that does not match them."""


@dataclass(frozen=True)
class DiscoveryConfig:
    task: str = "tla"
    variant: str = "noisy-0.3"
    family: str = "one_step"
    learn: tuple[str, ...] = ("psi",)
    temporal: bool = False
    population: int = 256
    generations: int = 256
    sigma0: float = 0.03
    sigma_decay: float = 0.999
    lr: float = 0.02
    seed: int = 0
    beta: float | None = None  # the objective's fixed hyper-parameters (default: the family's)
    lam: float | None = None
    fixed_keys: bool = False  # fitness on the same training and evaluation keys every generation (else fresh)
    train_seeds: int = 1  # fitness = mean return over this many training seeds per candidate
    datasets: int = 1  # training seed j of generation g trains on dataset (g·train_seeds + j) mod K (dataset k: seed + 1000·k)
    hidden: int = 126  # units per learned function (a multiple of the 9 activations): the search's dimension
    chunk: int = 1  # candidates a device trains at once (vmapped); 1 suits a CPU, tens to hundreds a GPU

    def structure(self) -> MPOStructure:
        return MPOStructure(self.family, tuple(self.learn), self.temporal, self.hidden)

    def objective_hparams(self) -> dict[str, float]:
        hp = {h.name: h.default for h in MPO_HPARAMS[self.family]}
        for name in ("beta", "lam"):
            value = getattr(self, name)
            if value is not None:
                if name not in hp:
                    raise DiscoveryError(f"--{name} does not apply to the {self.family} family.")
                hp[name] = value
        return hp

    def validate(self) -> DiscoveryConfig:
        self.structure()  # raises for an invalid family / learn set
        parse_variant(self.variant)
        if self.population < 2 or self.population % 2:
            raise DiscoveryError(f"--population must be an even number ≥ 2 (antithetic pairs); got {self.population}.")
        if self.generations < 1 or not self.sigma0 > 0 or not 0 < self.sigma_decay <= 1 or not self.lr > 0:
            raise DiscoveryError("need generations ≥ 1, sigma0 > 0, 0 < sigma_decay ≤ 1 and lr > 0.")
        if self.chunk < 1:
            raise DiscoveryError(f"--chunk must be ≥ 1; got {self.chunk}.")
        if self.train_seeds < 1:
            raise DiscoveryError(f"--train-seeds must be ≥ 1; got {self.train_seeds}.")
        if self.datasets < 1:
            raise DiscoveryError(f"--datasets must be ≥ 1; got {self.datasets}.")
        self.objective_hparams()
        return self


def make_strategy(config: DiscoveryConfig, solution: jax.Array):
    from evosax.algorithms import Open_ES

    return Open_ES(
        population_size=config.population,
        solution=solution,
        use_antithetic_sampling=True,
        optimizer=optax.adam(config.lr),
        std_schedule=optax.exponential_decay(config.sigma0, 1, config.sigma_decay),
    )


def mpo_objective(structure: MPOStructure, hparams: dict[str, float]):
    """Objective for the inner loop whose hparams pytree is the candidate's flat vector."""
    def objective(batch, flat, t):
        return structure.loss(flat, batch, progress=t, **hparams)
    return objective


def _without_generations(settings: dict) -> dict:
    return {**settings, "config": {k: v for k, v in settings["config"].items() if k != "generations"}}


class Discovery:
    """One discovery run in ``out``; call :meth:`run` (resumes from ``out/checkpoint.msgpack``)."""

    def __init__(self, task: BenchTask, preset: Preset, config: DiscoveryConfig, out: str | Path):
        self.task, self.preset, self.config, self.out = task, preset, config.validate(), Path(out)
        self.structure = config.structure()
        self.hparams = config.objective_hparams()
        self.center0 = self.structure.init(jax.random.PRNGKey(config.seed))
        self.strategy = make_strategy(config, self.center0)
        self.settings = {"config": {**asdict(self.config), "learn": list(self.config.learn)},
                         "preset": self.preset.name, "eval_episodes": self.preset.eval_episodes,
                         **({"task": task.settings} if hasattr(task, "settings") else {})}

    # -- fitness ---------------------------------------------------------------------------------
    def _fitness_fns(self, num_pairs: int):
        spec, _ = registry_objective(f"mpo_{self.config.family}")
        train = make_train(self.task.step_logp, spec, mpo_objective(self.structure, self.hparams),
                           num_pairs, self.preset.train, self.task.tokens_per_step)

        def train_rows(population, pairs, key):  # one device's rows, ``chunk`` candidates at a time (vmapped)
            params0 = self.task.initial_params(key)
            train_one = lambda flat: train(params0, pairs, flat, key).params
            return jax.lax.map(train_one, population, batch_size=self.config.chunk if self.config.chunk > 1 else None)

        # A device trains its rows in vmapped chunks of a fixed size, not all at once: a candidate's
        # arithmetic then does not depend on how many rows a device holds, so 1 and N processes train
        # bit-identical policies (batched matmuls round differently per batch size; MuJoCo amplifies it).
        sharding = population_sharding(self.config.population)  # checks that the devices divide it
        per_device = self.config.population // sharding.mesh.size
        if per_device % self.config.chunk:
            raise DiscoveryError(f"--chunk {self.config.chunk} must divide the {per_device} candidates each of the "
                                 f"{sharding.mesh.size} devices trains; change --chunk or --population.")
        return jax.jit(jax.shard_map(train_rows, mesh=sharding.mesh,
                                     in_specs=(sharding.spec, PartitionSpec(), PartitionSpec()), out_specs=sharding.spec,
                                     check_vma=False))  # with the check on, JAX 0.10 computes other values

    def evaluate_population(self, train_population, population, pairs_per_seed, key):
        """(returns [P], train seconds, eval seconds) for one generation's candidates: the mean true
        return over the ``train_seeds`` training seeds, seed j trained on ``pairs_per_seed[j]``, every
        candidate on the same keys."""
        k_train, k_eval = jax.random.split(key)
        t_train = t_eval = 0.0
        returns = []
        for pairs, k in zip(pairs_per_seed, jax.random.split(k_train, self.config.train_seeds), strict=True):
            t0 = time.perf_counter()
            params = jax.block_until_ready(train_population(population, pairs, k))
            t1 = time.perf_counter()
            returns.append(map_local_shards(lambda p: self._evaluate_rows(p, k_eval), params).mean(axis=1))
            t_train, t_eval = t_train + t1 - t0, t_eval + time.perf_counter() - t1
        return np.mean(returns, axis=0), t_train, t_eval

    def _evaluate_rows(self, params, key) -> np.ndarray:
        """True returns [rows, episodes], ``chunk`` candidates per call: like training, a candidate's
        rollouts then do not depend on how many rows this process evaluates."""
        rows, chunk = jax.tree.leaves(params)[0].shape[0], self.config.chunk
        starts = range(0, rows, chunk)
        parts = [jax.tree.map(lambda x, i=i: x[i:i + chunk], params) for i in starts]
        return np.concatenate([np.asarray(self.task.evaluate(part, key, self.preset.eval_episodes,
                                                             self.preset.eval_horizon)) for part in parts])

    def generation_datasets(self, datasets: list, generation: int) -> list:
        """The dataset each training seed of a generation trains on: seed j of generation g on dataset
        (g·train_seeds + j) mod K, so with several seeds one fitness spans several datasets."""
        seeds = self.config.train_seeds
        return [datasets[(generation * seeds + j) % len(datasets)] for j in range(seeds)]

    def fitness_key(self, generation: int) -> jax.Array:
        """The training and evaluation keys of a generation's fitness: fold_in(seed, g), or with
        ``fixed_keys`` the same key every generation (common random numbers across generations)."""
        key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed), generation)
        fixed = jax.random.fold_in(jax.random.PRNGKey(self.config.seed), 1 << 30)
        return fixed if self.config.fixed_keys else jax.random.split(key, 3)[1]

    # -- checkpoints -----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.msgpack"

    def _template(self):
        return {"es_state": self.strategy.init(jax.random.PRNGKey(0), self.center0, self.strategy.default_params),
                "generation": 0, "best_flat": np.zeros(self.structure.size, np.float32),
                "best_return": -np.inf}

    def save_checkpoint(self, state: dict, log: list[dict]) -> None:
        """Checkpoint and log (process 0 only: every process holds the same state)."""
        if not is_main_process():
            return
        atomic_write_bytes(self.checkpoint_path, serialization.to_bytes(state))
        atomic_write_text(self.out / "log.jsonl", "".join(json.dumps(row) + "\n" for row in log))

    def load_checkpoint(self) -> tuple[dict, list[dict]]:
        settings_path, saved = self.out / "settings.json", None
        if settings_path.is_file():
            saved = json.loads(settings_path.read_text())
            # a run saved before a setting existed ran with that setting's default
            saved["config"] = {**asdict(DiscoveryConfig()), "learn": list(DiscoveryConfig().learn), **saved["config"]}
            # --generations may change: a longer run extends a finished one (nothing depends on the total)
            if _without_generations(saved) != _without_generations(self.settings):
                raise DiscoveryError(f"{self.out} holds a discovery run with other settings; use another --out "
                                     "or delete it.")
        if saved != self.settings and is_main_process():
            atomic_write_text(settings_path, json.dumps(self.settings, indent=2))
        if not self.checkpoint_path.is_file():
            es_state = self.strategy.init(jax.random.PRNGKey(self.config.seed), self.center0,
                                          self.strategy.default_params)
            return {**self._template(), "es_state": es_state}, []
        try:
            state = serialization.from_bytes(self._template(), self.checkpoint_path.read_bytes())
        except Exception as exc:  # msgpack raises several types on a damaged file
            raise DiscoveryError(f"{self.checkpoint_path} is corrupt ({exc}); delete it to restart.") from exc
        log_path = self.out / "log.jsonl"
        log = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.is_file() else []
        return state, log[: int(state["generation"])]

    def dataset_pairs(self) -> list:
        """The variant's ``datasets`` datasets: dataset 0 (base seed) in OUT/data, dataset k ≥ 1 (base
        seed + 1000·k, never a judge's seed 1) in OUT/datasets/k/data; generated by process 0 and
        read by every process."""
        return [self._dataset_pairs(k) for k in range(self.config.datasets)]

    def _dataset_pairs(self, k: int):
        out = self.out if k == 0 else self.out / "datasets" / str(k)
        if is_main_process():
            dataset = Bench(self.task, self.preset, out, seed=self.config.seed + 1000 * k).dataset(self.config.variant)
        barrier(f"mirrorpo-discovery-dataset-{k}")
        if not is_main_process():
            folder = out / "data" / self.config.variant
            try:
                dataset = load_dataset(folder, task=self.task.name)
            except MirrorpoError as exc:
                raise DiscoveryError(f"process {jax.process_index()} cannot read the dataset that process 0 wrote "
                                     f"in {folder} ({exc}); give every process the same --out on a shared file "
                                     "system.") from None
        return dataset_pairs(dataset)

    # -- the loop --------------------------------------------------------------------------------
    def run(self, on_generation: Callable[[dict], None] | None = None, stop_after: int | None = None,
            time_budget: float | None = None) -> dict:
        """Run (or resume) to ``config.generations``; returns the final summary. It ends early, at a
        generation boundary, after ``stop_after`` new generations, or before a generation that would
        end past ``time_budget`` seconds from now (judged by the slowest generation so far; at least
        one generation runs). Rerun to continue: the result equals an uninterrupted run's. Process 0
        holds the run folder's lock (a second run on the same --out stops with a clear error)."""
        if not is_main_process():
            return self._run(on_generation, stop_after, time_budget)
        with run_lock(self.out, "discovery run"):
            return self._run(on_generation, stop_after, time_budget)

    def _out_of_time(self, started: float, slowest: float, time_budget: float | None) -> bool:
        """Process 0's verdict, shared by every process (they must stop at the same generation)."""
        late = time_budget is not None and slowest > 0 and time.perf_counter() - started + slowest > time_budget
        return bool(agree(late))

    def _run(self, on_generation, stop_after, time_budget) -> dict:
        datasets = self.dataset_pairs()
        train_population = self._fitness_fns(datasets[0].num_pairs)
        state, log = self.load_checkpoint()
        barrier("mirrorpo-discovery-start")  # every process has read the checkpoint before one is written
        sharding = population_sharding(self.config.population)
        base_key = jax.random.PRNGKey(self.config.seed)
        done_now, started, slowest = 0, time.perf_counter(), 0.0
        while int(state["generation"]) < self.config.generations:
            if stop_after is not None and done_now >= stop_after:
                break
            if self._out_of_time(started, slowest, time_budget):
                break
            gen = int(state["generation"])
            k_ask, _, k_tell = jax.random.split(jax.random.fold_in(base_key, gen), 3)
            k_fit = self.fitness_key(gen)
            t0 = time.perf_counter()
            population, es_state = self.strategy.ask(k_ask, state["es_state"], self.strategy.default_params)
            spread = jax.device_put(population, sharding)  # the same values on every process: a global array
            returns, t_train, t_eval = self.evaluate_population(train_population, spread,
                                                                self.generation_datasets(datasets, gen), k_fit)
            finite = np.isfinite(returns)
            fitness = np.where(finite, -returns, WORST_FITNESS)
            es_state, _ = self.strategy.tell(k_tell, population, jnp.asarray(fitness), es_state,
                                             self.strategy.default_params)
            best_i = int(np.argmax(np.where(finite, returns, -np.inf)))
            if finite.any() and returns[best_i] > state["best_return"]:
                state["best_return"] = float(returns[best_i])
                state["best_flat"] = np.asarray(population[best_i], np.float32)
            state = {**state, "es_state": es_state, "generation": gen + 1}
            row = {"generation": gen + 1, "return_mean": float(returns[finite].mean()) if finite.any() else None,
                   "return_max": float(returns[finite].max()) if finite.any() else None,
                   "return_min": float(returns[finite].min()) if finite.any() else None,
                   "nonfinite": int((~finite).sum()), "sigma": float(es_state.std),
                   "best_return": float(state["best_return"]), "train_s": t_train, "eval_s": t_eval,
                   "seconds": time.perf_counter() - t0}
            log.append(row)
            self.save_checkpoint(state, log)
            done_now, slowest = done_now + 1, max(slowest, row["seconds"])
            if on_generation:
                on_generation(row)
        return self.finish(state, log)

    def finish(self, state: dict, log: list[dict]) -> dict:
        """Export the best candidate and the ES mean as objective files (the CLI plots the log)."""
        info = {"task": self.task.name, "variant": self.config.variant, "generations": int(state["generation"]),
                "best_return": float(state["best_return"]), "preset": self.preset.name}
        have_best = np.isfinite(state["best_return"])
        best = MPOObjective(self.structure, state["best_flat"] if have_best else np.asarray(self.center0),
                            dict(self.hparams), {**info, "kind": "best candidate"}, name="best_objective")
        mean = MPOObjective(self.structure, np.asarray(state["es_state"].mean), dict(self.hparams),
                            {**info, "kind": "ES mean"}, name="mean_objective")
        paths = {"best": self.out / f"best_objective{SUFFIX}", "mean": self.out / f"mean_objective{SUFFIX}"}
        if is_main_process():
            save_objective(paths["best"], best)
            save_objective(paths["mean"], mean)
        barrier("mirrorpo-discovery-finish")  # the files exist before any process returns their paths
        return {"generations": int(state["generation"]), "complete": int(state["generation"]) >= self.config.generations,
                "best_return": float(state["best_return"]),
                "paths": {k: str(v) for k, v in paths.items()}, "log": log}

