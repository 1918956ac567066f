"""``mirrorpo llm``: train a causal LM with any mirrorpo loss (TRL), run the offline LLM diagnostic,
list the PyTorch losses. torch / transformers / trl are imported inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mirrorpo.cli.options import Dtype, JsonFlag, LlmPreset, comma_list, print_json
from mirrorpo.errors import MirrorpoError

app = typer.Typer(
    help="LLM transfer (docs/design.md §6): every mirrorpo loss in PyTorch, inside TRL.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _hparams(items: list[str] | None) -> dict[str, float]:
    from mirrorpo.cli.losses import parse_hparams

    return parse_hparams(items)


def _quiet_libraries() -> None:
    """No loading bars or library deprecation notices on the console; training progress stays."""
    import warnings

    import datasets
    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()


def _show_progress(trainer, update) -> None:
    """The shared progress bar instead of the Trainer's own (tqdm); each log line echoed as JSON."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

    class Bar(TrainerCallback):
        label = ""

        def on_step_end(self, args, state, control, **kwargs):
            update(state.global_step, state.max_steps, self.label)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                typer.echo(json.dumps({"step": state.global_step, **logs}))
                self.label = f"loss {logs['loss']:.4g}" if "loss" in logs else self.label
                update(state.global_step, state.max_steps, self.label)

    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    trainer.add_callback(Bar())


@app.command("train")
def train(
    model: Annotated[str, typer.Option("--model", help="Local model directory or Hugging Face Hub id.")],
    dataset: Annotated[str, typer.Option(
        "--dataset", help="Preference data (prompt/chosen/rejected): json/jsonl/parquet/csv file, a saved HF "
                          "dataset directory, or a Hub id such as argilla/dpo-mix-7k.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (model or LoRA adapter, tokenizer, logs).")],
    loss: Annotated[str, typer.Option("--loss", help="Registry name, 'a+0.5*b', or mpo:FILE.")] = "colpo",
    hp: Annotated[list[str] | None, typer.Option("--hp", help="Loss hyper-parameter NAME=VALUE (repeatable).")] = None,
    preset: Annotated[LlmPreset, typer.Option(
        help="'paper': LoRA r128 α256 dropout .05, lr 5e-5, 3 epochs, total batch 64, max length 2048 "
             "(flags below override it); 'trl': TRL's DPOConfig defaults, full fine-tuning.")] = LlmPreset.paper,
    split: Annotated[str, typer.Option(help="Dataset split.")] = "train",
    lora: Annotated[bool | None, typer.Option("--lora/--no-lora", help="LoRA adapters (paper preset: on).")] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank.")] = None,
    lora_alpha: Annotated[float | None, typer.Option(help="LoRA α.")] = None,
    lora_dropout: Annotated[float | None, typer.Option(help="LoRA dropout.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Training epochs.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Per-device batch size (pairs).")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Gradient accumulation steps.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Maximum prompt+completion tokens.")] = None,
    dtype: Annotated[Dtype, typer.Option(help="Weights dtype.")] = Dtype.float32,
    bf16: Annotated[bool | None, typer.Option("--bf16/--no-bf16", help="bf16 mixed precision "
                                              "(default: on where a GPU supports it).")] = None,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing",
                                                         help="Trade compute for memory.")] = False,
    ref_model: Annotated[str | None, typer.Option(help="Reference model (default: the initial policy).")] = None,
    offline: Annotated[bool | None, typer.Option("--offline/--online", help="Hub access (default: online if the "
                                                 "Hub answers and HF_HUB_OFFLINE is unset).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    logging_steps: Annotated[int, typer.Option(help="Log every N steps.")] = 10,
):
    """Fine-tune a causal LM on preference data with any mirrorpo loss (TRL DPOTrainer underneath)."""
    from mirrorpo.llm.losses import get_loss

    loss_hparams = _hparams(hp)
    spec = get_loss(loss).spec  # unknown names, bad hyper-parameters: fail before loading anything
    get_loss(loss).resolve_hparams(loss_hparams)

    from mirrorpo.llm.hub import load_model_and_tokenizer, load_preference_dataset

    _quiet_libraries()
    train_ds = load_preference_dataset(dataset, split=split, offline=offline)
    policy, tokenizer = load_model_and_tokenizer(model, offline=offline, dtype=dtype.value)
    reference = None
    if ref_model is not None and spec.needs_reference:
        reference, _ = load_model_and_tokenizer(ref_model, offline=offline, dtype=dtype.value)

    import torch

    from mirrorpo.llm.trainer import MirrorPOConfig, MirrorPOTrainer, paper_config, paper_lora_config

    gpu = torch.cuda.is_available()
    overrides = {
        "bf16": bf16 if bf16 is not None else bool(gpu and torch.cuda.is_bf16_supported()),
        "gradient_checkpointing": gradient_checkpointing,
        "seed": seed,
        "logging_steps": logging_steps,
        "report_to": [],
        "save_strategy": "no",
        "use_cpu": not gpu,
    }
    for key, value in (("learning_rate", lr), ("num_train_epochs", epochs), ("max_steps", max_steps),
                       ("gradient_accumulation_steps", grad_accum), ("max_length", max_length)):
        if value is not None:
            overrides[key] = value
    use_lora = lora if lora is not None else preset is LlmPreset.paper
    if preset is LlmPreset.paper:
        args = paper_config(str(out), loss=loss, loss_hparams=loss_hparams,
                            **({"per_device_train_batch_size": batch_size} if batch_size else {}), **overrides)
    else:
        if batch_size:
            overrides["per_device_train_batch_size"] = batch_size
        args = MirrorPOConfig(output_dir=str(out), loss=loss, loss_hparams=loss_hparams, **overrides)
    peft_config = None
    if use_lora:
        lora_overrides = {k: v for k, v in (("r", lora_r), ("lora_alpha", lora_alpha),
                                            ("lora_dropout", lora_dropout)) if v is not None}
        peft_config = paper_lora_config(**lora_overrides)

    try:
        trainer = MirrorPOTrainer(policy, ref_model=reference, args=args, train_dataset=train_ds,
                                  processing_class=tokenizer, peft_config=peft_config)
    except (ValueError, TypeError, KeyError) as exc:  # TRL's checks of model, tokenizer and data
        if isinstance(exc, MirrorpoError):
            raise
        raise MirrorpoError(f"cannot set up training of '{model}' on '{dataset}': {exc}") from None
    typer.echo(f"training {model} with loss {spec.name} ({'LoRA' if use_lora else 'full fine-tuning'}, "
               f"{'with' if spec.needs_reference else 'no'} reference) on {len(train_ds)} pairs")
    from mirrorpo.cli.progress import progress_bar

    with progress_bar(f"{spec.name}: steps") as update:
        _show_progress(trainer, update)
        trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))

    from mirrorpo.fileio import atomic_write_text
    from mirrorpo.llm.trainer import save_loss_description

    save_loss_description(trainer, Path(out) / "mirrorpo_loss.json")
    atomic_write_text(Path(out) / "log_history.json", json.dumps(trainer.state.log_history, indent=2) + "\n")
    typer.echo(f"wrote {out}")


