"""The fidelity study (issue 17): change one choice of the TLA suite at a time, run the paper's ten
baselines at quick scale on base, mixed and noisy-0.2, and report Kendall τ against the paper's
Table 2 per column, the four findings, the CPU time, and where the push-away losses move the policy.

    python scripts/fidelity_study.py [--candidates v1,eval-sample,...] [--seeds 3] [--out docs/results/fidelity]

Resumable: each candidate is a bench folder OUT/<candidate>/ whose finished cells are cached, so a
rerun continues where it stopped (commit the folders as they fill). The datasets are generated once
into out/fidelity-data-seed<SEED>/ and shared (they come from the shipped agents and do not depend on any
candidate; a candidate with its own environment and agents gets its own). Writes OUT/<candidate>/{results,references,findings,diagnosis,cost}.json and
OUT/summary.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from mirrorpo.agents import distribution
from mirrorpo.benchmark import Bench, dataset_pairs, get_preset, parse_grid
from mirrorpo.envs import TLA_LEG4_ACTUATORS, rollout, tla_penalty
from mirrorpo.fileio import atomic_write_text
from mirrorpo.report.findings import PAPER_BASELINES
from mirrorpo.report.leaderboard import write_results
from mirrorpo.report.paper import findings_report
from mirrorpo.tasks import get_task
from mirrorpo.train import make_train, registry_objective

VARIANTS = ("base", "mixed", "noisy-0.2")
PUSH_AWAY = ("dpo", "ipo", "simpo", "lpo")  # no term that holds the chosen likelihood up
WIDE_GRIDS = ["simpo.beta=0.5,2,10", "simpo.gamma=0,1,5,20,100", "lpo.lam=0.01,0.1,1,10"]
# β large enough that DPO's sigmoid saturates below Adam's ε (the update stops), IPO's margin 1/(2β) both ways
WIDER_GRIDS = WIDE_GRIDS + ["dpo.beta=0.1,1,10,100", "rdpo.beta=0.1,1,10,100", "ipo.beta=0.01,0.1,1,10"]

V2 = {"uniform_weight": 0.05}  # the adopted suite's likelihood (with WIDE_GRIDS: the floor-0.05+grids-wide row)
AGENTS = "docs/results/fidelity/agents"  # the TLA targets retrained on the candidates' environments
POLICY_AGENTS = "docs/results/fidelity/agents-policy"  # both TLA agents retrained with brax's policy network

# name: (what changes, SuiteTask fields, --grid entries[, TrainConfig fields])
CANDIDATES = {
    "v1": ("today's suite: clipped Gaussian, state-independent σ, mean-action evaluation", {}, []),
    "eval-sample": ("evaluation samples actions (the paper's sampled trajectories)", {"eval_actions": "sample"}, []),
    "floor-0.01": ("likelihood floor: 1 % uniform mixture per action coordinate", {"uniform_weight": 0.01}, []),
    "floor-0.05": ("likelihood floor: 5 % uniform mixture per action coordinate", {"uniform_weight": 0.05}, []),
    "grids-wide": ("SimPO γ up to 100 and β searched, LPO λ from 0.01 (the rest as quick)", {}, WIDE_GRIDS),
    "floor-0.05+grids-wide": ("5 % floor and the wide grids", {"uniform_weight": 0.05}, WIDE_GRIDS),
    "grids-wider": ("the wide grids, and DPO / R-DPO β up to 100, IPO β from 0.01 to 10", {}, WIDER_GRIDS),
    "floor-0.05+grids-wider": ("5 % floor and the wider grids", {"uniform_weight": 0.05}, WIDER_GRIDS),
    "floor-0.05+eval-sample": ("5 % floor, sampled evaluation", {"uniform_weight": 0.05, "eval_actions": "sample"}, []),
    # candidate 1 on the adopted suite (v2): other ways of making the fourth leg costly, TLA target retrained
    # on each (scripts/train_agents.sh; the original agent is Ant's and stays)
    "v2+leg4-foot": ("suite v2 on three_legged_ant_foot: the fourth foot on the ground costs, not its commands",
                     {**V2, "env_name": "three_legged_ant_foot", "agent_files": (f"{AGENTS}/tla_target_foot",
                                                                                  "ant_original")}, WIDE_GRIDS),
    "v2+leg4-disabled": ("suite v2 on three_legged_ant_disabled: the fourth leg executes nothing, no penalty",
                         {**V2, "env_name": "three_legged_ant_disabled",
                          "agent_files": (f"{AGENTS}/tla_target_disabled", "ant_original")}, WIDE_GRIDS),
    # candidate 2 on v2: brax's PPO network (4 × 32 swish, state-dependent σ = softplus + 0.001), with and
    # without tanh squashing; both TLA agents retrained with it (scripts/train_agents.sh)
    "v2+policy-sd": ("suite v2 with agents whose σ depends on the state (clipped Gaussian, brax's network)",
                     {**V2, "agent_files": tuple(f"{POLICY_AGENTS}/{a}_sd" for a in ("tla_target", "ant_original"))},
                     WIDE_GRIDS),
    "v2+policy-tanh-sd": ("suite v2 with brax's tanh-squashed Gaussian policy, σ state-dependent",
                          {**V2, "agent_files": tuple(f"{POLICY_AGENTS}/{a}_tanh_sd"
                                                      for a in ("tla_target", "ant_original"))}, WIDE_GRIDS),
    "po-keeps-adam": ("DPO / IPO / R-DPO's PO phase continues SFT's Adam state (one 12-epoch run)", {}, [],
                      {"po_keeps_optimizer": True}),
}


def run_candidate(name: str, root: Path, seeds: int, seed: int) -> dict:
    what, fields, grid_entries, *train_fields = CANDIDATES[name]
    quick = get_preset("quick")
    preset = dataclasses.replace(quick, train=dataclasses.replace(quick.train, **(train_fields or [{}])[0]))
    task = dataclasses.replace(get_task("tla", "v1"), **fields)  # from the v1 suite (the v2+ candidates set v2's floor)
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    own = fields.get("env_name") or (Path(fields["agent_files"][0]).name if "agent_files" in fields else None)
    shared = Path(f"out/fidelity-data-seed{seed}" + (f"-{own}" if own else ""))
    shared.mkdir(parents=True, exist_ok=True)
    if not (out / "data").exists():
        (out / "data").symlink_to(shared.resolve(), target_is_directory=True)
    algos = list(PAPER_BASELINES)
    bench = Bench(task, preset, out, seeds=seeds, seed=seed, grid_overrides=parse_grid(grid_entries, algos))
    cost_path = out / "cost.json"
    cost = json.loads(cost_path.read_text()) if cost_path.is_file() else {"cpu_seconds": 0.0, "wall_seconds": 0.0}
    cpu0, wall0 = time.process_time(), time.perf_counter()

    def save_cost():
        spent = {"cpu_seconds": cost["cpu_seconds"] + time.process_time() - cpu0,
                 "wall_seconds": cost["wall_seconds"] + time.perf_counter() - wall0}
        atomic_write_text(cost_path, json.dumps(spent, indent=2))
        return spent

    references = bench.references()

    def on_records(records):
        write_results(records, out, f"TLA quick — fidelity candidate {name}", references)
        save_cost()

    records = bench.run(algos, list(VARIANTS), on_records=on_records,
                        progress=lambda label, d, t: print(f"[{name}] {d}/{t} {label}", flush=True))
    report = findings_report(records, references, "tla")
    atomic_write_text(out / "findings.json", json.dumps(report, indent=2))
    diag_path = out / "diagnosis.json"
    if not diag_path.is_file():
        atomic_write_text(diag_path, json.dumps(diagnose(bench, records), indent=2))
    spent = save_cost()
    return {"candidate": name, "change": what, "grid": grid_entries, **fields, **(train_fields or [{}])[0],
            "kendall_tau": {t["variant"]: t["tau"] for t in report["kendall_tau"]}, "mean_tau": report["mean_tau"],
            "findings": {f["claim"]: f["verdict"] for f in report["findings"]},
            "means": {f"{r['algo']}/{r['variant']}": r["mean"] for r in records},
            "references": {k: v["mean"] for k, v in references.items()}, **spent}


def diagnose(bench: Bench, records: list[dict]) -> dict:
    """Where each push-away loss (and SFT for contrast) moves the policy on base, seed 1000 at the
    cell's chosen setting: per-coordinate log-likelihood of chosen and rejected actions, how far the
    means move on chosen and rejected states, σ, and the evaluation return split into the leg-4
    penalty and the rest."""
    task, preset = bench.task, bench.preset
    pairs = dataset_pairs(bench.dataset("base"))
    chosen = {r["algo"]: r["hparams"] for r in records if r["variant"] == "base"}
    start = task.initial_params(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(bench.seed + 11), preset.eval_episodes)
    dist = jax.jit(lambda trainable, obs: distribution(task.full_params(trainable), obs))
    out = {}
    for algo in ("sft", *PUSH_AWAY):
        spec, objective = registry_objective(algo)
        train = jax.jit(make_train(task.step_logp, spec, objective, pairs.num_pairs, preset.train,
                                   task.tokens_per_step))
        params = train(start, pairs, chosen[algo], jax.random.PRNGKey(bench.seed * 100_003 + 1000)).params
        row = {"hparams": chosen[algo]}
        for side, obs, act, n in (("chosen", pairs.obs_w, pairs.act_w, pairs.len_w),
                                  ("rejected", pairs.obs_l, pairs.act_l, pairs.len_l)):
            lp = np.asarray(jax.vmap(task.step_logp, in_axes=(None, 0, 0))(params, obs, act))
            mask = np.arange(lp.shape[1]) < np.asarray(n)[:, None]
            row[f"logp_per_coordinate_{side}"] = float(lp[mask].mean() / task.tokens_per_step)
            (mu, sigma), (mu0, sigma0) = dist(params, obs), dist(start, obs)
            row[f"mean_shift_{side}"] = float(np.abs(np.asarray(mu) - np.asarray(mu0))[mask].mean())
            row[f"sigma_{side}"] = float(np.asarray(sigma)[mask].mean())
            row[f"sigma_start_{side}"] = float(np.asarray(sigma0)[mask].mean())
        r = rollout(task.env, task.eval_policy, task.full_params(params), keys, preset.eval_horizon)
        ret, pen = np.asarray(r.returns), leg4_penalty(task, params, r, keys, preset.eval_horizon)
        row.update(eval_return=float(ret.mean()), leg4_penalty=float(pen.mean()),
                   return_without_penalty=float((ret + pen).mean()),
                   leg4_abs_action=float(np.abs(np.asarray(r.actions)[..., list(TLA_LEG4_ACTUATORS)]).mean()),
                   actions_at_bounds=float((np.abs(np.asarray(r.actions)) >= 0.999).mean()))
        out[algo] = row
    return out


def leg4_penalty(task, params, r, keys, horizon: int) -> np.ndarray:
    """Per-episode fourth-leg penalty of an evaluation rollout ``r``: the command penalty on its actions, or
    (three_legged_ant_foot) the return on Ant, whose physics are the same, minus the return on TLA; none
    when the leg is disabled."""
    if task.env == "three_legged_ant":
        return np.asarray(tla_penalty(r.actions).sum(axis=-1))
    if task.env == "three_legged_ant_disabled":
        return np.zeros(r.returns.shape)
    on_ant = rollout("ant", task.eval_policy, task.full_params(params), keys, horizon)
    return np.asarray(on_ant.returns) - np.asarray(r.returns)


def summary_markdown(rows: list[dict]) -> str:
    lines = ["| candidate | τ base | τ mixed | τ noisy-0.2 | mean τ | findings held | CPU h |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        taus = [r["kendall_tau"].get(v) for v in VARIANTS]
        held = sum(v == "holds" for v in r["findings"].values())
        cells = " | ".join("—" if t is None else f"{t:+.2f}" for t in taus)
        mean = "—" if r["mean_tau"] is None else f"{r['mean_tau']:+.2f}"
        lines.append(f"| {r['candidate']} | {cells} | {mean} | {held} / 4 | {r['cpu_seconds'] / 3600:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="base seed: datasets, training seeds, evaluation keys "
                                                        "(0 calibrates; another seed is the held-out check)")
    ap.add_argument("--out", type=Path, default=Path("docs/results/fidelity"))
    args = ap.parse_args()
    names = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = [c for c in names if c not in CANDIDATES]
    if unknown:
        raise SystemExit(f"error: unknown candidate(s) {', '.join(unknown)}; valid: {', '.join(CANDIDATES)}.")
    summary_path = args.out / "summary.json"
    rows = {r["candidate"]: r for r in (json.loads(summary_path.read_text()) if summary_path.is_file() else [])}
    for name in names:
        rows[name] = run_candidate(name, args.out, args.seeds, args.seed)
        ordered = [rows[c] for c in CANDIDATES if c in rows]
        atomic_write_text(summary_path, json.dumps(ordered, indent=2))
        atomic_write_text(args.out / "summary.md", summary_markdown(ordered))
        print(summary_markdown(ordered), flush=True)


if __name__ == "__main__":
    main()
