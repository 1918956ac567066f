"""An offline LLM diagnostic that runs on a CPU in minutes (docs/design.md §6's stand-in for the paper's
gemma-7b / AlpacaEval experiment).

1. A tiny Llama and a character-level tokenizer are built locally; the task is sorting digits, with a
   programmatic reward R ∈ [0, 1] (:class:`~mirrorpo.llm.tiny.SortTask`).
2. SFT on correct demonstrations gives two "agents": the *novice* — an early SFT checkpoint, "the SFT
   model": the starting point and the reference of every loss — and the *expert* (SFT continued). As in
   the suite's TLA task, PO starts from the weaker agent and learns from pairs involving a better one.
3. Preference pairs: responses sampled from the agents, labelled by a Bradley–Terry judge,
   P(a ≻ b) = σ((R_a − R_b) / T), in the suite's variants: ``base`` (one response from each agent),
   ``noisy-ε`` (base, each label flipped with probability ε), ``mixed`` (each response from an agent
   picked at random), ``badjudge`` (T × 10).
4. Each loss trains a copy of the SFT model with :class:`~mirrorpo.llm.trainer.MirrorPOTrainer` for the
   same number of steps; greedy generations on held-out prompts give the mean reward, the exact-match
   rate and the win rate against the SFT model (ties count ½).

``run_bench(BenchConfig(...))`` returns the rows; :func:`write_results` writes results.json / .csv;
``mirrorpo llm bench`` prints the leaderboard.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mirrorpo.errors import MirrorpoError

DEFAULT_LOSSES = ("sft", "dpo", "ipo", "slic_hf", "cpo", "orpo", "simpo", "lpo", "colpo", "mpo_one_step")
DEFAULT_VARIANTS = ("base", "noisy-0.3")


@dataclass
class BenchConfig:
    """Settings of the diagnostic; the defaults run in a few minutes on 2 CPU cores."""

    losses: Sequence[str] = DEFAULT_LOSSES
    variants: Sequence[str] = DEFAULT_VARIANTS
    steps: int = 60  # preference-optimisation steps per loss
    batch_size: int = 16  # pairs per step
    lr: float = 5e-4
    sft_steps: int = 40  # the SFT model (novice agent, start of PO, reference) after this many steps
    expert_steps: int = 200  # the expert agent: SFT continued to this many steps
    sft_lr: float = 3e-3
    sft_batch_size: int = 64
    pairs: int = 512
    eval_prompts: int = 128
    judge_temperature: float = 0.1
    sample_temperature: float = 1.0
    hidden: int = 64
    layers: int = 2
    min_digits: int = 4
    max_digits: int = 7
    seed: int = 0
    threads: int = 1  # torch intra-op threads: a tiny model gains nothing from more, and loses a lot on a busy CPU
    hparams: dict[str, dict[str, float]] = field(default_factory=dict)  # per-loss overrides

    def __post_init__(self):
        self.losses = tuple(self.losses)
        self.variants = tuple(self.variants)
        if not self.losses or not self.variants:
            raise MirrorpoError("the bench needs at least one loss and one variant.")
        for v in self.variants:
            parse_variant(v)
        from mirrorpo.llm.losses import get_loss

        for name in self.losses:
            get_loss(name).resolve_hparams(self.hparams.get(name, {}))
        for key in ("steps", "batch_size", "sft_steps", "expert_steps", "pairs", "eval_prompts", "hidden",
                    "layers", "threads"):
            if getattr(self, key) <= 0:
                raise MirrorpoError(f"bench: {key} must be positive; got {getattr(self, key)}.")
        if self.expert_steps < self.sft_steps:
            raise MirrorpoError("bench: expert_steps must be ≥ sft_steps (the expert continues the SFT model).")
        if not 1 <= self.min_digits <= self.max_digits:
            raise MirrorpoError("bench: need 1 ≤ min_digits ≤ max_digits.")


def parse_variant(name: str) -> dict:
    """``base`` | ``mixed`` | ``badjudge`` | ``noisy-ε`` (ε ∈ [0, 0.5])."""
    if name in ("base", "mixed", "badjudge"):
        return {"kind": name, "epsilon": 0.0}
    if name.startswith("noisy-"):
        try:
            eps = float(name[len("noisy-"):])
        except ValueError:
            eps = -1.0
        if 0.0 <= eps <= 0.5:
            return {"kind": "noisy", "epsilon": eps}
    raise MirrorpoError(f"unknown dataset variant {name!r}: use base, mixed, badjudge or noisy-ε (e.g. noisy-0.2).")


# --- models -----------------------------------------------------------------------------------------------


def _encode_sft(tokenizer, prompts, answers):
    import torch

    ids, labels = [], []
    for p, a in zip(prompts, answers):
        pi = tokenizer(p)["input_ids"]
        ai = tokenizer(a)["input_ids"] + [tokenizer.eos_token_id]
        ids.append(pi + ai)
        labels.append([-100] * len(pi) + ai)
    width = max(map(len, ids))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
    attention = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    label_t = torch.tensor([y + [-100] * (width - len(y)) for y in labels])
    return input_ids, attention, label_t


def sft_train(model, tokenizer, task, rng: random.Random, *, steps: int, lr: float, batch_size: int,
              exclude: set[str], checkpoints: Sequence[int] = (), on_checkpoint: Callable | None = None):
    """Supervised fine-tuning on correct answers (AdamW, cosine-free constant lr)."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for step in range(1, steps + 1):
        prompts, answers = [], []
        while len(prompts) < batch_size:
            p, a = task.sample(rng)
            if p not in exclude:
                prompts.append(p)
                answers.append(a)
        input_ids, attention, labels = _encode_sft(tokenizer, prompts, answers)
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step in checkpoints and on_checkpoint is not None:
            on_checkpoint(step, model)
    model.eval()
    return model


