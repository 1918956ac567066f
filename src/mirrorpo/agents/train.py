"""Chunked PPO driver: trains with :mod:`mirrorpo.agents.ppo`, logs progress to ``log.jsonl`` and
writes a checkpoint every ``checkpoint_every`` environment steps (``step_<N>``) plus ``final``, each
with a short deterministic and sampled evaluation, so an interrupted run loses at most one chunk."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mirrorpo.agents import checkpoint as ckpt
from mirrorpo.agents.policy import mean_action, sample_action
from mirrorpo.agents.ppo import PPOConfig, make_chunk
from mirrorpo.envs import DEFAULT_BACKEND, rollout


def evaluate(env: str, params, episodes: int, seed: int = 0, deterministic: bool = False,
             length: int | None = None, backend: str | None = None) -> dict:
    """Mean, standard error and count of true returns over ``episodes`` episodes (one batch)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    policy = mean_action if deterministic else sample_action
    r = rollout(env, policy, params, keys, length, backend or DEFAULT_BACKEND)
    ret = np.asarray(r.returns, np.float64)
    stderr = float(ret.std(ddof=1) / np.sqrt(len(ret))) if len(ret) > 1 else 0.0
    return {"mean": float(ret.mean()), "stderr": stderr, "episodes": int(episodes),
            "mean_length": float(np.asarray(r.lengths).mean())}


def train(cfg: PPOConfig, seed: int, out_dir: str | Path, checkpoint_every: int = 500_000,
          eval_episodes: int = 8, command: str = "", on_progress: Callable[[dict], None] | None = None) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"ppo": cfg.to_dict(), "seed": seed, "command": command}, indent=2))
    init, chunk, final_policy = make_chunk(cfg)
    t0 = time.time()
    rs = init(jax.random.PRNGKey(seed))
    per_chunk = max(1, checkpoint_every // cfg.steps_per_update)
    done_updates = 0
    log = (out / "log.jsonl").open("a")
    meta = {}
    while done_updates < cfg.num_updates:
        n = min(per_chunk, cfg.num_updates - done_updates)
        rs, m = chunk(rs, n)
        done_updates += n
        policy = final_policy(rs)
        steps = done_updates * cfg.steps_per_update
        rets = np.asarray(m.episode_return)
        rets = rets[np.isfinite(rets)]
        ev = evaluate(cfg.env, policy, eval_episodes, seed=10_000 + done_updates, backend=cfg.backend)
        ev_det = evaluate(cfg.env, policy, eval_episodes, seed=10_000 + done_updates, deterministic=True,
                          backend=cfg.backend)
        rec = {"steps": int(steps), "updates": done_updates, "time_s": round(time.time() - t0, 1),
               "train_return": float(rets.mean()) if len(rets) else None,
               "loss": float(np.asarray(m.loss).mean()), "eval_sampled": ev, "eval_deterministic": ev_det}
        log.write(json.dumps(rec) + "\n")
        log.flush()
        name = "final" if done_updates >= cfg.num_updates else f"step_{steps:09d}"
        meta = ckpt.save(out / name, policy, {
            "env": cfg.env, "backend": cfg.backend, "seed": seed, "steps": int(steps), "ppo": cfg.to_dict(),
            "command": command, "value_hidden": list(cfg.value_hidden), "train_time_s": rec["time_s"],
            "eval_sampled": ev, "eval_deterministic": ev_det})
        if on_progress is not None:
            on_progress(rec)
    log.close()
    return meta


def jnp_tree_equal(a, b) -> bool:
    return all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
