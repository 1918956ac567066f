"""What a loss's trained Hopper policy does: likelihoods after training and the actions it takes.

    python scripts/hopper_diagnosis.py [--preset full] [--algos sft,cpo,dpo,ipo,simpo] [--out DIR] [--episodes 16]

Trains each loss once (seed 1000, the bench's first final seed) on the bench's base dataset in DIR
(generated if missing) with the setting the bench chose for it (DIR/cells/base/ALGO.json; the middle of
the grid if that cell is not there), then rolls the policy out deterministically as the bench does.
Prints, per loss: the true return and episode length; the mean per-coordinate log-likelihood of the
chosen (expert) and rejected (bad agent) actions after training and the fraction of pairs ranked
correctly; the mean |μ| of the policy's (unclipped) action means on its own states, the fraction of
executed action coordinates at the ±1 bounds, and the mean log σ.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from mirrorpo.agents.policy import distribution, mean_action
from mirrorpo.benchmark import Bench, dataset_pairs, get_preset, grid
from mirrorpo.envs import rollout
from mirrorpo.tasks import get_task
from mirrorpo.train import make_train, registry_objective


def chosen_setting(bench: Bench, algo: str) -> dict:
    if bench.cell_path(algo, "base").is_file():
        return bench.cached_cell(algo, "base")["hparams"]
    return grid(algo, "quick")[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="full")
    ap.add_argument("--algos", default="sft,cpo,dpo,ipo,simpo")
    ap.add_argument("--out", default="runs/bench-hopper-full")
    ap.add_argument("--episodes", type=int, default=16)
    args = ap.parse_args()

    task, preset = get_task("hopper", "v1"), get_preset(args.preset)
    bench = Bench(task, preset, args.out)
    pairs = dataset_pairs(bench.dataset("base"))
    keys = jax.random.split(jax.random.PRNGKey(7), args.episodes)
    key = jax.random.PRNGKey(1000)
    rows = {"start policy": (task.initial_params(key), None)}
    for algo in args.algos.split(","):
        spec, objective = registry_objective(algo)
        hp = chosen_setting(bench, algo)
        train = jax.jit(make_train(task.step_logp, spec, objective, pairs.num_pairs, preset.train,
                                   task.tokens_per_step))
        result = train(task.initial_params(key), pairs, hp, key)
        rows[f"{algo} {hp}"] = (result.params, result)
    print(f"Hopper {args.preset}, base: {pairs.num_pairs} pairs; {args.episodes} episodes × {preset.eval_horizon} "
          f"steps, deterministic")
    print(f"{'policy':36s} {'return':>7s} {'length':>7s} {'ℓ_w':>7s} {'ℓ_l':>7s} {'ℓ_w>ℓ_l':>8s} {'mean |μ|':>9s} "
          f"{'at ±1':>6s} {'log σ':>6s}")
    for name, (trainable, result) in rows.items():
        params = task.full_params(trainable)
        r = rollout(task.env, mean_action, params, keys, preset.eval_horizon)
        alive = np.arange(r.actions.shape[1])[None, :] < np.asarray(r.lengths)[:, None]
        mu, _ = distribution(params, r.obs)
        mean_mu = float(np.abs(np.asarray(mu))[alive].mean())
        at_bound = float((np.abs(np.asarray(r.actions)) >= 0.999)[alive].mean())
        lw, ll, acc = ("", "", "") if result is None else (
            f"{float(result.final_mean_w):7.2f}", f"{float(result.final_mean_l):7.2f}", f"{float(result.final_accuracy):8.2f}")
        print(f"{name:36s} {float(np.asarray(r.returns).mean()):7.0f} {float(np.asarray(r.lengths).mean()):7.0f} "
              f"{lw:>7s} {ll:>7s} {acc:>8s} {mean_mu:9.2f} {at_bound:6.2f} {float(np.mean(trainable['log_std'])):6.2f}")


if __name__ == "__main__":
    main()
