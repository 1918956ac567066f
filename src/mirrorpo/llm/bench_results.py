"""Results of the offline LLM diagnostic: per-seed runs combined into mean ± standard error over seeds
(as the MuJoCo bench reports them), the leaderboard, results.json / .csv, the table on the console and
in Markdown, and the records :func:`mirrorpo.report.leaderboard.plot_leaderboard` draws."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from mirrorpo.benchmark import mean_stderr

CSV_FIELDS = ("variant", "rank", "loss", "mean_reward", "reward_se", "exact_match", "win_rate", "win_rate_se",
              "seeds", "seconds", "final_loss", "error")
COLUMNS = ("variant", "#", "loss", "reward", "± se", "exact", "win vs SFT", "sec", "note")


# --- seeds ------------------------------------------------------------------------------------------------


def combine_seeds(rows: list[dict]) -> dict:
    """One (variant, loss) over seeds: means of reward, exact match, win rate and seconds over the seeds
    that ran; ``reward_se`` / ``win_rate_se`` the standard errors over seeds (with one seed, the
    reward's over held-out prompts, and no win-rate s.e.); errors kept with their seed."""
    ok = [r for r in rows if math.isfinite(r["mean_reward"])]
    out = {k: rows[0][k] for k in ("variant", "loss")} | {"seeds": len(ok)}
    for key in ("mean_reward", "exact_match", "win_rate", "seconds"):
        out[key] = mean_stderr([r[key] for r in ok])[0] if ok else float("nan")
    if len(ok) > 1:
        out["reward_se"] = mean_stderr([r["mean_reward"] for r in ok])[1]
        out["win_rate_se"] = mean_stderr([r["win_rate"] for r in ok])[1]
    else:
        out["reward_se"], out["win_rate_se"] = (ok[0]["reward_se"] if ok else float("nan")), float("nan")
    finals = [r["final_loss"] for r in ok if r.get("final_loss") is not None]
    out["final_loss"] = sum(finals) / len(finals) if finals else None
    errors = [(f"seed {r['seed']}: " if len(rows) > 1 else "") + r["error"] for r in rows if r["error"]]
    out["error"] = "; ".join(errors) or None
    out["examples"] = rows[0].get("examples", [])
    return out


def mean_over_seeds(values: list):
    """Nested dicts of per-seed statistics → one: a value all seeds share as it is, numbers averaged."""
    first = values[0]
    if isinstance(first, dict):
        return {k: mean_over_seeds([v[k] for v in values]) for k in first}
    if all(v == first for v in values):
        return first
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sum(values) / len(values)
    return first


def combine(per_seed: list[dict]) -> dict:
    """``agents``, ``datasets``, ``baseline`` and ``rows`` of the per-seed runs, combined over seeds."""
    keys = list(dict.fromkeys((r["variant"], r["loss"]) for r in per_seed[0]["rows"]))
    rows = [combine_seeds([r for run in per_seed for r in run["rows"] if (r["variant"], r["loss"]) == key])
            for key in keys]
    baseline = combine_seeds([run["baseline"] for run in per_seed])
    return {"agents": mean_over_seeds([run["agents"] for run in per_seed]),
            "datasets": mean_over_seeds([run["datasets"] for run in per_seed]),
            "baseline": baseline, "rows": rows, "se_over": "seeds" if len(per_seed) > 1 else "prompts"}


# --- the leaderboard --------------------------------------------------------------------------------------


def leaderboard(result: dict) -> list[dict]:
    """Rows ranked by mean reward within each variant (NaN last), with the SFT start as a reference."""
    ranked = []
    for variant in result["config"]["variants"]:
        rows = [r for r in result["rows"] if r["variant"] == variant]
        rows.sort(key=lambda r: -r["mean_reward"] if math.isfinite(r["mean_reward"]) else math.inf)
        ranked += [{**r, "rank": i + 1} for i, r in enumerate(rows)]
    return ranked


def spread(result: dict) -> str:
    """What the ± stands for."""
    seeds = result["config"]["seeds"]
    return f"mean ± s.e. over {seeds} seeds" if seeds > 1 else "± s.e. over prompts, one seed"


def title(result: dict) -> str:
    cfg = result["config"]
    return (f"Tiny-LLM diagnostic ({result['problem']['name']} digits): {cfg['steps']} PO steps × {cfg['batch_size']} "
            f"pairs; greedy reward on {cfg['eval_prompts']} held-out prompts ({spread(result)})")


def _cells(r: dict) -> tuple[str, ...]:
    if not math.isfinite(r["mean_reward"]):
        return ("—",) * 5
    return (f"{r['mean_reward']:.3f}", f"{r['reward_se']:.3f}", f"{r['exact_match']:.2f}", f"{r['win_rate']:.2f}",
            f"{r['seconds']:.1f}")


def table_rows(result: dict) -> list[tuple[str, ...]]:
    """The leaderboard's lines, in :data:`COLUMNS`: the SFT start first, then the ranked rows."""
    b = result["baseline"]
    ranked = [(r["variant"], str(r["rank"]), r["loss"], *_cells(r), r["error"] or "") for r in leaderboard(result)]
    return [("", "", b["loss"], *_cells(b), "PO starts here"), *ranked]


def print_leaderboard(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title(result))
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("variant", "loss", "note") else "right")
    for line in table_rows(result):
        table.add_row(*line)
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 110))
    console.print(table)


def leaderboard_markdown(result: dict) -> str:
    """The leaderboard as a Markdown table under its title (for TensorBoard's text tab)."""
    lines = [f"**{title(result)}**", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in table_rows(result)])


def plot_records(result: dict) -> tuple[list[dict], dict]:
    """(records, references) in the MuJoCo bench's shape (algo, variant, mean, stderr, seeds, hparams),
    the SFT start as the reference line, for :func:`mirrorpo.report.leaderboard.plot_leaderboard`."""
    hparams = result["config"]["hparams"]
    records = [{"algo": r["loss"], "variant": r["variant"], "mean": r["mean_reward"], "stderr": r["reward_se"],
                "seeds": r["seeds"], "hparams": hparams.get(r["loss"], {})} for r in result["rows"]]
    b = result["baseline"]
    return records, {b["loss"]: {"mean": b["mean_reward"], "stderr": b["reward_se"]}}


# --- files ------------------------------------------------------------------------------------------------


def write_results(result: dict, out_dir: str | Path) -> tuple[Path, Path]:
    from mirrorpo.fileio import atomic_write_text

    out_dir = Path(out_dir)
    ranked = leaderboard(result)
    text = json.dumps(_finite({**result, "leaderboard": ranked}), indent=2, allow_nan=False, default=str)
    json_path = atomic_write_text(out_dir / "results.json", text + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerow({**result["baseline"], "rank": 0})
    for r in ranked:
        writer.writerow(r)
    csv_path = atomic_write_text(out_dir / "results.csv", buf.getvalue())
    return json_path, csv_path


def _finite(x):
    """NaN and infinities as null, so that results.json is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x
