"""Fitness over generations of a discovery run."""

from __future__ import annotations

from pathlib import Path

from mirrorpo.fileio import atomic_path


def plot_fitness(log: list[dict], path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [r["generation"] for r in log]
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    lo = [r["return_min"] for r in log]
    hi = [r["return_max"] for r in log]
    if all(v is not None for v in lo + hi):
        ax.fill_between(gens, lo, hi, alpha=0.2, label="population min–max")
    ax.plot(gens, [r["return_mean"] for r in log], label="population mean")
    ax.plot(gens, [r["best_return"] for r in log], "k--", label="best so far")
    ax.set_xlabel("generation")
    ax.set_ylabel("true return of the trained policy")
    ax.set_title(f"MPO discovery: {title}")
    ax.legend()
    ax.grid(alpha=0.3)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
