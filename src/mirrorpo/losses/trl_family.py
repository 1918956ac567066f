"""Losses a TRL user knows from ``DPOTrainer(loss_type=...)``, with TRL's formulas and defaults.

All but ``sft_tokens`` use a reference policy: r = L − L^ref, z = r_w − r_l, default β = 0.1 (TRL's).
``ipo_norm`` and ``sft_tokens`` are TRL's ``ipo`` and ``sft`` (mirrorpo's ``ipo`` and ``sft`` are the
papers' forms); ``fdpo_forward_kl``, ``fdpo_js`` and ``fdpo_alpha`` are TRL's ``sigmoid`` with
``f_divergence_type`` forward KL, JS or α-divergence (f-DPO; reverse KL is ``dpo``). Written once against
``batch.ops`` (:mod:`mirrorpo.losses.ops`): each runs on JAX arrays and torch tensors.
"""

from __future__ import annotations

import math

import numpy as np

from mirrorpo.losses.batch import PairBatch
from mirrorpo.losses.ops import Array, concrete, ops_for
from mirrorpo.losses.registry import HParam, register_loss

BETA = HParam("beta", 0.1, "positive", "inverse temperature")
SMOOTHING = HParam("epsilon", 0.0, "half_open_half", "label smoothing (TRL's label_smoothing)")


def _trl(name, formula, *hparams, batch_coupled=False):
    return register_loss(
        name, hparams=hparams or (BETA,), formula=formula, family="trl", needs_reference=True,
        batch_coupled=batch_coupled, portable=True,
    )


def _margin(batch: PairBatch) -> Array:
    return batch.ratio_w - batch.ratio_l


def _smoothed_sigmoid(x, epsilon):
    ops = ops_for(x)
    return -(1.0 - epsilon) * ops.log_sigmoid(x) - epsilon * ops.log_sigmoid(-x)


@_trl("hinge", "max(0, 1 − β(r_w − r_l))")
def hinge(batch: PairBatch, beta) -> Array:
    """Hinge (SLiC on log-ratios, Zhao et al., 2023): max(0, 1 − β(r_w − r_l))."""
    return batch.ops.relu(1.0 - beta * _margin(batch))


@_trl("robust", "[−(1−ε)·log σ(βz) + ε·log σ(−βz)] / (1 − 2ε),  z = r_w − r_l", BETA, SMOOTHING)
def robust(batch: PairBatch, beta, epsilon) -> Array:
    """Robust DPO (Chowdhury et al., 2024): [−(1−ε) log σ(βz) + ε log σ(−βz)] / (1 − 2ε)."""
    x, ops = beta * _margin(batch), batch.ops
    return (-(1.0 - epsilon) * ops.log_sigmoid(x) + epsilon * ops.log_sigmoid(-x)) / (1.0 - 2.0 * epsilon)


@_trl("nca_pair", "−log σ(βr_w) − ½ log σ(−βr_w) − ½ log σ(−βr_l)")
def nca_pair(batch: PairBatch, beta) -> Array:
    """NCA (pair): −log σ(βr_w) − ½ log σ(−βr_w) − ½ log σ(−βr_l)."""
    cw, cl, ops = beta * batch.ratio_w, beta * batch.ratio_l, batch.ops
    return -ops.log_sigmoid(cw) - 0.5 * ops.log_sigmoid(-cw) - 0.5 * ops.log_sigmoid(-cl)


@_trl("bco_pair", "−log σ(βr_w − δ) − log σ(−(βr_l − δ)),  δ = running mean reward (explicit state)",
      BETA, HParam("delta", 0.0, "real", "running reward baseline; update with bco_baseline_update"))
def bco_pair(batch: PairBatch, beta, delta) -> Array:
    """BCO (pair): −log σ(βr_w − δ) − log σ(−(βr_l − δ)); δ is the running mean of β·r (see
    :func:`bco_baseline_update`), passed explicitly so the loss stays a pure function."""
    ops = batch.ops
    return -ops.log_sigmoid(beta * batch.ratio_w - delta) - ops.log_sigmoid(-(beta * batch.ratio_l - delta))


def bco_baseline_update(state: tuple, batch: PairBatch, beta: float = 0.1) -> tuple:
    """Update BCO's reward baseline ``(mean, count)`` with this batch's mean of β·r_w and β·r_l.

    A running mean over batches, as TRL's ``RunningMoments``: returns the new ``(mean, count)``;
    pass ``delta=mean`` to ``bco_pair``. Start from ``(0.0, 0)``.
    """
    mean, count = state
    ops = batch.ops
    rewards = ops.concatenate([beta * batch.ratio_w, beta * batch.ratio_l])
    rewards = ops.stop_gradient(rewards)
    n = rewards.shape[0]
    new_count = count + n
    new_mean = mean + (ops.mean(rewards) - mean) * n / new_count
    return new_mean, new_count


