"""Every mirrorpo loss in PyTorch: the same names, hyper-parameters, defaults, errors and numbers as
the JAX library (:mod:`mirrorpo.losses`), computed from per-sequence summed log-probabilities.

    from mirrorpo.llm.losses import PairBatch, pair_loss
    batch = PairBatch(logp_w, logp_l, len_w, len_l, ref_logp_w=None, ref_logp_l=None)   # tensors [B]
    per_pair = pair_loss("dpo", batch, beta=0.1)           # shape [B], differentiable
    pair_loss("dpo+0.5*sft", batch)                        # weighted combinations
    pair_loss("mpo:best.mpo.safetensors", batch, progress=0.3)   # objectives exported from JAX

Only the math lives here. Metadata — names, aliases, hyper-parameters with defaults and constraints,
``needs_reference``, protocol, ``uses_progress``, name parsing and every validation message — is the
JAX registry's (:data:`mirrorpo.losses.LOSSES`, :func:`mirrorpo.losses.get_spec`). A loss registered
in JAX without a torch twin here is reported by :func:`missing_torch_losses` (a test keeps it empty)
and refused by :func:`get_loss` with a message saying how to add one (:func:`register_torch_loss`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from mirrorpo.llm._numerics import log1mexp, log_odds
from mirrorpo.losses import batch as _jax_batch
from mirrorpo.losses import registry as _jax
from mirrorpo.losses.errors import LossInputError, UnknownLossError
from mirrorpo.losses.registry import ALIASES, LOSSES, HParam, LossSpec

__all__ = [
    "ALIASES",
    "LOSSES",
    "TORCH_LOSSES",
    "HParam",
    "LossInputError",
    "LossSpec",
    "PairBatch",
    "TorchLoss",
    "UnknownLossError",
    "bco_baseline_update",
    "combine",
    "exo",
    "get_loss",
    "log1mexp",
    "log_odds",
    "missing_torch_losses",
    "pair_loss",
    "reduce_loss",
    "register_torch_loss",
    "validate_batch",
]


class PairBatch(NamedTuple):
    """Summed log-likelihoods and lengths of B preference pairs, torch tensors of shape [B].

    The torch twin of :class:`mirrorpo.losses.PairBatch` (same fields and derived quantities)."""

    logp_w: torch.Tensor
    logp_l: torch.Tensor
    len_w: torch.Tensor
    len_l: torch.Tensor
    ref_logp_w: torch.Tensor | None = None
    ref_logp_l: torch.Tensor | None = None

    @property
    def has_reference(self) -> bool:
        return self.ref_logp_w is not None and self.ref_logp_l is not None

    @property
    def mean_w(self) -> torch.Tensor:
        """ℓ_w = L_w / n_w."""
        return self.logp_w / self.len_w

    @property
    def mean_l(self) -> torch.Tensor:
        """ℓ_l = L_l / n_l."""
        return self.logp_l / self.len_l

    @property
    def ratio_w(self) -> torch.Tensor:
        """r_w = L_w − L_w^ref."""
        return self.logp_w - self.ref_logp_w

    @property
    def ratio_l(self) -> torch.Tensor:
        """r_l = L_l − L_l^ref."""
        return self.logp_l - self.ref_logp_l

    @property
    def ref_mean_w(self) -> torch.Tensor:
        return self.ref_logp_w / self.len_w

    @property
    def ref_mean_l(self) -> torch.Tensor:
        return self.ref_logp_l / self.len_l


# ----------------------------------------------------------------------------------------------------------
# numerics shared by the odds-based losses (twins of mirrorpo.losses.batch)


def _log(x):
    return torch.log(x) if isinstance(x, torch.Tensor) else math.log(x)


def _log1p(x):
    return torch.log1p(x) if isinstance(x, torch.Tensor) else math.log1p(x)


log_sigmoid = F.logsigmoid
relu = torch.relu
sigmoid = torch.sigmoid


# ----------------------------------------------------------------------------------------------------------
# the torch implementations, by registry name

TORCH_LOSSES: dict[str, Callable[..., torch.Tensor]] = {}


def register_torch_loss(name: str, fn: Callable | None = None, *, overwrite: bool = False):
    """Give the JAX loss ``name`` its PyTorch implementation ``fn(batch, **hparams) -> [B]``; usable as
    a decorator. The metadata (hyper-parameters, reference, protocol) stays the JAX registry's::

        @register_torch_loss("margin_sigmoid")
        def margin_sigmoid(batch, beta):
            return -torch.nn.functional.logsigmoid(beta * (batch.mean_w - batch.mean_l))
    """

    def decorate(f):
        if name not in LOSSES:
            raise LossInputError(
                f"cannot add a PyTorch implementation of '{name}': no such loss in the JAX registry; "
                "register it first with mirrorpo.losses.register_loss."
            )
        if name in TORCH_LOSSES and not overwrite:
            raise LossInputError(f"loss '{name}' already has a PyTorch implementation; pass overwrite=True.")
        TORCH_LOSSES[name] = f
        return f

    return decorate if fn is None else decorate(fn)


_impl = register_torch_loss


def missing_torch_losses() -> list[str]:
    """Registry losses (JAX) with no PyTorch implementation — should be empty."""
    return sorted(set(LOSSES) - set(TORCH_LOSSES))


# --- paper baselines (mirrorpo.losses.baselines) ----------------------------------------------------------


@_impl("sft")
def sft(batch: PairBatch) -> torch.Tensor:
    return -batch.mean_w


@_impl("rrhf")
def rrhf(batch: PairBatch, lam) -> torch.Tensor:
    return relu(batch.mean_l - batch.mean_w) - lam * batch.mean_w


@_impl("slic_hf")
def slic_hf(batch: PairBatch, delta, lam) -> torch.Tensor:
    return relu(delta - batch.logp_w + batch.logp_l) - lam * batch.logp_w


@_impl("dpo")
def dpo(batch: PairBatch, beta) -> torch.Tensor:
    return -log_sigmoid(beta * (batch.ratio_w - batch.ratio_l))


@_impl("ipo")
def ipo(batch: PairBatch, beta) -> torch.Tensor:
    return (batch.ratio_w - batch.ratio_l - 1.0 / (2.0 * beta)) ** 2


@_impl("cpo")
def cpo(batch: PairBatch, beta, lam) -> torch.Tensor:
    return -log_sigmoid(beta * (batch.logp_w - batch.logp_l)) - lam * batch.logp_w


@_impl("orpo")
def orpo(batch: PairBatch, lam) -> torch.Tensor:
    return -batch.mean_w - lam * log_sigmoid(log_odds(batch.mean_w) - log_odds(batch.mean_l))


@_impl("rdpo")
def rdpo(batch: PairBatch, beta, alpha) -> torch.Tensor:
    return -log_sigmoid(beta * (batch.ratio_w - batch.ratio_l) - alpha * (batch.len_w - batch.len_l))


@_impl("simpo")
def simpo(batch: PairBatch, beta, gamma) -> torch.Tensor:
    return -log_sigmoid(beta * (batch.mean_w - batch.mean_l) - gamma)


@_impl("lpo")
def lpo(batch: PairBatch, lam) -> torch.Tensor:
    return -(batch.logp_w - batch.logp_l) - lam * batch.logp_w


@_impl("colpo")
def colpo(batch: PairBatch, beta, lam, delta) -> torch.Tensor:
    gate = (batch.mean_w >= delta).to(batch.mean_w.dtype)
    return -lam * batch.mean_w - beta * gate * (batch.mean_w - batch.mean_l)


# --- EXO (mirrorpo.losses.exo) ---------------------------------------------------------------------------


@_impl("exo_pair")
def exo_pair(batch: PairBatch, beta, epsilon) -> torch.Tensor:
    z = beta * (batch.ratio_w - batch.ratio_l)
    log_q, log_1mq = log_sigmoid(z), log_sigmoid(-z)
    return torch.exp(log_q) * (log_q - _log1p(-epsilon)) + torch.exp(log_1mq) * (log_1mq - _log(epsilon))


def exo(logp, ref_logp, rewards, *, beta_pi: float = 0.1, beta_r: float = 1.0) -> torch.Tensor:
    """EXO over K responses per prompt: KL( softmax_i(β_π r_i) ‖ softmax_i(ρ_i / β_r) ), shape [B].

    ``logp``, ``ref_logp``, ``rewards``: tensors [B, K] (summed log-likelihoods under the policy and the
    reference, and rewards ρ); r_i = logp_i − ref_logp_i. Twin of :func:`mirrorpo.losses.exo`."""
    shapes = {"logp": tuple(logp.shape), "ref_logp": tuple(ref_logp.shape), "rewards": tuple(rewards.shape)}
    if len(set(shapes.values())) != 1 or len(shapes["logp"]) != 2 or shapes["logp"][1] < 2:
        raise LossInputError(f"exo: logp, ref_logp and rewards must share a shape [B, K] with K ≥ 2; got {shapes}.")
    for name, value in (("beta_pi", beta_pi), ("beta_r", beta_r)):
        if not np.all(_host(value) > 0):
            raise LossInputError(f"exo: {name} must be > 0; got {value!r}.")
    log_p_theta = torch.log_softmax(beta_pi * (logp - ref_logp), dim=-1)
    log_p_reward = torch.log_softmax(rewards / beta_r, dim=-1)
    return torch.sum(torch.exp(log_p_theta) * (log_p_theta - log_p_reward), dim=-1)


# --- TRL family (mirrorpo.losses.trl_family) -------------------------------------------------------------


def _margin(batch: PairBatch) -> torch.Tensor:
    return batch.ratio_w - batch.ratio_l


def _smoothed_sigmoid(x, epsilon):
    return -(1.0 - epsilon) * log_sigmoid(x) - epsilon * log_sigmoid(-x)


@_impl("hinge")
def hinge(batch: PairBatch, beta) -> torch.Tensor:
    return relu(1.0 - beta * _margin(batch))


@_impl("robust")
def robust(batch: PairBatch, beta, epsilon) -> torch.Tensor:
    x = beta * _margin(batch)
    return (-(1.0 - epsilon) * log_sigmoid(x) + epsilon * log_sigmoid(-x)) / (1.0 - 2.0 * epsilon)


@_impl("nca_pair")
def nca_pair(batch: PairBatch, beta) -> torch.Tensor:
    cw, cl = beta * batch.ratio_w, beta * batch.ratio_l
    return -log_sigmoid(cw) - 0.5 * log_sigmoid(-cw) - 0.5 * log_sigmoid(-cl)


@_impl("bco_pair")
def bco_pair(batch: PairBatch, beta, delta) -> torch.Tensor:
    return -log_sigmoid(beta * batch.ratio_w - delta) - log_sigmoid(-(beta * batch.ratio_l - delta))


def bco_baseline_update(state: tuple, batch: PairBatch, beta: float = 0.1) -> tuple:
    """BCO's running reward baseline ``(mean, count)`` updated with this batch's β·r_w and β·r_l (no
    gradient); pass ``delta=mean`` to ``bco_pair``. Start from ``(0.0, 0)``. Twin of the JAX function."""
    mean, count = state
    rewards = torch.cat([beta * batch.ratio_w, beta * batch.ratio_l]).detach()
    n = rewards.shape[0]
    new_count = count + n
    new_mean = mean + (torch.mean(rewards) - mean) * n / new_count
    return new_mean, new_count


@_impl("sppo_hard")
def sppo_hard(batch: PairBatch, beta) -> torch.Tensor:
    return (batch.ratio_w - 0.5 / beta) ** 2 + (batch.ratio_l + 0.5 / beta) ** 2


@_impl("aot")
def aot(batch: PairBatch, beta, epsilon) -> torch.Tensor:
    d = torch.sort(batch.logp_w - batch.logp_l).values - torch.sort(batch.ref_logp_w - batch.ref_logp_l).values
    return _smoothed_sigmoid(beta * d, epsilon)


@_impl("aot_unpaired")
def aot_unpaired(batch: PairBatch, beta, epsilon) -> torch.Tensor:
    d = torch.sort(batch.ratio_w).values - torch.sort(batch.ratio_l).values
    return _smoothed_sigmoid(beta * d, epsilon)


@_impl("apo_zero")
def apo_zero(batch: PairBatch, beta) -> torch.Tensor:
    return 1.0 - sigmoid(beta * batch.ratio_w) + sigmoid(beta * batch.ratio_l)


@_impl("apo_down")
def apo_down(batch: PairBatch, beta) -> torch.Tensor:
    return sigmoid(beta * batch.ratio_w) + 1.0 - sigmoid(beta * _margin(batch))


@_impl("discopop")
def discopop(batch: PairBatch, beta, tau) -> torch.Tensor:
    z = beta * _margin(batch)
    return -(sigmoid(-z / tau)) * log_sigmoid(z) + torch.exp(log_sigmoid(z / tau) - z)


@_impl("sigmoid_norm")
def sigmoid_norm(batch: PairBatch, beta) -> torch.Tensor:
    return -log_sigmoid(beta * (batch.ratio_w / batch.len_w - batch.ratio_l / batch.len_l))


# --- MPO with base functions (mirrorpo.losses.mpo.objective) ---------------------------------------------


def _register_mpo():
    from mirrorpo.llm import mpo

    for family, fn in mpo.MPO_LOSSES.items():
        register_torch_loss(f"mpo_{family}", lambda batch, _fn=fn, **hp: _fn(batch, None, **hp))


_register_mpo()


# ----------------------------------------------------------------------------------------------------------
# resolution of a loss name to (JAX metadata, torch function)


@dataclass(frozen=True)
class TorchLoss:
    """A loss ready to run in PyTorch: the JAX registry's :class:`LossSpec` (metadata) and ``fn``,
    ``fn(batch, **hparams[, progress=t]) -> [B]``, its torch implementation.

    ``loss(batch, progress=None, **hparams)`` validates like :func:`pair_loss`; ``loss.per_pair(batch,
    resolved_hparams, progress)`` skips every check (for training loops that validated once)."""

    spec: LossSpec
    fn: Callable[..., torch.Tensor]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def needs_reference(self) -> bool:
        return self.spec.needs_reference

    @property
    def uses_progress(self) -> bool:
        return self.spec.uses_progress

    def resolve_hparams(self, given: Mapping[str, object]) -> dict[str, object]:
        """Defaults overridden by ``given``, validated with the JAX registry's rules and messages."""
        _jax_check_hparams(self.spec, given)
        return {**self.spec.defaults, **given}

    def per_pair(self, batch: PairBatch, hparams: Mapping[str, object], progress=0.0) -> torch.Tensor:
        extra = {"progress": progress} if self.spec.uses_progress else {}
        return self.fn(batch, **hparams, **extra)

    def __call__(self, batch: PairBatch, *, progress=None, **hparams) -> torch.Tensor:
        return pair_loss(self, batch, progress=progress, **hparams)


