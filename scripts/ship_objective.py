"""Ship a discovered objective with the package (issue 16): copy a discovery run's objective file
into ``src/mirrorpo/losses/mpo/shipped/v1/`` and add (or replace) its manifest entry, built from
the run's settings, log and search cost, and from the held-out judgement of ``mirrorpo judge``.

    python scripts/ship_objective.py RUN_DIR NAME --judgement JUDGE_DIR/judgement.json|POOLED.json
        [--kind mean|best] [--machine "2-core CPU ..."]

``--judgement`` is one held-out dataset's ``judgement.json`` or a pooled verdict over several
(``pooled.json`` of ``mirrorpo judge --seed 1,2,3`` or of ``scripts/discovery_pooled.py --out``).

The entry records task, variant, bench preset, suite, family, learned functions, temporal or not,
ES settings, seed, generations run, search CPU seconds, and the held-out results per variant
(objective and best searched baseline, paired difference, s.e., seeds, verdict).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from mirrorpo.fileio import atomic_write_text
from mirrorpo.losses.mpo import shipped

SINGLE = ("mirrorpo judge: held-out base seed 1, the paper's baselines with their full grids searched at the "
          "same scale, paired by seed")
POOLED = ("mirrorpo judge pooled over {k} held-out datasets: the paper's baselines with their full grids searched "
          "at the same scale, paired by seed, each difference averaged over the datasets, the best baseline chosen "
          "once by its mean over them")


def entry(run: Path, name: str, kind: str, judgement: list[dict], machine: str, protocol: str = SINGLE) -> dict:
    settings = json.loads((run / "settings.json").read_text())
    config = settings["config"]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    cost = run / "cost.json"
    seconds = json.loads(cost.read_text())["search_cpu_seconds"] if cost.is_file() else sum(r["seconds"] for r in log)
    heldout = {v["variant"]: {"objective": round(v["mean"], 1), "best_baseline": v["best_baseline"],
                              "best_baseline_mean": round(v["best_baseline_mean"], 1),
                              "difference": round(v["difference"], 1), "stderr": round(v["stderr"], 1),
                              "z": round(v["z"], 2), "seeds": v["seeds"], "wins": v["wins"]} for v in judgement}
    return {"name": name, "file": f"{name}.mpo.safetensors", "task": config["task"], "variant": config["variant"],
            "preset": settings["preset"], "task_settings": settings.get("task", {}), "family": config["family"],
            "learn": config["learn"], "temporal": config["temporal"], "hidden": config.get("hidden", 126),
            "hparams": {"beta": config["beta"] or 1.0, **({"lam": config["lam"] or 0.1}
                                                          if config["family"] == "one_step" else {})},
            "kind": "ES mean after the last generation" if kind == "mean" else "best candidate seen",
            "es": {k: config[k] for k in ("population", "sigma0", "sigma_decay", "lr", "fixed_keys", "train_seeds")}
            | {"datasets": config.get("datasets", 1), "generations": len(log)}, "seed": config["seed"], "search_seconds": round(seconds),
            "search_machine": machine, "source": str(run),
            "results": {"protocol": protocol, "heldout": heldout,
                        "verdict": verdict(heldout.get(config["variant"]), config["variant"])}}


def verdict(own: dict | None, variant: str) -> str:
    """One line on the objective's own variant: does it beat the best searched baseline by 2 s.e.?"""
    if own is None:
        return f"not judged on its own variant ({variant})"
    beats = "beats" if own["wins"] else "does not beat"
    return (f"{beats} the best searched baseline on {variant}: {own['difference']:+.0f} ± {own['stderr']:.0f} against "
            f"{own['best_baseline']} ({own['seeds']} held-out seeds)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("name")
    ap.add_argument("--judgement", type=Path, required=True)
    ap.add_argument("--kind", choices=("mean", "best"), default="mean")
    ap.add_argument("--machine", default="2-core CPU, shared with a second search")
    args = ap.parse_args()
    objective = (args.run / f"{args.kind}_objective.mpo.safetensors").resolve()
    verdicts = json.loads(args.judgement.read_text())
    verdicts = verdicts["verdicts"] if isinstance(verdicts, dict) else verdicts  # discovery_pooled.py's file
    judgement = [v for v in verdicts if Path(v["algo"].removeprefix("mpo:")).resolve() == objective]
    datasets = max((v.get("datasets", 1) for v in judgement), default=1)
    protocol = POOLED.format(k=datasets) if datasets > 1 else SINGLE
    new = entry(args.run, args.name, args.kind, judgement, args.machine, protocol)
    target = shipped.ROOT / new["file"]
    shutil.copyfile(args.run / f"{args.kind}_objective.mpo.safetensors", target)
    new["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest = shipped.manifest()
    manifest["objectives"] = [o for o in manifest["objectives"] if o["name"] != args.name] + [new]
    atomic_write_text(shipped.MANIFEST, json.dumps(manifest, indent=2) + "\n")
    print(f"shipped {args.name} → {target} ({len(judgement)} held-out variants)")


if __name__ == "__main__":
    main()