def _per_loss_hparams(items: list[str] | None) -> dict[str, dict[str, float]]:
    """``["dpo:beta=0.5", "mpo:f.safetensors:lam=1"]`` → ``{"dpo": {"beta": 0.5}, ...}``."""
    per_loss: dict[str, dict[str, float]] = {}
    for item in items or []:
        name, sep, rest = item.rpartition(":")  # a loss may contain ":" (mpo:PATH)
        if not sep:
            raise MirrorpoError(f"--hp expects LOSS:NAME=VALUE (e.g. --hp dpo:beta=0.5); got {item!r}.")
        per_loss.setdefault(name.strip(), {}).update(_hparams([rest]))
    return per_loss


@app.command("bench")
def bench(
    out: Annotated[Path, typer.Option("--out", help="Output folder (results.json, results.csv, leaderboard.png).")
                   ] = Path("out/llm-bench"),
    losses: Annotated[str | None, typer.Option(help="Comma-separated losses (default: a paper selection).")] = None,
    variants: Annotated[str | None, typer.Option(
        help="Comma-separated dataset variants, as in `mirrorpo bench`: base, mixed, bad-judge, noisy-EPS with EPS "
             "in (0, 0.5) (default: base,noisy-0.3).")] = None,
    seeds: Annotated[int, typer.Option(help="Whole runs, seeds --seed … --seed+N−1: the leaderboard reports mean ± "
                                            "s.e. over seeds (one seed: the s.e. over held-out prompts).")] = 1,
    steps: Annotated[int | None, typer.Option(help="Preference-optimisation steps per loss.")] = None,
    sft_steps: Annotated[int | None, typer.Option(help="SFT steps of the start model.")] = None,
    expert_steps: Annotated[int | None, typer.Option(help="SFT steps of the expert agent.")] = None,
    pairs: Annotated[int | None, typer.Option(help="Training prompts (pairs before dropping ties).")] = None,
    eval_prompts: Annotated[int | None, typer.Option(help="Held-out prompts for evaluation.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate of preference optimisation.")] = None,
    hidden: Annotated[int | None, typer.Option(help="Hidden size of the tiny Llama.")] = None,
    layers: Annotated[int | None, typer.Option(help="Layers of the tiny Llama.")] = None,
    seed: Annotated[int, typer.Option(help="Seed (the first, with --seeds).")] = 0,
    hp: Annotated[list[str] | None, typer.Option(
        "--hp", help="LOSS:NAME=VALUE hyper-parameter override, e.g. dpo:beta=0.5 (repeatable).")] = None,
    log_dir: Annotated[Path | None, typer.Option(
        help="Also log to TensorBoard here: llm_bench/VARIANT/LOSS/reward and …/win_rate (step: the row's index "
             "in the run), and the leaderboard as text.")] = None,
):
    """Offline LLM diagnostic: tiny Llama, digit sorting, SFT, Bradley–Terry preference pairs, each loss;
    prints a leaderboard (greedy reward on held-out prompts, win rate vs the SFT model) and draws it."""
    from mirrorpo.cli.progress import progress_bar
    from mirrorpo.llm.bench import BenchConfig, print_leaderboard, run_bench, write_results

    if seeds < 1:
        raise MirrorpoError(f"--seeds must be ≥ 1; got {seeds}.")
    per_loss = _per_loss_hparams(hp)
    given = {"losses": comma_list(losses, "--losses", "dpo,orpo,colpo"),
             "variants": comma_list(variants, "--variants", "base,noisy-0.3"), "steps": steps,
             "sft_steps": sft_steps, "expert_steps": expert_steps, "pairs": pairs, "eval_prompts": eval_prompts,
             "lr": lr, "hidden": hidden, "layers": layers}
    cfg = BenchConfig(seed=seed, seeds=seeds, hparams=per_loss, **{k: v for k, v in given.items() if v is not None})
    unknown = sorted(set(per_loss) - set(cfg.losses))
    if unknown:
        raise MirrorpoError(f"--hp names losses not in the run: {', '.join(unknown)}.")
    with progress_bar("llm bench: SFT and trainings") as update:
        result = run_bench(cfg, out_dir=out, echo=typer.echo, progress=update)
    print_leaderboard(result)
    json_path, csv_path = write_results(result, out)
    png_path = _plot(result, out / "leaderboard.png")
    _log(result, log_dir)
    typer.echo(f"wrote {json_path}, {csv_path} and {png_path} ({result['seconds']:.0f}s)")


