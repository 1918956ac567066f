"""Pick the shipped agents from the training runs of scripts/train_agents.sh, evaluate each over
--episodes episodes (one batch, sampled actions, plus deterministic ones) on the relevant envs and
write src/mirrorpo/agents/shipped/v1/{<name>.safetensors,<name>.json,manifest.json}.

    nice -n 19 .venv/bin/python scripts/ship_agents.py --episodes 100

Choices: ant_original = the Ant run's checkpoint with the best short evaluation on Ant; tla_target =
the TLA run's best on TLA; hopper_expert = the Hopper run's best; hopper_bad = the Hopper run's
checkpoint whose short evaluation is closest to 900/2100 of the expert's (the paper's ratio), taken
from the same run (an early checkpoint).
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
    ap.add_argument("--hopper-run", default="hopper")
    ap.add_argument("--bad-ratio", type=float, default=900 / 2100)
    args = ap.parse_args()

    from mirrorpo.agents import checkpoint
    from mirrorpo.agents.train import evaluate
    from mirrorpo.envs import DEFAULT_BACKEND

    ant = max(candidates(args.ant_run), key=short_eval)
    tla = max(candidates(args.tla_run), key=short_eval)
    hop = candidates(args.hopper_run)
    expert = max(hop, key=short_eval)
    target = args.bad_ratio * short_eval(expert)
    early = [m for m in hop if m["steps"] < expert["steps"] and short_eval(m) <= 0.5 * short_eval(expert)]
    bad = min(early or hop, key=lambda m: abs(short_eval(m) - target))
    picks = [("ant_original", ant, ["ant", "three_legged_ant"]), ("tla_target", tla, ["ant", "three_legged_ant"]),
             ("hopper_expert", expert, ["hopper"]), ("hopper_bad", bad, ["hopper"])]

    OUT.mkdir(parents=True, exist_ok=True)
    agents = []
    for name, m, envs in picks:
        params, meta = checkpoint.load(m["path"])
        returns, det = {}, {}
        for env in envs:
            t0 = time.time()
            returns[env] = evaluate(env, params, args.episodes, seed=args.seed, backend=meta["backend"])
            det[env] = evaluate(env, params, args.episodes, seed=args.seed, deterministic=True, backend=meta["backend"])
            print(f"{name} on {env}: sampled {returns[env]['mean']:.1f} ± {returns[env]['stderr']:.1f}, "
                  f"deterministic {det[env]['mean']:.1f} ± {det[env]['stderr']:.1f} ({time.time() - t0:.0f}s)", flush=True)
        run_cmd = next((ln.strip() for ln in (ROOT / TRAIN_CMD).read_text().splitlines()
                        if f"--out runs/agents/{m['path'].parent.name} " in ln), "")
        keep = {k: v for k, v in meta.items() if k not in ("sha256", "file", "format", "obs_dim", "act_dim", "policy_hidden")}
        keep.update({"name": name, "source_checkpoint": str(m["path"].relative_to(ROOT)), "returns": returns,
                     "returns_deterministic": det})
        new = checkpoint.save(OUT / name, params, keep)
        assert new["sha256"] == meta["sha256"]
        agents.append({
            "name": name, "env": meta["env"], "backend": meta.get("backend", DEFAULT_BACKEND),
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
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps({a["name"]: {e: round(r["mean"], 1) for e, r in a["returns"].items()} for a in agents}))


if __name__ == "__main__":
    main()
