"""``mirrorpo bench`` (the leaderboard) and ``mirrorpo discover`` (ES search for MPO objectives)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from mirrorpo.cli.options import BenchPreset, Family, Suite, Task, comma_list
from mirrorpo.errors import MirrorpoError

ALGOS_HELP = "Comma-separated losses (names, 'a+0.5*b', mpo:FILE) or 'all' (every registered loss)."
ALGOS_EXAMPLE = "dpo,simpo,dpo+0.5*sft"
VARIANTS_EXAMPLE = "base,mixed,noisy-0.2"


def run_bench(task: str, preset: str, algos: Sequence[str] | None, variants: Sequence[str] | None, seeds: int | None,
              out: Path, seed: int = 0, cached_only: bool = False, grid: list[str] | None = None,
              log_dir: Path | None = None, suite: str | None = None, searched_grids: bool = False) -> list[dict]:
    from mirrorpo.benchmark import Bench, check_cells, get_preset, parse_grid
    from mirrorpo.cli.progress import progress_bar
    from mirrorpo.fileio import atomic_write_text
    from mirrorpo.losses import available_losses
    from mirrorpo.report.curves import curve_log
    from mirrorpo.report.leaderboard import print_leaderboard, write_results
    from mirrorpo.report.paper import comparison_table, findings_report, tau_lines
    from mirrorpo.tasks import get_suite, get_task

    chosen = get_preset(preset)
    algos = available_losses() if not algos or list(algos) == ["all"] else list(algos)
    variants = list(variants or chosen.variants)
    if seeds is not None and seeds < 1:
        raise MirrorpoError(f"--seeds must be ≥ 1; got {seeds}.")
    check_cells(algos, variants)
    overrides = parse_grid(suite_grid(get_suite(suite), algos) + (grid or []), algos)
    if cached_only and not any((out / "cells").glob("*/*.json")):
        raise MirrorpoError(f"--cached-only: {out}/cells holds no finished cells; run the bench without it first.")
    bench = Bench(get_task(task, suite), chosen, out, seeds=seeds, seed=seed, grid_overrides=overrides,
                  searched_grids=searched_grids)
    title = f"{task.upper()} — {preset} preset, suite {get_suite(suite).name}"
    references = bench.references()
    def on_records(so_far):  # the folder's results rewritten, and the cell's curve point, after each cell
        write_results(bench.folder_records(so_far)[0], out, title, references)
        curves.cell(so_far[-1], len(so_far) - 1)

    with progress_bar(f"bench {task}/{preset}: cells") as update, curve_log(log_dir) as curves:
        records = bench.run(algos, variants, progress=lambda label, d, t: update(d, t, label),
                            on_records=on_records, cached_only=cached_only)
        if records:
            curves.text("bench/leaderboard", comparison_table(records, references, task))
    if not records:
        raise MirrorpoError(f"--cached-only: no finished cells of these algorithms and variants in {out}/cells.")
    run_records = records
    records, left_out = bench.folder_records(records)
    if len(records) > len(run_records):
        typer.echo(f"The results cover the folder: these {len(run_records)} cells and {len(records) - len(run_records)} "
                   f"earlier ones of {out}/cells.")
    if left_out:
        typer.echo(f"Left out {left_out} cell(s) of {out}/cells made with other grids or seeds.")
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
    return run_records


def suite_grid(version, algos: list[str]) -> list[str]:
    """The suite version's --grid entries for the losses of this run (the others have no such axis)."""
    from mirrorpo.losses import get_spec

    names = {get_spec(a).name for a in algos if not a.startswith("mpo:")}
    return [e for e in version.grid if e.partition("=")[0].rpartition(".")[0] in names]


SUITE_HELP = "Suite version: v2 (default: likelihood floor, wide SimPO/LPO grids) | v1 (the earlier suite)."


