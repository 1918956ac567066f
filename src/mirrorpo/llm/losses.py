"""Every mirrorpo loss on PyTorch tensors: the JAX library's own definitions (:mod:`mirrorpo.losses`),
each written once against ``batch.ops``, run through its torch namespace (:mod:`mirrorpo.losses.ops`).

    from mirrorpo.llm.losses import PairBatch, pair_loss
    batch = PairBatch(logp_w, logp_l, len_w, len_l, ref_logp_w=None, ref_logp_l=None)   # tensors [B]
    per_pair = pair_loss("dpo", batch, beta=0.1)           # shape [B], differentiable
    pair_loss("dpo+0.5*sft", batch)                        # weighted combinations
    pair_loss("mpo:best.mpo.safetensors", batch, progress=0.3)   # objectives exported from JAX

Names, aliases, hyper-parameters, parsing, validation and every error message are the registry's
(:func:`mirrorpo.losses.get_spec`, :func:`mirrorpo.losses.pair_loss`); this module only checks that the
batch holds torch tensors and that the loss is *portable*. A user loss registered in JAX with
``jax.nn`` directly (not portable) is reported by :func:`missing_torch_losses` and refused by
:func:`get_loss` until :func:`register_torch_loss` gives it a torch implementation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from mirrorpo.losses import registry as _registry
from mirrorpo.losses.batch import PairBatch, log1mexp, log_odds
from mirrorpo.losses.batch import validate_batch as _validate_batch
from mirrorpo.losses.errors import LossInputError, UnknownLossError
from mirrorpo.losses.exo import exo
from mirrorpo.losses.registry import ALIASES, LOSSES, HParam, LossSpec
from mirrorpo.losses.trl_family import bco_baseline_update

__all__ = [
    "ALIASES", "LOSSES", "HParam", "LossInputError", "LossSpec", "PairBatch", "TorchLoss", "UnknownLossError",
    "bco_baseline_update", "combine", "exo", "get_loss", "log1mexp", "log_odds", "missing_torch_losses",
    "pair_loss", "reduce_loss", "register_torch_loss", "validate_batch",
]


def register_torch_loss(name: str, fn: Callable | None = None, *, overwrite: bool = False):
    """Give the JAX-only loss ``name`` its PyTorch implementation ``fn(batch, **hparams) -> [B]``; usable
    as a decorator. Needed only for a loss written with ``jax.nn`` instead of ``batch.ops``::

        @register_torch_loss("margin_sigmoid")
        def margin_sigmoid(batch, beta):
            return -torch.nn.functional.logsigmoid(beta * (batch.mean_w - batch.mean_l))
    """

    def decorate(f):
        spec = LOSSES.get(name)
        if spec is None:
            raise LossInputError(
                f"cannot add a PyTorch implementation of '{name}': no such loss in the JAX registry; "
                "register it first with mirrorpo.losses.register_loss."
            )
        if spec.portable and not overwrite:
            raise LossInputError(f"loss '{name}' already has a PyTorch implementation; pass overwrite=True.")

        def either(batch, **hparams):
            return (f if batch.ops.name == "torch" else spec.fn)(batch, **hparams)

        LOSSES[name] = dataclasses.replace(spec, fn=either, portable=True)
        return f

    return decorate if fn is None else decorate(fn)


def missing_torch_losses() -> list[str]:
    """Registry losses that cannot run on torch tensors (not portable, no torch implementation)."""
    return sorted(name for name, spec in LOSSES.items() if not spec.portable)


def _portable(spec: LossSpec) -> LossSpec:
    """``spec``, after checking that it (every term of a combination) runs on torch tensors."""
    for _, term, _ in spec.metadata.get("terms", ()):
        _portable(term)
    if not spec.portable:
        raise LossInputError(
            f"loss '{spec.name}' has no PyTorch implementation yet: write it with batch.ops and register it "
            f"with portable=True, or add one with @mirrorpo.llm.losses.register_torch_loss('{spec.name}') "
            "(same signature as its JAX function)."
        )
    return spec


@dataclass(frozen=True)
class TorchLoss:
    """A registry :class:`LossSpec` checked to run on PyTorch tensors.

    ``loss(batch, progress=None, **hparams)`` validates like :func:`pair_loss`; ``loss.per_pair(batch,
    resolved_hparams, progress)`` skips every check (for training loops that validated once)."""

    spec: LossSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fn(self) -> Callable[..., torch.Tensor]:
        return self.spec.fn

    @property
    def needs_reference(self) -> bool:
        return self.spec.needs_reference

    @property
    def uses_progress(self) -> bool:
        return self.spec.uses_progress

    def resolve_hparams(self, given: Mapping[str, object]) -> dict[str, object]:
        """Defaults overridden by ``given``, validated with the registry's rules and messages."""
        return self.spec.resolve_hparams(given)

    def per_pair(self, batch: PairBatch, hparams: Mapping[str, object], progress=0.0) -> torch.Tensor:
        return self.spec.per_pair(batch, hparams, progress)

    def __call__(self, batch: PairBatch, *, progress=None, **hparams) -> torch.Tensor:
        return pair_loss(self, batch, progress=progress, **hparams)


