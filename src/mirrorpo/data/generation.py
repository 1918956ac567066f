"""Generate preference datasets in chunks: resumable, deterministic given the seed.

Chunk c uses the key fold_in(PRNGKey(seed), c) for its agent draw, rollouts, judge and noise, so an
interrupted generation resumed later yields exactly the dataset of an uninterrupted one. Each
finished chunk is written atomically to DIR/chunks/; the merged dataset and meta.json come last.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

import mirrorpo
from mirrorpo.data.format import FORMAT, FORMAT_VERSION, DatasetError, load_dataset, save_dataset
from mirrorpo.data.judge import assign_agents, flip_labels, judge
from mirrorpo.fileio import atomic_path, atomic_write_text

VARIANTS = ("base", "noisy", "mixed", "bad-judge")


@dataclass(frozen=True)
class TaskDefaults:
    env: str
    agents: tuple[str, str]  # (agent 0, agent 1): the "good" agent first
    pairs: int
    same_start: bool  # both trajectories of a pair start from the same state
    temperature: float  # Bradley–Terry temperature of the base judge
    bad_judge_temperature: float


# Temperatures are in units of return: T = 100 makes a 1000-point return gap a near-certain label.
TASKS = {
    "tla": TaskDefaults("three_legged_ant", ("tla_target", "ant_original"), 1280, True, 100.0, 2000.0),
    "hopper": TaskDefaults("hopper", ("hopper_expert", "hopper_bad"), 5120, False, 100.0, 2000.0),
}


@dataclass(frozen=True)
class GenerationConfig:
    task: str
    variant: str = "base"
    pairs: int | None = None  # default: the paper's size for the task
    horizon: int = 1000
    temperature: float | None = None  # default: the task's (bad-judge: its higher one)
    epsilon: float = 0.0  # label-flip probability (noisy variant)
    seed: int = 0
    chunk_size: int = 64

    def resolved(self) -> GenerationConfig:
        """Fill defaults from the task and validate everything."""
        if self.task not in TASKS:
            raise DatasetError(f"unknown task '{self.task}'; valid: {', '.join(TASKS)}.")
        if self.variant not in VARIANTS:
            raise DatasetError(f"unknown variant '{self.variant}'; valid: {', '.join(VARIANTS)}.")
        task = TASKS[self.task]
        temperature = self.temperature if self.temperature is not None else (
            task.bad_judge_temperature if self.variant == "bad-judge" else task.temperature)
        epsilon = self.epsilon if self.variant == "noisy" else 0.0
        cfg = GenerationConfig(self.task, self.variant, task.pairs if self.pairs is None else self.pairs, self.horizon, temperature,
                               epsilon, self.seed, self.chunk_size)
        if self.variant == "noisy" and not 0.0 < self.epsilon < 0.5:
            raise DatasetError(f"the noisy variant needs --epsilon in (0, 0.5); got {self.epsilon}.")
        if self.variant != "noisy" and self.epsilon:
            raise DatasetError(f"--epsilon applies to the noisy variant only (got variant '{self.variant}').")
        if cfg.pairs < 1 or cfg.horizon < 1 or cfg.chunk_size < 1 or not cfg.temperature > 0:
            raise DatasetError(f"pairs, horizon and chunk size must be ≥ 1 and the temperature > 0; got {cfg}.")
        return cfg


class PairSampler(Protocol):
    """Rolls out trajectory pairs for a task: given a key and agent indices [n, 2], returns
    obs [n, 2, T, O], actions [n, 2, T, A], rewards [n, 2, T], lengths [n, 2]."""

    env: str
    agents: list[dict]  # [{"name", "env", "sha256"}] for agent indices 0 and 1
    obs_dim: int
    act_dim: int

    def __call__(self, key: jax.Array, agent_ids: np.ndarray, horizon: int, same_start: bool): ...


def generate_chunk(config: GenerationConfig, sampler: PairSampler, chunk: int, n: int) -> dict[str, np.ndarray]:
    task = TASKS[config.task]
    k_agents, k_roll, k_judge, k_flip = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), chunk), 4)
    agents = np.asarray(assign_agents(k_agents, n, mixed=config.variant == "mixed"))
    obs, actions, rewards, lengths = (np.asarray(x) for x in sampler(k_roll, agents, config.horizon, task.same_start))
    returns = rewards.sum(axis=2, dtype=np.float32)
    preferred = judge(k_judge, jnp.asarray(returns), config.temperature)
    preferred, flipped = flip_labels(k_flip, preferred, config.epsilon)
    return {"obs": obs.astype(np.float32), "actions": actions.astype(np.float32),
            "rewards": rewards.astype(np.float32), "lengths": lengths.astype(np.int32), "agents": agents,
            "returns": returns, "preferred": np.asarray(preferred, np.int8), "flipped": np.asarray(flipped, bool)}


def generate(config: GenerationConfig, out: str | Path, sampler: PairSampler,
             on_chunk: Callable[[int, int], None] | None = None) -> Path:
    """Generate (or resume) a dataset into ``out``; ``on_chunk(done, total)`` reports progress."""
    config = config.resolved()
    out = Path(out)
    settings = asdict(config)
    if (out / "meta.json").is_file():
        existing = load_dataset(out)
        if existing.meta.get("generation") != settings:
            raise DatasetError(f"{out} already holds a different dataset; choose another --out or delete it.")
        return out
    chunks_dir = out / "chunks"
    chunks_dir.mkdir(parents=True, exist_ok=True)
    settings_file = chunks_dir / "settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != settings:
        raise DatasetError(f"{out} holds an unfinished generation with other settings; delete it or use "
                           "another --out.")
    atomic_write_text(settings_file, json.dumps(settings))
    sizes = [min(config.chunk_size, config.pairs - s) for s in range(0, config.pairs, config.chunk_size)]
    parts = []
    for c, n in enumerate(sizes):
        path = chunks_dir / f"chunk_{c:05d}.npz"
        if path.is_file():
            try:
                with np.load(path) as npz:
                    parts.append({k: npz[k] for k in npz.files})
            except (ValueError, OSError, EOFError):
                path.unlink()  # a damaged chunk is regenerated, never trusted
        if not path.is_file():
            part = generate_chunk(config, sampler, c, n)
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **part)
            parts.append(part)
        if on_chunk:
            on_chunk(c + 1, len(sizes))
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "task": config.task, "env": sampler.env,
        "variant": config.variant, "pairs": config.pairs, "horizon": config.horizon,
        "obs_dim": sampler.obs_dim, "act_dim": sampler.act_dim, "temperature": config.temperature,
        "epsilon": config.epsilon, "seed": config.seed, "same_start": TASKS[config.task].same_start,
        "agents": sampler.agents, "generation": settings, "mirrorpo_version": mirrorpo.__version__,
    }
    save_dataset(out, meta, arrays)
    shutil.rmtree(chunks_dir)
    return out
