"""``mirrorpo data generate`` and ``mirrorpo data info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Preference datasets: generate and inspect.", no_args_is_help=True)


@app.command()
def generate(
    task: Annotated[str, typer.Option(help="tla | hopper")],
    out: Annotated[Path, typer.Option(help="Output folder (resumes an unfinished generation there).")],
    variant: Annotated[str, typer.Option(help="base | noisy | mixed | bad-judge")] = "base",
    epsilon: Annotated[float, typer.Option(help="Label-flip probability (noisy variant).")] = 0.0,
    temperature: Annotated[float | None, typer.Option(help="Bradley–Terry temperature (default: task's).")] = None,
    pairs: Annotated[int | None, typer.Option(help="Number of pairs (default: paper's: TLA 1280, Hopper 5120).")]
    = None,
    horizon: Annotated[int, typer.Option(help="Trajectory length.")] = 1000,
    seed: Annotated[int, typer.Option()] = 0,
    chunk_size: Annotated[int, typer.Option(help="Pairs per checkpointed chunk.")] = 64,
):
    """Generate a preference dataset from the shipped agents (chunked, atomic, resumable)."""
    from mirrorpo.cli.progress import progress_bar
    from mirrorpo.data import GenerationConfig, dataset_info, load_dataset
    from mirrorpo.data import generate as run
    from mirrorpo.tasks import get_task

    config = GenerationConfig(task, variant, pairs, horizon, temperature, epsilon, seed, chunk_size).resolved()
    sampler = get_task(task).sampler()
    with progress_bar(f"{task}/{variant}: chunks") as update:
        run(config, out, sampler, on_chunk=lambda d, t: update(d, t))
    info = dataset_info(load_dataset(out))
    typer.echo(f"wrote {out}: {info['pairs']} pairs, label agreement {info['label_agreement']:.3f}, "
               f"flip rate {info['flip_rate']:.3f}")


@app.command()
def info(
    directory: Annotated[Path, typer.Argument(help="Dataset folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Counts, agent mix, return statistics, label agreement and realised flip rate of a dataset."""
    from mirrorpo.data import dataset_info, load_dataset

    summary = dataset_info(load_dataset(directory))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"{directory}: task {summary['task']} ({summary['env']}), variant {summary['variant']}, "
               f"{summary['pairs']} pairs × horizon {summary['horizon']}, mean length {summary['mean_length']:.1f}")
    typer.echo(f"  judge T = {summary['temperature']:g}, ε = {summary['epsilon']:g}, seed {summary['seed']}")
    typer.echo("  agent mix: " + ", ".join(f"{k} {v:.1%}" for k, v in summary["agent_mix"].items()))
    for name, r in summary["returns"].items():
        if r["trajectories"]:
            typer.echo(f"  {name}: {r['trajectories']} trajectories, return {r['mean']:.1f} ± {r['std']:.1f} "
                       f"[{r['min']:.1f}, {r['max']:.1f}]")
    typer.echo(f"  label agreement with true returns {summary['label_agreement']:.3f} "
               f"(Bradley–Terry expectation {summary['expected_agreement']:.3f}); "
               f"realised flip rate {summary['flip_rate']:.3f}")
