"""Why push-away losses collapse on TLA: split the evaluation return into the leg-4 penalty and the rest.

    python scripts/tla_leg4_diagnosis.py [--preset quick] [--algos sft,cpo,orpo,dpo,ipo,simpo,lpo] [--out DIR]

Trains each loss once (its grid's middle setting, seed 0) on the base dataset of the chosen preset (the
bench's own dataset in DIR, generated if missing) and rolls out the trained policy deterministically as
the bench does. Prints, per loss: the true TLA return, the leg-4 penalty paid (TLA_PENALTY·(a₀² + a₁²)
summed over the episode), and the return without it, plus the mean |command| on the leg-4 actuators.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from mirrorpo.agents import mean_action
from mirrorpo.benchmark import Bench, dataset_pairs, get_preset, grid
from mirrorpo.envs import TLA_LEG4_ACTUATORS, rollout, tla_penalty
from mirrorpo.tasks import get_task
from mirrorpo.train import make_train, registry_objective


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--algos", default="sft,cpo,orpo,dpo,ipo,simpo,lpo")
    ap.add_argument("--out", default="out/leg4")
    args = ap.parse_args()

    task, preset = get_task("tla", "v1"), get_preset(args.preset)
    pairs = dataset_pairs(Bench(task, preset, args.out).dataset("base"))
    keys = jax.random.split(jax.random.PRNGKey(7), preset.eval_episodes)
    policies = {"start policy": task.initial_params(jax.random.PRNGKey(0))}
    for algo in args.algos.split(","):
        spec, objective = registry_objective(algo)
        hp = grid(algo, "quick")[0]  # the middle of the grid
        train = jax.jit(make_train(task.step_logp, spec, objective, pairs.num_pairs, preset.train,
                                   task.tokens_per_step))
        policies[f"{algo} {hp}"] = train(task.initial_params(jax.random.PRNGKey(0)), pairs, hp,
                                         jax.random.PRNGKey(1000)).params
    print(f"TLA {args.preset}: {preset.eval_episodes} episodes × {preset.eval_horizon} steps, deterministic")
    print(f"{'policy':32s} {'return':>9s} {'leg-4 penalty':>14s} {'return + penalty':>17s} {'mean |a| leg 4':>15s}")
    for name, trainable in policies.items():
        r = rollout("three_legged_ant", mean_action, task.full_params(trainable), keys, preset.eval_horizon)
        ret, pen = np.asarray(r.returns), np.asarray(tla_penalty(r.actions).sum(axis=-1))
        leg4 = float(np.abs(np.asarray(r.actions)[..., list(TLA_LEG4_ACTUATORS)]).mean())
        print(f"{name:32s} {ret.mean():9.0f} {pen.mean():14.0f} {(ret + pen).mean():17.0f} {leg4:15.2f}")


if __name__ == "__main__":
    main()
