"""Plot gradient landscapes (paper Figure 5): where gradient descent moves (ℓ_w, ℓ_l)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mirrorpo.fileio import atomic_path
from mirrorpo.losses.landscape import Landscape


def plot_landscapes(landscapes: Sequence[Landscape], path: str | os.PathLike, title: str | None = None) -> Path:
    """One row per loss: −∂L/∂ℓ_w, −∂L/∂ℓ_l (the update each log-likelihood receives) and the update
    field over (ℓ_w, ℓ_l). The dashed diagonal is π_w = π_l; below it the pair is already ranked right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    rows = len(landscapes)
    fig, axes = plt.subplots(rows, 3, figsize=(13, 3.6 * rows), squeeze=False, constrained_layout=True)
    for row, land in zip(axes, landscapes):
        extent = (land.mean_w.min(), land.mean_w.max(), land.mean_l.min(), land.mean_l.max())
        for ax, values, label in ((row[0], -land.grad_w, "−∂L/∂ℓ_w (push on chosen)"),
                                  (row[1], -land.grad_l, "−∂L/∂ℓ_l (push on rejected)")):
            bound = float(np.nanmax(np.abs(values))) or 1.0
            im = ax.imshow(values, origin="lower", extent=extent, cmap="RdBu_r", aspect="auto",
                           norm=TwoSlopeNorm(0.0, -bound, bound))
            fig.colorbar(im, ax=ax, shrink=0.85)
            ax.set_title(f"{land.name}: {label}", fontsize=9)
        ax = row[2]
        magnitude = np.hypot(land.grad_w, land.grad_l)
        im = ax.imshow(magnitude, origin="lower", extent=extent, cmap="viridis", aspect="auto")
        fig.colorbar(im, ax=ax, shrink=0.85)
        step = max(1, land.mean_w.shape[0] // 14)
        sl = (slice(None, None, step), slice(None, None, step))
        unit = np.where(magnitude > 0, magnitude, 1.0)  # arrows show direction; colour shows size
        ax.quiver(land.mean_w[sl], land.mean_l[sl], (-land.grad_w / unit)[sl], (-land.grad_l / unit)[sl],
                  color="white", angles="xy", pivot="mid", scale=22, width=0.006)
        ax.set_title(f"{land.name}: update direction, |∇L|", fontsize=9)
        for a in row:
            a.plot(extent[:2], extent[:2], "k--", lw=0.8)
            a.set_xlabel("ℓ_w (chosen mean log-lik.)")
            a.set_ylabel("ℓ_l (rejected)")
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