def generate(model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int, sample: bool = False,
             temperature: float = 1.0, seed: int = 0, chunk: int = 256) -> list[str]:
    """Greedy (or sampled) completions, decoded up to the first end-of-sequence token."""
    import torch

    model.eval()
    out: list[str] = []
    torch.manual_seed(seed)
    for start in range(0, len(prompts), chunk):
        batch = list(prompts[start:start + chunk])
        enc = tokenizer(batch, return_tensors="pt", padding=True, padding_side="left")
        options = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if sample \
            else {"do_sample": False}
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id, **options)
        for row in gen[:, enc["input_ids"].shape[1]:]:
            out.append(tokenizer.decode(row, skip_special_tokens=True))
    return out


# --- preference data --------------------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def build_pairs(variant: str, prompts, samples, task, *, temperature: float, seed: int) -> tuple[list[dict], dict]:
    """Preference pairs of one variant from pre-sampled responses.

    ``samples[agent][k][i]`` is the k-th (k ∈ {0, 1}) response of ``agent`` ("expert" / "novice") to
    prompt i. Pairs with two identical responses carry no preference and are dropped."""
    spec = parse_variant(variant)
    rng = random.Random(f"{seed}-{variant}")
    t = temperature * (10.0 if spec["kind"] == "badjudge" else 1.0)
    rows, dropped, correct, same_agent = [], 0, 0, 0
    for i, prompt in enumerate(prompts):
        if spec["kind"] == "mixed":
            agents = (rng.choice(("expert", "novice")), rng.choice(("expert", "novice")))
        else:
            agents = ("expert", "novice") if rng.random() < 0.5 else ("novice", "expert")
        a, b = samples[agents[0]][0][i], samples[agents[1]][1][i]
        if a == b:
            dropped += 1
            continue
        ra, rb = task.reward(prompt, a), task.reward(prompt, b)
        a_wins = rng.random() < _sigmoid((ra - rb) / t)
        if spec["kind"] == "noisy" and rng.random() < spec["epsilon"]:
            a_wins = not a_wins
        chosen, rejected = (a, b) if a_wins else (b, a)
        rc, rr = (ra, rb) if a_wins else (rb, ra)
        correct += rc > rr
        same_agent += agents[0] == agents[1]
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    stats = {"variant": variant, "pairs": len(rows), "dropped_identical": dropped,
             "label_accuracy": correct / max(len(rows), 1), "same_agent_pairs": same_agent,
             "judge_temperature": t, "epsilon": spec["epsilon"]}
    return rows, stats


# --- evaluation -------------------------------------------------------------------------------------------


def evaluate(model, tokenizer, task, prompts, *, baseline: list[float] | None, max_new_tokens: int) -> dict:
    responses = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    rewards = [task.reward(p, r) for p, r in zip(prompts, responses)]
    exact = [r == task.answer(task.digits_of(p)) for p, r in zip(prompts, responses)]
    n = len(rewards)
    mean = sum(rewards) / n
    se = (sum((x - mean) ** 2 for x in rewards) / max(n - 1, 1) / n) ** 0.5
    out = {"mean_reward": mean, "reward_se": se, "exact_match": sum(exact) / n, "rewards": rewards,
           "examples": [{"prompt": p, "response": r} for p, r in list(zip(prompts, responses))[:3]]}
    if baseline is not None:
        wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(rewards, baseline)]
        out["win_rate"] = sum(wins) / n
    return out


# --- the run ----------------------------------------------------------------------------------------------


def _quiet():
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")


