"""Pick the shipped agents from the training runs of scripts/train_agents.sh, evaluate each over
--episodes episodes (one batch, sampled actions, plus deterministic ones) on the relevant envs and
write src/mirrorpo/agents/shipped/v1/{<name>.safetensors,<name>.json,manifest.json}.

    nice -n 19 .venv/bin/python scripts/ship_agents.py --episodes 100

Choices: ant_original = the Ant run's best checkpoint on Ant (top 3 by their training-time 8-episode
evaluation, re-scored on 32 episodes); tla_target = the TLA run's best on TLA (same way);
hopper_expert = the best checkpoint of the Hopper runs; hopper_bad = the Hopper checkpoint (of either
run) whose 8-episode evaluation is closest to 0.4× the expert's among those ≤ 0.45× (the paper's
ratio is 900/2100 ≈ 0.43): an earlier checkpoint of the γ = 0.99 run, whose returns plateaued
lower (every checkpoint of the γ = 0.997 run already stood for ≈1000 steps, ≥ 1000 return).

``--tla-candidates RUN:ENV,...`` instead ships only TLA targets retrained on other TLA environments (the
fidelity study's candidates), picked the same way on ENV, as ``tla_target_<ENV suffix>`` into ``--out``:

    .venv/bin/python scripts/ship_agents.py --tla-candidates tla_foot:three_legged_ant_foot \
        --out docs/results/fidelity/agents

``--policy-candidates KIND,...`` ships both TLA agents retrained with another policy parametrisation (runs
``ant_<KIND>`` and ``tla_<KIND>``), picked as above, as ``ant_original_<tag>`` and ``tla_target_<tag>``
(tag: sd, tanh_sd):

    .venv/bin/python scripts/ship_agents.py --policy-candidates tanh_gaussian_sd,gaussian_sd \
        --out docs/results/fidelity/agents-policy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "agents"
OUT = ROOT / "src" / "mirrorpo" / "agents" / "shipped" / "v1"
TRAIN_CMD = "scripts/train_agents.sh"


def candidates(run: str) -> list[dict]:
    out = []
    for js in sorted((RUNS / run).glob("*.json")):
        if js.name == "config.json":
            continue
        meta = json.loads(js.read_text())
        meta["path"] = js.with_suffix("")
        out.append(meta)
    return out


def short_eval(m: dict) -> float:
    return m["eval_sampled"]["mean"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--ant-run", default="ant")
    ap.add_argument("--tla-run", default="tla")
    ap.add_argument("--hopper-run", default="hopper997,hopper", help="comma-separated Hopper runs")
    ap.add_argument("--bad-ratio", type=float, default=0.4, help="hopper_bad's target fraction of the expert")
    ap.add_argument("--bad-max", type=float, default=0.45, help="hopper_bad's largest fraction of the expert")
    ap.add_argument("--tla-candidates", default="", help="RUN:ENV,...: ship only TLA targets trained on these envs")
    ap.add_argument("--policy-candidates", default="",
                    help="KIND,...: ship only both TLA agents retrained with these policy kinds")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    from mirrorpo.agents import checkpoint
    from mirrorpo.agents.train import evaluate
    from mirrorpo.envs import DEFAULT_BACKEND

    def refine(cands: list[dict], env: str, k: int = 3) -> dict:
        """Best of the top-k checkpoints (by their 8-episode training evaluation) over 32 fresh episodes."""
        top = sorted(cands, key=short_eval, reverse=True)[:k]
        scored = []
        for m in top:
            params, meta = checkpoint.load(m["path"])
            scored.append((evaluate(env, params, 32, seed=args.seed + 1, backend=meta["backend"])["mean"], m))
            print(f"  candidate {m['path'].relative_to(ROOT)}: {scored[-1][0]:.1f} on {env} (32 episodes)", flush=True)
        return max(scored, key=lambda x: x[0])[1]

    if args.tla_candidates:
        runs = [entry.split(":") for entry in args.tla_candidates.split(",")]
        picks = [(f"tla_target_{env.removeprefix('three_legged_ant_')}", refine(candidates(run), env), ["ant", env])
                 for run, env in runs]
    elif args.policy_candidates:
        picks = []
        for kind in args.policy_candidates.split(","):
            tag = kind.replace("gaussian_sd", "sd")  # sd, tanh_sd
            picks += [(f"ant_original_{tag}", refine(candidates(f"ant_{kind}"), "ant"), ["ant", "three_legged_ant"]),
                      (f"tla_target_{tag}", refine(candidates(f"tla_{kind}"), "three_legged_ant"),
                       ["ant", "three_legged_ant"])]
    else:
        ant = refine(candidates(args.ant_run), "ant")
        tla = refine(candidates(args.tla_run), "three_legged_ant")
        hop = [m for run in args.hopper_run.split(",") for m in candidates(run)]
        expert = refine(hop, "hopper")
        target = args.bad_ratio * short_eval(expert)
        worse = [m for m in hop if short_eval(m) <= args.bad_max * short_eval(expert)]
        bad = min(worse or hop, key=lambda m: abs(short_eval(m) - target))
        picks = [("ant_original", ant, ["ant", "three_legged_ant"]), ("tla_target", tla, ["ant", "three_legged_ant"]),
                 ("hopper_expert", expert, ["hopper"]), ("hopper_bad", bad, ["hopper"])]
    def returns_on(name, params, backend, envs):
        returns, det = {}, {}
        for env in envs:
            t0 = time.time()
            returns[env] = evaluate(env, params, args.episodes, seed=args.seed, backend=backend)
            det[env] = evaluate(env, params, args.episodes, seed=args.seed, deterministic=True, backend=backend)
            print(f"{name} on {env}: sampled {returns[env]['mean']:.1f} ± {returns[env]['stderr']:.1f}, "
                  f"deterministic {det[env]['mean']:.1f} ± {det[env]['stderr']:.1f} ({time.time() - t0:.0f}s)", flush=True)
        return returns, det

    args.out.mkdir(parents=True, exist_ok=True)
    agents = []
    for name, m, envs in picks:
        params, meta = checkpoint.load(m["path"])
        returns, det = returns_on(name, params, meta["backend"], envs)
        run_cmd = next((ln.strip() for ln in (ROOT / TRAIN_CMD).read_text().splitlines()
                        if f"--out runs/agents/{m['path'].parent.name} " in ln), "")
        run_cmd = run_cmd.replace("$MP", "mirrorpo").removeprefix("nice -n 19 ").rstrip(" \\")
        policy_kind = meta.get("policy_kind", "gaussian")
        keep = {k: v for k, v in meta.items() if k not in ("sha256", "file", "format", "obs_dim", "act_dim", "policy_hidden")}
        keep.update({"name": name, "source_checkpoint": str(m["path"].relative_to(ROOT)), "returns": returns,
                     "returns_deterministic": det})
        new = checkpoint.save(args.out / name, params, keep)
        assert new["sha256"] == meta["sha256"]
        agents.append({
            "name": name, "env": meta["env"], "backend": meta.get("backend", DEFAULT_BACKEND), "policy_kind": policy_kind,
            "file": f"{name}.safetensors", "sha256": new["sha256"], "steps": meta["steps"], "seed": meta["seed"],
            "training_command": meta.get("command") or run_cmd, "training_script": TRAIN_CMD,
            "train_time_s": meta.get("train_time_s"), "source_checkpoint": str(m["path"].relative_to(ROOT)),
            "returns": returns, "returns_deterministic": det,
        })
    manifest = {
        "version": "v1",
        "evaluation": {"episodes": args.episodes, "episode_length": 1000, "seed": args.seed, "actions": "sampled",
                       "note": "returns = sampled actions (as in datasets); returns_deterministic = mean actions; "
                               "stderr = sample std / sqrt(episodes)",
                       "backend": DEFAULT_BACKEND, "command": f"scripts/ship_agents.py --episodes {args.episodes}"},
        "agents": agents,
    }
    if args.tla_candidates:  # the original agent (shipped, trained on Ant) on the candidates' environments
        from mirrorpo.agents import load_agent

        params, meta = load_agent("ant_original")
        returns, det = returns_on("ant_original", params, meta["backend"], [env for _, env in runs])
        manifest["original_agent"] = {"name": "ant_original", "returns": returns, "returns_deterministic": det}
        manifest["evaluation"]["command"] = f"scripts/ship_agents.py --tla-candidates {args.tla_candidates} " \
                                            f"--out {args.out} --episodes {args.episodes}"
    if args.policy_candidates:
        manifest["evaluation"]["command"] = f"scripts/ship_agents.py --policy-candidates {args.policy_candidates} " \
                                            f"--out {args.out} --episodes {args.episodes}"
    previous = args.out / "manifest.json"
    if args.policy_candidates and previous.is_file():  # agents shipped by an earlier call stay listed
        shipped = {a["name"] for a in agents}
        agents[:0] = [a for a in json.loads(previous.read_text())["agents"] if a["name"] not in shipped]
        manifest["evaluation"]["command"] += " (merged with the agents shipped by earlier calls)"
    previous.write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps({a["name"]: {e: round(r["mean"], 1) for e, r in a["returns"].items()} for a in agents}))


if __name__ == "__main__":
    main()
