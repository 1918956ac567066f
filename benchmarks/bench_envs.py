"""Environment steps per second of the batched rollout (mirrorpo.envs.rollout: one jit-compiled
jit(vmap(scan(policy + env.step))) program) per environment, backend and batch size.

    nice -n 19 .venv/bin/python benchmarks/bench_envs.py [--backends spring mjx] [--batches 1 16 256]
        [--length 200] [--repeats 2]

Writes benchmarks/results/envs.json (merging with earlier entries of other devices/backends).
Compile time is reported separately; steps/s counts batch × length over the best of --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from mirrorpo.provenance import machine

OUT = Path(__file__).parent / "results" / "envs.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", nargs="+", default=["ant", "three_legged_ant", "hopper"])
    ap.add_argument("--backends", nargs="+", default=["spring", "mjx"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16, 256])
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import jax
    import numpy as np

    from mirrorpo.agents.policy import init_policy, sample_action
    from mirrorpo.envs import get_spec, rollout

    device = f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}"
    results = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    for backend in args.backends:
        for env in args.envs:
            spec = get_spec(env)
            params = init_policy(jax.random.PRNGKey(0), spec.obs_dim, spec.act_dim)
            for b in args.batches:
                keys = jax.random.split(jax.random.PRNGKey(1), b)
                t0 = time.perf_counter()
                r = rollout(env, sample_action, params, keys, args.length, backend=backend)
                r.rewards.block_until_ready()
                compile_s = time.perf_counter() - t0
                best = float("inf")
                for i in range(args.repeats):
                    keys = jax.random.split(jax.random.PRNGKey(2 + i), b)
                    t0 = time.perf_counter()
                    r = rollout(env, sample_action, params, keys, args.length, backend=backend)
                    r.rewards.block_until_ready()
                    best = min(best, time.perf_counter() - t0)
                finite = bool(np.all(np.isfinite(np.asarray(r.obs))))
                row = {"device": device, "host": platform.node(), "machine": machine(), "env": env,
                       "backend": backend, "batch": b, "length": args.length, "steps_per_s": b * args.length / best,
                       "compile_s": round(compile_s, 1), "finite": finite, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                print(json.dumps(row), flush=True)
                results["runs"] = [x for x in results["runs"] if (x["device"], x["env"], x["backend"], x["batch"]) !=
                                   (device, env, backend, b)] + [row]
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