def train_one(loss: str, sft_model, tokenizer, rows: list[dict], cfg: BenchConfig, out_dir: Path) -> tuple:
    """Train a copy of the SFT model with ``loss`` on ``rows``; returns (model, seconds, last logs)."""
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from mirrorpo.llm.trainer import MirrorPOConfig, MirrorPOTrainer

    model = copy.deepcopy(sft_model)
    args = MirrorPOConfig(
        output_dir=str(out_dir), loss=loss, loss_hparams=dict(cfg.hparams.get(loss, {})), max_steps=cfg.steps,
        per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.lr, lr_scheduler_type="constant",
        bf16=False, gradient_checkpointing=False, report_to=[], logging_steps=max(cfg.steps // 4, 1),
        save_strategy="no", use_cpu=True, disable_tqdm=True, seed=cfg.seed, data_seed=cfg.seed,
        dataloader_num_workers=0, max_grad_norm=1.0,
    )
    t0 = time.perf_counter()
    trainer = MirrorPOTrainer(model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    trainer.train()
    seconds = time.perf_counter() - t0
    logs = [h for h in trainer.state.log_history if "loss" in h]
    model.eval()
    return model, seconds, (logs[-1] if logs else {})


def run_bench(cfg: BenchConfig, *, out_dir: str | Path = "out/llm-bench", echo: Callable[[str], None] = print) -> dict:
    """Run the diagnostic; returns ``{"config", "agents", "datasets", "rows", ...}`` (see module doc)."""
    import torch

    _quiet()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, Path(out_dir), echo)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: BenchConfig, out_dir: Path, echo: Callable[[str], None]) -> dict:
    import torch

    from mirrorpo.llm.tiny import SortTask, char_tokenizer, tiny_llama

    t_start = time.perf_counter()
    task = SortTask(cfg.min_digits, cfg.max_digits)
    max_new = cfg.max_digits + 2
    tokenizer = char_tokenizer()

    rng_eval = random.Random(f"eval-{cfg.seed}")
    eval_prompts: list[str] = []
    while len(eval_prompts) < cfg.eval_prompts:
        p, _ = task.sample(rng_eval)
        if p not in eval_prompts:
            eval_prompts.append(p)
    held_out = set(eval_prompts)

    # SFT: expert and novice agents
    t0 = time.perf_counter()
    model = tiny_llama(tokenizer, hidden=cfg.hidden, layers=cfg.layers, seed=cfg.seed)
    snapshots = {}
    sft_train(model, tokenizer, task, random.Random(f"sft-{cfg.seed}"), steps=cfg.expert_steps, lr=cfg.sft_lr,
              batch_size=cfg.sft_batch_size, exclude=held_out, checkpoints=(cfg.sft_steps,),
              on_checkpoint=lambda step, m: snapshots.setdefault("sft", copy.deepcopy(m).eval()))
    sft_seconds = time.perf_counter() - t0
    sft_model = snapshots["sft"]
    agents = {"expert": model, "novice": sft_model}
    sft_eval = evaluate(sft_model, tokenizer, task, eval_prompts, baseline=None, max_new_tokens=max_new)
    expert_eval = evaluate(model, tokenizer, task, eval_prompts, baseline=sft_eval["rewards"],
                           max_new_tokens=max_new)
    echo(f"SFT ({sft_seconds:.1f}s): SFT model ({cfg.sft_steps} steps) reward {sft_eval['mean_reward']:.3f}, "
         f"expert ({cfg.expert_steps} steps) {expert_eval['mean_reward']:.3f}")

    # responses of both agents to the training prompts, two samples each
    rng_train = random.Random(f"train-{cfg.seed}")
    train_prompts = []
    while len(train_prompts) < cfg.pairs:
        p, _ = task.sample(rng_train)
        if p not in held_out:
            train_prompts.append(p)
    samples = {
        name: [generate(agent, tokenizer, train_prompts, max_new_tokens=max_new, sample=True,
                        temperature=cfg.sample_temperature, seed=cfg.seed * 10 + k + 5 * (name == "novice"))
               for k in range(2)]
        for name, agent in agents.items()
    }
    agent_rewards = {name: sum(task.reward(p, r) for p, r in zip(train_prompts, s[0])) / len(train_prompts)
                     for name, s in samples.items()}

    datasets_info, rows_out = {}, []
    baseline_row = {"variant": "-", "loss": "SFT model (start)", "mean_reward": sft_eval["mean_reward"],
                    "reward_se": sft_eval["reward_se"], "exact_match": sft_eval["exact_match"], "win_rate": 0.5,
                    "seconds": sft_seconds, "final_loss": None, "error": None}
    for variant in cfg.variants:
        pairs, stats = build_pairs(variant, train_prompts, samples, task, temperature=cfg.judge_temperature,
                                   seed=cfg.seed)
        datasets_info[variant] = stats
        echo(f"dataset {variant}: {stats['pairs']} pairs, label accuracy {stats['label_accuracy']:.2f}")
        for loss in cfg.losses:
            row = {"variant": variant, "loss": loss, "error": None}
            try:
                trained, seconds, logs = train_one(loss, sft_model, tokenizer, pairs, cfg, out_dir / "runs")
                ev = evaluate(trained, tokenizer, task, eval_prompts, baseline=sft_eval["rewards"],
                              max_new_tokens=max_new)
                row.update(mean_reward=ev["mean_reward"], reward_se=ev["reward_se"], exact_match=ev["exact_match"],
                           win_rate=ev["win_rate"], seconds=seconds, final_loss=logs.get("loss"),
                           examples=ev["examples"])
                if logs.get("loss") is not None and not math.isfinite(logs["loss"]):
                    row["error"] = "non-finite loss"
            except MirrorpoError:
                raise
            except Exception as exc:  # noqa: BLE001  (one failing loss must not sink the leaderboard)
                row.update(mean_reward=float("nan"), reward_se=float("nan"), exact_match=float("nan"),
                           win_rate=float("nan"), seconds=float("nan"), final_loss=None,
                           error=f"{type(exc).__name__}: {exc}")
            rows_out.append(row)
            echo(f"  {variant:>10} {loss:<14} reward {row['mean_reward']:.3f}  win {row['win_rate']:.2f}"
                 + (f"  [{row['error']}]" if row["error"] else ""))

    return {
        "config": asdict(cfg),
        "task": {"name": task.name, "min_digits": task.min_digits, "max_digits": task.max_digits,
                 "reward": "½·positional match + ½·multiset overlap, / max(len(y), n)"},
        "agents": {"expert": {"sft_steps": cfg.expert_steps, "greedy_reward": expert_eval["mean_reward"],
                              "win_rate": expert_eval["win_rate"], "sampled_reward": agent_rewards["expert"]},
                   "novice": {"sft_steps": cfg.sft_steps, "greedy_reward": sft_eval["mean_reward"],
                              "sampled_reward": agent_rewards["novice"], "note": "the SFT model PO starts from"}},
        "datasets": datasets_info,
        "baseline": baseline_row,
        "rows": rows_out,
        "seconds": time.perf_counter() - t_start,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
    }