def bench(
    task: Annotated[Task, typer.Option(help="The suite's task.")] = Task.tla,
    preset: Annotated[BenchPreset, typer.Option(
        help="quick (CPU, minutes) | full (paper scale, GPU)")] = BenchPreset.quick,
    algos: Annotated[str, typer.Option(help=ALGOS_HELP)] = "all",
    variants: Annotated[str | None, typer.Option(help="Comma-separated: base, mixed, noisy-EPS, bad-judge "
                                                      "(default: the preset's).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds for the best setting (default: the preset's).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default out/bench/TASK-PRESET); results.json "
                                                  "covers every finished cell in it made with this run's grids "
                                                  "and seeds.")] = None,
    seed: Annotated[int, typer.Option(help="Base seed (datasets, training, evaluation).")] = 0,
    cached_only: Annotated[bool, typer.Option(help="Train nothing: collect the cells already finished in --out "
                                                   "(the leaderboard of a stopped or running bench).")] = False,
    grid: Annotated[list[str] | None, typer.Option(help="Replace a searched grid, repeatable: 'beta=1e-4,1e-3' (every "
                                                        "loss with a β) or 'dpo.beta=1e-4,1e-3' (one loss).")] = None,
    log_dir: Annotated[Path | None, typer.Option(help="Also log each cell and the table to TensorBoard here.")] = None,
    suite: Annotated[Suite | None, typer.Option(help=SUITE_HELP)] = None,
    searched_grids: Annotated[bool, typer.Option(help="Search the full preset's grids at this preset's scale "
                                                      "(quick otherwise takes each grid's middle value).")] = False,
):
    """Hyper-parameter search + seeds per (algorithm, dataset) cell; prints and writes the leaderboard."""
    task_, preset_ = task.value, preset.value
    run_bench(task_, preset_, comma_list(algos, "--algos", ALGOS_EXAMPLE),
              comma_list(variants, "--variants", VARIANTS_EXAMPLE), seeds,
              out or Path(f"out/bench/{task_}-{preset_}"), seed, cached_only, grid, log_dir, _value(suite), searched_grids)


def judge(
    objective: Annotated[str, typer.Argument(help="The loss to judge: mpo:NAME, mpo:FILE or a registry name.")],
    task: Annotated[Task, typer.Option(help="The suite's task.")] = Task.tla,
    variants: Annotated[str, typer.Option(help="Comma-separated dataset variants.")] = "mixed",
    preset: Annotated[BenchPreset, typer.Option(
        help="The scale (quick: the CPU discovery's).")] = BenchPreset.quick,
    seeds: Annotated[int, typer.Option(help="Held-out training seeds.")] = 10,
    seed: Annotated[str, typer.Option(help="Base seeds of the held-out datasets, comma-separated (1 and up were "
                                           "never seen by a discovery run with seed 0: fresh dataset, training and "
                                           "evaluation keys). With several, each is judged in OUT/seed-S and the "
                                           "verdict pools them (one dataset can mislead: docs/discovery.md).")] = "1,2,3",
    out: Annotated[Path, typer.Option(help="Output folder: a bench folder plus judgement.json (per dataset) and, "
                                           "for several seeds, pooled.json. Objectives judged in one folder share "
                                           "the baselines' cells; cells/ and the verdicts accumulate.")] = Path("out/judge"),
    suite: Annotated[Suite | None, typer.Option(help=SUITE_HELP)] = None,
):
    """Judge an objective on held-out datasets against the paper's baselines, their grids searched at the
    same scale on the same seeds: paired differences against each and against the best; over several
    datasets, each difference averaged over them and the best baseline chosen once by its mean over all."""
    from mirrorpo.report.paper import PAPER_HOPPER, PAPER_TLA, judgement, pooled_judgement

    if seeds < 2:
        raise MirrorpoError(f"--seeds must be ≥ 2 for a standard error of the paired difference; got {seeds}.")
    held_out, variant_list = _seed_list(seed), comma_list(variants, "--variants", VARIANTS_EXAMPLE)
    baselines = list(PAPER_TLA) if task is Task.tla else [*PAPER_HOPPER, "sft"]
    record_sets = []
    for base_seed in held_out:
        folder = out if len(held_out) == 1 else out / f"seed-{base_seed}"
        records = run_bench(task.value, preset.value, [objective, *baselines], variant_list, seeds, folder,
                            base_seed, suite=_value(suite), searched_grids=True)
        _write_verdicts(folder / "judgement.json", judgement(records, objective), f"held-out seed {base_seed}")
        record_sets.append(records)
    if len(held_out) > 1:
        _write_verdicts(out / "pooled.json", pooled_judgement(record_sets, objective),
                        f"pooled over held-out seeds {','.join(map(str, held_out))}")


