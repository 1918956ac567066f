"""The paper's Figure 5 for discovered objectives (issue 16): gradient landscapes of each objective
beside ORPO's (its starting point, λ as in the search) and SimPO's, and a number for the paper's
reading — does the objective keep optimising once the chosen trajectory is likelier (ℓ_w > ℓ_l)?

    python scripts/objective_landscapes.py mpo:A.mpo.safetensors [mpo:B ...] --out DIR [--lo -8]

Writes DIR/landscapes.png and DIR/landscapes.json: per loss, the median gradient magnitude
|∂/∂ℓ_w| + |∂/∂ℓ_l| where ℓ_w − ℓ_l > 1 (already ordered) and where ℓ_w − ℓ_l < −1 (misordered),
both ℓ ≤ −0.5 (away from the logit's pole at p → 1), and their ratio (DPO-like losses fade once
ordered; a ratio near 1 keeps pushing).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mirrorpo.fileio import atomic_write_text
from mirrorpo.losses.landscape import gradient_landscape
from mirrorpo.report.landscape import plot_landscapes

BASELINES = (("mpo_one_step", {"beta": 1.0, "lam": 1.0}), ("simpo", {"beta": 2.0, "gamma": 1.0}))


def push(landscape) -> dict:
    gap = landscape.mean_w - landscape.mean_l
    magnitude = np.abs(landscape.grad_w) + np.abs(landscape.grad_l)
    away = (landscape.mean_w <= -0.5) & (landscape.mean_l <= -0.5)  # off logit's pole at p → 1
    ordered = float(np.median(magnitude[away & (gap > 1)]))
    misordered = float(np.median(magnitude[away & (gap < -1)]))
    return {"ordered": ordered, "misordered": misordered, "ratio": ordered / misordered if misordered else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("objectives", nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lo", type=float, default=-8.0)
    args = ap.parse_args()
    losses = [(name, {}) for name in args.objectives] + list(BASELINES)
    scapes = [gradient_landscape(name, lo=args.lo, hi=-0.05, n=61, **hp) for name, hp in losses]
    args.out.mkdir(parents=True, exist_ok=True)
    plot_landscapes(scapes, args.out / "landscapes.png", "gradient landscapes: discovered objectives, ORPO, SimPO")
    rows = {f"{name} {hp}" if hp else name: push(s) for (name, hp), s in zip(losses, scapes)}
    atomic_write_text(args.out / "landscapes.json", json.dumps(rows, indent=2))
    for name, r in rows.items():
        print(f"{name}: |∇| ordered {r['ordered']:.3f}, misordered {r['misordered']:.3f}, ratio {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
