"""``mirrorpo data generate`` and ``mirrorpo data info``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mirrorpo.cli.options import JsonFlag, Task, print_json

app = typer.Typer(help="Preference datasets: generate and inspect.", no_args_is_help=True)


def variant_and_epsilon(variant: str, epsilon: float) -> tuple[str, float]:
    """``noisy-EPS`` (the bench's spelling, :func:`mirrorpo.benchmark.parse_variant`) or ``noisy`` with
    ``--epsilon``; other variants as they are (:class:`mirrorpo.data.GenerationConfig` checks them)."""
    if not variant.startswith("noisy-"):
        return variant, epsilon
    from mirrorpo.benchmark import parse_variant
    from mirrorpo.errors import MirrorpoError

    eps = parse_variant(variant)["epsilon"]
    if epsilon and epsilon != eps:
        raise MirrorpoError(f"--variant {variant} sets ε = {eps:g}; drop --epsilon {epsilon:g} (or write "
                            f"--variant noisy --epsilon {epsilon:g}).")
    return "noisy", eps


@app.command()
def generate(
    task: Annotated[Task, typer.Option(help="The suite's task.")],
    out: Annotated[Path, typer.Option(help="Output folder (resumes an unfinished generation there).")],
    variant: Annotated[str, typer.Option(help="base | mixed | bad-judge | noisy-EPS with EPS in (0, 0.5), as in "
                                              "`mirrorpo bench` (or noisy with --epsilon).")] = "base",
    epsilon: Annotated[float, typer.Option(help="Label-flip probability (noisy variant).")] = 0.0,
    temperature: Annotated[float | None, typer.Option(help="Bradley–Terry temperature (default: task's).")] = None,
    pairs: Annotated[int | None, typer.Option(help="Number of pairs (default: paper's: TLA 1280, Hopper 5120).")]
    = None,
    horizon: Annotated[int, typer.Option(help="Trajectory length.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    chunk_size: Annotated[int, typer.Option(help="Pairs per checkpointed chunk.")] = 64,
):
    """Generate a preference dataset from the shipped agents (chunked, atomic, resumable)."""
    from mirrorpo.cli.progress import progress_bar
    from mirrorpo.data import GenerationConfig, dataset_info, load_dataset
    from mirrorpo.data import generate as run
    from mirrorpo.tasks import get_task

    kind, epsilon = variant_and_epsilon(variant, epsilon)
    config = GenerationConfig(task.value, kind, pairs, horizon, temperature, epsilon, seed, chunk_size).resolved()
    sampler = get_task(task.value).sampler()
    with progress_bar(f"{task.value}/{variant}: chunks") as update:
        run(config, out, sampler, on_chunk=lambda d, t: update(d, t))
    info = dataset_info(load_dataset(out))
    typer.echo(f"wrote {out}: {info['pairs']} pairs, label agreement {info['label_agreement']:.3f}, "
               f"flip rate {info['flip_rate']:.3f}")


@app.command()
def info(
    directory: Annotated[Path, typer.Argument(help="Dataset folder.")],
    as_json: JsonFlag = False,
):
    """Counts, agent mix, return statistics, label agreement and realised flip rate of a dataset."""
    from mirrorpo.data import dataset_info, load_dataset

    summary = dataset_info(load_dataset(directory))
    if as_json:
        print_json(summary)
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
