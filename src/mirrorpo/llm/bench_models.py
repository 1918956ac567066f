"""The models of the offline LLM diagnostic: supervised fine-tuning, generation, evaluation against the
problem's reward, and preference optimisation of a copy of the SFT model with one loss."""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mirrorpo.llm.bench_config import BenchConfig


def quiet() -> None:
    """No loading bars, deprecation notices or gradient-checkpointing warnings from the libraries."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")


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


def sft_train(model, tokenizer, problem, rng: random.Random, *, steps: int, lr: float, batch_size: int,
              exclude: set[str], checkpoints: Sequence[int] = (), on_checkpoint: Callable | None = None):
    """Supervised fine-tuning on correct answers (AdamW, cosine-free constant lr)."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for step in range(1, steps + 1):
        prompts, answers = [], []
        while len(prompts) < batch_size:
            p, a = problem.sample(rng)
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


def evaluate(model, tokenizer, problem, prompts, *, baseline: list[float] | None, max_new_tokens: int) -> dict:
    """Greedy generations on ``prompts``: mean reward ± s.e. over prompts, exact-match rate, and the win
    rate against ``baseline`` (per-prompt rewards; ties count ½)."""
    responses = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    rewards = [problem.reward(p, r) for p, r in zip(prompts, responses)]
    exact = [r == problem.answer(problem.digits_of(p)) for p, r in zip(prompts, responses)]
    n = len(rewards)
    mean = sum(rewards) / n
    se = (sum((x - mean) ** 2 for x in rewards) / max(n - 1, 1) / n) ** 0.5
    out = {"mean_reward": mean, "reward_se": se, "exact_match": sum(exact) / n, "rewards": rewards,
           "examples": [{"prompt": p, "response": r} for p, r in list(zip(prompts, responses))[:3]]}
    if baseline is not None:
        wins = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(rewards, baseline)]
        out["win_rate"] = sum(wins) / n
    return out


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
