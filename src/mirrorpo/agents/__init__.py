"""Agents (docs/design.md §1–2): the Gaussian policy and its trajectory log-likelihood
(:mod:`mirrorpo.agents.policy`), PPO pretraining (:mod:`mirrorpo.agents.ppo`), checkpoints
(:mod:`mirrorpo.agents.checkpoint`) and the shipped agents (:mod:`mirrorpo.agents.shipped`)."""

from mirrorpo.agents.checkpoint import CheckpointError
from mirrorpo.agents.policy import (
    RESOLUTION,
    act,
    distribution,
    init_policy,
    mean_action,
    sample_action,
    step_log_probs,
    trajectory_log_likelihood,
)


def load_agent(name_or_path: str, env: str | None = None):
    """(params, metadata) of a shipped agent (by name) or a checkpoint path; ``env`` checks the fit."""
    from mirrorpo.agents import checkpoint, shipped

    if name_or_path in shipped.names():
        return shipped.load(name_or_path, env)
    return checkpoint.load(name_or_path, env)


__all__ = ["RESOLUTION", "CheckpointError", "act", "distribution", "init_policy", "load_agent", "mean_action",
           "sample_action", "step_log_probs", "trajectory_log_likelihood"]
