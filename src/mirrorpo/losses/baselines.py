"""The paper's baselines (docs/design.md §3). Each returns per-pair losses [B], to be minimised.

Notation: L summed log-likelihood, ℓ = L/n mean, p = exp(ℓ), r = L − L^ref; w chosen, l rejected.
Written once against ``batch.ops`` (:mod:`mirrorpo.losses.ops`): each runs on JAX arrays and torch tensors.
"""

from __future__ import annotations

from mirrorpo.losses.batch import PairBatch, log_odds
from mirrorpo.losses.ops import Array
from mirrorpo.losses.registry import HParam, register_loss

BETA = HParam("beta", 0.1, "positive", "inverse temperature")
LAM = HParam("lam", 1.0, "nonnegative", "weight of the SFT term")


def _paper(name, formula, *hparams, needs_reference=False):
    return register_loss(name, hparams=hparams, formula=formula, family="paper", needs_reference=needs_reference,
                         portable=True)


@_paper("sft", "−ℓ_w")
def sft(batch: PairBatch) -> Array:
    """SFT: −ℓ_w (maximise the chosen trajectory's mean log-likelihood).

    Per pair, then averaged over pairs; TRL's ``sft`` instead averages over all chosen tokens of the
    batch (the two agree when all chosen lengths are equal)."""
    return -batch.mean_w


@_paper("rrhf", "max(0, ℓ_l − ℓ_w) − λ·ℓ_w", LAM)
def rrhf(batch: PairBatch, lam) -> Array:
    """RRHF (Yuan et al., 2023): max(0, ℓ_l − ℓ_w) − λ·ℓ_w."""
    return batch.ops.relu(batch.mean_l - batch.mean_w) - lam * batch.mean_w


@_paper("slic_hf", "max(0, δ − L_w + L_l) − λ·L_w", HParam("delta", 1.0, "real", "margin"), LAM)
def slic_hf(batch: PairBatch, delta, lam) -> Array:
    """SLiC-HF (Zhao et al., 2023): max(0, δ − L_w + L_l) − λ·L_w."""
    return batch.ops.relu(delta - batch.logp_w + batch.logp_l) - lam * batch.logp_w


@_paper("dpo", "−log σ(β(r_w − r_l))", BETA, needs_reference=True)
def dpo(batch: PairBatch, beta) -> Array:
    """DPO (Rafailov et al., 2023): −log σ(β(r_w − r_l))."""
    return -batch.ops.log_sigmoid(beta * (batch.ratio_w - batch.ratio_l))


@_paper("ipo", "(r_w − r_l − 1/(2β))²", BETA, needs_reference=True)
def ipo(batch: PairBatch, beta) -> Array:
    """IPO (Azar et al., 2023): (r_w − r_l − 1/(2β))² on *summed* log-ratios (the paper's form). TRL's ``ipo`` divides
    each log-ratio by its length; for that form use ``sigmoid_norm``-style per-token ratios."""
    return (batch.ratio_w - batch.ratio_l - 1.0 / (2.0 * beta)) ** 2


@_paper("cpo", "−log σ(β(L_w − L_l)) − λ·L_w", BETA, LAM)
def cpo(batch: PairBatch, beta, lam) -> Array:
    """CPO (Xu et al., 2024): −log σ(β(L_w − L_l)) − λ·L_w."""
    return -batch.ops.log_sigmoid(beta * (batch.logp_w - batch.logp_l)) - lam * batch.logp_w


@_paper("orpo", "−ℓ_w − λ·log σ(log odds(p_w) − log odds(p_l)),  odds(p) = p/(1−p)",
        HParam("lam", 0.1, "nonnegative", "weight of the odds-ratio term"))
def orpo(batch: PairBatch, lam) -> Array:
    """ORPO (Hong et al., 2024): −ℓ_w − λ·log σ(log odds(p_w) − log odds(p_l)), odds(p) = p/(1−p)."""
    return -batch.mean_w - lam * batch.ops.log_sigmoid(log_odds(batch.mean_w) - log_odds(batch.mean_l))


@_paper("rdpo", "−log σ(β(r_w − r_l) − α(n_w − n_l))", BETA,
        HParam("alpha", 0.01, "nonnegative", "length-regularisation weight"), needs_reference=True)
def rdpo(batch: PairBatch, beta, alpha) -> Array:
    """R-DPO (Park et al., 2024): −log σ(β(r_w − r_l) − α(n_w − n_l))."""
    return -batch.ops.log_sigmoid(beta * (batch.ratio_w - batch.ratio_l) - alpha * (batch.len_w - batch.len_l))


@_paper("simpo", "−log σ(β(ℓ_w − ℓ_l) − γ)", HParam("beta", 2.0, "positive"),
        HParam("gamma", 1.0, "nonnegative", "target reward margin"))
def simpo(batch: PairBatch, beta, gamma) -> Array:
    """SimPO (Meng et al., 2024): −log σ(β(ℓ_w − ℓ_l) − γ)."""
    return -batch.ops.log_sigmoid(beta * (batch.mean_w - batch.mean_l) - gamma)


@_paper("lpo", "−(L_w − L_l) − λ·L_w", LAM)
def lpo(batch: PairBatch, lam) -> Array:
    """LPO (the MPO paper, Alfano et al., 2024): −(L_w − L_l) − λ·L_w (SLiC-HF with δ → ∞, up to a constant)."""
    return -(batch.logp_w - batch.logp_l) - lam * batch.logp_w


@_paper("colpo", "−λ·ℓ_w − β·1[ℓ_w ≥ δ]·(ℓ_w − ℓ_l)   (the project's reading of the paper)",
        HParam("beta", 1.0, "positive", "weight of the linear PO term"), LAM,
        HParam("delta", -1.0, "real", "threshold on ℓ_w below which the PO term is off"))
def colpo(batch: PairBatch, beta, lam, delta) -> Array:
    """CoLPO (the MPO paper): −λ·ℓ_w − β·1[ℓ_w ≥ δ]·(ℓ_w − ℓ_l).

    A *reading*: the paper's formula was lost. Its text says the linear PO term keeps optimising
    after π_w > π_l but only while the chosen log-likelihood is above a threshold δ, so the
    optimiser cannot widen the gap by lowering both likelihoods.
    """
    gate = batch.ops.astype(batch.mean_w >= delta, batch.mean_w.dtype)
    return -lam * batch.mean_w - beta * gate * (batch.mean_w - batch.mean_l)
