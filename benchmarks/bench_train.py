"""Offline-PO training throughput: pair-updates per second for one run, for R runs vmapped in one
program, for a plain Python loop of single runs, and for runs one at a time on every CPU device at
once (discovery's layout, one device per core), measured in the same process; with each, the share
of this machine's float32 matmul throughput (a 2048² matmul on all cores, measured here) that the
policy MLP's forward and backward FLOPs reach.

    python benchmarks/bench_train.py [--task tla] [--pairs 128] [--horizon 200] [--runs 256]
        [--loop-runs 8] [--epochs 1] [--cpu-devices N] [--out benchmarks/results/train.json]

A pair-update is one preference pair used in one optimizer step (minibatch of 2 pairs → 2 per
step). Uses the real task (shipped agents, brax physics for the dataset) and the DPO protocol's
one-step twin (ORPO) so every run is the same program; compile time is reported separately.

Baseline in the same run: the same training with the action likelihood of before 2026-12-02
(``autodiff_step_logp``: ``jax.scipy.special.log_ndtr`` differentiated by autodiff), one run and
runs on every CPU device, so the speed-up of the closed-form gradient is a ratio of two numbers
measured side by side.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace

import jax
import jax.numpy as jnp

from mirrorpo.agents.policy import RESOLUTION, distribution, policy_kind
from mirrorpo.benchmark import Bench, dataset_pairs, get_preset
from mirrorpo.fileio import atomic_write_text
from mirrorpo.meta import population_sharding, use_cpu_devices
from mirrorpo.provenance import machine
from mirrorpo.tasks import get_task
from mirrorpo.train import TrainConfig, make_train, registry_objective


def timed(fn, *args):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def autodiff_step_logp(task):
    """The task's per-step log-likelihood as computed before 2026-12-02: log(Φ(z_hi) − Φ(z_lo)) from
    ``log_ndtr`` in the left tail, the uniform mixture by ``logaddexp``, all differentiated by autodiff."""
    if policy_kind(task.agents[1][0]) == "tanh_gaussian_sd":
        raise SystemExit("bench_train's baseline likelihood covers clipped-Gaussian policies only; use another task.")

    def log_interval(z_lo, z_hi):
        flip = (z_lo + z_hi) > 0
        lo, hi = jnp.where(flip, -z_hi, z_lo), jnp.where(flip, -z_lo, z_hi)
        log_hi, log_lo = jax.scipy.special.log_ndtr(hi), jax.scipy.special.log_ndtr(lo)
        x = jnp.minimum(log_lo - log_hi, -1e-30)
        return log_hi + jnp.where(x > -0.6931472, jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))

    def step_logp(trainable, obs, actions):
        mu, sigma = distribution(task.full_params(trainable), obs)
        half, w = 0.5 * RESOLUTION, task.uniform_weight
        lo = jnp.where(actions - half <= -1.0, -1e3, actions - half)
        hi = jnp.where(actions + half >= 1.0, 1e3, actions + half)
        gauss = jnp.minimum(log_interval((lo - mu) / sigma, (hi - mu) / sigma), 0.0)
        width = jnp.minimum(actions + half, 1.0) - jnp.maximum(actions - half, -1.0)
        mixed = jnp.logaddexp(jnp.log1p(-w) + gauss, jnp.log(w * 0.5 * width)) if w else gauss
        return jnp.minimum(mixed, 0.0).sum(axis=-1)

    return step_logp


def per_device_runs(train, pairs, sharding):
    """Discovery's layout: each CPU device trains its runs one at a time (a chunk of 1)."""
    return jax.jit(jax.shard_map(
        lambda p, k: jax.lax.map(lambda a: train(a[0], pairs, {"lam": 0.1}, a[1]).params, (p, k)),
        mesh=sharding.mesh, in_specs=(sharding.spec, sharding.spec), out_specs=sharding.spec, check_vma=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="tla")
    ap.add_argument("--pairs", type=int, default=128)
    ap.add_argument("--horizon", type=int, default=200)
    ap.add_argument("--runs", type=int, default=256)
    ap.add_argument("--loop-runs", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--cpu-devices", type=int, default=None, help="default: the cores this process may use")
    ap.add_argument("--out", default="benchmarks/results/train.json")
    args = ap.parse_args()
    use_cpu_devices(args.cpu_devices)  # before JAX starts its backend

    task = get_task(args.task)
    preset = replace(get_preset("quick"), pairs=args.pairs, horizon=args.horizon)
    pairs = dataset_pairs(Bench(task, preset, f"out/bench-train/{args.task}-{args.pairs}x{args.horizon}").dataset("base"))
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
    t_single = min(timed(single, p1, pairs, {"lam": 0.1}, keys[0]) for _ in range(5))  # best of 5: short
    compile_many = timed(many, params0, pairs, hp, keys)
    t_many = timed(many, params0, pairs, hp, keys)
    t_loop = timed(lambda: [single(jax.tree.map(lambda x, i=i: x[i], params0), pairs, {"lam": 0.1}, keys[i])
                            for i in range(args.loop_runs)])
    loop_per_run = t_loop / args.loop_runs

    sharding = population_sharding(2 * len(jax.devices()))  # discovery's layout: a chunk of 1 run per device
    devices = sharding.mesh.size
    per_core = per_device_runs(train, pairs, sharding)
    spread = jax.device_put((jax.tree.map(lambda x: x[:2 * devices], params0), keys[:2 * devices]), sharding)
    compile_per_core = timed(per_core, *spread)
    t_per_core = min(timed(per_core, *spread) for _ in range(5))

    before = make_train(autodiff_step_logp(task), spec, objective, pairs.num_pairs, config, task.tokens_per_step)
    single_before, per_core_before = jax.jit(before), per_device_runs(before, pairs, sharding)
    timed(single_before, p1, pairs, {"lam": 0.1}, keys[0])
    timed(per_core_before, *spread)
    # alternate the two programs so that a drift of the machine's speed hits both alike
    t_single_before = t_per_core_before = float("inf")
    for _ in range(5):
        t_single_before = min(t_single_before, timed(single_before, p1, pairs, {"lam": 0.1}, keys[0]))
        t_single = min(t_single, timed(single, p1, pairs, {"lam": 0.1}, keys[0]))
        t_per_core_before = min(t_per_core_before, timed(per_core_before, *spread))
        t_per_core = min(t_per_core, timed(per_core, *spread))

    a = jnp.ones((2048, 2048), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    timed(matmul, a)
    matmul_gflops = 2 * 2048**3 / min(timed(matmul, a) for _ in range(5)) / 1e9
    sizes = [layer["w"].shape for layer in p1["actor"]]
    flops_per_update = 2 * args.horizon * 6 * sum(i * o for i, o in sizes)  # 2 trajectories, fwd + bwd = 3 × 2·in·out
    share = lambda rate: rate * flops_per_update / 1e9 / matmul_gflops
    result = {
        "machine": {**machine(), "platform": platform.platform(), "device": str(jax.devices()[0])},
        "task": args.task, "pairs": pairs.num_pairs, "horizon": args.horizon, "epochs": args.epochs,
        "updates_per_run": updates_per_run,
        "single": {"seconds": t_single, "pair_updates_per_s": updates_per_run / t_single, "compile_s": compile_single},
        "vmapped": {"runs": args.runs, "seconds": t_many, "pair_updates_per_s": args.runs * updates_per_run / t_many,
                    "compile_s": compile_many},
        "loop": {"runs": args.loop_runs, "seconds_per_run": loop_per_run,
                 "pair_updates_per_s": updates_per_run / loop_per_run},
    }
    result["per_core"] = {"devices": devices, "runs": 2 * devices, "seconds": t_per_core,
                          "pair_updates_per_s": 2 * devices * updates_per_run / t_per_core,
                          "compile_s": compile_per_core}
    result["single_autodiff_likelihood"] = {"seconds": t_single_before,
                                            "pair_updates_per_s": updates_per_run / t_single_before}
    result["per_core_autodiff_likelihood"] = {"devices": devices, "runs": 2 * devices, "seconds": t_per_core_before,
                                              "pair_updates_per_s": 2 * devices * updates_per_run / t_per_core_before}
    result["closed_form_gradient_speedup"] = {"single": t_single_before / t_single,
                                              "per_core": t_per_core_before / t_per_core}
    result["vmapped_over_loop"] = result["vmapped"]["pair_updates_per_s"] / result["loop"]["pair_updates_per_s"]
    result["per_core_over_single"] = result["per_core"]["pair_updates_per_s"] / result["single"]["pair_updates_per_s"]
    result["matmul_2048_gflops"] = matmul_gflops
    result["mlp_flops_per_pair_update"] = flops_per_update
    result["share_of_matmul_throughput"] = {k: share(result[k]["pair_updates_per_s"])
                                            for k in ("single", "vmapped", "loop", "per_core",
                                                      "single_autodiff_likelihood", "per_core_autodiff_likelihood")}
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
    print(f"  {2 * devices} runs on {devices} CPU devices: {result['per_core']['pair_updates_per_s']:6.0f} pair-updates/s "
          f"({t_per_core:.2f} s; compile {compile_per_core:.1f} s), {result['per_core_over_single']:.2f}x one run")
    print(f"  before (likelihood by autodiff through log_ndtr): one run "
          f"{result['single_autodiff_likelihood']['pair_updates_per_s']:.0f}, {2 * devices} runs on {devices} devices "
          f"{result['per_core_autodiff_likelihood']['pair_updates_per_s']:.0f} pair-updates/s; closed-form gradient "
          f"{result['closed_form_gradient_speedup']['single']:.2f}x / {result['closed_form_gradient_speedup']['per_core']:.2f}x")
    print(f"  vmapped / loop : {result['vmapped_over_loop']:10.1f}x")
    print(f"  share of the 2048² matmul's {matmul_gflops:.0f} GFLOP/s ({flops_per_update / 1e6:.1f} MFLOP of MLP per "
          "pair-update): " + ", ".join(f"{k} {v:.0%}" for k, v in result["share_of_matmul_throughput"].items()))
    print(f"  projected full TLA inner loop (12 epochs, 1280 × 1000) for 256 runs on this device: "
          f"{result['full_tla_inner_loop_256_runs_s_projected']:.0f} s")
    atomic_write_text(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