def _plot(result: dict, path: Path) -> Path:
    from mirrorpo.llm.bench import plot_records, spread
    from mirrorpo.report.leaderboard import plot_leaderboard

    records, references = plot_records(result)
    return plot_leaderboard(records, path, f"Tiny-LLM diagnostic: greedy reward on held-out prompts "
                                           f"({spread(result)})", references)


def _log(result: dict, log_dir: Path | None) -> None:
    """The result in TensorBoard (nothing without ``log_dir``)."""
    import math

    from mirrorpo.llm.bench import leaderboard_markdown
    from mirrorpo.report.curves import curve_log

    with curve_log(log_dir) as log:
        for step, r in enumerate(result["rows"]):
            for name, key in (("reward", "mean_reward"), ("win_rate", "win_rate")):
                value = r[key] if math.isfinite(r[key]) else None
                log.scalar(f"llm_bench/{r['variant']}/{r['loss']}/{name}", value, step)
        log.text("llm_bench/leaderboard", leaderboard_markdown(result))


@app.command("losses")
def losses_command(as_json: JsonFlag = False):
    """List the registry's losses and whether each has its PyTorch twin (all should)."""
    from mirrorpo.cli.losses import catalogue
    from mirrorpo.llm.losses import missing_torch_losses

    missing = missing_torch_losses()
    rows = [{**r, "torch": r["name"] not in missing} for r in catalogue()]
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mirrorpo losses in PyTorch (mirrorpo.llm.losses)")
    for col in ("name", "family", "defaults", "ref", "torch"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["family"], ", ".join(f"{k}={v:g}" for k, v in r["hparams"].items()),
                      "yes" if r["needs_reference"] else "", "yes" if r["torch"] else "MISSING")
    Console().print(table)
