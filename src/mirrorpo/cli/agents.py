"""``mirrorpo agents`` — train, evaluate and list the suite's pretrained agents (docs/design.md §1).
jax/brax are imported inside the commands so ``mirrorpo --help`` stays fast."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from mirrorpo.cli.options import Backend, Env, JsonFlag, PolicyKind, comma_list, print_json
from mirrorpo.errors import MirrorpoError

app = typer.Typer(help="Pretrained agents: PPO training, evaluation, the shipped agents.", no_args_is_help=True)


@app.command("train")
def train_cmd(
    env: Annotated[Env, typer.Option(help="Environment.")],
    out: Annotated[Path, typer.Option(help="Output folder (checkpoints step_<N>, final, log.jsonl).")],
    steps: Annotated[int, typer.Option(help="Total environment steps.")] = 5_000_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    num_envs: Annotated[int, typer.Option(help="Parallel environments.")] = 128,
    unroll_length: Annotated[int, typer.Option(help="Steps per environment per update.")] = 16,
    gamma: Annotated[float, typer.Option(help="Discount factor.")] = 0.97,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 3e-4,
    ent_coef: Annotated[float, typer.Option(help="Entropy bonus coefficient.")] = 1e-3,
    reward_scale: Annotated[float, typer.Option(help="Reward scale during training.")] = 0.1,
    backend: Annotated[Backend, typer.Option(help="brax backend.")] = Backend.spring,
    checkpoint_every: Annotated[int, typer.Option(help="Environment steps between checkpoints.")] = 500_000,
    eval_episodes: Annotated[int, typer.Option(help="Episodes of the evaluation at each checkpoint.")] = 8,
    policy: Annotated[PolicyKind, typer.Option(
        help="Policy: gaussian (tanh MLP 64×64, state-independent σ, clipped), gaussian_sd or tanh_gaussian_sd "
             "(brax's 4×32 swish network with a state-dependent σ; clipped or tanh-squashed).")] = PolicyKind.gaussian,
    policy_hidden: Annotated[str | None, typer.Option(
        help="Hidden layer sizes of the policy, comma-separated (default: 64,64 for gaussian, 32,32,32,32 else).")] = None,
) -> None:
    """Train a PPO agent, checkpointing and evaluating every --checkpoint-every steps."""
    from mirrorpo.agents.ppo import PPOConfig
    from mirrorpo.agents.train import train
    from mirrorpo.cli.progress import progress_bar

    sizes = comma_list(policy_hidden, "--policy-hidden", "32,32,32,32")
    if sizes is not None and not all(s.isdigit() and int(s) > 0 for s in sizes):
        raise MirrorpoError(f"--policy-hidden takes positive integers (e.g. 32,32,32,32); got {policy_hidden!r}.")
    hidden = tuple(int(h) for h in sizes) if sizes else (
        (64, 64) if policy is PolicyKind.gaussian else (32, 32, 32, 32))
    cfg = PPOConfig(env=env.value, backend=backend.value, total_steps=steps, num_envs=num_envs,
                    unroll_length=unroll_length, gamma=gamma, lr=lr, ent_coef=ent_coef, reward_scale=reward_scale,
                    policy_hidden=hidden, policy_kind=policy.value)
    command = "mirrorpo agents " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    total = cfg.num_updates * cfg.steps_per_update
    with progress_bar(f"PPO {env.value}: steps", total) as update:
        update(0, total, "compiling…")

        def on_progress(rec):
            det, sampled = rec["eval_deterministic"]["mean"], rec["eval_sampled"]["mean"]
            update(rec["steps"], total, f"eval {det:.0f} (det) / {sampled:.0f}")
            typer.echo(json.dumps({k: rec[k] for k in ("steps", "time_s", "train_return")}
                                  | {"eval_det": det, "eval_sampled": sampled}))

        meta = train(cfg, seed, out, checkpoint_every, eval_episodes, command, on_progress)
    typer.echo(f"final checkpoint: {out / 'final'} (sha256 {meta['sha256'][:12]})")


@app.command("eval")
def eval_cmd(
    agent: Annotated[str, typer.Argument(help="A shipped agent's name or a checkpoint path.")],
    env: Annotated[Env | None, typer.Option(help="Environment (default: the one the agent was trained on).")]
    = None,
    episodes: Annotated[int, typer.Option(help="Episodes to roll out.")] = 100,
    length: Annotated[int | None, typer.Option(help="Episode length (default 1000).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    deterministic: Annotated[bool, typer.Option(help="Mean actions instead of sampled ones.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate an agent: mean true return ± standard error over a batch of episodes."""
    from mirrorpo.agents import load_agent
    from mirrorpo.agents.train import evaluate
    from mirrorpo.cli.progress import progress_bar

    params, meta = load_agent(agent, env.value if env else None)
    name = env.value if env else meta["env"]
    with progress_bar(f"{agent} on {name}: {episodes} episodes (compiling first)", 1) as update:
        res = evaluate(name, params, episodes, seed, deterministic, length, meta.get("backend"))
        update(1, 1)
    res["env"], res["agent"], res["deterministic"] = name, agent, deterministic
    if as_json:
        print_json(res)
    else:
        typer.echo(f"{agent} on {name}: {res['mean']:.1f} ± {res['stderr']:.1f} over {episodes} episodes "
                   f"(mean length {res['mean_length']:.0f}, {'deterministic' if deterministic else 'sampled'})")


@app.command("list")
def list_cmd(as_json: JsonFlag = False) -> None:
    """The shipped agents with the env each was trained on and its measured returns."""
    from mirrorpo.agents.shipped import list_agents

    agents = list_agents()
    if as_json:
        print_json(agents)
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