def _host(value):
    """A hyper-parameter or batch value as NumPy, for the JAX validators."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def _for_jax(value):
    """Torch tensors as NumPy (what the JAX validators read); anything else unchanged."""
    return _host(value) if isinstance(value, torch.Tensor) else value


def _jax_check_hparams(spec: LossSpec, given: Mapping[str, object]) -> None:
    spec.resolve_hparams({k: _for_jax(v) for k, v in given.items()})


def _no_torch(name: str) -> LossInputError:
    return LossInputError(
        f"loss '{name}' has no PyTorch implementation yet; add one with "
        f"@mirrorpo.llm.losses.register_torch_loss('{name}') (same signature as its JAX function)."
    )


def _registered(spec: LossSpec) -> TorchLoss:
    fn = TORCH_LOSSES.get(spec.name)
    if fn is None or LOSSES.get(spec.name) is not spec:
        raise _no_torch(spec.name)
    return TorchLoss(spec, fn)


def _objective(path: str) -> TorchLoss:
    from mirrorpo.llm.mpo import load_torch_objective

    objective = load_torch_objective(path)
    return TorchLoss(objective.objective.spec(), objective)


def get_loss(loss: str | LossSpec | TorchLoss) -> TorchLoss:
    """The :class:`TorchLoss` for a name, TRL alias, ``mpo:FILE``, weighted sum ``"a+0.5*b"``, a registry
    :class:`LossSpec` or a TorchLoss. Parsed exactly as :func:`mirrorpo.losses.get_spec` (same order,
    same errors)."""
    if isinstance(loss, TorchLoss):
        return loss
    if isinstance(loss, LossSpec):
        return _registered(loss)
    if not isinstance(loss, str):
        raise LossInputError(f"a loss is a name or a LossSpec, not {type(loss).__name__}.")
    name = loss.strip()
    if name in LOSSES:
        return _registered(LOSSES[name])
    if name in ALIASES:
        return _registered(LOSSES[ALIASES[name]])
    if "+" in name or "*" in name:
        terms = []
        for part in name.split("+"):
            m = _jax._TERM.match(part)
            if not m:
                raise LossInputError(f"cannot parse loss term {part!r} in {loss!r}; write e.g. 'dpo+0.5*sft'.")
            terms.append((float(m["w"] or 1.0), m["n"]))
        return combine(terms, name=name)
    if name.startswith("mpo:"):
        return _objective(name[4:])
    raise _jax._unknown(name)


def combine(terms: Sequence[tuple], name: str | None = None) -> TorchLoss:
    """A weighted sum of losses: Σ_k w_k · loss_k(batch). ``terms`` are ``(weight, loss)`` or
    ``(weight, loss, fixed_hparams)``; metadata and checks are :func:`mirrorpo.losses.combine`'s."""
    if not terms:
        raise LossInputError("combine() needs at least one (weight, loss) term.")
    resolved = []
    for term in terms:
        if not isinstance(term, tuple | list) or len(term) not in (2, 3):
            raise LossInputError(f"combine(): a term is (weight, loss) or (weight, loss, hparams); got {term!r}.")
        weight, loss, given = (*term, {}) if len(term) == 2 else term
        resolved.append((weight, get_loss(loss), dict(given)))
    # the JAX combine validates weights and fixed hyper-parameters and builds the metadata
    spec = _jax.combine([(w, t.spec, {k: _for_jax(v) for k, v in g.items()}) for w, t, g in resolved], name=name)
    parts = [(float(w), t, g) for w, t, g in resolved]

    def combined(batch: PairBatch, progress=0.0, **hp):
        total = 0.0
        for weight, part, fixed in parts:
            own = {h.name: hp[h.name] for h in part.spec.hparams if h.name not in fixed}
            extra = {"progress": progress} if part.spec.uses_progress else {}
            total = total + weight * part.fn(batch, **fixed, **own, **extra)
        return total

    return TorchLoss(spec, combined)


