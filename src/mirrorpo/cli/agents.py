# ruff: noqa: B008  (typer options as defaults)
"""``mirrorpo agents`` — train, evaluate and list the suite's pretrained agents (docs/design.md §1).
jax/brax are imported inside the commands so ``mirrorpo --help`` stays fast."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

app = typer.Typer(help="Pretrained agents: PPO training, evaluation, the shipped agents.", no_args_is_help=True)


@app.command("train")
def train_cmd(
    env: str = typer.Option(..., help="ant | three_legged_ant | hopper"),
    out: Path = typer.Option(..., help="output folder (checkpoints step_<N>, final, log.jsonl)"),
    steps: int = typer.Option(5_000_000, help="total environment steps"),
    seed: int = typer.Option(0),
    num_envs: int = typer.Option(128),
    unroll_length: int = typer.Option(16),
    gamma: float = typer.Option(0.97),
    lr: float = typer.Option(3e-4),
    ent_coef: float = typer.Option(1e-3),
    reward_scale: float = typer.Option(0.1),
    backend: str = typer.Option("spring", help="brax backend"),
    checkpoint_every: int = typer.Option(500_000, help="environment steps between checkpoints"),
    eval_episodes: int = typer.Option(8, help="episodes of the evaluation at each checkpoint"),
) -> None:
    """Train a PPO agent, checkpointing and evaluating every --checkpoint-every steps."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from mirrorpo.agents.ppo import PPOConfig
    from mirrorpo.agents.train import train
    from mirrorpo.envs import get_spec

    get_spec(env)
    cfg = PPOConfig(env=env, backend=backend, total_steps=steps, num_envs=num_envs, unroll_length=unroll_length,
                    gamma=gamma, lr=lr, ent_coef=ent_coef, reward_scale=reward_scale)
    command = "mirrorpo agents " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} steps"),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()) as progress:
        task = progress.add_task(f"PPO {env}", total=cfg.num_updates * cfg.steps_per_update, info="compiling…")

        def on_progress(rec):
            progress.update(task, completed=rec["steps"],
                            info=f"eval {rec['eval_deterministic']['mean']:.0f} (det) / {rec['eval_sampled']['mean']:.0f}")
            progress.console.log(json.dumps({k: rec[k] for k in ("steps", "time_s", "train_return")}
                                            | {"eval_det": rec["eval_deterministic"]["mean"],
                                               "eval_sampled": rec["eval_sampled"]["mean"]}))

        meta = train(cfg, seed, out, checkpoint_every, eval_episodes, command, on_progress)
    typer.echo(f"final checkpoint: {out / 'final'} (sha256 {meta['sha256'][:12]})")


@app.command("eval")
def eval_cmd(
    agent: str = typer.Argument(..., help="a shipped agent's name or a checkpoint path"),
    env: str = typer.Option(None, help="environment (default: the one the agent was trained on)"),
    episodes: int = typer.Option(100),
    length: int = typer.Option(None, help="episode length (default 1000)"),
    seed: int = typer.Option(0),
    deterministic: bool = typer.Option(False, help="mean actions instead of sampled ones"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate an agent: mean true return ± standard error over a batch of episodes."""
    from rich.console import Console

    from mirrorpo.agents import load_agent
    from mirrorpo.agents.train import evaluate

    params, meta = load_agent(agent, env)
    env = env or meta["env"]
    console = Console(stderr=True)
    with console.status(f"rolling out {episodes} episodes of {env} (compiling first)…"):
        res = evaluate(env, params, episodes, seed, deterministic, length, meta.get("backend"))
    res["env"], res["agent"], res["deterministic"] = env, agent, deterministic
    if as_json:
        typer.echo(json.dumps(res))
    else:
        typer.echo(f"{agent} on {env}: {res['mean']:.1f} ± {res['stderr']:.1f} over {episodes} episodes "
                   f"(mean length {res['mean_length']:.0f}, {'deterministic' if deterministic else 'sampled'})")


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="print a JSON list")) -> None:
    """The shipped agents with the env each was trained on and its measured returns."""
    from mirrorpo.agents.shipped import list_agents

    agents = list_agents()
    if as_json:
        typer.echo(json.dumps(agents, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="shipped agents")
    for col in ("name", "trained on", "steps", "returns (mean ± stderr, episodes)"):
        table.add_column(col)
    for a in agents:
        rets = "; ".join(f"{e}: {r['mean']:.0f} ± {r['stderr']:.0f} ({r['episodes']})" for e, r in a["returns"].items())
        table.add_row(a["name"], a["env"], f"{a.get('steps', 0):,}", rets)
    Console().print(table)
