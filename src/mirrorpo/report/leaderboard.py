"""The benchmark leaderboard: a table (mean ± standard error over seeds, best per column marked),
results.json / results.csv, and a figure."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from mirrorpo.fileio import atomic_path, atomic_write_text


def _grid(records: list[dict]) -> tuple[list[str], list[str], dict]:
    algos = list(dict.fromkeys(r["algo"] for r in records))
    variants = list(dict.fromkeys(r["variant"] for r in records))
    cells = {(r["algo"], r["variant"]): r for r in records}
    return algos, variants, cells


def _num(x) -> float:
    """A record's number, NaN when missing (null in results.json)."""
    return float("nan") if x is None else float(x)


def best_per_variant(records: list[dict]) -> dict[str, str]:
    algos, variants, cells = _grid(records)
    best = {}
    for v in variants:
        scored = [(_num(cells[(a, v)]["mean"]), a) for a in algos
                  if (a, v) in cells and math.isfinite(_num(cells[(a, v)]["mean"]))]
        if scored:
            best[v] = max(scored)[1]
    return best


def fmt(record: dict) -> str:
    mean, se = _num(record["mean"]), _num(record["stderr"])
    if not math.isfinite(mean):
        return "diverged"
    return f"{mean:.0f} ± {se:.0f}" if math.isfinite(se) else f"{mean:.0f}"


def print_leaderboard(records: list[dict], title: str, references: dict | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    algos, variants, cells = _grid(records)
    best = best_per_variant(records)
    table = Table(title=title + "  (true return, mean ± s.e. over seeds; * best per column)")
    table.add_column("algorithm")
    for v in variants:
        table.add_column(v, justify="right")
    for a in algos:
        row = [a]
        for v in variants:
            r = cells.get((a, v))
            text = "" if r is None else fmt(r) + (" *" if best.get(v) == a else "")
            row.append(f"[bold]{text}[/bold]" if r is not None and best.get(v) == a else text)
        table.add_row(*row)
    console = Console()
    console.print(table)
    if references:
        console.print("for reference, same evaluation: " + ", ".join(
            f"{name} {fmt(r)}" for name, r in references.items()))


def write_results(records: list[dict], out: str | Path, title: str, references: dict | None = None
                  ) -> dict[str, Path]:
    """results.json (list of records: algo, variant, mean, stderr, seeds, hparams, ...), results.csv,
    leaderboard.png (reference returns drawn as lines) — each written atomically."""
    out = Path(out)
    paths = {"json": out / "results.json", "csv": out / "results.csv", "png": out / "leaderboard.png"}
    atomic_write_text(paths["json"], json.dumps(records, indent=2))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["algo", "variant", "mean", "stderr", "seeds", "hparams"])
    for r in records:
        writer.writerow([r["algo"], r["variant"], f"{_num(r['mean']):.3f}", f"{_num(r['stderr']):.3f}", r["seeds"],
                         json.dumps(r["hparams"], sort_keys=True)])
    atomic_write_text(paths["csv"], buf.getvalue())
    plot_leaderboard(records, paths["png"], title, references)
    return paths


def plot_leaderboard(records: list[dict], path: Path, title: str, references: dict | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algos, variants, cells = _grid(records)
    best = best_per_variant(records)
    width = 0.8 / max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(algos) * max(1, len(variants) / 2)), 4.5),
                           constrained_layout=True)
    x = np.arange(len(algos))
    for j, v in enumerate(variants):
        means = [_num(cells[(a, v)]["mean"]) if (a, v) in cells else np.nan for a in algos]
        errs = [_num(cells[(a, v)]["stderr"]) if (a, v) in cells else np.nan for a in algos]
        errs = [e if math.isfinite(e) else 0.0 for e in errs]
        bars = ax.bar(x + (j - (len(variants) - 1) / 2) * width, means, width, yerr=errs, capsize=2, label=v)
        for a_idx, a in enumerate(algos):
            if best.get(v) == a:
                bars[a_idx].set_edgecolor("black")
                bars[a_idx].set_linewidth(1.5)
    values = np.array([_num(r["mean"]) for r in records] + [_num(r["mean"]) for r in (references or {}).values()])
    values = values[np.isfinite(values)]
    if values.size:  # keep the informative range: a collapsed loss is labelled, not allowed to squash the rest
        high = max(values.max(), 0.0)
        low = min(0.0, np.percentile(values, 10), -0.25 * high)
        span = high - low or 1.0
        ax.set_ylim(low - 0.05 * span, high + 0.1 * span)
        for j, v in enumerate(variants):
            for a_idx, a in enumerate(algos):
                mean = _num(cells[(a, v)]["mean"]) if (a, v) in cells else np.nan
                if np.isfinite(mean) and mean < low:
                    ax.annotate(f"{mean:.0f}", (a_idx + (j - (len(variants) - 1) / 2) * width, low),
                                rotation=90, fontsize=7, ha="center", va="bottom")
    for (name, r), style in zip((references or {}).items(), ("--", ":", "-.")):
        ax.axhline(_num(r["mean"]), color="gray", ls=style, lw=1, label=name)
    ax.set_xticks(x, algos, rotation=45, ha="right")
    ax.set_ylabel("true return (mean ± s.e.)")
    ax.set_title(title)
    ax.legend(title="dataset", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
