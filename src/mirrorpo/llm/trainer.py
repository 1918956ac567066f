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

**TRL's loss settings** (:func:`resolve_loss`; a plain ``trl.DPOConfig`` works too). Without ``loss=``,
``loss_type`` (one or a list, weighted by ``loss_weights``) picks registry losses with TRL 1.16's formulas
(:data:`TRL_LOSS_TYPES`: ``"sigmoid"`` → ``dpo``, ``"ipo"`` → ``ipo_norm``, ``"sft"`` → ``sft_tokens``, the
others by their own names), ``f_divergence_type`` turns ``"sigmoid"`` into its f-DPO form
(:data:`F_DIVERGENCE_LOSSES`, α = ``f_alpha_divergence_coef``), and ``beta`` / ``label_smoothing`` /
``discopop_tau`` are the losses' ``beta`` / ``epsilon`` / ``tau`` (:data:`TRL_HPARAMS`). ``ld_alpha``
(LD-DPO: L = L_shared + α·L_tail, for the policy and the reference) and ``use_weighting`` (WPO: each pair's
loss times the policy's detached length-normalised probabilities of chosen and rejected) act in the trainer,
for any loss. With ``loss=``, a changed ``beta`` / ``label_smoothing`` / ``discopop_tau`` sets the loss's
hyper-parameter of that name (unless ``loss_hparams`` gives it). A setting that cannot apply — a
``loss_type`` mirrorpo does not map, ``loss_weights`` of the wrong length, ``label_smoothing`` or
``discopop_tau`` for a loss without ``epsilon`` / ``tau``, ``loss=`` together with ``loss_type``, a value
that disagrees with ``loss_hparams`` — is a :class:`LossInputError` naming the problem and the fix.

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

The paper's LLM setting (docs/design.md §6: gemma-7b on dpo-mix-7k) is :func:`paper_config` +
:func:`paper_lora_config`: LoRA r 128, α 256, dropout 0.05, lr 5e-5, 3 epochs, total batch 64,
max length 2048.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from accelerate.utils import is_peft_model
from trl import DPOConfig, DPOTrainer

from mirrorpo.llm.losses import LOSSES, LossSpec, PairBatch, TorchLoss, combine, get_loss
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
        loss (`str`, *optional*):
            A mirrorpo loss: a registry name (``mirrorpo losses`` lists them; TRL's ``"sigmoid"`` is
            ``"dpo"``), a weighted sum such as ``"dpo+0.5*sft"``, or ``"mpo:PATH"`` for an objective
            saved by the JAX search (``*.mpo.safetensors``). Unset: the loss is TRL's, from ``loss_type``
            and its settings (the default ``loss_type=["sigmoid"]``, ``beta=0.1`` is DPO with β = 0.1).
        loss_hparams (`dict`, *optional*):
            The loss's hyper-parameters by name, e.g. ``{"beta": 0.1}``; unset ones take TRL's fields
            (``beta``, ``label_smoothing``, ``discopop_tau``) where changed, else the registry's defaults.

    TRL's loss settings (``loss_type``, ``loss_weights``, ``beta``, ``label_smoothing``, ``discopop_tau``,
    ``f_divergence_type``, ``f_alpha_divergence_coef``, ``ld_alpha``, ``use_weighting``) mean what they mean
    in TRL (see the module docstring and :func:`resolve_loss`); all are validated when the config is built,
    and one that cannot apply raises :class:`~mirrorpo.losses.errors.LossInputError`.
    """

    _VALID_DICT_FIELDS = DPOConfig._VALID_DICT_FIELDS + ["loss_hparams"]

    loss: str | None = field(
        default=None,
        metadata={"help": "mirrorpo loss: a registry name, 'a+0.5*b', or 'mpo:PATH' (see `mirrorpo losses`); "
                          "unset: TRL's loss_type and its settings."},
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
        if isinstance(self.loss_type, str):
            self.loss_type = [self.loss_type]
        resolve_loss(self)  # fail at configuration time, not at step 1 (and before TRL's own checks)
        super().__post_init__()


# --- TRL's loss settings on the registry ----------------------------------------------------------------

#: TRL 1.16's ``DPOConfig.loss_type`` values → the registry losses that compute what TRL's DPOTrainer does.
TRL_LOSS_TYPES: dict[str, str] = {
    "sigmoid": "dpo", "hinge": "hinge", "ipo": "ipo_norm", "exo_pair": "exo_pair", "nca_pair": "nca_pair",
    "robust": "robust", "bco_pair": "bco_pair", "sppo_hard": "sppo_hard", "aot": "aot",
    "aot_unpaired": "aot_unpaired", "apo_zero": "apo_zero", "apo_down": "apo_down", "discopop": "discopop",
    "sft": "sft_tokens", "sigmoid_norm": "sigmoid_norm",
}
#: ``f_divergence_type`` → the f-DPO form of ``loss_type="sigmoid"`` (``"sft"`` does not depend on it).
F_DIVERGENCE_LOSSES: dict[str, str] = {
    "reverse_kl": "dpo", "forward_kl": "fdpo_forward_kl", "js_divergence": "fdpo_js", "alpha_divergence": "fdpo_alpha",
}
#: The loss types whose f-divergence form TRL computes (it refuses the others).
TRL_F_DIVERGENCE_TYPES = ("sigmoid", "sigmoid_norm", "hinge", "ipo", "exo_pair", "robust", "discopop", "sft")
#: DPOConfig's hyper-parameter fields → the registry hyper-parameter each one sets.
TRL_HPARAMS: dict[str, str] = {"beta": "beta", "label_smoothing": "epsilon", "discopop_tau": "tau"}
#: Every DPOConfig field that chooses or shapes the loss (all present in TRL 1.16).
TRL_LOSS_SETTINGS = ("loss_type", "loss_weights", "beta", "label_smoothing", "discopop_tau", "f_divergence_type",
                     "f_alpha_divergence_coef", "ld_alpha", "use_weighting")
_TRL_USES = {"label_smoothing": "loss_type 'robust', 'exo_pair', 'aot' and 'aot_unpaired'",
             "discopop_tau": "loss_type 'discopop'"}
# batch-coupled losses whose per-pair values stay aligned with per-pair weights (a batch-level value per pair)
_WEIGHTABLE_COUPLED = frozenset({"sft_tokens"})


def _normalised(name: str, value):
    if name == "loss_type":
        return [value] if isinstance(value, str) else list(value or [])
    if name == "loss_weights":
        return None if value is None else [float(w) for w in value]
    if name == "f_divergence_type":
        return getattr(value, "value", value)  # an enum in older TRL versions
    return value


def _field_default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


_TRL_DEFAULTS = {f.name: _normalised(f.name, _field_default(f)) for f in dataclasses.fields(DPOConfig)
                 if f.name in TRL_LOSS_SETTINGS}


def _setting(args, name: str):
    """DPOConfig field ``name`` of ``args``, normalised (its default where this TRL version lacks it)."""
    return _normalised(name, getattr(args, name, _TRL_DEFAULTS.get(name)))


def _given(args, name: str) -> bool:
    """Whether ``args`` changes TRL's loss setting ``name`` from DPOConfig's default."""
    return name in _TRL_DEFAULTS and _setting(args, name) != _TRL_DEFAULTS[name]


def _leaves(spec: LossSpec):
    terms = spec.metadata.get("terms", ())
    if not terms:
        yield spec
    for _, term, _ in terms:
        yield from _leaves(term)


def _trl_loss_spec(args) -> LossSpec:
    """The registry loss for TRL's ``loss_type`` / ``loss_weights`` / ``f_divergence_type`` of ``args``."""
    types = _setting(args, "loss_type")
    if not types:
        raise LossInputError(f"loss_type is empty: give one or more of TRL's loss types ({', '.join(TRL_LOSS_TYPES)}), "
                             "or a mirrorpo loss with loss=.")
    weights = _setting(args, "loss_weights")
    if weights is None:
        weights = [1.0] * len(types)
    elif len(weights) != len(types):
        raise LossInputError(f"loss_weights has {len(weights)} weight(s) for the {len(types)} loss type(s) {types}: "
                             "give one weight per loss_type entry, or none for weights 1.")
    for t in types:
        if t not in TRL_LOSS_TYPES:
            hint = (f"'{t}' is a mirrorpo loss: write loss='{t}' instead of loss_type." if t in LOSSES else
                    "mirrorpo's own losses (`mirrorpo losses`) are chosen with loss=.")
            raise LossInputError(f"loss_type {t!r} is not one of TRL's loss types that mirrorpo computes "
                                 f"({', '.join(TRL_LOSS_TYPES)}); {hint}")
    divergence = _setting(args, "f_divergence_type")
    if divergence not in F_DIVERGENCE_LOSSES:
        raise LossInputError(f"f_divergence_type {divergence!r} is not one of TRL's: {', '.join(F_DIVERGENCE_LOSSES)}.")
    if divergence != "reverse_kl":
        for t in types:
            if t in ("sigmoid", "sft"):
                continue
            if t in TRL_F_DIVERGENCE_TYPES:
                raise LossInputError(
                    f"f_divergence_type={divergence!r} with loss_type {t!r}: mirrorpo has the f-divergence form of "
                    f"'sigmoid' only (loss '{F_DIVERGENCE_LOSSES[divergence]}'); use loss_type 'sigmoid', or "
                    f"f_divergence_type='reverse_kl' with {t!r}.")
            raise LossInputError(
                f"f_divergence_type={divergence!r} cannot apply to loss_type {t!r} (TRL allows it only with "
                f"{', '.join(TRL_F_DIVERGENCE_TYPES)}); use f_divergence_type='reverse_kl'.")
    if _given(args, "f_alpha_divergence_coef") and divergence != "alpha_divergence":
        raise LossInputError(
            f"f_alpha_divergence_coef={_setting(args, 'f_alpha_divergence_coef')!r} applies only with "
            f"f_divergence_type='alpha_divergence' (it is {divergence!r}): set that as well, or leave the "
            "coefficient at its default.")
    if _setting(args, "ld_alpha") is not None and "sft" in types:
        raise LossInputError(
            "ld_alpha cannot apply with loss_type 'sft': TRL's sft term keeps the unweighted log-likelihoods, "
            "while mirrorpo's batch holds one (LD-weighted) log-likelihood per completion; drop ld_alpha or 'sft'.")
    names = [F_DIVERGENCE_LOSSES[divergence] if t == "sigmoid" else TRL_LOSS_TYPES[t] for t in types]
    if len(names) == 1 and weights[0] == 1.0:
        return get_loss(names[0]).spec
    return combine([(w, n) for w, n in zip(weights, names)]).spec


