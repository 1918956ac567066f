"""EXO (Ji et al., 2024): efficient exact optimisation of the alignment objective.

Pair form (TRL's ``exo_pair``): with z = β(r_w − r_l) and q = σ(z),
    loss = q·(log q − log(1−ε)) + (1−q)·(log(1−q) − log ε)        = KL(Bern(q) ‖ Bern(1−ε))
K-response form: KL( softmax_i(β_π r_i) ‖ softmax_i(ρ_i / β_r) ) over K responses with rewards ρ_i.
"""

from __future__ import annotations

import numpy as np

from mirrorpo.losses.batch import PairBatch
from mirrorpo.losses.errors import LossInputError
from mirrorpo.losses.ops import Array, concrete, ops_for
from mirrorpo.losses.registry import HParam, register_loss


@register_loss(
    "exo_pair",
    hparams=[HParam("beta", 0.1, "positive"), HParam("epsilon", 1e-3, "open_half", "label smoothing")],
    formula="z = β(r_w − r_l), q = σ(z): q(log q − log(1−ε)) + (1−q)(log(1−q) − log ε)",
    family="paper",
    needs_reference=True,
    portable=True,
)
def exo_pair(batch: PairBatch, beta, epsilon) -> Array:
    """EXO (pair): q(log q − log(1−ε)) + (1−q)(log(1−q) − log ε), q = σ(β(r_w − r_l))."""
    z, ops = beta * (batch.ratio_w - batch.ratio_l), batch.ops
    log_q, log_1mq = ops.log_sigmoid(z), ops.log_sigmoid(-z)
    return ops.exp(log_q) * (log_q - ops.log1p(-epsilon)) + ops.exp(log_1mq) * (log_1mq - ops.log(epsilon))


def exo(logp, ref_logp, rewards, *, beta_pi: float = 0.1, beta_r: float = 1.0) -> Array:
    """EXO over K responses per prompt: KL( softmax_i(β_π r_i) ‖ softmax_i(ρ_i / β_r) ), shape [B].

    ``logp``, ``ref_logp``: summed log-likelihoods of the K responses under the policy and the
    reference, shape [B, K]; ``rewards`` ρ: shape [B, K]; r_i = logp_i − ref_logp_i. JAX arrays or
    torch tensors.
    """
    shapes = {k: tuple(np.shape(v)) for k, v in (("logp", logp), ("ref_logp", ref_logp), ("rewards", rewards))}
    if len(set(shapes.values())) != 1 or len(shapes["logp"]) != 2 or shapes["logp"][1] < 2:
        raise LossInputError(f"exo: logp, ref_logp and rewards must share a shape [B, K] with K ≥ 2; got {shapes}.")
    for name, value in (("beta_pi", beta_pi), ("beta_r", beta_r)):
        host = concrete(value)
        if host is not None and not np.all(host > 0):
            raise LossInputError(f"exo: {name} must be > 0; got {value!r}.")
    ops = ops_for(logp)
    log_p_theta = ops.log_softmax(beta_pi * (logp - ref_logp), axis=-1)
    log_p_reward = ops.log_softmax(rewards / beta_r, axis=-1)
    return ops.sum(ops.exp(log_p_theta) * (log_p_theta - log_p_reward), axis=-1)
