"""Paired differences in an ``mirrorpo llm bench`` folder (issue 16's LLM transfer): one loss minus
each other loss of the same variant, per seed (every loss of a seed starts from the same SFT model
and trains on the same pairs), mean ± s.e. over seeds of the greedy reward.

    python scripts/llm_paired.py docs/results/discovery/llm-transfer [--metric mean_reward]

Writes OUT/paired.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mirrorpo.fileio import atomic_write_text
from mirrorpo.report.paper import loss_label, paired_differences


def paired(per_seed: list[dict], metric: str) -> list[dict]:
    """The seeds' rows as bench-style records (``seed_returns`` in seed order; a failed run is None),
    then :func:`mirrorpo.report.paper.paired_differences` for each discovered objective."""
    seeds = sorted(run["seed"] for run in per_seed)
    values: dict[tuple[str, str], dict[int, float | None]] = {}
    for run in per_seed:
        for row in run["rows"]:
            values.setdefault((row["loss"], row["variant"]), {})[run["seed"]] = (
                row[metric] if row.get("error") is None else None)
    records = [{"algo": loss, "variant": variant, "seed_returns": [by_seed.get(s) for s in seeds]}
               for (loss, variant), by_seed in values.items()]
    objectives = dict.fromkeys(r["algo"] for r in records if r["algo"].startswith("mpo:"))
    return [{"variant": d["variant"], "loss": d["algo"], "against": d["against"], "metric": metric,
             "difference": d["mean"], "stderr": d["stderr"], "z": d["z"], "seeds": d["seeds"]}
            for loss in objectives for d in paired_differences(records, loss)]


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
        print(f"| {r['variant']} | {loss_label(r['loss'])} | {loss_label(r['against'])} | {r['difference']:+.3f} | "
              f"{r['stderr']:.3f} | {z} | {r['seeds']} |")


if __name__ == "__main__":
    main()