def resolve_loss(args: DPOConfig, loss: str | LossSpec | TorchLoss | None = None,
                 loss_hparams: Mapping[str, float] | None = None) -> tuple[TorchLoss, dict[str, object]]:
    """The loss a :class:`MirrorPOConfig` or a plain ``trl.DPOConfig`` selects, and its resolved hyper-parameters.

    ``loss`` / ``loss_hparams`` (default: ``args.loss`` / ``args.loss_hparams``; given here, ``loss`` replaces
    ``args.loss`` and ``loss_hparams`` updates ``args.loss_hparams``) choose a mirrorpo loss. Without one, TRL's
    settings do: each ``loss_type`` entry is the registry loss of :data:`TRL_LOSS_TYPES` (``"sigmoid"`` the
    f-DPO loss of :data:`F_DIVERGENCE_LOSSES` for a non-default ``f_divergence_type``), a list is their sum
    weighted by ``loss_weights`` (hyper-parameters shared by name, as in TRL), and ``beta`` /
    ``label_smoothing`` / ``discopop_tau`` / ``f_alpha_divergence_coef`` are the losses' ``beta`` /
    ``epsilon`` / ``tau`` / ``alpha``. Either way, a changed ``beta`` / ``label_smoothing`` / ``discopop_tau``
    sets the loss's hyper-parameter of that name, ``loss_hparams`` sets the rest, and ``ld_alpha`` /
    ``use_weighting`` act in :class:`MirrorPOTrainer`. Raises :class:`LossInputError` for any setting that
    cannot apply.
    """
    loss = loss if loss is not None else getattr(args, "loss", None)
    given = dict(getattr(args, "loss_hparams", None) or {})
    given.update(loss_hparams or {})
    ld_alpha = _setting(args, "ld_alpha")
    if ld_alpha is not None and not (isinstance(ld_alpha, int | float) and 0.0 <= ld_alpha <= 1.0):
        raise LossInputError(f"ld_alpha must be None or in [0, 1] (1: no length weighting, 0: shared tokens only); "
                             f"got {ld_alpha!r}.")
    from_trl: dict[str, tuple[str, float, bool]] = {}  # hyper-parameter -> (DPOConfig field, value, changed)
    if loss is not None:
        conflicts = [f"{n}={_setting(args, n)!r}" for n in ("loss_type", "loss_weights", "f_divergence_type",
                                                             "f_alpha_divergence_coef") if _given(args, n)]
        if conflicts:
            label = loss if isinstance(loss, str) else loss.name
            raise LossInputError(
                f"loss={label!r} and TRL's {', '.join(conflicts)} both choose the loss: give one — mirrorpo's loss= "
                "(a registry name or a sum 'a+0.5*b'; f-DPO is 'fdpo_forward_kl', 'fdpo_js' or 'fdpo_alpha') or "
                "TRL's loss_type (with loss_weights, f_divergence_type) and no loss=.")
        spec = get_loss(loss).spec
    else:
        spec = _trl_loss_spec(args)
        if _setting(args, "f_divergence_type") == "alpha_divergence":
            from_trl["alpha"] = ("f_alpha_divergence_coef", float(_setting(args, "f_alpha_divergence_coef")),
                                 _given(args, "f_alpha_divergence_coef"))
    hparams = {h.name: h for h in spec.hparams}
    for name, hp in TRL_HPARAMS.items():
        if name not in _TRL_DEFAULTS:
            continue
        value, changed = float(_setting(args, name)), _given(args, name)
        if hp in hparams:
            if changed or loss is None:
                from_trl[hp] = (name, value, changed)
        elif changed and name != "beta":  # beta also scales the logged rewards: it always applies
            raise LossInputError(
                f"{name}={value!r} cannot apply: loss '{spec.name}' has no hyper-parameter {hp} (in TRL, {name} acts "
                f"in {_TRL_USES[name]}); leave {name} at its default {_TRL_DEFAULTS[name]!r}, or choose such a loss.")
    merged = dict(given)
    for hp, (name, value, changed) in from_trl.items():
        if hp in given:
            if changed and not _same(given[hp], value):
                raise LossInputError(f"{name}={value!r} and loss_hparams {hp}={given[hp]!r} disagree: give the "
                                     f"{hp} of loss '{spec.name}' once.")
            continue
        for leaf in _leaves(spec):  # every term's constraint (a sum exposes only its first term's)
            for h in leaf.hparams:
                if h.name == hp:
                    try:
                        h.check(value, leaf.name)
                    except LossInputError as exc:
                        raise LossInputError(f"DPOConfig's {name}={value!r} is the {hp} of loss '{leaf.name}': "
                                             f"{exc} Change {name}.") from None
        merged[hp] = value
    resolved = spec.resolve_hparams(merged)
    if _setting(args, "use_weighting"):
        coupled = [s.name for s in _leaves(spec) if s.batch_coupled and s.name not in _WEIGHTABLE_COUPLED]
        if coupled:
            raise LossInputError(
                f"use_weighting (WPO) cannot apply to '{coupled[0]}': it couples the pairs of a batch (AOT sorts "
                "them), so per-pair weights would be misaligned, as TRL also refuses; drop use_weighting or that loss.")
    return get_loss(spec), resolved


def _same(a, b) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    except (TypeError, ValueError):
        return False


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
