"""Seconds per discovery generation with one process on one CPU device, one process on D CPU devices
(``--cpu-devices``, one candidate per core at a time) and N local processes on jax.distributed, at
the same population, measured in one run (the same CLI command a user types).

    python benchmarks/bench_distributed.py [--processes 2] [--cpu-devices 2] [--population 8]
        [--generations 3] [--variant base] [--hidden 126] [--out benchmarks/results/distributed.json]

Each configuration runs ``mirrorpo discover --preset quick`` in a fresh folder; the per-generation
time is the median of the generations after the first (the first one compiles). On one machine the
processes share its cores, so their ratio measures the overhead of the collectives and of splitting
the population, while the CPU-devices row measures the speed-up of training on every core; on N
hosts each process trains P/N candidates, so a generation costs about (the CPU-devices row's
time)·(1/N) + the gather (see the printed projection).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mirrorpo.fileio import atomic_write_text
from mirrorpo.provenance import machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(processes: int, devices: int, args, folder: Path) -> dict:
    command = [str(Path(sys.executable).parent / "mirrorpo"), "discover", "--task", "tla", "--variant", args.variant,
               "--preset", "quick", "--population", str(args.population), "--generations", str(args.generations),
               "--hidden", str(args.hidden), "--cpu-devices", str(devices),
               "--out", str(folder)] + (["--distributed"] if processes > 1 else [])
    port = free_port()
    t0 = time.perf_counter()
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **({"MIRRORPO_COORDINATOR": f"127.0.0.1:{port}",
                                                     "MIRRORPO_NUM_PROCESSES": str(processes),
                                                     "MIRRORPO_PROCESS_ID": str(i)} if processes > 1 else {})})
             for i in range(processes)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"error: {processes}-process discovery failed:\n{err[-2000:]}")
    wall = time.perf_counter() - t0
    log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    steady = [row["seconds"] for row in log[1:]] or [log[0]["seconds"]]
    return {"processes": processes, "cpu_devices": devices, "population": args.population, "generations": len(log),
            "seconds_per_generation": statistics.median(steady), "first_generation_s": log[0]["seconds"],
            "train_s": statistics.median(r["train_s"] for r in log[1:] or log),
            "eval_s": statistics.median(r["eval_s"] for r in log[1:] or log), "wall_s": wall,
            "final_return_mean": log[-1]["return_mean"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--cpu-devices", type=int, default=2)
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--variant", default="base")
    ap.add_argument("--hidden", type=int, default=126)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/distributed.json"))
    args = ap.parse_args()
    configs = [(1, 1), (1, args.cpu_devices), (args.processes, 1)]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(n, d, args, Path(tmp) / f"p{n}d{d}") for n, d in configs]
    one, devices, many = rows
    ratio = many["seconds_per_generation"] / one["seconds_per_generation"]
    devices_ratio = devices["seconds_per_generation"] / one["seconds_per_generation"]
    result = {"host": platform.node(), "machine": machine(), "rows": rows,
              "ratio_many_over_one": ratio, "ratio_devices_over_one": devices_ratio,
              "same_final_return": all(abs(r["final_return_mean"] - one["final_return_mean"]) < 1e-3 * max(
                  1.0, abs(one["final_return_mean"])) for r in rows)}
    for r in rows:
        print(f"{r['processes']} process(es) × {r['cpu_devices']} CPU device(s), population {r['population']}: "
              f"{r['seconds_per_generation']:.2f} s per generation (train {r['train_s']:.2f} s, eval "
              f"{r['eval_s']:.2f} s; first {r['first_generation_s']:.1f} s), final mean return "
              f"{r['final_return_mean']:.2f}")
    print(f"1 process on {args.cpu_devices} CPU devices / on 1: {devices_ratio:.2f}× the time per generation; "
          f"{args.processes} local processes / 1 process: {ratio:.2f}× on {os.cpu_count()} cores (shared). On "
          f"{args.processes} hosts of this kind, each process trains {args.population // args.processes} candidates: "
          f"≈ {devices['seconds_per_generation'] / args.processes:.2f} s per generation plus the gather.")
    atomic_write_text(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
