"""Any mirrorpo loss inside TRL: :class:`MirrorPOTrainer`, a ``trl.DPOTrainer`` whose loss is a
mirrorpo loss (a registry name, ``"colpo"``, a weighted sum ``"dpo+0.5*sft"``, or ``"mpo:FILE"``
exported from the JAX search) — or TRL's own loss settings, which mean what they mean in TRL.

    from mirrorpo.llm.trainer import MirrorPOConfig, MirrorPOTrainer, paper_config, paper_lora_config

    args = MirrorPOConfig("out/colpo", loss="colpo", loss_hparams={"beta": 1.0}, max_steps=100)
    trainer = MirrorPOTrainer(model, args=args, train_dataset=ds, processing_class=tokenizer,
                              peft_config=paper_lora_config())       # LoRA optional
    trainer.train()

    # a DPOConfig's loss settings carry over unchanged and give TRL's loss, computed by the registry
    args = MirrorPOConfig("out/dpo", loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.5], beta=0.3)

**TRL's loss settings** are resolved by :mod:`mirrorpo.llm.config` (:func:`resolve_loss`; a plain
``trl.DPOConfig`` works too); ``ld_alpha`` (LD-DPO) and ``use_weighting`` (WPO) act here, for any loss.

Everything else is TRL's DPOTrainer: data preparation (prompt / chosen / rejected, standard or
conversational), collation, the fused LM head that yields per-token log-probabilities, the
reference forward (a frozen copy, a disabled LoRA adapter, or precomputed log-probabilities),
metrics and logging, checkpoints. Only the loss computation is replaced:

* the policy's summed log-probabilities L and completion lengths n of chosen and rejected become a
  :class:`mirrorpo.llm.losses.PairBatch`, and the loss is ``mean(pair_loss(loss, batch, **hparams))``;
* **reference-free** losses (SFT, ORPO, SimPO, CPO, CoLPO, one-step MPO, ...) never build or run
  a reference model; losses with a reference (DPO, IPO, two-step MPO, TRL's family) get one as in TRL
  (an in-memory model is deep-copied *as it is*, so the reference is the policy at the start);
* **temporally-aware** objectives receive progress t = global_step / max_steps ∈ [0, 1];
* the loss's hyper-parameters are ``loss_hparams`` and TRL's fields above (defaults: the registry's);
  TRL's ``beta`` field is only the scale of the logged rewards when the loss has no ``beta``;
* metrics are TRL's (``rewards/chosen``, ``rewards/rejected``, ``rewards/margins``,
  ``rewards/accuracies``, ``logps/chosen``, ``logps/rejected``, ``logits/*``, ``entropy``,
  ``mean_token_accuracy``, ``num_tokens``). Rewards are β·(L − L^ref) with a reference and β·L
  without one (TRL's CPO/ORPO convention).

The paper's LLM setting is :func:`paper_config` + :func:`paper_lora_config` (:mod:`mirrorpo.llm.config`).
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Mapping
from typing import ClassVar

import torch
from accelerate.utils import is_peft_model
from trl import DPOConfig, DPOTrainer

from mirrorpo.llm.config import (  # noqa: F401  (re-exported: the trainer's documented import path)
    F_DIVERGENCE_LOSSES,
    PAPER_SETTING,
    TRL_HPARAMS,
    TRL_LOSS_SETTINGS,
    TRL_LOSS_TYPES,
    MirrorPOConfig,
    paper_config,
    paper_lora_config,
    resolve_loss,
)
from mirrorpo.llm.losses import PairBatch, TorchLoss


@contextlib.contextmanager
def _no_reference_model_loading(trainer):
    """While DPOTrainer.__init__ runs, make its reference-model loader return None.

    DPOTrainer loads a reference copy of the policy whenever no ``ref_model`` is given (and PEFT and
    precomputation are off); a reference-free loss needs none. The policy itself is loaded (when given
    as a path) before ``Trainer.__init__`` creates the accelerator, the reference after it."""
    import trl.trainer.dpo_trainer as dpo_module

    original = dpo_module.create_model_from_path

    def create(model_id, *args, **kwargs):
        if "accelerator" in vars(trainer):  # past Trainer.__init__: this is the reference model
            return None
        return original(model_id, *args, **kwargs)

    dpo_module.create_model_from_path = create
    try:
        yield
    finally:
        dpo_module.create_model_from_path = original


class MirrorPOTrainer(DPOTrainer):
    """TRL's DPOTrainer with the loss replaced by any mirrorpo loss (see the module docstring).

    Takes every argument of :class:`trl.DPOTrainer` (``model`` as a path or a model, ``ref_model``,
    ``args`` — a :class:`MirrorPOConfig` or a plain ``trl.DPOConfig``, whose loss settings then give TRL's
    loss —, datasets, ``processing_class``, ``peft_config``, callbacks, ...) plus ``loss`` and
    ``loss_hparams``, which override ``args.loss`` / ``args.loss_hparams`` (see :func:`resolve_loss`).
    """

    _tag_names: ClassVar[list[str]] = ["trl", "dpo", "mirrorpo"]
    _name = "MirrorPO"

    def __init__(self, model, ref_model=None, args: DPOConfig | None = None, *pos, loss: str | None = None,
                 loss_hparams: Mapping[str, float] | None = None, **kwargs):
        if args is None:
            name = model if isinstance(model, str) else getattr(model.config, "_name_or_path", "") or "model"
            args = MirrorPOConfig(f"{name.rstrip('/').split('/')[-1]}-MirrorPO", loss=loss)
        self.mirror_loss: TorchLoss
        self.loss_hparams: dict[str, object]
        self.mirror_loss, self.loss_hparams = resolve_loss(args, loss, loss_hparams)
        self.needs_reference = self.mirror_loss.needs_reference

        peft_config = kwargs.get("peft_config")
        uses_adapter_reference = peft_config is not None or (not isinstance(model, str) and is_peft_model(model))
        loading = contextlib.nullcontext()
        if not self.needs_reference:
            # no reference: nothing to load, copy, precompute or run
            ref_model = None
            args.precompute_ref_log_probs = False
            if not uses_adapter_reference:
                loading = _no_reference_model_loading(self)
        elif ref_model is None and not isinstance(model, str) and not uses_adapter_reference \
                and not args.precompute_ref_log_probs:
            # the reference is the policy as given (TRL would reload the weights from model.config's path)
            ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        with loading:
            super().__init__(model, ref_model, args, *pos, **kwargs)
        if not self.needs_reference:
            self.ref_model = None

    # progress t ∈ [0, 1] for temporally-aware objectives
    def training_progress(self) -> float:
        """Fraction of training done: global_step / max_steps (0 before training starts)."""
        max_steps = self.state.max_steps
        if not max_steps:
            return 0.0
        return min(max(self.state.global_step / max_steps, 0.0), 1.0)

    def _compute_loss(self, model, inputs, return_outputs):
        mode = "train" if self.model.training else "eval"
        non_model_keys = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}
        model_kwargs = {k: v for k, v in inputs.items() if k not in non_model_keys}
        model_kwargs["use_cache"] = False
        if self.aux_loss_enabled:
            model_kwargs["output_router_logits"] = True
        completion_mask = inputs["completion_mask"]
        shift_completion_mask = completion_mask[..., 1:]
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        seq_len = shift_completion_mask.size(1)
        per_token_logps = outputs.log_probs[:, -seq_len:]  # zero where the label is -100
        if self.args.ld_alpha is None:
            logps = per_token_logps.sum(dim=1)
        else:  # LD-DPO; TRL's compute_ref_log_probs weights the reference the same way
            logps = ld_weighted_logps(per_token_logps, shift_completion_mask, self.args.ld_alpha)
        lengths = shift_completion_mask.sum(dim=1).clamp(min=1).to(logps.dtype)
        chosen_logps, rejected_logps = logps.chunk(2, dim=0)  # the batch is [chosen, rejected]
        len_w, len_l = lengths.chunk(2, dim=0)

        ref_chosen_logps = ref_rejected_logps = None
        if self.needs_reference:
            if self.precompute_ref_logps:
                ref_chosen_logps, ref_rejected_logps = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
            else:  # TRL's reference forward: frozen copy, disabled / "ref" adapter, under no_grad
                ref_chosen_logps, ref_rejected_logps = self.compute_ref_log_probs(
                    self.ref_model if self.ref_model is not None else self.model, inputs
                )

        batch = PairBatch(chosen_logps, rejected_logps, len_w, len_l, ref_chosen_logps, ref_rejected_logps)
        progress = self.training_progress()
        per_pair = self.mirror_loss.per_pair(batch, self.loss_hparams, progress)
        if self.args.use_weighting:
            per_pair = per_pair * wpo_weights(per_token_logps, outputs.log_sum_sq_probs[:, -seq_len:],
                                              shift_completion_mask)
        loss = per_pair.mean()

        if self.aux_loss_enabled:
            aux_loss = outputs.aux_loss
            loss = loss + self.router_aux_loss_coef * aux_loss
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())
        self._record_metrics(mode, inputs, outputs, shift_completion_mask, seq_len, batch)
        if self.mirror_loss.uses_progress:
            self._metrics[mode]["progress"].append(progress)

        if return_outputs:
            with torch.no_grad():
                outputs = model(**model_kwargs)
        return (loss, outputs) if return_outputs else loss

    def _record_metrics(self, mode, inputs, outputs, shift_completion_mask, seq_len, batch: PairBatch) -> None:
        """TRL's DPO metrics, with rewards β·(L − L^ref), or β·L for reference-free losses."""
        gather = self.accelerator.gather_for_metrics
        metrics = self._metrics[mode]
        mask = shift_completion_mask
        chosen_mask, rejected_mask = mask.chunk(2, dim=0)

        entropy_sum = gather((outputs.entropy[:, -seq_len:].detach() * mask).sum()).sum()
        total_tokens = gather(mask.sum()).sum()
        metrics["entropy"].append((entropy_sum / total_tokens).item() if total_tokens > 0 else 0.0)

        if mode == "train":
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item() // self._tp_size
        metrics["num_tokens"] = [self._total_train_tokens]

        chosen_logits, rejected_logits = outputs.mean_logits[:, -seq_len:].chunk(2, dim=0)
        for key, logits, m in (("chosen", chosen_logits, chosen_mask), ("rejected", rejected_logits, rejected_mask)):
            total = gather(logits[m.bool()].sum()).sum().item()
            count = gather(m.sum()).sum().item()
            metrics[f"logits/{key}"].append(total / count if count > 0 else 0.0)

        chosen_is_top1, _ = outputs.is_top1[:, -seq_len:].chunk(2, dim=0)
        correct = gather((chosen_is_top1 & chosen_mask.bool()).sum()).sum()
        count = gather(chosen_mask.sum()).sum()
        metrics["mean_token_accuracy"].append((correct / count).item() if count > 0 else 0.0)

        beta = float(self.loss_hparams.get("beta", self.args.beta))
        if batch.has_reference:
            chosen_rewards = beta * batch.ratio_w.detach()
            rejected_rewards = beta * batch.ratio_l.detach()
        else:
            chosen_rewards = beta * batch.logp_w.detach()
            rejected_rewards = beta * batch.logp_l.detach()
        gather_all = self.accelerator.gather
        metrics["rewards/chosen"].append(gather_all(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(gather_all(rejected_rewards).mean().item())
        metrics["rewards/accuracies"].append(gather_all((chosen_rewards > rejected_rewards).float()).mean().item())
        metrics["rewards/margins"].append(gather_all(chosen_rewards - rejected_rewards).mean().item())
        metrics["logps/chosen"].append(gather_all(batch.logp_w.detach()).mean().item())
        metrics["logps/rejected"].append(gather_all(batch.logp_l.detach()).mean().item())

    def loss_description(self) -> dict:
        """The loss, its resolved hyper-parameters and metadata (saved next to the model by the CLI)."""
        spec = self.mirror_loss.spec
        description = {
            "loss": spec.name,
            "hparams": {k: float(v) for k, v in self.loss_hparams.items()},
            "formula": spec.formula,
            "needs_reference": spec.needs_reference,
            "protocol": spec.protocol,
            "temporally_aware": spec.uses_progress,
        }
        if self.args.ld_alpha is not None:
            description["ld_alpha"] = float(self.args.ld_alpha)
        if self.args.use_weighting:
            description["use_weighting"] = True
        return description


def ld_weighted_logps(per_token_logps: torch.Tensor, mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """LD-DPO's log-likelihoods (Liu et al., 2024; TRL's ``ld_alpha``): L_shared + α·L_tail per completion.

    The batch is [chosen; rejected]; a pair's first min(n_w, n_l) completion tokens are shared, the rest of the
    longer completion is its tail. ``per_token_logps`` and ``mask`` are [2B, T], zero off the completion."""
    positions = mask.cumsum(dim=1)
    chosen_lengths, rejected_lengths = mask.sum(dim=1).long().chunk(2, dim=0)
    shared = torch.minimum(chosen_lengths, rejected_lengths)
    shared = torch.cat([shared, shared], dim=0).unsqueeze(1)
    shared_mask = (positions > 0) & (positions <= shared)
    tail_mask = positions > shared
    return (per_token_logps * shared_mask).sum(dim=1) + alpha * (per_token_logps * tail_mask).sum(dim=1)


def wpo_weights(per_token_logps: torch.Tensor, log_sum_sq_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """WPO's pair weights (Zhou et al., 2024, eq. 2; TRL's ``use_weighting``), detached, shape [B]:
    w_w·w_l with w = exp(mean over the completion of log π(y_t) − log Σ_v π(v)²)."""
    with torch.no_grad():
        aligned = (per_token_logps - log_sum_sq_probs) * mask
        weights = torch.exp(aligned.sum(dim=1) / mask.sum(dim=1).clamp_min(1))
    chosen, rejected = weights.chunk(2, dim=0)
    return chosen * rejected


def save_loss_description(trainer: MirrorPOTrainer, path) -> None:
    from mirrorpo.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(trainer.loss_description(), indent=2, ensure_ascii=False) + "\n")