@_trl("sppo_hard", "(r_w − 1/(2β))² + (r_l + 1/(2β))²")
def sppo_hard(batch: PairBatch, beta) -> Array:
    """SPPO (hard labels): (r_w − 1/(2β))² + (r_l + 1/(2β))²."""
    return (batch.ratio_w - 0.5 / beta) ** 2 + (batch.ratio_l + 0.5 / beta) ** 2


@_trl("aot", "d = sort_B(L_w − L_l) − sort_B(L_w^ref − L_l^ref): −(1−ε) log σ(βd) − ε log σ(−βd)",
      BETA, SMOOTHING, batch_coupled=True)
def aot(batch: PairBatch, beta, epsilon) -> Array:
    """AOT (paired): d = sort(L_w − L_l) − sort(L_w^ref − L_l^ref) over the batch;
    −(1−ε) log σ(βd) − ε log σ(−βd). A pair's loss depends on the whole batch."""
    ops = batch.ops
    d = ops.sort(batch.logp_w - batch.logp_l) - ops.sort(batch.ref_logp_w - batch.ref_logp_l)
    return _smoothed_sigmoid(beta * d, epsilon)


@_trl("aot_unpaired", "d = sort_B(r_w) − sort_B(r_l): −(1−ε) log σ(βd) − ε log σ(−βd)",
      BETA, SMOOTHING, batch_coupled=True)
def aot_unpaired(batch: PairBatch, beta, epsilon) -> Array:
    """AOT (unpaired): d = sort(r_w) − sort(r_l) over the batch; −(1−ε) log σ(βd) − ε log σ(−βd)."""
    d = batch.ops.sort(batch.ratio_w) - batch.ops.sort(batch.ratio_l)
    return _smoothed_sigmoid(beta * d, epsilon)


@_trl("apo_zero", "1 − σ(βr_w) + σ(βr_l)")
def apo_zero(batch: PairBatch, beta) -> Array:
    """APO-zero: 1 − σ(βr_w) + σ(βr_l) (chosen better than the model's own outputs)."""
    ops = batch.ops
    return 1.0 - ops.sigmoid(beta * batch.ratio_w) + ops.sigmoid(beta * batch.ratio_l)


@_trl("apo_down", "σ(βr_w) + 1 − σ(β(r_w − r_l))")
def apo_down(batch: PairBatch, beta) -> Array:
    """APO-down: σ(βr_w) + 1 − σ(β(r_w − r_l)) (chosen worse than the model's own outputs)."""
    ops = batch.ops
    return ops.sigmoid(beta * batch.ratio_w) + 1.0 - ops.sigmoid(beta * _margin(batch))


@_trl("discopop", "z = β(r_w − r_l), m = σ(z/τ): (1 − m)·(−log σ(z)) + m·e^(−z)",
      BETA, HParam("tau", 0.05, "positive", "temperature of the mixing coefficient"))
def discopop(batch: PairBatch, beta, tau) -> Array:
    """DiscoPOP (Lu et al., 2024): (1 − m)(−log σ(z)) + m·e^(−z), z = β(r_w − r_l), m = σ(z/τ).

    m·e^(−z) is computed as exp(log σ(z/τ) − z), finite wherever the product is."""
    z, ops = beta * _margin(batch), batch.ops
    return -(ops.sigmoid(-z / tau)) * ops.log_sigmoid(z) + ops.exp(ops.log_sigmoid(z / tau) - z)


@_trl("sigmoid_norm", "−log σ(β(r_w/n_w − r_l/n_l))")
def sigmoid_norm(batch: PairBatch, beta) -> Array:
    """Length-normalised DPO: −log σ(β(r_w/n_w − r_l/n_l))."""
    return -batch.ops.log_sigmoid(beta * (batch.ratio_w / batch.len_w - batch.ratio_l / batch.len_l))


@_trl("ipo_norm", "(r_w/n_w − r_l/n_l − 1/(2β))²")
def ipo_norm(batch: PairBatch, beta) -> Array:
    """IPO as TRL computes it (``loss_type="ipo"``): (r_w/n_w − r_l/n_l − 1/(2β))², each log-ratio divided by
    its completion's length (mirrorpo's ``ipo`` is the paper's form on summed log-ratios)."""
    return (batch.ratio_w / batch.len_w - batch.ratio_l / batch.len_l - 0.5 / beta) ** 2


@register_loss("sft_tokens", formula="−Σ_B L_w / Σ_B n_w  (every pair gets the batch's value)", family="trl",
               batch_coupled=True, portable=True)
