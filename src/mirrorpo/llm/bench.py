"""An offline LLM diagnostic that runs on a CPU in minutes (docs/design.md §6's stand-in for the paper's
gemma-7b / AlpacaEval experiment).

1. A tiny Llama and a character-level tokenizer are built locally; the problem is sorting digits, with a
   programmatic reward R ∈ [0, 1] (:class:`~mirrorpo.llm.tiny.SortingProblem`).
2. SFT on correct demonstrations gives two "agents": the *novice* — an early SFT checkpoint, "the SFT
   model": the starting point and the reference of every loss — and the *expert* (SFT continued). As in
   the suite's TLA task, PO starts from the weaker agent and learns from pairs involving a better one.
3. Preference pairs: responses sampled from the agents, labelled by a Bradley–Terry judge,
   P(a ≻ b) = σ((R_a − R_b) / T), in the suite's variants, spelt and parsed as in ``mirrorpo bench``
   (:func:`mirrorpo.benchmark.parse_variant`): ``base`` (one response from each agent), ``noisy-ε``
   (base, each label flipped with probability ε ∈ (0, 0.5)), ``mixed`` (each response from an agent
   picked at random), ``bad-judge`` (T × 10).
4. Each loss trains a copy of the SFT model with :class:`~mirrorpo.llm.trainer.MirrorPOTrainer` for the
   same number of steps; greedy generations on held-out prompts give the mean reward, the exact-match
   rate and the win rate against the SFT model (ties count ½).
5. With ``seeds`` = N, steps 1–4 run N times (seeds ``seed`` … ``seed + N − 1``), and the leaderboard
   reports mean ± standard error over seeds (with one seed, the reward's s.e. over held-out prompts).

``run_bench(BenchConfig(...))`` returns the result; :func:`write_results` writes results.json / .csv;
``mirrorpo llm bench`` prints the leaderboard and draws it. The stages live in :mod:`.bench_data`
(prompts, samples, pairs), :mod:`.bench_models` (SFT, generation, evaluation, PO) and
:mod:`.bench_results` (seeds combined, leaderboard, files).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mirrorpo.benchmark import parse_variant
from mirrorpo.errors import MirrorpoError
from mirrorpo.llm.bench_config import DEFAULT_LOSSES, DEFAULT_VARIANTS, BenchConfig, variant_spec
from mirrorpo.llm.bench_data import build_pairs, prompts, sample_agents
from mirrorpo.llm.bench_models import evaluate, generate, quiet, sft_train, train_one
from mirrorpo.llm.bench_results import (
    CSV_FIELDS,
    combine,
    leaderboard,
    leaderboard_markdown,
    plot_records,
    print_leaderboard,
    spread,
    write_results,
)

__all__ = ["CSV_FIELDS", "DEFAULT_LOSSES", "DEFAULT_VARIANTS", "BenchConfig", "build_pairs", "evaluate", "generate",
           "leaderboard", "leaderboard_markdown", "parse_variant", "plot_records", "print_leaderboard", "run_bench",
           "sft_train", "spread", "train_one", "variant_spec", "write_results"]

Progress = Callable[[int, int, str], None]


@dataclass
class _Tracker:
    """Lines for ``echo`` (prefixed by the seed when there are several) and ``progress(done, total,
    label)`` over all the stages of all the seeds: per seed, the SFT and one training per (variant, loss)."""

    echo: Callable[[str], None]
    progress: Progress | None
    total: int
    prefix: str = ""
    done: int = 0

    def say(self, line: str) -> None:
        self.echo(self.prefix + line)

    def begin(self, label: str) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, self.prefix + label)

    def end(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, self.prefix.rstrip(": "))


@dataclass
class _Seed:
    """What the stages of one seed share."""

    cfg: BenchConfig
    out_dir: Path
    track: _Tracker
    problem: Any = None
    tokenizer: Any = None
    eval_prompts: list[str] = dataclasses.field(default_factory=list)
    train_prompts: list[str] = dataclasses.field(default_factory=list)
    agents: dict = dataclasses.field(default_factory=dict)  # "expert", "novice" (the SFT model)
    sft_eval: dict = dataclasses.field(default_factory=dict)

    def evaluate(self, model, against_sft: bool = True) -> dict:
        baseline = self.sft_eval["rewards"] if against_sft else None
        return evaluate(model, self.tokenizer, self.problem, self.eval_prompts, baseline=baseline,
                        max_new_tokens=self.cfg.max_digits + 2)


def run_bench(cfg: BenchConfig, *, out_dir: str | Path = "out/llm-bench", echo: Callable[[str], None] = print,
              progress: Progress | None = None) -> dict:
    """Run the diagnostic; returns ``{"config", "problem", "agents", "datasets", "baseline", "rows", "per_seed",
    ...}`` (see the module doc). ``progress(done, total, label)`` follows the stages."""
    import torch

    quiet()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    t_start = time.perf_counter()
    track = _Tracker(echo, progress, total=cfg.seeds * (1 + len(cfg.variants) * len(cfg.losses)))
    try:
        per_seed = []
        for seed in cfg.seed_values:
            track.prefix = f"seed {seed}: " if cfg.seeds > 1 else ""
            per_seed.append(run_seed(dataclasses.replace(cfg, seed=seed), Path(out_dir), track))
        return _result(cfg, per_seed, time.perf_counter() - t_start)
    finally:
        torch.set_num_threads(threads)


def run_seed(cfg: BenchConfig, out_dir: Path, track: _Tracker) -> dict:
    """The stages of one seed: data, SFT, sampled responses, then pairs and every loss per variant."""
    from mirrorpo.llm.tiny import SortingProblem, char_tokenizer

    t0 = time.perf_counter()
    run = _Seed(cfg, out_dir, track, problem=SortingProblem(cfg.min_digits, cfg.max_digits), tokenizer=char_tokenizer())
    run.eval_prompts, run.train_prompts = prompts(run.problem, cfg)
    track.begin("SFT")
    baseline, agents_info = sft_stage(run)
    track.end()
    samples, agents_info["sampled_rewards"] = sample_agents(run.agents, run.tokenizer, run.problem, run.train_prompts,
                                                            cfg)
    datasets, rows = {}, []
    for variant in cfg.variants:
        pairs, datasets[variant] = pairs_stage(run, variant, samples)
        for loss in cfg.losses:
            track.begin(f"{variant}/{loss}")
            rows.append(loss_stage(run, variant, loss, pairs))
            track.end()
    return {"seed": cfg.seed, "agents": _agents(cfg, agents_info), "datasets": datasets, "baseline": baseline,
            "rows": rows, "seconds": time.perf_counter() - t0}


def sft_stage(run: _Seed) -> tuple[dict, dict]:
    """SFT to the expert, keeping the checkpoint at ``sft_steps`` as the novice (the SFT model); both
    evaluated. Returns (the SFT model's row, the agents' evaluations)."""
    from mirrorpo.llm.tiny import tiny_llama

    cfg = run.cfg
    t0 = time.perf_counter()
    model = tiny_llama(run.tokenizer, hidden=cfg.hidden, layers=cfg.layers, seed=cfg.seed)
    snapshots = {}
    sft_train(model, run.tokenizer, run.problem, random.Random(f"sft-{cfg.seed}"), steps=cfg.expert_steps,
              lr=cfg.sft_lr, batch_size=cfg.sft_batch_size, exclude=set(run.eval_prompts),
              checkpoints=(cfg.sft_steps,),
              on_checkpoint=lambda step, m: snapshots.setdefault("sft", copy.deepcopy(m).eval()))
    seconds = time.perf_counter() - t0
    run.agents = {"expert": model, "novice": snapshots["sft"]}
    run.sft_eval = run.evaluate(run.agents["novice"], against_sft=False)
    expert_eval = run.evaluate(model)
    run.track.say(f"SFT ({seconds:.1f}s): SFT model ({cfg.sft_steps} steps) reward "
                  f"{run.sft_eval['mean_reward']:.3f}, expert ({cfg.expert_steps} steps) "
                  f"{expert_eval['mean_reward']:.3f}")
    baseline = {"variant": "-", "loss": "SFT model (start)", "seed": cfg.seed, "win_rate": 0.5, "seconds": seconds,
                "final_loss": None, "error": None, **_scores(run.sft_eval)}
    return baseline, {"expert": expert_eval, "novice": run.sft_eval}


def pairs_stage(run: _Seed, variant: str, samples: dict) -> tuple[list[dict], dict]:
    """The preference pairs of one variant, and their statistics."""
    pairs, stats = build_pairs(variant, run.train_prompts, samples, run.problem, temperature=run.cfg.judge_temperature,
                               seed=run.cfg.seed)
    run.track.say(f"dataset {variant}: {stats['pairs']} pairs, label accuracy {stats['label_accuracy']:.2f}")
    return pairs, stats


def loss_stage(run: _Seed, variant: str, loss: str, pairs: list[dict]) -> dict:
    """Train a copy of the SFT model with one loss and evaluate it; a failure (other than the user's
    error) is recorded in the row, so that one failing loss does not sink the leaderboard."""
    row = {"variant": variant, "loss": loss, "seed": run.cfg.seed, "error": None}
    try:
        trained, seconds, logs = train_one(loss, run.agents["novice"], run.tokenizer, pairs, run.cfg,
                                           run.out_dir / "runs")
        ev = run.evaluate(trained)
        row.update(_scores(ev), win_rate=ev["win_rate"], seconds=seconds, final_loss=logs.get("loss"),
                   examples=ev["examples"])
        if logs.get("loss") is not None and not math.isfinite(logs["loss"]):
            row["error"] = "non-finite loss"
    except MirrorpoError:
        raise
    except Exception as exc:  # noqa: BLE001
        nan = float("nan")
        row.update(mean_reward=nan, reward_se=nan, exact_match=nan, win_rate=nan, seconds=nan, final_loss=None,
                   error=f"{type(exc).__name__}: {exc}")
    run.track.say(f"  {variant:>10} {loss:<14} reward {row['mean_reward']:.3f}  win {row['win_rate']:.2f}"
                  + (f"  [{row['error']}]" if row["error"] else ""))
    return row


def _scores(ev: dict) -> dict:
    return {k: ev[k] for k in ("mean_reward", "reward_se", "exact_match")}


def _agents(cfg: BenchConfig, info: dict) -> dict:
    expert, novice, sampled = info["expert"], info["novice"], info["sampled_rewards"]
    return {"expert": {"sft_steps": cfg.expert_steps, "greedy_reward": expert["mean_reward"],
                       "win_rate": expert["win_rate"], "sampled_reward": sampled["expert"]},
            "novice": {"sft_steps": cfg.sft_steps, "greedy_reward": novice["mean_reward"],
                       "sampled_reward": sampled["novice"], "note": "the SFT model PO starts from"}}


def _result(cfg: BenchConfig, per_seed: list[dict], seconds: float) -> dict:
    """The leaderboard's input: the per-seed runs combined over seeds (:func:`.bench_results.combine`)."""
    import torch

    from mirrorpo.llm.tiny import SortingProblem

    return {
        "config": asdict(cfg),
        "problem": {"name": SortingProblem.name, "min_digits": cfg.min_digits, "max_digits": cfg.max_digits,
                 "reward": "½·positional match + ½·multiset overlap, / max(len(y), n)"},
        **combine(per_seed),
        "per_seed": per_seed,
        "seconds": seconds,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
    }
