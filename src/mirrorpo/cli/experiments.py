"""``mirrorpo bench`` (the leaderboard) and ``mirrorpo discover`` (ES search for MPO objectives)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mirrorpo.errors import MirrorpoError

ALGOS_HELP = "Comma-separated losses (names, 'a+0.5*b', mpo:FILE) or 'all' (every registered loss)."


def split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def run_bench(task: str, preset: str, algos: list[str] | None, variants: list[str] | None, seeds: int | None,
              out: Path, seed: int = 0, cached_only: bool = False, grid: list[str] | None = None,
              log_dir: Path | None = None, suite: str | None = None) -> list[dict]:
    from mirrorpo.benchmark import Bench, check_cells, get_preset, parse_grid
    from mirrorpo.cli.progress import progress_bar
    from mirrorpo.fileio import atomic_write_text
    from mirrorpo.losses import available_losses
    from mirrorpo.report.curves import curve_log
    from mirrorpo.report.leaderboard import print_leaderboard, write_results
    from mirrorpo.report.paper import comparison_table, findings_report, tau_lines
    from mirrorpo.tasks import get_suite, get_task

    chosen = get_preset(preset)
    algos = available_losses() if not algos or algos == ["all"] else algos
    variants = variants or list(chosen.variants)
    if seeds is not None and seeds < 1:
        raise MirrorpoError(f"--seeds must be ≥ 1; got {seeds}.")
    check_cells(algos, variants)
    overrides = parse_grid(suite_grid(get_suite(suite), algos) + (grid or []), algos)
    if cached_only and not any((out / "cells").glob("*/*.json")):
        raise MirrorpoError(f"--cached-only: {out}/cells holds no finished cells; run the bench without it first.")
    bench = Bench(get_task(task, suite), chosen, out, seeds=seeds, seed=seed, grid_overrides=overrides)
    title = f"{task.upper()} — {preset} preset, suite {get_suite(suite).name}"
    references = bench.references()
    def on_records(so_far):  # results so far rewritten, and the cell's curve point, after each cell
        write_results(so_far, out, title, references)
        curves.cell(so_far[-1], len(so_far) - 1)

    with progress_bar(f"bench {task}/{preset}: cells") as update, curve_log(log_dir) as curves:
        records = bench.run(algos, variants, progress=lambda label, d, t: update(d, t, label),
                            on_records=on_records, cached_only=cached_only)
        if records:
            curves.text("bench/leaderboard", comparison_table(records, references, task))
    if not records:
        raise MirrorpoError(f"--cached-only: no finished cells of these algorithms and variants in {out}/cells.")
    print_leaderboard(records, title, references)
    paths = write_results(records, out, title, references)
    report = findings_report(records, references, task)
    typer.echo("\nThe paper's findings (docs/design.md §5):")
    for f in report["findings"]:
        typer.echo(f"  [{f['verdict']}] {f['claim']}: {f['evidence']}")
    typer.echo("\n".join(tau_lines(report["kendall_tau"])))
    paths["findings"] = out / "findings.json"
    atomic_write_text(paths["findings"], json.dumps(report, indent=2))
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
    return records


def suite_grid(version, algos: list[str]) -> list[str]:
    """The suite version's --grid entries for the losses of this run (the others have no such axis)."""
    from mirrorpo.losses import get_spec

    names = {get_spec(a).name for a in algos if not a.startswith("mpo:")}
    return [e for e in version.grid if e.partition("=")[0].rpartition(".")[0] in names]


SUITE_HELP = "Suite version: v2 (default: likelihood floor, wide SimPO/LPO grids) | v1 (the earlier suite)."


def bench(
    task: Annotated[str, typer.Option(help="tla | hopper")] = "tla",
    preset: Annotated[str, typer.Option(help="quick (CPU, minutes) | full (paper scale, GPU)")] = "quick",
    algos: Annotated[str, typer.Option(help=ALGOS_HELP)] = "all",
    variants: Annotated[str | None, typer.Option(help="Comma-separated: base, mixed, noisy-EPS, bad-judge "
                                                      "(default: the preset's).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds for the best setting (default: the preset's).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default out/bench/TASK-PRESET).")] = None,
    seed: Annotated[int, typer.Option(help="Base seed (datasets, training, evaluation).")] = 0,
    cached_only: Annotated[bool, typer.Option(help="Train nothing: collect the cells already finished in --out "
                                                   "(the leaderboard of a stopped or running bench).")] = False,
    grid: Annotated[list[str] | None, typer.Option(help="Replace a searched grid, repeatable: 'beta=1e-4,1e-3' (every "
                                                        "loss with a β) or 'dpo.beta=1e-4,1e-3' (one loss).")] = None,
    log_dir: Annotated[Path | None, typer.Option(help="Also log each cell and the table to TensorBoard here.")] = None,
    suite: Annotated[str | None, typer.Option(help=SUITE_HELP)] = None,
):
    """Hyper-parameter search + seeds per (algorithm, dataset) cell; prints and writes the leaderboard."""
    run_bench(task, preset, split(algos), split(variants), seeds, out or Path(f"out/bench/{task}-{preset}"), seed,
              cached_only, grid, log_dir, suite)