def sft_tokens(batch: PairBatch) -> Array:
    """SFT as TRL computes it (``loss_type="sft"``): −Σ_B L_w / Σ_B n_w, the mean log-likelihood of all chosen
    tokens of the batch, given to every pair (mirrorpo's ``sft`` averages −ℓ_w over pairs instead; the two
    agree when all chosen lengths are equal). A pair's loss depends on the whole batch."""
    ops = batch.ops
    value = -ops.sum(batch.logp_w) / ops.sum(batch.len_w)
    return value * ops.as_like(np.ones(tuple(batch.len_w.shape)), batch.logp_w)


# --- f-DPO (Wang et al., 2023, "Beyond Reverse KL: Generalizing DPO with Diverse Divergence Constraints") -----------
# DPO's reward β·log(π/π_ref) becomes β·f'(π/π_ref) for the f-divergence f of the regulariser: the loss is
# −log σ(β(s_w − s_l)) with the score s = f'(u) at u = e^r. Reverse KL, f'(u) = log u + 1, is DPO itself.
# The scores are exactly TRL 1.16's (``DPOTrainer`` with ``f_divergence_type``), including its cap on the
# exponent of the α-divergence scores (80, or 11 in float16), which keeps exp finite.


def _exp_cap(x: Array) -> float:
    """TRL's cap on the exponent of the α-divergence scores: 11 in float16, 80 otherwise."""
    return 11.0 if str(x.dtype).rpartition(".")[2] == "float16" else 80.0


def _alpha_score(r: Array, alpha) -> Array:
    """f'(u) = (u^(α−1) − 1)/(α−1) at u = e^r, i.e. expm1((α−1)·r)/(α−1) with the exponent capped; it tends
    to r (reverse KL) as α → 1, and is r where |α − 1| < 1e-6 (TRL's fallback)."""
    ops = ops_for(r)
    cap = _exp_cap(r)
    am1 = alpha - 1.0
    host = concrete(am1)
    if host is not None and np.ndim(host) == 0:  # a number (the usual case): branch on the host
        if abs(float(host)) < 1e-6:
            return r
        return ops.expm1(ops.minimum(am1 * r, cap)) / am1
    near = ops.abs(am1) < 1e-6  # traced or per-setting α (e.g. vmapped over a grid)
    safe = ops.where(near, 1.0, am1)
    return ops.where(near, r, ops.expm1(ops.minimum(safe * r, cap)) / safe)


def _fdpo(batch: PairBatch, beta, score) -> Array:
    return -batch.ops.log_sigmoid(beta * (score(batch.ratio_w) - score(batch.ratio_l)))


@_trl("fdpo_forward_kl", "−log σ(β(s_w − s_l)),  s = 1 − e^(−r)   (f-DPO, forward KL)")
def fdpo_forward_kl(batch: PairBatch, beta) -> Array:
    """f-DPO with the forward KL (Wang et al., 2023): −log σ(β(s_w − s_l)), s = f'(e^r) = 1 − e^(−r).

    TRL's ``f_divergence_type="forward_kl"``. The exponent −r is capped as in TRL's α-divergence (of which
    this is the case α = 0), so the loss stays finite where e^(−r) would overflow; below the cap the
    values are TRL's."""
    ops = batch.ops

    def score(r):
        return -ops.expm1(ops.minimum(-r, _exp_cap(r)))

    return _fdpo(batch, beta, score)


@_trl("fdpo_js", "−log σ(β(s_w − s_l)),  s = log 2 + log σ(r)   (f-DPO, Jensen–Shannon)")
def fdpo_js(batch: PairBatch, beta) -> Array:
    """f-DPO with the Jensen–Shannon divergence (Wang et al., 2023): −log σ(β(s_w − s_l)),
    s = f'(e^r) = log(2u/(1+u)) = log 2 + log σ(r). TRL's ``f_divergence_type="js_divergence"``."""
    ops = batch.ops

    def score(r):
        return math.log(2.0) + ops.log_sigmoid(r)

    return _fdpo(batch, beta, score)


@_trl("fdpo_alpha", "−log σ(β(s_w − s_l)),  s = (e^((α−1)r) − 1)/(α−1)   (f-DPO, α-divergence; α → 1: DPO)",
      BETA, HParam("alpha", 0.5, "real", "α of the α-divergence (TRL's f_alpha_divergence_coef)"))
def fdpo_alpha(batch: PairBatch, beta, alpha) -> Array:
    """f-DPO with the α-divergence (Wang et al., 2023): −log σ(β(s_w − s_l)), s = f'(u) = (u^(α−1) − 1)/(α−1)
    at u = e^r, in TRL's parameterisation (``f_divergence_type="alpha_divergence"``,
    ``f_alpha_divergence_coef=α``): α = 0 is the forward KL, α → 1 the reverse KL (DPO). The exponent
    (α−1)·r is capped at 80 (11 in float16), as in TRL."""
    return _fdpo(batch, beta, lambda r: _alpha_score(r, alpha))
