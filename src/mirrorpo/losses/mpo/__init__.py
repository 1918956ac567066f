"""Mirror Preference Optimization: learnable monotone ϕ⁻¹, ψ, g (static or temporally aware)."""

from mirrorpo.losses.mpo.monotone import ACTIVATION_NAMES, ACTIVATIONS
from mirrorpo.losses.mpo.objective import (
    FAMILIES,
    SUFFIX,
    MPOObjective,
    MPOStructure,
    load_objective,
    mpo_one_step,
    mpo_two_step,
    save_objective,
)

__all__ = [
    "ACTIVATIONS", "ACTIVATION_NAMES", "FAMILIES", "SUFFIX", "MPOObjective", "MPOStructure", "load_objective",
    "mpo_one_step", "mpo_two_step", "save_objective",
]