def get_loss(loss: str | LossSpec | TorchLoss) -> TorchLoss:
    """The :class:`TorchLoss` for a name, TRL alias, ``mpo:FILE``, weighted sum ``"a+0.5*b"``, a
    :class:`LossSpec` or a TorchLoss, resolved by :func:`mirrorpo.losses.get_spec` (same errors)."""
    if isinstance(loss, TorchLoss):
        return loss
    return TorchLoss(_portable(_registry.get_spec(loss)))


def combine(terms: Sequence[tuple], name: str | None = None) -> TorchLoss:
    """A weighted sum of losses, Σ_k w_k · loss_k(batch): :func:`mirrorpo.losses.combine` (terms
    ``(weight, loss)`` or ``(weight, loss, fixed_hparams)``), where a loss may also be a TorchLoss."""
    specs = [tuple(t.spec if isinstance(t, TorchLoss) else t for t in term) if isinstance(term, tuple | list)
             else term for term in terms]
    return get_loss(_registry.combine(specs, name=name))


def _require_tensors(batch, loss_name: str) -> None:
    fields = batch._asdict().items() if isinstance(batch, PairBatch) else ()
    wrong = [f"batch.{f} is a {type(v).__name__}" for f, v in fields if v is not None and not torch.is_tensor(v)]
    if not isinstance(batch, PairBatch) or wrong:
        got = wrong[0] if wrong else f"got {type(batch).__name__}"
        raise LossInputError(f"{loss_name}: expected a mirrorpo.llm.losses.PairBatch of torch tensors; {got} "
                             "(for JAX arrays use mirrorpo.losses.pair_loss).")


def validate_batch(batch: PairBatch, *, needs_reference: bool, loss_name: str) -> None:
    """Raise LossInputError naming the problem when ``batch`` cannot be fed to ``loss_name``: torch
    tensors, then the registry's checks (:func:`mirrorpo.losses.validate_batch`)."""
    _require_tensors(batch, loss_name)
    _validate_batch(batch, needs_reference=needs_reference, loss_name=loss_name)


def pair_loss(loss: str | LossSpec | TorchLoss, batch: PairBatch, *, progress=None, **hparams) -> torch.Tensor:
    """Unreduced per-pair losses, shape [B], of ``loss`` on ``batch`` (torch tensors; differentiable):
    :func:`mirrorpo.losses.pair_loss` on torch tensors, with its hyper-parameters, defaults and errors."""
    spec = get_loss(loss).spec
    _require_tensors(batch, spec.name)
    return _registry.pair_loss(spec, batch, progress=progress, **hparams)


def reduce_loss(loss: str | LossSpec | TorchLoss, batch: PairBatch, *, progress=None, **hparams) -> torch.Tensor:
    """Mean of :func:`pair_loss` over the batch — the scalar an optimizer minimises."""
    return pair_loss(loss, batch, progress=progress, **hparams).mean()
