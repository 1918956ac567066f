"""Any mirrorpo loss inside TRL: :class:`MirrorPOTrainer`, a ``trl.DPOTrainer`` whose loss is a
mirrorpo loss (a registry name, ``"colpo"``, a weighted sum ``"dpo+0.5*sft"``, or ``"mpo:FILE"``
exported from the JAX search).

    from mirrorpo.llm.trainer import MirrorPOConfig, MirrorPOTrainer, paper_config, paper_lora_config

    args = MirrorPOConfig("out/colpo", loss="colpo", loss_hparams={"beta": 1.0}, max_steps=100)
    trainer = MirrorPOTrainer(model, args=args, train_dataset=ds, processing_class=tokenizer,
                              peft_config=paper_lora_config())       # LoRA optional
    trainer.train()

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
* the loss's hyper-parameters are ``loss_hparams`` (defaults: the registry's); TRL's ``beta`` field
  is only the scale of the logged rewards when the loss has no ``beta``;
* metrics are TRL's (``rewards/chosen``, ``rewards/rejected``, ``rewards/margins``,
  ``rewards/accuracies``, ``logps/chosen``, ``logps/rejected``, ``logits/*``, ``entropy``,
  ``mean_token_accuracy``, ``num_tokens``). Rewards are β·(L − L^ref) with a reference and β·L
  without one (TRL's CPO/ORPO convention).

The paper's LLM setting (docs/design.md §6: gemma-7b on dpo-mix-7k) is :func:`paper_config` +
:func:`paper_lora_config`: LoRA r 128, α 256, dropout 0.05, lr 5e-5, 3 epochs, total batch 64,
max length 2048.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from accelerate.utils import is_peft_model
from trl import DPOConfig, DPOTrainer

from mirrorpo.llm.losses import PairBatch, TorchLoss, get_loss
from mirrorpo.losses.errors import LossInputError

# --- the paper's LLM setting (docs/design.md §6) ------------------------------------------------------------------

PAPER_SETTING: dict[str, float | int] = {
    "lora_r": 128,
    "lora_alpha": 256,
    "lora_dropout": 0.05,
    "learning_rate": 5e-5,
    "num_train_epochs": 3,
    "total_batch_size": 64,
    "max_length": 2048,
}


@dataclass
class MirrorPOConfig(DPOConfig):
    r"""Configuration of :class:`MirrorPOTrainer`: TRL's :class:`~trl.DPOConfig` plus the loss.

    Parameters:
        loss (`str`, defaults to `"dpo"`):
            A mirrorpo loss: a registry name (``mirrorpo losses`` lists them; TRL's ``"sigmoid"`` is
            ``"dpo"``), a weighted sum such as ``"dpo+0.5*sft"``, or ``"mpo:PATH"`` for an objective
            saved by the JAX search (``*.mpo.safetensors``).
        loss_hparams (`dict`, *optional*):
            The loss's hyper-parameters by name, e.g. ``{"beta": 0.1}``; unset ones take the
            registry's defaults. Validated when the config is built.

    TRL's own loss selectors (``loss_type``, ``loss_weights``, ``ld_alpha``, ``f_divergence_type``,
    ``use_weighting``) are not used: a config that changes them is refused.
    """

    _VALID_DICT_FIELDS = DPOConfig._VALID_DICT_FIELDS + ["loss_hparams"]

    loss: str = field(
        default="dpo",
        metadata={"help": "mirrorpo loss: a registry name, 'a+0.5*b', or 'mpo:PATH' (see `mirrorpo losses`)."},
    )
    loss_hparams: dict | str | None = field(
        default=None,
        metadata={"help": "Hyper-parameters of the loss by name, e.g. '{\"beta\": 0.1}'; defaults: the registry's."},
    )

    def __post_init__(self):
        if isinstance(self.loss_hparams, str):  # from a command line: a JSON object
            try:
                self.loss_hparams = json.loads(self.loss_hparams)
            except json.JSONDecodeError:
                self.loss_hparams = None
            if not isinstance(self.loss_hparams, dict):
                raise LossInputError(f"loss_hparams must be a dict or a JSON object; got {self.loss_hparams!r}.")
        self.loss_hparams = dict(self.loss_hparams or {})
        get_loss(self.loss).resolve_hparams(self.loss_hparams)  # fail at configuration time, not at step 1
        super().__post_init__()
        _refuse_trl_loss_options(self)


def _refuse_trl_loss_options(args: DPOConfig) -> None:
    changed = []
    if list(args.loss_type) != ["sigmoid"] or args.loss_weights is not None:
        changed.append("loss_type/loss_weights (write loss='a+0.5*b' instead)")
    if args.ld_alpha is not None:
        changed.append("ld_alpha")
    if args.f_divergence_type != "reverse_kl":
        changed.append("f_divergence_type")
    if args.use_weighting:
        changed.append("use_weighting")
    if changed:
        raise LossInputError(
            "MirrorPOTrainer computes the loss with mirrorpo; these TRL loss options are not supported: "
            + ", ".join(changed) + "."
        )


def paper_config(
    output_dir: str,
    *,
    loss: str = "colpo",
    loss_hparams: Mapping[str, float] | None = None,
    per_device_train_batch_size: int = 4,
    world_size: int | None = None,
    **overrides,
) -> MirrorPOConfig:
    """The paper's LLM training setting: lr 5e-5, 3 epochs, total batch 64 (per-device batch ×
    gradient accumulation × processes), max length 2048, LoRA dropout kept active
    (``disable_dropout=False``). Combine with :func:`paper_lora_config`. ``overrides`` are any
    :class:`MirrorPOConfig` fields (e.g. ``bf16=True``, ``gradient_checkpointing=True``)."""
    world = world_size or int(os.environ.get("WORLD_SIZE", "1"))
    per_step = per_device_train_batch_size * world
    total = int(PAPER_SETTING["total_batch_size"])
    if total % per_step:
        raise LossInputError(f"the paper's total batch {total} is not a multiple of per-device batch "
                             f"{per_device_train_batch_size} × {world} processes.")
    settings = {
        "learning_rate": PAPER_SETTING["learning_rate"],
        "num_train_epochs": PAPER_SETTING["num_train_epochs"],
        "max_length": PAPER_SETTING["max_length"],
        "per_device_train_batch_size": per_device_train_batch_size,
        "gradient_accumulation_steps": total // per_step,
        "disable_dropout": False,
        **overrides,
    }
    return MirrorPOConfig(output_dir=output_dir, loss=loss, loss_hparams=dict(loss_hparams or {}), **settings)


def paper_lora_config(**overrides):
    """The paper's LoRA: r 128, α 256, dropout 0.05 on every linear layer but the LM head."""
    from peft import LoraConfig

    settings = {
        "r": PAPER_SETTING["lora_r"],
        "lora_alpha": PAPER_SETTING["lora_alpha"],
        "lora_dropout": PAPER_SETTING["lora_dropout"],
        "target_modules": "all-linear",
        "task_type": "CAUSAL_LM",
        **overrides,
    }
    return LoraConfig(**settings)


