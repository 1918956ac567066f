"""Offline-PO training throughput: pair-updates per second for one run, for R runs vmapped in one
program, and for a plain Python loop of single runs (measured in the same process).

    python benchmarks/bench_train.py [--task tla] [--pairs 128] [--horizon 200] [--runs 256]
        [--loop-runs 8] [--epochs 1] [--out benchmarks/results/train.json]

A pair-update is one preference pair used in one optimizer step (minibatch of 2 pairs → 2 per
step). Uses the real task (shipped agents, brax physics for the dataset) and the DPO protocol's
one-step twin (ORPO) so every run is the same program; compile time is reported separately.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace

import jax
import jax.numpy as jnp

from mirrorpo.benchmark import Bench, dataset_pairs, get_preset
from mirrorpo.fileio import atomic_write_text
from mirrorpo.tasks import get_task
from mirrorpo.train import TrainConfig, make_train, registry_objective


def timed(fn, *args):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="tla")
    ap.add_argument("--pairs", type=int, default=128)
    ap.add_argument("--horizon", type=int, default=200)
    ap.add_argument("--runs", type=int, default=256)
    ap.add_argument("--loop-runs", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/train.json")
    args = ap.parse_args()

    task = get_task(args.task)
    preset = replace(get_preset("quick"), pairs=args.pairs, horizon=args.horizon)
    pairs = dataset_pairs(Bench(task, preset, f"out/bench-train/{args.task}").dataset("base"))
    config = TrainConfig(epochs=args.epochs)
    spec, objective = registry_objective("orpo")
    train = make_train(task.step_logp, spec, objective, pairs.num_pairs, config, task.tokens_per_step)
    updates_per_run = args.epochs * (pairs.num_pairs // config.batch_pairs) * config.batch_pairs

    keys = jax.random.split(jax.random.PRNGKey(0), args.runs)
    params0 = jax.vmap(task.initial_params)(keys)
    hp = {"lam": jnp.full((args.runs,), 0.1)}
    single = jax.jit(train)
    many = jax.jit(jax.vmap(train, in_axes=(0, None, 0, 0)))
    p1 = jax.tree.map(lambda x: x[0], params0)

    compile_single = timed(single, p1, pairs, {"lam": 0.1}, keys[0])
    t_single = timed(single, p1, pairs, {"lam": 0.1}, keys[0])
    compile_many = timed(many, params0, pairs, hp, keys)
    t_many = timed(many, params0, pairs, hp, keys)
    t_loop = timed(lambda: [single(jax.tree.map(lambda x, i=i: x[i], params0), pairs, {"lam": 0.1}, keys[i])
                            for i in range(args.loop_runs)])
    loop_per_run = t_loop / args.loop_runs
    result = {
        "machine": {"platform": platform.platform(), "device": str(jax.devices()[0]), "jax": jax.__version__},
        "task": args.task, "pairs": pairs.num_pairs, "horizon": args.horizon, "epochs": args.epochs,
        "updates_per_run": updates_per_run,
        "single": {"seconds": t_single, "pair_updates_per_s": updates_per_run / t_single, "compile_s": compile_single},
        "vmapped": {"runs": args.runs, "seconds": t_many, "pair_updates_per_s": args.runs * updates_per_run / t_many,
                    "compile_s": compile_many},
        "loop": {"runs": args.loop_runs, "seconds_per_run": loop_per_run,
                 "pair_updates_per_s": updates_per_run / loop_per_run},
    }
    result["vmapped_over_loop"] = result["vmapped"]["pair_updates_per_s"] / result["loop"]["pair_updates_per_s"]
    result["full_tla_inner_loop_256_runs_s_projected"] = (
        t_many / (args.epochs * pairs.num_pairs * args.horizon) * 12 * 1280 * 1000 * 256 / args.runs)
    print(f"{args.task}: {pairs.num_pairs} pairs × {args.horizon} steps, {args.epochs} epoch(s), "
          f"{updates_per_run} pair-updates per run, {result['machine']['device']}")
    print(f"  one run        : {result['single']['pair_updates_per_s']:10.0f} pair-updates/s "
          f"({t_single:.2f} s; compile {compile_single:.1f} s)")
    print(f"  {args.runs} vmapped    : {result['vmapped']['pair_updates_per_s']:10.0f} pair-updates/s "
          f"({t_many:.2f} s; compile {compile_many:.1f} s)")
    print(f"  Python loop    : {result['loop']['pair_updates_per_s']:10.0f} pair-updates/s "
          f"({loop_per_run:.2f} s per run, {args.loop_runs} runs)")
    print(f"  vmapped / loop : {result['vmapped_over_loop']:10.1f}x")
    print(f"  projected full TLA inner loop (12 epochs, 1280 × 1000) for 256 runs on this device: "
          f"{result['full_tla_inner_loop_256_runs_s_projected']:.0f} s")
    atomic_write_text(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
