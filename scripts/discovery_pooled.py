"""Pooled held-out judgement (issue 16): an objective judged on several held-out datasets (`mirrorpo
judge` folders of base seeds 1, 2, 3, ...), each paired difference averaged over the datasets and the
best baseline chosen once, by its mean return over all of them (`report.paper.pooled_judgement`).

    python scripts/discovery_pooled.py DIR [DIR ...] --objective mpo:FILE [--objective ...] [--versus mpo:OTHER]
                                       [--out FILE]

``--versus`` also prints each objective minus another objective judged in the same folders, pooled alike.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mirrorpo.fileio import atomic_write_text
from mirrorpo.report.paper import loss_label, pooled_judgement


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--objective", action="append", required=True)
    ap.add_argument("--versus", default=None, help="also each objective minus this objective, pooled alike")
    ap.add_argument("--out", type=Path, default=None, help="also write the verdicts as JSON here")
    args = ap.parse_args()
    record_sets = []
    for folder in args.folders:
        path = folder / "results.json"
        if not path.is_file():
            raise SystemExit(f"{path} not found; give folders written by `mirrorpo judge`.")
        record_sets.append(json.loads(path.read_text()))
    # judged against the baselines only: other objectives judged in the same folders are left out
    only = lambda objective: [[r for r in records if r["algo"] == objective or not r["algo"].startswith("mpo:")]
                              for records in record_sets]
    verdicts = [v for objective in args.objective for v in pooled_judgement(only(objective), objective)]
    if not verdicts:
        raise SystemExit("no variant has the objective and a baseline in every folder; check --objective.")
    print("| objective | variant | datasets (seeds) | objective | best baseline | − best | s.e.s | − each baseline |")
    print("|---|---|---:|---:|---|---:|---:|---|")
    for v in verdicts:
        each = ", ".join(f"{r['against']} {r['mean']:+.0f} ± {r['stderr']:.0f}" for r in v["against"])
        print(f"| {loss_label(v['algo'])} | {v['variant']} | {v['datasets']} ({v['seeds']}) | {v['mean']:.0f} | "
              f"{v['best_baseline']} {v['best_baseline_mean']:.0f} | {v['difference']:+.0f} ± {v['stderr']:.0f} | "
              f"{v['z']:+.1f} | {each} |")
    versus = [v for objective in args.objective if objective != args.versus
              for v in pooled_judgement([[r for r in records if r["algo"] in (objective, args.versus)]
                                         for records in record_sets], objective)] if args.versus else []
    for v in versus:
        print(f"{loss_label(v['algo'])} − {loss_label(args.versus)}, {v['variant']}, {v['datasets']} datasets "
              f"({v['seeds']} seeds): {v['difference']:+.0f} ± {v['stderr']:.0f} ({v['z']:+.1f} s.e.)")
    if args.out:
        atomic_write_text(args.out, json.dumps({"folders": [str(f) for f in args.folders], "verdicts": verdicts,
                                                "versus": versus}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