def _seed_list(value: str) -> list[int]:
    items = comma_list(value, "--seed", "1,2,3")
    if not all(x.isdigit() for x in items) or len(set(items)) < len(items):
        raise MirrorpoError(f"--seed takes distinct non-negative integers, comma-separated (e.g. --seed 1,2,3); got {value!r}.")
    return [int(x) for x in items]


def _write_verdicts(path: Path, verdicts: list[dict], label: str) -> None:
    """Print the verdicts as a Markdown table and merge them into ``path`` (other objectives' stay)."""
    from mirrorpo.fileio import atomic_write_text
    from mirrorpo.report.paper import merge_judgements

    typer.echo(f"\n{label}\n| variant | objective | best baseline | difference | s.e. | s.e.s | verdict |\n"
               "|---|---:|---|---:|---:|---:|---|")
    for v in verdicts:  # a zero s.e. (every seed equal) has no z
        z = "" if v["z"] is None else f"{v['z']:+.1f}"
        typer.echo(f"| {v['variant']} | {v['mean']:.0f} | {v['best_baseline']} {v['best_baseline_mean']:.0f} | "
                   f"{v['difference']:+.0f} | {v['stderr']:.0f} | {z} | {'wins' if v['wins'] else 'no win'} |")
    atomic_write_text(path, json.dumps(merge_judgements(_read_json(path) if path.is_file() else [], verdicts), indent=2))
    typer.echo(f"wrote {path}")


def compare(
    results: Annotated[Path, typer.Argument(help="A bench output folder (results.json, references.json).")],
    task: Annotated[Task, typer.Option(help="Which of the paper's tables to set beside it.")] = Task.tla,
    paired: Annotated[str | None, typer.Option(help="Also print this algorithm minus every other one, paired by "
                                                    "seed (mean ± s.e. of the per-seed differences).")] = None,
):
    """Print a bench's leaderboard beside the paper's numbers (Markdown) and check the paper's findings."""
    from mirrorpo.report.findings import check_findings
    from mirrorpo.report.paper import comparison_table, paired_differences, paper_taus, tau_lines

    records, references = (_read_json(results / name) for name in ("results.json", "references.json"))
    typer.echo(comparison_table(records, references, task.value))
    for f in check_findings(records, references):
        typer.echo(f"- **{f.claim}**: {f.verdict} ({f.evidence})")
    typer.echo("\n".join(tau_lines(paper_taus(records, task.value))))
    if paired is not None:
        rows = paired_differences(records, paired)
        if not rows:
            raise MirrorpoError(f"--paired {paired}: no cell of that algorithm shares its seeds with another in {results}.")
        typer.echo(f"\n| variant | {paired} minus | difference | s.e. | seeds | s.e.s |\n|---|---|---:|---:|---:|---:|")
        for r in rows:
            se = "" if r["stderr"] is None else f"{r['stderr']:.0f}"
            z = "" if r["z"] is None else f"{r['z']:+.1f}"
            typer.echo(f"| {r['variant']} | {r['against']} | {r['mean']:+.0f} | {se} | {r['seeds']} | {z} |")


