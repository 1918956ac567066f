"""ES choices at small populations (issue 16): for each configuration, search a one-step MPO objective
(learned ψ) on quick TLA, then judge the final ES mean on a held-out base seed — a fresh dataset,
fresh training seeds and evaluation keys the search never saw — against its starting point ORPO
(``mpo_one_step``, β 1, λ 0.1), paired by seed; report the gain per CPU-hour.

    python scripts/discovery_ablation.py [--configs fresh,fixed,seeds2] [--variant mixed]
        [--population 8] [--generations 10] [--heldout-seeds 5] [--out docs/results/discovery/ablation]

Resumable: each configuration is a discovery folder OUT/<config>/ (rerun continues it) and a bench
folder OUT/<config>/heldout/ (finished cells cached). Writes OUT/summary.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mirrorpo.benchmark import Bench, get_preset
from mirrorpo.fileio import atomic_write_text
from mirrorpo.meta import Discovery, DiscoveryConfig, use_cpu_devices
from mirrorpo.report.paper import paired_differences
from mirrorpo.tasks import get_task

# name: (what it changes, DiscoveryConfig fields; population / generations default to --population /
# --generations). The "cpu" rows start from the CPU search's settings (scripts/discover_cpu_search.sh)
# at population 8 × 20 generations and change one thing at equal cost.
CPU_SEARCH = {"hidden": 9, "sigma0": 0.5, "lr": 0.1, "lam": 1.0, "population": 8, "generations": 20}
CONFIGS = {
    "fresh": ("fresh training and evaluation keys every generation (the default)", {}),
    "fixed": ("the same keys every generation (common random numbers across generations)", {"fixed_keys": True}),
    "seeds2": ("fresh keys, fitness averaged over 2 training seeds (2× the cost)", {"train_seeds": 2}),
    "fixed-seeds2": ("fixed keys and 2 training seeds", {"fixed_keys": True, "train_seeds": 2}),
    "cpu": ("the CPU search: ψ 9 units, σ₀ 0.5, lr 0.1, λ 1, fresh keys", CPU_SEARCH),
    "cpu-fixed": ("CPU search, fixed keys", {**CPU_SEARCH, "fixed_keys": True}),
    "cpu-seeds2": ("CPU search, 2 training seeds, half the generations", {**CPU_SEARCH, "train_seeds": 2,
                                                                           "generations": 10}),
    "cpu-pop16": ("CPU search, population 16, half the generations", {**CPU_SEARCH, "population": 16,
                                                                      "generations": 10}),
    "cpu-sigma0.1": ("CPU search, σ₀ 0.1", {**CPU_SEARCH, "sigma0": 0.1}),
    "cpu-lr0.02": ("CPU search, ES lr 0.02", {**CPU_SEARCH, "lr": 0.02}),
    "cpu-all": ("CPU search, learning ψ, g and ϕ⁻¹", {**CPU_SEARCH, "learn": ("psi", "g", "phi_inv")}),
    "cpu-temporal": ("CPU search, temporally-aware ψ", {**CPU_SEARCH, "temporal": True}),
}
HELDOUT_SEED = 1


def run_config(name: str, args) -> dict:
    what, fields = CONFIGS[name]
    out = args.out / name
    task, preset = get_task("tla"), get_preset("quick")
    config = DiscoveryConfig(**{"task": "tla", "variant": args.variant, "family": "one_step", "learn": ("psi",),
                                "population": args.population, "generations": args.generations, "seed": 0, **fields})
    cpu0 = time.process_time()
    done = Discovery(task, preset, config, out).run(
        on_generation=lambda row: print(f"[{name}] generation {row['generation']}: mean {row['return_mean']:.0f}",
                                        flush=True))
    search_cpu = time.process_time() - cpu0 + _spent(out / "cost.json")
    atomic_write_text(out / "cost.json", json.dumps({"search_cpu_seconds": search_cpu}))
    mean = f"mpo:{done['paths']['mean']}"
    bench = Bench(task, preset, out / "heldout", seeds=args.heldout_seeds, seed=HELDOUT_SEED)
    records = bench.run(["mpo_one_step", mean], [args.variant])
    (diff,) = [d for d in paired_differences(records, mean) if d["against"] == "mpo_one_step"]
    gain_per_hour = diff["mean"] / (search_cpu / 3600) if search_cpu else None
    return {"config": name, "change": what, **fields, "population": config.population,
            "generations": done["generations"], "search_cpu_seconds": search_cpu,
            "heldout": {"variant": args.variant, "seeds": diff["seeds"], "gain_vs_start": diff["mean"],
                        "stderr": diff["stderr"], "z": diff["z"]},
            "gain_per_cpu_hour": gain_per_hour,
            "log": [{k: r[k] for k in ("generation", "return_mean", "return_max")} for r in done["log"]]}


def _spent(path: Path) -> float:
    """CPU seconds an earlier, stopped invocation already spent on this configuration's search."""
    return json.loads(path.read_text())["search_cpu_seconds"] if path.is_file() else 0.0


def summary_markdown(rows: list[dict]) -> str:
    header = ("| config | change | population × generations | search CPU h | held-out gain vs ORPO | s.e. | s.e.s "
              "| gain per CPU h |")
    lines = [header, "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        h = r["heldout"]
        lines.append(f"| {r['config']} | {r['change']} | {r['population']} × {r['generations']} | "
                     f"{r['search_cpu_seconds'] / 3600:.2f} | {h['gain_vs_start']:+.0f} | {h['stderr']:.0f} | "
                     f"{h['z']:+.1f} | {r['gain_per_cpu_hour']:+.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="fresh,fixed")
    ap.add_argument("--variant", default="mixed")
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--heldout-seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("docs/results/discovery/ablation"))
    args = ap.parse_args()
    use_cpu_devices()  # one candidate per core (results do not depend on it)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"error: unknown config(s) {', '.join(unknown)}; valid: {', '.join(CONFIGS)}.")
    path = args.out / "summary.json"
    rows = {r["config"]: r for r in (json.loads(path.read_text()) if path.is_file() else [])}
    for name in names:
        rows[name] = run_config(name, args)
        ordered = [rows[c] for c in CONFIGS if c in rows]
        atomic_write_text(path, json.dumps(ordered, indent=2))
        atomic_write_text(args.out / "summary.md", summary_markdown(ordered))
        print(summary_markdown(ordered), flush=True)


if __name__ == "__main__":
    main()
