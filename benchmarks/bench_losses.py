"""Loss-library benchmark: loss + gradient time per call for every registered loss on a batch of
4096 pairs, and 256 MPO parameter vectors vmapped in one call versus a Python loop over them, at
that batch and at the inner-loop minibatch (2 pairs, the paper's protocol).

    python benchmarks/bench_losses.py [--pairs 4096] [--population 256] [--out benchmarks/results/losses.json]

Prints a table and writes JSON (with the machine and jax versions). Timings are medians over
repeats after a warm-up (compilation excluded, reported separately).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from mirrorpo.fileio import atomic_write_text
from mirrorpo.losses import LOSSES, MPOStructure, PairBatch, pair_loss
from mirrorpo.provenance import machine


def make_batch(key, pairs: int) -> PairBatch:
    k = jax.random.split(key, 6)
    len_w = jax.random.randint(k[0], (pairs,), 1, 1000).astype(jnp.float32)
    len_l = jax.random.randint(k[1], (pairs,), 1, 1000).astype(jnp.float32)
    mean = lambda kk: -jax.random.uniform(kk, (pairs,), minval=0.05, maxval=4.0)
    return PairBatch(mean(k[2]) * len_w, mean(k[3]) * len_l, len_w, len_l, mean(k[4]) * len_w, mean(k[5]) * len_l)


def timed(fn, *args, repeats: int) -> tuple[float, float]:
    """(compile+first-call seconds, median seconds per call)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def loss_and_grad(name):
    def f(logp_w, logp_l, batch):
        return jnp.mean(pair_loss(name, batch._replace(logp_w=logp_w, logp_l=logp_l)))

    return jax.jit(jax.value_and_grad(f, argnums=(0, 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=4096)
    ap.add_argument("--population", type=int, default=256)
    ap.add_argument("--inner-pairs", type=int, default=2, help="pairs per call in the inner-loop regime")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results/losses.json")
    args = ap.parse_args()

    batch = make_batch(jax.random.PRNGKey(0), args.pairs)
    rows = []
    print(f"loss + gradient, batch of {args.pairs} pairs, {jax.devices()[0].platform}")
    print(f"{'loss':<16}{'compile s':>11}{'µs / call':>12}")
    for name in sorted(LOSSES):
        first, per_call = timed(loss_and_grad(name), batch.logp_w, batch.logp_l, batch, repeats=args.repeats)
        rows.append({"loss": name, "compile_s": first, "us_per_call": per_call * 1e6})
        print(f"{name:<16}{first:>11.2f}{per_call * 1e6:>12.1f}")

    structure = MPOStructure("one_step", ("phi_inv", "psi", "g"), temporal=True)
    base = structure.init(jax.random.PRNGKey(1))
    population = base + 0.03 * jax.random.normal(jax.random.PRNGKey(2), (args.population, structure.size))

    def one(flat, batch):
        def f(logp_w, logp_l):
            b = batch._replace(logp_w=logp_w, logp_l=logp_l)
            return jnp.mean(structure.loss(flat, b, progress=0.5))

        return jax.value_and_grad(f, argnums=(0, 1))(batch.logp_w, batch.logp_l)

    single = jax.jit(one)
    vmapped = jax.jit(jax.vmap(one, in_axes=(0, None)))

    def loop(pop, batch):
        return [single(flat, batch) for flat in pop]

    mpo_rows = []
    print(f"\nMPO one-step (learn phi_inv, psi, g; temporal; {structure.size} params), loss + gradient, "
          f"{args.population} parameter vectors:")
    print(f"{'pairs':>8}{'vmap ms':>10}{'loop ms':>10}{'loop/vmap':>11}")
    for pairs in (args.pairs, args.inner_pairs):
        b = make_batch(jax.random.PRNGKey(3), pairs)
        _, t_vmap = timed(vmapped, population, b, repeats=max(3, args.repeats // 4))
        single(population[0], b)  # compile outside the loop timing
        _, t_loop = timed(loop, population, b, repeats=3)
        mpo_rows.append({"pairs": pairs, "vmap_ms": t_vmap * 1e3, "loop_ms": t_loop * 1e3,
                         "speedup": t_loop / t_vmap})
        print(f"{pairs:>8}{t_vmap * 1e3:>10.1f}{t_loop * 1e3:>10.1f}{t_loop / t_vmap:>10.2f}x")

    result = {
        "machine": {**machine(), "platform": platform.platform(), "device": str(jax.devices()[0])},
        "pairs": args.pairs,
        "losses": rows,
        "mpo_population": {"population": args.population, "params": structure.size, "runs": mpo_rows},
    }
    atomic_write_text(args.out, json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
