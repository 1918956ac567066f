"""MirrorPOTrainer(loss="dpo") against TRL's own DPOTrainer(loss_type="sigmoid"): step time and peak
memory on the same tiny Llama, the same data and settings, in the same run.

    python benchmarks/bench_llm.py [--steps 30] [--warmup 5] [--repeats 3] [--out benchmarks/results/llm.json]

Each measurement runs in a fresh subprocess (so one trainer's allocations cannot flatter or burden
the other), alternating ours / TRL's ``--repeats`` times. Per measurement: the median wall time of
an optimizer step after ``--warmup`` steps, the peak resident memory during training above the
process's memory before training (Linux ``VmHWM`` reset through ``/proc/self/clear_refs``), and
``torch.cuda.max_memory_allocated`` when a GPU is present. Prints both and the ratios, writes JSON.
Goal (issue 8): within 5 % in time, no extra memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mirrorpo.provenance import machine

RESULTS = Path(__file__).resolve().parent / "results" / "llm.json"


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def worker(which: str, a) -> dict:
    """One measurement: build the trainer, train warmup + steps, report timings and memory."""
    import torch

    torch.set_num_threads(a.threads)
    import datasets
    import transformers
    from transformers import TrainerCallback

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    from datasets import Dataset

    from mirrorpo.llm.tiny import char_tokenizer, tiny_llama
    from mirrorpo.llm.trainer import MirrorPOConfig, MirrorPOTrainer  # both workers import the same modules

    tokenizer = char_tokenizer()
    model = tiny_llama(tokenizer, hidden=a.hidden, layers=a.layers, heads=4, max_positions=512, seed=0)
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz "
    text = lambda n: "".join(rng.choice(letters) for _ in range(n))
    rows = [{"prompt": text(a.prompt_len), "chosen": text(a.completion_len), "rejected": text(a.completion_len)}
            for _ in range(a.batch_size * (a.steps + a.warmup))]
    ds = Dataset.from_list(rows)
    gpu = torch.cuda.is_available()
    settings = {"output_dir": f"/tmp/bench_llm_{which}", "per_device_train_batch_size": a.batch_size,
                "max_steps": a.steps + a.warmup, "learning_rate": 1e-5, "bf16": False,
                "gradient_checkpointing": False, "report_to": [], "logging_steps": 10, "save_strategy": "no",
                "use_cpu": not gpu, "disable_tqdm": True, "seed": 0, "beta": 0.1, "dataloader_num_workers": 0}

    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if gpu:
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    if which == "mirrorpo":
        trainer = MirrorPOTrainer(model, args=MirrorPOConfig(loss="dpo", loss_hparams={"beta": 0.1}, **settings),
                                  train_dataset=ds, processing_class=tokenizer, callbacks=[Clock()])
    else:
        import copy

        from trl import DPOConfig, DPOTrainer

        ref = copy.deepcopy(model).eval().requires_grad_(False)  # what MirrorPOTrainer does for an in-memory model
        trainer = DPOTrainer(model, ref_model=ref, args=DPOConfig(loss_type=["sigmoid"], **settings),
                             train_dataset=ds, processing_class=tokenizer, callbacks=[Clock()])
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    rss_before = _rss_kib("VmRSS")
    reset = _reset_peak_rss()
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    peak = _rss_kib("VmHWM") if reset else -1
    steps = [b - c for c, b in zip(stamps[a.warmup - 1:], stamps[a.warmup:])]
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "trainer": which,
        "median_step_s": statistics.median(steps),
        "mean_step_s": statistics.fmean(steps),
        "steps_timed": len(steps),
        "train_s": total,
        "peak_rss_above_start_mib": (peak - rss_before) / 1024 if reset else None,
        "rss_before_mib": rss_before / 1024,
        "cuda_max_allocated_mib": torch.cuda.max_memory_allocated() / 2**20 if gpu else None,
        "losses": losses,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="timed optimizer steps per measurement")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=4, help="measurements per trainer (alternating)")
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per step")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=48)
    ap.add_argument("--completion-len", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads in each worker")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--worker", choices=("mirrorpo", "trl"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a)))
        return

    passthrough = [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items()
                   if k not in ("out", "worker", "repeats")]
    runs: dict[str, list[dict]] = {"mirrorpo": [], "trl": []}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PYTHONWARNINGS": "ignore"}
    for r in range(a.repeats):
        for which in (("mirrorpo", "trl") if r % 2 == 0 else ("trl", "mirrorpo")):
            proc = subprocess.run([sys.executable, __file__, f"--worker={which}", *passthrough], env=env,
                                  capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(f"worker {which} failed:\n{proc.stderr[-3000:]}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[which].append(res)
            mem = res["peak_rss_above_start_mib"]
            print(f"  {which:<8} step {res['median_step_s'] * 1e3:7.2f} ms (median of {res['steps_timed']})"
                  + (f"   peak RSS +{mem:.1f} MiB" if mem is not None else ""), flush=True)

    def summary(which):
        rs = runs[which]
        out = {"median_step_s": statistics.median(r["median_step_s"] for r in rs),
               "step_s_per_repeat": [r["median_step_s"] for r in rs]}
        mems = [r["peak_rss_above_start_mib"] for r in rs if r["peak_rss_above_start_mib"] is not None]
        out["peak_rss_above_start_mib"] = statistics.median(mems) if mems else None
        out["peak_rss_per_repeat_mib"] = mems
        cuda = [r["cuda_max_allocated_mib"] for r in rs if r["cuda_max_allocated_mib"] is not None]
        out["cuda_max_allocated_mib"] = max(cuda) if cuda else None
        return out

    ours, theirs = summary("mirrorpo"), summary("trl")
    same_losses = all(
        all(abs(x - y) <= 1e-5 * max(1.0, abs(y)) for x, y in zip(m["losses"], t["losses"]))
        for m, t in zip(runs["mirrorpo"], runs["trl"])
    )
    ratio_time = ours["median_step_s"] / theirs["median_step_s"]
    ratio_mem = (ours["peak_rss_above_start_mib"] / theirs["peak_rss_above_start_mib"]
                 if ours["peak_rss_above_start_mib"] and theirs["peak_rss_above_start_mib"] else None)
    ratio_cuda = (ours["cuda_max_allocated_mib"] / theirs["cuda_max_allocated_mib"]
                  if ours["cuda_max_allocated_mib"] else None)
    import torch
    import transformers
    import trl

    result = {
        "benchmark": "MirrorPOTrainer(loss='dpo') vs trl.DPOTrainer(loss_type='sigmoid')",
        "settings": {k: v for k, v in vars(a).items() if k not in ("out", "worker")},
        "mirrorpo": ours,
        "trl": theirs,
        "ratio_step_time": ratio_time,
        "ratio_peak_rss": ratio_mem,
        "ratio_cuda_max_allocated": ratio_cuda,
        "same_logged_losses": same_losses,
        "goal": "ratio_step_time <= 1.05 and no extra memory",
        "machine": {**machine(), "python": platform.python_version(), "platform": platform.platform(),
                    "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "load_average": os.getloadavg()},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(f"step time   mirrorpo {ours['median_step_s'] * 1e3:.2f} ms   TRL {theirs['median_step_s'] * 1e3:.2f} ms   "
          f"ratio {ratio_time:.3f}")
    if ratio_mem is not None:
        print(f"peak RSS    mirrorpo +{ours['peak_rss_above_start_mib']:.1f} MiB   "
              f"TRL +{theirs['peak_rss_above_start_mib']:.1f} MiB   ratio {ratio_mem:.3f}")
    if ratio_cuda is not None:
        print(f"CUDA peak   mirrorpo {ours['cuda_max_allocated_mib']:.1f} MiB   "
              f"TRL {theirs['cuda_max_allocated_mib']:.1f} MiB   ratio {ratio_cuda:.3f}")
    print(f"same logged losses: {same_losses}")
    from mirrorpo.fileio import atomic_write_text

    atomic_write_text(a.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
