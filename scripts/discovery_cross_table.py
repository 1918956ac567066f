"""The lower half of the paper's Table 2 for our discovered objectives (issue 16): each objective
judged on every variant, beside every baseline, from one ``mirrorpo judge`` folder.

    python scripts/discovery_cross_table.py docs/results/discovery/heldout

Reads OUT/cells/*/*.json and OUT/judgement.json; writes OUT/cross_table.md: mean ± s.e. over the
held-out seeds per (loss, variant), the best baseline in bold, and each objective's paired
difference to that best baseline (s.e., verdict at ≥ 2 s.e.).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mirrorpo.fileio import atomic_write_text
from mirrorpo.report.paper import loss_label


def table(records: list[dict], verdicts: list[dict]) -> str:
    variants = list(dict.fromkeys(v["variant"] for v in verdicts)) or sorted({r["variant"] for r in records})
    cells = {(r["algo"], r["variant"]): r for r in records}
    objectives = list(dict.fromkeys(v["algo"] for v in verdicts))
    baselines = sorted({r["algo"] for r in records} - set(objectives), key=lambda a: a)
    best = {v["variant"]: v["best_baseline"] for v in verdicts}
    lines = ["| loss | " + " | ".join(variants) + " |", "|---|" + "---:|" * len(variants)]
    for algo in objectives + baselines:
        row = []
        for variant in variants:
            r = cells.get((algo, variant))
            text = "" if r is None or r["mean"] is None else f"{r['mean']:.0f} ± {r['stderr'] or 0:.0f}"
            row.append(f"**{text}**" if best.get(variant) == algo and text else text)
        lines.append(f"| {loss_label(algo)} | " + " | ".join(row) + " |")
    lines += ["", "| objective | variant | minus best baseline | s.e. | s.e.s | seeds | verdict |",
              "|---|---|---:|---:|---:|---:|---|"]
    for v in verdicts:
        lines.append(f"| {loss_label(v['algo'])} | {v['variant']} | {v['difference']:+.0f} ({v['best_baseline']}) | "
                     f"{v['stderr']:.0f} | {v['z']:+.1f} | {v['seeds']} | {'wins' if v['wins'] else 'no win'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    # every finished cell of the folder (results.json holds only the last judge's losses)
    records = [json.loads(f.read_text()) for f in sorted((args.out / "cells").glob("*/*.json"))]
    verdicts = json.loads((args.out / "judgement.json").read_text())
    text = table(records, verdicts)
    refs = args.out / "references.json"
    if refs.is_file():
        start = json.loads(refs.read_text()).get("start policy")
        text += f"\nstart policy (no training): {start['mean']:.0f} ± {start['stderr']:.0f}\n" if start else ""
    atomic_write_text(args.out / "cross_table.md", text)
    print(text)


if __name__ == "__main__":
    main()