def compare(
    results: Annotated[Path, typer.Argument(help="A bench output folder (results.json, references.json).")],
    task: Annotated[str, typer.Option(help="tla | hopper: which of the paper's tables to set beside it.")] = "tla",
    paired: Annotated[str | None, typer.Option(help="Also print this algorithm minus every other one, paired by "
                                                    "seed (mean ± s.e. of the per-seed differences).")] = None,
):
    """Print a bench's leaderboard beside the paper's numbers (Markdown) and check the paper's findings."""
    from mirrorpo.report.findings import check_findings
    from mirrorpo.report.paper import comparison_table, paired_differences, paper_taus, tau_lines

    if task not in ("tla", "hopper"):
        raise MirrorpoError(f"unknown task '{task}'; valid: tla, hopper.")
    records, references = (_read_json(results / name) for name in ("results.json", "references.json"))
    typer.echo(comparison_table(records, references, task))
    for f in check_findings(records, references):
        typer.echo(f"- **{f.claim}**: {f.verdict} ({f.evidence})")
    typer.echo("\n".join(tau_lines(paper_taus(records, task))))
    if paired is not None:
        rows = paired_differences(records, paired)
        if not rows:
            raise MirrorpoError(f"--paired {paired}: no cell of that algorithm shares its seeds with another in {results}.")
        typer.echo(f"\n| variant | {paired} minus | difference | s.e. | seeds | s.e.s |\n|---|---|---:|---:|---:|---:|")
        for r in rows:
            se = "" if r["stderr"] is None else f"{r['stderr']:.0f}"
            z = "" if r["z"] is None else f"{r['z']:+.1f}"
            typer.echo(f"| {r['variant']} | {r['against']} | {r['mean']:+.0f} | {se} | {r['seeds']} | {z} |")


def _read_json(path: Path):
    if not path.is_file():
        raise MirrorpoError(f"{path} not found; point at a folder written by `mirrorpo bench`.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MirrorpoError(f"{path} is not valid JSON ({exc}); rerun the bench to rewrite it.") from exc


def demo(out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/demo")):
    """The main job: the quick CPU benchmark on TLA with the shipped agents, leaderboard and plot."""
    run_bench("tla", "quick", None, None, None, out)


def discover(
    task: Annotated[str, typer.Option(help="tla | hopper")] = "tla",
    variant: Annotated[str, typer.Option(help="Dataset variant to specialise to.")] = "noisy-0.3",
    family: Annotated[str, typer.Option(help="one-step | two-step")] = "one-step",
    learn: Annotated[str, typer.Option(help="Functions to learn, comma-separated: psi, g, phi.")] = "psi",
    temporal: Annotated[bool, typer.Option(help="Temporally-aware functions (see training progress).")] = False,
    population: Annotated[int | None, typer.Option(help="ES population (even). Default: the preset's — quick 8, "
                                                        "full 256.")] = None,
    generations: Annotated[int | None, typer.Option(help="Default: the preset's — quick 5, full 256 (TLA) / "
                                                         "128 (Hopper).")] = None,
    preset: Annotated[str, typer.Option(help="quick (a complete run in minutes on a CPU) | full (the paper's "
                                             "scale, for a GPU): data, inner loop, evaluation, ES size.")] = "full",
    sigma0: Annotated[float, typer.Option()] = 0.03,
    sigma_decay: Annotated[float, typer.Option()] = 0.999,
    lr: Annotated[float, typer.Option(help="ES Adam learning rate.")] = 0.02,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path, typer.Option(help="Run folder (resumes a run found there).")] = Path("out/discover"),
    distributed: Annotated[bool, typer.Option(help="Join a multi-host run via jax.distributed.")] = False,
    log_dir: Annotated[Path | None, typer.Option(help="Also log each generation to TensorBoard here.")] = None,
    time_budget: Annotated[float | None, typer.Option(help="Minutes: stop cleanly at the last generation boundary "
                                                           "that fits; rerun to continue.")] = None,
    fixed_keys: Annotated[bool, typer.Option(help="Fitness on the same training and evaluation keys every "
                                                  "generation (common random numbers).")] = False,
    train_seeds: Annotated[int, typer.Option(help="Training seeds averaged in each candidate's fitness.")] = 1,
    suite: Annotated[str | None, typer.Option(help=SUITE_HELP)] = None,
):
    """Meta-learn an MPO objective with antithetic OpenAI-ES (checkpointed every generation)."""
    from mirrorpo.benchmark import get_preset
    from mirrorpo.cli.progress import progress_bar
    from mirrorpo.meta import Discovery, DiscoveryConfig, default_scale, init_distributed, is_main_process
    from mirrorpo.report.curves import curve_log
    from mirrorpo.report.discovery import plot_fitness
    from mirrorpo.tasks import get_task

    if distributed:
        init_distributed()
    names = {"phi": "phi_inv", "phi_inv": "phi_inv", "psi": "psi", "g": "g"}
    wanted = split(learn) or []
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise MirrorpoError(f"--learn takes psi, g, phi; got {', '.join(unknown)}.")
    fam = family.replace("-", "_")
    if time_budget is not None and not time_budget > 0:
        raise MirrorpoError(f"--time-budget is in minutes and must be > 0; got {time_budget}.")
    scale = default_scale(preset, task)
    population, gens = population or scale[0], generations or scale[1]
    config = DiscoveryConfig(task, variant, fam, tuple(names[w] for w in wanted), temporal, population, gens,
                             sigma0, sigma_decay, lr, seed, fixed_keys=fixed_keys, train_seeds=train_seeds)
    run = Discovery(get_task(task, suite), get_preset(preset), config, out)
    def on_generation(row):
        update(row["generation"], gens, f"best {row['best_return']:.1f}")
        curves.generation(row)

    with progress_bar(f"discover {task}/{variant}: generations") as update, \
            curve_log(log_dir if is_main_process() else None) as curves:
        done = run.run(on_generation=on_generation, time_budget=None if time_budget is None else 60 * time_budget)
    if done["log"] and is_main_process():
        done["paths"]["plot"] = str(plot_fitness(done["log"], out / "fitness.png", f"{task} / {variant}"))
    typer.echo(json.dumps({k: v for k, v in done.items() if k != "log"}, indent=2))
