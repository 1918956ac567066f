"""Paired differences in an ``mirrorpo llm bench`` folder (issue 16's LLM transfer): one loss minus
each other loss of the same variant, per seed (every loss of a seed starts from the same SFT model
and trains on the same pairs), mean ± s.e. over seeds of the greedy reward.

    python scripts/llm_paired.py docs/results/discovery/llm-transfer [--metric mean_reward]

Writes OUT/paired.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from mirrorpo.fileio import atomic_write_text


def short(loss: str) -> str:
    return Path(loss.removeprefix("mpo:")).parent.name if loss.startswith("mpo:") and "/" in loss else loss


def paired(per_seed: list[dict], metric: str) -> list[dict]:
    values: dict[tuple[str, str], dict[int, float]] = {}
    for run in per_seed:
        for row in run["rows"]:
            if row.get("error") is None:
                values.setdefault((row["variant"], row["loss"]), {})[run["seed"]] = row[metric]
    out = []
    for (variant, loss), ours in values.items():
        if not loss.startswith("mpo:"):
            continue
        for (v, other), theirs in values.items():
            seeds = sorted(set(ours) & set(theirs))
            if v != variant or other == loss or len(seeds) < 2:
                continue
            diffs = [ours[s] - theirs[s] for s in seeds]
            mean = sum(diffs) / len(diffs)
            se = math.sqrt(sum((x - mean) ** 2 for x in diffs) / (len(diffs) - 1) / len(diffs))
            out.append({"variant": variant, "loss": loss, "against": other, "metric": metric, "difference": mean,
                        "stderr": se, "z": mean / se if se else None, "seeds": len(seeds)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--metric", default="mean_reward")
    args = ap.parse_args()
    rows = paired(json.loads((args.out / "results.json").read_text())["per_seed"], args.metric)
    atomic_write_text(args.out / "paired.json", json.dumps(rows, indent=2))
    print(f"| variant | objective | minus | {args.metric} difference | s.e. | s.e.s | seeds |\n|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        z = "" if r["z"] is None else f"{r['z']:+.1f}"
        print(f"| {r['variant']} | {short(r['loss'])} | {short(r['against'])} | {r['difference']:+.3f} | "
              f"{r['stderr']:.3f} | {z} | {r['seeds']} |")


if __name__ == "__main__":
    main()
