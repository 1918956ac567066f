"""The loss library: every preference-optimization loss as a pure function of log-likelihoods.

    from mirrorpo.losses import PairBatch, pair_loss, LOSSES
    batch = PairBatch(logp_w, logp_l, len_w, len_l, ref_logp_w=None, ref_logp_l=None)
    per_pair = pair_loss("dpo", batch, beta=0.1)      # shape [B]

Each loss is written once against the batch's array namespace (:mod:`mirrorpo.losses.ops`) and runs
on JAX arrays (``jit``/``vmap``/``grad``) and on torch tensors (:mod:`mirrorpo.llm.losses`).
See docs/design.md §2–§4 for the notation and formulas; ``mirrorpo losses`` prints the catalogue.
"""

from mirrorpo.losses import baselines, trl_family  # noqa: F401  (registration)
from mirrorpo.losses.batch import LOG_P_MAX, PairBatch, log1mexp, log_odds, validate_batch
from mirrorpo.losses.errors import LossInputError, ObjectiveFileError, UnknownLossError
from mirrorpo.losses.exo import exo
from mirrorpo.losses.mpo import (
    MPOObjective,
    MPOStructure,
    load_objective,
    mpo_one_step,
    mpo_two_step,
    save_objective,
)
from mirrorpo.losses.ops import ops_for
from mirrorpo.losses.registry import (
    ALIASES,
    LOSSES,
    ONE_STEP,
    SFT_THEN_PO,
    HParam,
    LossSpec,
    available_losses,
    combine,
    get_spec,
    pair_loss,
    reduce_loss,
    register_loss,
    unregister_loss,
)
from mirrorpo.losses.trl_family import bco_baseline_update

__all__ = [
    "ALIASES", "LOG_P_MAX", "LOSSES", "ONE_STEP", "SFT_THEN_PO", "HParam", "LossInputError", "LossSpec",
    "MPOObjective", "MPOStructure", "ObjectiveFileError", "PairBatch", "UnknownLossError", "available_losses",
    "bco_baseline_update", "combine", "exo", "get_spec", "load_objective", "log1mexp", "log_odds",
    "mpo_one_step", "mpo_two_step", "ops_for", "pair_loss", "reduce_loss", "register_loss", "save_objective",
    "unregister_loss", "validate_batch",
]