def _value(choice: Suite | None) -> str | None:
    """An optional choice's plain string for the library (None stays None: the default)."""
    return None if choice is None else choice.value


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
    task: Annotated[Task, typer.Option(help="The suite's task.")] = Task.tla,
    variant: Annotated[str, typer.Option(help="Dataset variant to specialise to.")] = "noisy-0.3",
    family: Annotated[Family, typer.Option(help="The MPO family to search.")] = Family.one_step,
    learn: Annotated[str, typer.Option(help="Functions to learn, comma-separated: psi, g, phi.")] = "psi",
    temporal: Annotated[bool, typer.Option(help="Temporally-aware functions (see training progress).")] = False,
    population: Annotated[int | None, typer.Option(help="ES population (even). Default: the preset's — quick 8, "
                                                        "full 256.")] = None,
    generations: Annotated[int | None, typer.Option(help="Default: the preset's — quick 5, full 256 (TLA) / "
                                                         "128 (Hopper).")] = None,
    preset: Annotated[BenchPreset, typer.Option(
        help="quick (a complete run in minutes on a CPU) | full (the paper's scale, for a GPU): data, inner loop, "
             "evaluation, ES size.")] = BenchPreset.full,
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
    datasets: Annotated[int, typer.Option(help="Datasets of the variant (seed + 1000·k); training seed j of generation "
                                               "g trains on dataset (g·seeds + j) mod K, so the ES cannot fit one "
                                               "dataset's noise.")] = 1,
    hidden: Annotated[int, typer.Option(help="Units per learned function, a multiple of 9 (one per activation): "
                                             "fewer units, a smaller search space.")] = 126,
    chunk: Annotated[int, typer.Option(help="Candidates a device trains at once (vmapped): 1 on a CPU, tens to "
                                            "hundreds on a GPU. Results depend on it, not on the process count.")] = 1,
    beta: Annotated[float | None, typer.Option(help="The objective's fixed β (default: the family's, 1).")] = None,
    lam: Annotated[float | None, typer.Option(help="One-step MPO's fixed λ (default 0.1).")] = None,
    suite: Annotated[Suite | None, typer.Option(help=SUITE_HELP)] = None,
    cpu_devices: Annotated[int | None, typer.Option(
        help="CPU devices (one candidate at a time each) this process trains on; default: its cores. "
             "Results do not depend on it.")] = None,
):
    """Meta-learn an MPO objective with antithetic OpenAI-ES (checkpointed every generation)."""
    from mirrorpo.benchmark import get_preset
    from mirrorpo.cli.progress import progress_bar
    from mirrorpo.meta import (
        Discovery,
        DiscoveryConfig,
        default_scale,
        init_distributed,
        is_main_process,
        use_cpu_devices,
    )
    from mirrorpo.report.curves import curve_log
    from mirrorpo.report.discovery import plot_fitness
    from mirrorpo.tasks import get_task

    use_cpu_devices(cpu_devices)  # before JAX starts its backend
    if distributed:
        init_distributed()
    names = {"phi": "phi_inv", "phi_inv": "phi_inv", "psi": "psi", "g": "g"}
    wanted = comma_list(learn, "--learn", "psi,g")
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise MirrorpoError(f"--learn takes psi, g, phi; got {', '.join(unknown)}.")
    task, preset, suite = task.value, preset.value, _value(suite)  # the library takes the plain strings
    fam = family.value.replace("-", "_")  # the library spells the families one_step, two_step
    if time_budget is not None and not time_budget > 0:
        raise MirrorpoError(f"--time-budget is in minutes and must be > 0; got {time_budget}.")
    scale = default_scale(preset, task)
    population, gens = population or scale[0], generations or scale[1]
    config = DiscoveryConfig(task, variant, fam, tuple(names[w] for w in wanted), temporal, population, gens,
                             sigma0, sigma_decay, lr, seed, beta=beta, lam=lam, fixed_keys=fixed_keys,
                             train_seeds=train_seeds, datasets=datasets, hidden=hidden, chunk=chunk)
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