# --- the trainer ------------------------------------------------------------------------------------------


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
    ``args``, datasets, ``processing_class``, ``peft_config``, callbacks, ...) plus ``loss`` and
    ``loss_hparams``, which override ``args.loss`` / ``args.loss_hparams``.
    """

    _tag_names: ClassVar[list[str]] = ["trl", "dpo", "mirrorpo"]
    _name = "MirrorPO"

    def __init__(self, model, ref_model=None, args: DPOConfig | None = None, *pos, loss: str | None = None,
                 loss_hparams: Mapping[str, float] | None = None, **kwargs):
        if args is None:
            name = model if isinstance(model, str) else getattr(model.config, "_name_or_path", "") or "model"
            args = MirrorPOConfig(f"{name.rstrip('/').split('/')[-1]}-MirrorPO", loss=loss or "dpo")
        _refuse_trl_loss_options(args)
        loss = loss if loss is not None else getattr(args, "loss", "dpo")
        given = dict(getattr(args, "loss_hparams", None) or {})
        given.update(loss_hparams or {})
        self.mirror_loss: TorchLoss = get_loss(loss)
        self.loss_hparams: dict[str, object] = self.mirror_loss.resolve_hparams(given)
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
        logps = per_token_logps.sum(dim=1)
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
        loss = self.mirror_loss.per_pair(batch, self.loss_hparams, progress).mean()

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
        return {
            "loss": spec.name,
            "hparams": {k: float(v) for k, v in self.loss_hparams.items()},
            "formula": spec.formula,
            "needs_reference": spec.needs_reference,
            "protocol": spec.protocol,
            "temporally_aware": spec.uses_progress,
        }


def save_loss_description(trainer: MirrorPOTrainer, path) -> None:
    from mirrorpo.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(trainer.loss_description(), indent=2, ensure_ascii=False) + "\n")
