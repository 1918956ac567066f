"""``mirrorpo losses`` and ``mirrorpo landscape``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mirrorpo.errors import MirrorpoError


def parse_hparams(items: list[str] | None) -> dict[str, float]:
    """``["beta=0.5", "lam=1"]`` → ``{"beta": 0.5, "lam": 1.0}``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise MirrorpoError(f"--hp expects NAME=NUMBER (e.g. --hp beta=0.1); got {item!r}.") from None
    return out


def catalogue() -> list[dict]:
    from mirrorpo.losses import LOSSES

    return [
        {
            "name": s.name,
            "family": s.family,
            "formula": s.formula,
            "hparams": s.defaults,
            "needs_reference": s.needs_reference,
            "protocol": s.protocol,
        }
        for s in sorted(LOSSES.values(), key=lambda s: (s.family, s.name))
    ]


def print_catalogue(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mirrorpo losses (per pair, minimised)", show_lines=False)
    for col in ("name", "family", "formula", "defaults", "ref", "protocol"):
        table.add_column(col, overflow="fold")
    for r in rows:
        defaults = ", ".join(f"{k}={v:g}" for k, v in r["hparams"].items())
        table.add_row(r["name"], r["family"], r["formula"], defaults, "yes" if r["needs_reference"] else "",
                      r["protocol"])
    Console().print(table)


def losses_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False):
    """List every registered loss with its formula, hyper-parameter defaults and protocol."""
    rows = catalogue()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print_catalogue(rows)


def landscape(
    loss: Annotated[str, typer.Option("--loss", help="Loss name, 'a+0.5*b', or mpo:FILE.")],
    out: Annotated[Path, typer.Option("--out", help="Output image (PNG).")],
    hp: Annotated[list[str] | None, typer.Option("--hp", help="Hyper-parameter NAME=VALUE (repeatable).")] = None,
    lo: Annotated[float, typer.Option(help="Lowest mean log-likelihood on the grid.")] = -4.0,
    hi: Annotated[float, typer.Option(help="Highest mean log-likelihood on the grid (≤ 0).")] = -0.05,
    n: Annotated[int, typer.Option(help="Grid points per axis.")] = 41,
    length: Annotated[float, typer.Option(help="Trajectory length n (L = ℓ·n).")] = 1.0,
    ref: Annotated[float, typer.Option(help="Reference mean log-likelihood, for losses with a reference.")] = -2.0,
    progress: Annotated[float, typer.Option(help="Training progress t for temporally-aware objectives.")] = 0.0,
):
    """Plot the gradient landscape of a loss over (ℓ_w, ℓ_l), as in the paper's Figure 5."""
    from mirrorpo.losses.landscape import gradient_landscape
    from mirrorpo.report.landscape import plot_landscapes

    land = gradient_landscape(loss, lo=lo, hi=hi, n=n, length=length, ref=ref, progress=progress,
                              **parse_hparams(hp))
    path = plot_landscapes([land], out)
    typer.echo(f"wrote {path}")


def objectives_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False):
    """List the shipped discovered objectives (each usable as the loss mpo:NAME)."""
    from mirrorpo.losses.mpo import shipped

    rows = shipped.list_objectives()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="shipped MPO objectives (use as mpo:NAME)")
    for col in ("name", "task", "variant", "preset", "family", "learn", "temporal", "verdict"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["task"], r["variant"], r["preset"], r["family"], ",".join(r["learn"]),
                      "yes" if r["temporal"] else "", r["results"]["verdict"])
    Console().print(table)
