"""Offline preference optimization: the inner loop (one jit-compiled, vmappable function)."""

from mirrorpo.train.inner import (
    Objective,
    Pairs,
    StepLogProb,
    TrainConfig,
    TrainError,
    TrainResult,
    check_pairs,
    make_train,
    registry_objective,
    switch_hparams,
    switch_objective,
)

__all__ = ["Objective", "Pairs", "StepLogProb", "TrainConfig", "TrainError", "TrainResult", "check_pairs",
           "make_train", "registry_objective", "switch_hparams", "switch_objective"]
