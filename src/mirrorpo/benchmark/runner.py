"""The benchmark: for each (algorithm, variant) cell, search a hyper-parameter grid, re-run the best
setting over seeds, evaluate every trained policy on the true reward, and cache the cell.

Training is batched: all runs of a cell (grid points × seeds) train in one vmapped program, and all
algorithms of a protocol share that program (:func:`mirrorpo.train.switch_objective`), so a whole
benchmark compiles a handful of times. A finished cell is written atomically to
``OUT/cells/<variant>/<algo>.json``; an interrupted benchmark resumes at the first unfinished cell.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from mirrorpo.benchmark.presets import GridOverrides, Preset, grid, parse_variant
from mirrorpo.data import GenerationConfig, PairSampler, generate, load_dataset
from mirrorpo.errors import MirrorpoError
from mirrorpo.fileio import atomic_write_text, run_lock
from mirrorpo.losses import get_spec
from mirrorpo.provenance import machine
from mirrorpo.train import Pairs, StepLogProb, check_pairs, make_train, switch_hparams, switch_objective


class BenchTask(Protocol):
    """What the benchmark needs from a task (implemented on top of envs + agents)."""

    name: str  # "tla" | "hopper"
    step_logp: StepLogProb
    tokens_per_step: int  # length unit of the losses: action dimensions per step (see make_train)

    def initial_params(self, key: jax.Array) -> Any: ...  # starting policy of PO (per seed)

    def sampler(self) -> PairSampler: ...

    def evaluate(self, params: Any, key: jax.Array, episodes: int, horizon: int) -> jax.Array: ...
    # params: a batch of policies (leading axis P) -> true returns [P, episodes], sharded like params

    def reference_returns(self, key: jax.Array, episodes: int, horizon: int) -> dict[str, list[float]]: ...
    # per-episode returns of the starting policy and the agents, for context


def dataset_pairs(dataset) -> Pairs:
    """Chosen-first arrays of a dataset, as the inner loop wants them."""
    cr = dataset.chosen_rejected()
    pairs = Pairs(cr["obs_w"], cr["actions_w"], cr["lengths_w"], cr["obs_l"], cr["actions_l"], cr["lengths_l"])
    check_pairs(pairs)
    return pairs


@dataclass
class CellResult:
    algo: str
    variant: str
    mean: float
    stderr: float
    seeds: int
    hparams: dict
    seed_returns: list[float]
    search: list[dict]
    seconds: float
    machine: dict = field(default_factory=machine)

    def record(self) -> dict:
        """JSON-ready: a non-finite number (e.g. the s.e. of one seed, a diverged run) becomes null."""
        out = dict(self.__dict__)
        out["mean"], out["stderr"] = finite_or_none(self.mean), finite_or_none(self.stderr)
        out["seed_returns"] = [finite_or_none(x) for x in self.seed_returns]
        return out


def finite_or_none(x) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def mean_stderr(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), se


def padded_runs(n: int, backend: str | None = None) -> int:
    """Runs per compiled program for ``n`` wanted runs. On an accelerator: the next power of two, so
    cells with different grid sizes share a few compiled programs. On CPU: exactly ``n`` — vmapped runs
    cost as much as a loop there (benchmarks/bench_train.py), so padding would be pure waste."""
    return n if (backend or jax.default_backend()) == "cpu" else 1 << (n - 1).bit_length()


def check_cells(algos: list[str], variants: list[str]) -> None:
    """Clear errors for an unknown loss (listing the valid ones) or variant, before any work starts."""
    for algo in algos:
        get_spec(algo)
    for variant in variants:
        parse_variant(variant)


class Bench:
    """Runs cells for one task and preset, writing ``out/cells`` and the dataset folders."""

    def __init__(self, task: BenchTask, preset: Preset, out: str | Path, seeds: int | None = None, seed: int = 0,
                 grid_overrides: GridOverrides | None = None, searched_grids: bool = False):
        self.task, self.preset, self.out = task, preset, Path(out)
        self.seeds = seeds or preset.seeds
        self.seed = seed
        self.grid_overrides = grid_overrides or {}
        self.searched_grids = searched_grids
        self._programs: dict = {}

    # -- data -----------------------------------------------------------------------------------
    def dataset(self, variant: str, on_chunk: Callable | None = None):
        cfg = GenerationConfig(task=self.task.name, pairs=self.preset.pairs, horizon=self.preset.horizon,
                               seed=self.seed, **parse_variant(variant))
        folder = self.out / "data" / variant
        generate(cfg, folder, self.task.sampler(), on_chunk=on_chunk)
        return load_dataset(folder, task=self.task.name)

    # -- training + evaluation ------------------------------------------------------------------
    def _program(self, protocol: str, algos: tuple[str, ...], num_pairs: int):
        key = (protocol, algos, num_pairs)
        if key not in self._programs:
            specs, objective = switch_objective(list(algos))
            train = make_train(self.task.step_logp, specs[0], objective, num_pairs, self.preset.train,
                               self.task.tokens_per_step)
            self._programs[key] = (specs, jax.jit(jax.vmap(train, in_axes=(0, None, 0, 0))))
        return self._programs[key]

    def train_and_evaluate(self, pairs: Pairs, algos: tuple[str, ...], runs: list[tuple[int, dict, int]],
                           eval_key: jax.Array) -> np.ndarray:
        """Train runs = [(algo index, hparams, seed)] in one vmapped call; mean true return per run.

        The batch is padded (repeating the last run) to :func:`padded_runs`."""
        specs, program = self._program(get_spec(algos[0]).protocol, algos, pairs.num_pairs)
        n = len(runs)
        runs = runs + [runs[-1]] * (padded_runs(n) - n)
        hps = [switch_hparams(specs, i, hp) for i, hp, _ in runs]
        stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *hps)
        keys = jnp.stack([jax.random.PRNGKey(self.seed * 100_003 + s) for _, _, s in runs])
        params0 = jax.vmap(self.task.initial_params)(keys)
        result = program(params0, pairs, stacked, keys)
        returns = self.task.evaluate(result.params, eval_key, self.preset.eval_episodes, self.preset.eval_horizon)
        return np.asarray(returns).mean(axis=1)[:n]

    def references(self) -> dict[str, dict]:
        """{name: {mean, stderr, episodes}} of the starting policy and the agents under the same
        evaluation protocol and start states as the final runs; cached in OUT/references.json."""
        path = self.out / "references.json"
        if path.is_file():
            return json.loads(path.read_text())
        raw = self.task.reference_returns(jax.random.PRNGKey(self.seed + 11), self.preset.eval_episodes,
                                          self.preset.eval_horizon)
        refs = {}
        for name, returns in raw.items():
            mean, se = mean_stderr(returns)
            refs[name] = {"mean": mean, "stderr": finite_or_none(se), "episodes": len(returns)}
        atomic_write_text(path, json.dumps(refs, indent=2))
        return refs

    # -- cells ----------------------------------------------------------------------------------
    def cell_path(self, algo: str, variant: str) -> Path:
        return self.out / "cells" / variant / f"{algo.replace('/', '_').replace(':', '_')}.json"

    def settings(self, algo: str) -> list[dict[str, float]]:
        return grid(algo, self.preset.name, self.grid_overrides, self.searched_grids)

    def cached_cell(self, algo: str, variant: str) -> dict:
        """A finished cell's record; an error if it was searched over another grid than this run's."""
        path = self.cell_path(algo, variant)
        return self._checked_cell(path, path.read_text(), algo)

    def _checked_cell(self, path: Path, text: str, algo: str) -> dict:
        try:
            record = json.loads(text)
            searched = [entry["hparams"] for entry in record["search"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise MirrorpoError(f"{path} is not a finished cell ({type(exc).__name__}: {exc}); delete it to "
                                f"recompute that cell.") from exc
        settings = self.settings(algo)
        if searched != settings:
            raise MirrorpoError(f"{path} was searched over {searched}, but this run asks for {settings}; "
                                f"use another --out (or delete that cell to recompute it).")
        return record

    def folder_records(self, records: list[dict]) -> tuple[list[dict], int]:
        """``records``, then every other finished cell of OUT that this run's settings would have reused
        (the same grid and number of seeds): the folder's leaderboard when its columns were run by
        separate calls. Also returns how many cells were left out (other settings, unreadable, or a
        loss this installation cannot resolve)."""
        have = {(r["algo"], r["variant"]) for r in records}
        others, left_out = [], 0
        for path in sorted((self.out / "cells").glob("*/*.json")):
            try:  # each file read once
                text = path.read_text()
                algo, variant = json.loads(text)["algo"], path.parent.name
                if (algo, variant) in have:
                    continue
                if self.cell_path(algo, variant) != path:
                    raise MirrorpoError(f"{path} holds the cell of {algo}")
                record = self._checked_cell(path, text, algo)
            except (MirrorpoError, json.JSONDecodeError, KeyError, TypeError):
                left_out += 1
                continue
            if record.get("variant") == variant and record.get("seeds") == self.seeds:
                others.append(record)
            else:
                left_out += 1
        return records + others, left_out

    def run_cell(self, pairs: Pairs, algo: str, variant: str, group: tuple[str, ...]) -> CellResult:
        t0 = time.perf_counter()
        index = group.index(algo)
        settings = self.settings(algo)
        eval_key = jax.random.PRNGKey(self.seed + 7)
        if len(settings) > 1:
            search_runs = [(index, hp, s) for hp in settings for s in range(self.preset.search_seeds)]
            search_returns = self.train_and_evaluate(pairs, group, search_runs, eval_key)
            per_setting = search_returns.reshape(len(settings), self.preset.search_seeds).mean(axis=1)
            finite = np.where(np.isfinite(per_setting), per_setting, -np.inf)
            best = settings[int(np.argmax(finite))]
        else:  # nothing to search
            per_setting, best = [None], settings[0]
        final_runs = [(index, best, 1000 + s) for s in range(self.seeds)]  # fresh seeds for the final runs
        final = self.train_and_evaluate(pairs, group, final_runs, jax.random.PRNGKey(self.seed + 11))
        mean, se = mean_stderr(final)
        search = [{"hparams": hp, "mean": finite_or_none(m)} for hp, m in zip(settings, per_setting)]
        return CellResult(algo, variant, mean, se, self.seeds, best, [float(x) for x in final], search,
                          time.perf_counter() - t0)

    def run(self, algos: list[str], variants: list[str], progress: Callable[[str, int, int], None] | None = None,
            on_records: Callable[[list[dict]], None] | None = None, cached_only: bool = False) -> list[dict]:
        """Every (algo, variant) cell, resuming from cached cells; returns all records.

        ``on_records(records so far)`` is called after each cell (e.g. to rewrite a partial leaderboard).
        ``cached_only`` trains nothing: it collects the cells already finished in OUT (the leaderboard
        of a stopped or still-running bench) and leaves the others out."""
        check_cells(algos, variants)
        if cached_only:  # reads finished cells only: allowed beside a running bench
            self.check_task_settings(write=False)
            return self._run(algos, variants, progress, on_records, cached_only)
        with run_lock(self.out, "bench"):
            self.check_task_settings(write=True)
            return self._run(algos, variants, progress, on_records, cached_only)

    def check_task_settings(self, write: bool) -> None:
        """``OUT/task.json`` records the task's settings (e.g. the suite version's likelihood); a
        folder made with other settings is refused, so cells of two suites never mix."""
        settings = getattr(self.task, "settings", None)
        if settings is None:
            return
        path = self.out / "task.json"
        if path.is_file():
            recorded = json.loads(path.read_text())
            if recorded != settings:
                raise MirrorpoError(f"{self.out} holds cells made with task settings {recorded}, but this run has "
                                    f"{settings}; use another --out (or the matching --suite).")
        elif write:
            atomic_write_text(path, json.dumps(settings, indent=2))

    def _run(self, algos, variants, progress, on_records, cached_only) -> list[dict]:
        groups = {p: tuple(a for a in algos if get_spec(a).protocol == p)
                  for p in {get_spec(a).protocol for a in algos}}
        total, done = len(algos) * len(variants), 0
        records = []
        for variant in variants:
            pending = [a for a in algos if not self.cell_path(a, variant).is_file()]
            pairs = dataset_pairs(self.dataset(variant)) if pending and not cached_only else None
            for algo in algos:
                path = self.cell_path(algo, variant)
                if path.is_file():
                    record = self.cached_cell(algo, variant)
                elif cached_only:
                    done += 1
                    continue
                else:
                    group = groups[get_spec(algo).protocol]
                    record = self.run_cell(pairs, algo, variant, group).record()
                    atomic_write_text(path, json.dumps(record, indent=2))
                records.append(record)
                if on_records:
                    on_records(list(records))
                done += 1
                if progress:
                    progress(f"{algo} / {variant}", done, total)
        return records
