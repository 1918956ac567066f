"""The input of every loss: a batch of preference pairs, reduced to log-likelihoods.

Notation (docs/design.md §2), per pair, chosen ``w`` and rejected ``l``:

    L_w = Σ_t log π(a_t|s_t)      summed log-likelihood            -> ``logp_w``
    n_w                            length (steps or tokens)          -> ``len_w``
    ℓ_w = L_w / n_w                mean log-likelihood               -> ``PairBatch.mean_w``
    p_w = exp(ℓ_w) ∈ (0, 1]        geometric-mean step probability
    r_w = L_w − L_w^ref            log-ratio to the reference        -> ``PairBatch.ratio_w``

Log-likelihoods are log-*probabilities* (≤ 0), so every p lies in (0, 1] and the odds-based losses
(ORPO, one-step MPO) are well defined. A batch holds JAX arrays or torch tensors; ``batch.ops`` is the
matching namespace of :mod:`mirrorpo.losses.ops`, through which every loss is written once.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from mirrorpo.losses.errors import LossInputError
from mirrorpo.losses.ops import Array, concrete, ops_for

# p is clipped to at most exp(LOG_P_MAX) wherever its odds are taken: odds(1) = ∞.
LOG_P_MAX = -1e-6


class PairBatch(NamedTuple):
    """Summed log-likelihoods and lengths of B preference pairs (arrays of shape [B], all JAX or all torch).

    ``ref_logp_w`` / ``ref_logp_l`` are the reference policy's summed log-likelihoods; they are
    needed only by losses with a reference (DPO, IPO, R-DPO, two-step MPO, ...).
    A PairBatch is a JAX pytree: it can be passed through ``jit``, ``vmap`` and ``grad``.
    """

    logp_w: Array
    logp_l: Array
    len_w: Array
    len_l: Array
    ref_logp_w: Array | None = None
    ref_logp_l: Array | None = None

    @property
    def ops(self) -> SimpleNamespace:
        """The array namespace of this batch's backend (:func:`mirrorpo.losses.ops.ops_for`)."""
        return ops_for(self.logp_w)

    @property
    def has_reference(self) -> bool:
        return self.ref_logp_w is not None and self.ref_logp_l is not None

    @property
    def mean_w(self) -> Array:
        """ℓ_w = L_w / n_w."""
        return self.logp_w / self.len_w

    @property
    def mean_l(self) -> Array:
        """ℓ_l = L_l / n_l."""
        return self.logp_l / self.len_l

    @property
    def ratio_w(self) -> Array:
        """r_w = L_w − L_w^ref."""
        return self.logp_w - self.ref_logp_w

    @property
    def ratio_l(self) -> Array:
        """r_l = L_l − L_l^ref."""
        return self.logp_l - self.ref_logp_l

    @property
    def ref_mean_w(self) -> Array:
        return self.ref_logp_w / self.len_w

    @property
    def ref_mean_l(self) -> Array:
        return self.ref_logp_l / self.len_l


def log1mexp(x: Array) -> Array:
    """log(1 − eˣ) for x < 0, accurate at both ends (Mächler 2012), with NaN-free gradients."""
    ops = ops_for(x)
    x = ops.minimum(x, LOG_P_MAX)
    near_zero = x > -ops.log(2.0)
    safe_near = ops.where(near_zero, x, -1.0)
    safe_far = ops.where(near_zero, -1.0, x)
    return ops.where(near_zero, ops.log(-ops.expm1(safe_near)), ops.log1p(-ops.exp(safe_far)))


def log_odds(log_p: Array) -> Array:
    """logit(p) = log(p / (1 − p)) computed from log p (p clipped to ≤ exp(LOG_P_MAX))."""
    log_p = ops_for(log_p).minimum(log_p, LOG_P_MAX)
    return log_p - log1mexp(log_p)


def validate_batch(batch: PairBatch, *, needs_reference: bool, loss_name: str) -> None:
    """Raise LossInputError naming the problem when a batch cannot be fed to ``loss_name``.

    Shape checks always run; value checks (lengths > 0, log-probabilities ≤ 0, finiteness) run only
    on concrete arrays, so validation costs nothing inside a jit-compiled training loop (and one
    device-to-host copy of the [B] vectors for torch tensors).
    """
    if not isinstance(batch, PairBatch):
        raise LossInputError(f"{loss_name}: expected a PairBatch, got {type(batch).__name__}.")
    fields = ["logp_w", "logp_l", "len_w", "len_l"]
    if needs_reference:
        missing = [f for f in ("ref_logp_w", "ref_logp_l") if getattr(batch, f) is None]
        if missing:
            raise LossInputError(
                f"loss '{loss_name}' needs a reference policy but the batch has no {', '.join(missing)}: "
                "pass PairBatch(..., ref_logp_w=..., ref_logp_l=...) (e.g. the SFT policy's log-likelihoods)."
            )
        fields += ["ref_logp_w", "ref_logp_l"]
    shapes = {f: tuple(np.shape(getattr(batch, f))) for f in fields}
    if len(set(shapes.values())) != 1:
        desc = ", ".join(f"{f}{list(s)}" for f, s in shapes.items())
        raise LossInputError(f"{loss_name}: all batch arrays must have the same shape [B]; got {desc}.")
    shape = shapes["logp_w"]
    if len(shape) != 1:
        raise LossInputError(
            f"{loss_name}: batch arrays must be 1-D of shape [B] (one entry per pair); got shape {list(shape)}. "
            "Sum token/step log-probabilities per sequence first."
        )
    for f in fields:
        value = concrete(getattr(batch, f))
        if value is None:
            continue
        if not np.all(np.isfinite(value)):
            raise LossInputError(f"{loss_name}: batch.{f} contains non-finite values (NaN or ±inf).")
        if f.startswith("len") and np.any(value <= 0):
            raise LossInputError(f"{loss_name}: batch.{f} must be positive lengths; got min {value.min()}.")
        if "logp" in f and np.any(value > 0):
            raise LossInputError(
                f"{loss_name}: batch.{f} has positive entries (max {value.max():.4g}); log-likelihoods must be "
                "log-probabilities ≤ 0 so that every p = exp(ℓ) lies in (0, 1] (docs/design.md §2)."
            )
