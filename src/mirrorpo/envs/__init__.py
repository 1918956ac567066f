"""Diagnostic environments (docs/design.md §1): ``ant``, ``three_legged_ant``, ``hopper`` on brax, and a
batched jit-compiled rollout. See :mod:`mirrorpo.envs.core` for the backend choice and the TLA
penalty, docs/envs.md for measurements. brax is imported lazily (inside :func:`make`)."""

from mirrorpo.envs.core import (
    BACKENDS,
    DEFAULT_BACKEND,
    ENV_NAMES,
    SPECS,
    TLA_ENVS,
    TLA_FOOT_PENALTY,
    TLA_LEG4_ACTUATORS,
    TLA_PENALTY,
    EnvError,
    EnvSpec,
    fourth_foot_height,
    get_spec,
    make,
    tla_foot_penalty,
    tla_penalty,
)
from mirrorpo.envs.rollout import Rollout, rollout, rollout_single

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "ENV_NAMES", "SPECS", "TLA_ENVS", "TLA_FOOT_PENALTY", "TLA_LEG4_ACTUATORS",
           "TLA_PENALTY", "EnvError", "EnvSpec", "Rollout", "fourth_foot_height", "get_spec", "make", "rollout",
           "rollout_single", "tla_foot_penalty", "tla_penalty"]