# ----------------------------------------------------------------------------------------------------------
# validation and the public entry points


def validate_batch(batch: PairBatch, *, needs_reference: bool, loss_name: str) -> None:
    """Raise LossInputError naming the problem when ``batch`` cannot be fed to ``loss_name``: the JAX
    library's checks and messages (shapes, reference present, lengths > 0, log-probabilities ≤ 0,
    finite values), applied to the tensors' values (one device-to-host copy of the [B] vectors)."""
    if not isinstance(batch, PairBatch):
        hint = " (a JAX batch: use mirrorpo.losses.pair_loss)" if isinstance(batch, _jax_batch.PairBatch) else ""
        raise LossInputError(f"{loss_name}: expected a mirrorpo.llm.losses.PairBatch of torch tensors, "
                             f"got {type(batch).__name__}{hint}.")
    fields = {}
    for f in PairBatch._fields:
        value = getattr(batch, f)
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise LossInputError(f"{loss_name}: batch.{f} must be a torch tensor; got {type(value).__name__}.")
        fields[f] = _host(value)
    _jax_batch.validate_batch(_jax_batch.PairBatch(**fields), needs_reference=needs_reference, loss_name=loss_name)


def pair_loss(loss: str | LossSpec | TorchLoss, batch: PairBatch, *, progress=None, **hparams) -> torch.Tensor:
    """Unreduced per-pair losses, shape [B], of ``loss`` on ``batch`` (torch tensors; differentiable).

    The twin of :func:`mirrorpo.losses.pair_loss`: same names, hyper-parameters, defaults and errors;
    ``progress`` = t ∈ [0, 1] feeds temporally-aware objectives and is ignored by others."""
    tl = get_loss(loss)
    spec = tl.spec
    values = tl.resolve_hparams(hparams)
    validate_batch(batch, needs_reference=spec.needs_reference, loss_name=spec.name)
    t = 0.0
    if spec.uses_progress:
        t = 0.0 if progress is None else progress
        if not np.all((_host(t) >= 0) & (_host(t) <= 1)):
            raise LossInputError(f"{spec.name}: progress must be in [0, 1]; got {progress!r}.")
    return tl.per_pair(batch, values, t)


def reduce_loss(loss: str | LossSpec | TorchLoss, batch: PairBatch, *, progress=None, **hparams) -> torch.Tensor:
    """Mean of :func:`pair_loss` over the batch — the scalar an optimizer minimises."""
    return torch.mean(pair_loss(loss, batch, progress=progress, **hparams))