# --- output -----------------------------------------------------------------------------------------------

CSV_FIELDS = ("variant", "rank", "loss", "mean_reward", "reward_se", "exact_match", "win_rate", "seconds",
              "final_loss", "error")


def leaderboard(result: dict) -> list[dict]:
    """Rows ranked by mean reward within each variant (NaN last), with the SFT start as a reference."""
    ranked = []
    for variant in result["config"]["variants"]:
        rows = [r for r in result["rows"] if r["variant"] == variant]
        rows.sort(key=lambda r: -r["mean_reward"] if math.isfinite(r["mean_reward"]) else math.inf)
        ranked += [{**r, "rank": i + 1} for i, r in enumerate(rows)]
    return ranked


def write_results(result: dict, out_dir: str | Path) -> tuple[Path, Path]:
    from mirrorpo.fileio import atomic_write_text

    out_dir = Path(out_dir)
    ranked = leaderboard(result)
    json_path = atomic_write_text(out_dir / "results.json",
                                  json.dumps({**result, "leaderboard": ranked}, indent=2, default=_json_default)
                                  + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerow({**result["baseline"], "rank": 0})
    for r in ranked:
        writer.writerow(r)
    csv_path = atomic_write_text(out_dir / "results.csv", buf.getvalue())
    return json_path, csv_path


def _json_default(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)


def print_leaderboard(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    cfg = result["config"]
    title = (f"Tiny-LLM diagnostic ({result['task']['name']} digits): {cfg['steps']} PO steps × {cfg['batch_size']} "
             f"pairs; greedy reward on {cfg['eval_prompts']} held-out prompts")
    table = Table(title=title)
    for col in ("variant", "#", "loss", "reward", "± se", "exact", "win vs SFT", "sec", "note"):
        table.add_column(col, justify="left" if col in ("variant", "loss", "note") else "right")
    b = result["baseline"]
    table.add_row("", "", b["loss"], f"{b['mean_reward']:.3f}", f"{b['reward_se']:.3f}", f"{b['exact_match']:.2f}",
                  "0.50", f"{b['seconds']:.1f}", "PO starts here")
    for r in leaderboard(result):
        ok = math.isfinite(r["mean_reward"])
        cells = (f"{r['mean_reward']:.3f}", f"{r['reward_se']:.3f}", f"{r['exact_match']:.2f}", f"{r['win_rate']:.2f}",
                 f"{r['seconds']:.1f}") if ok else ("—",) * 5
        table.add_row(r["variant"], str(r["rank"]), r["loss"], *cells, r["error"] or "")
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 110))
    console.print(table)
