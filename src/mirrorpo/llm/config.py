"""What a :class:`~mirrorpo.llm.trainer.MirrorPOTrainer` trains with: :class:`MirrorPOConfig` (TRL's
``DPOConfig`` plus the loss), :func:`resolve_loss` (the loss a config selects) and the paper's setting.

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

The paper's LLM setting (docs/design.md §6: gemma-7b on dpo-mix-7k) is :func:`paper_config` +
:func:`paper_lora_config`: LoRA r 128, α 256, dropout 0.05, lr 5e-5, 3 epochs, total batch 64,
max length 2048.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from trl import DPOConfig

from mirrorpo.llm.losses import LOSSES, LossSpec, TorchLoss, combine, get_loss
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
