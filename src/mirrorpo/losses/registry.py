"""One registry of preference-optimization losses, and ``pair_loss``, the single way to call one.

A loss is a pure function ``fn(batch, **hparams) -> per-pair losses [B]`` plus a :class:`LossSpec`
(hyper-parameters with defaults and constraints, whether it needs a reference policy, its training
protocol). Anything that accepts a loss *name* also accepts:

* a registered name (``"dpo"``), or a TRL alias (``"sigmoid"`` → ``"dpo"``);
* a weighted combination, ``"dpo+0.5*sft"`` (hyper-parameters shared by name, as in TRL's
  ``loss_type`` list with ``loss_weights``), or :func:`combine` for per-term settings;
* a saved MPO objective, ``"mpo:path/to/objective.safetensors"``;
* a :class:`LossSpec` object (e.g. from :func:`register_loss`).

One resolver and one :func:`pair_loss` for both backends: a batch of JAX arrays or of torch tensors
(:mod:`mirrorpo.llm.losses` adds only the torch checks), for every *portable* loss — one written against
``batch.ops`` (:mod:`mirrorpo.losses.ops`), as all built-in losses are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mirrorpo.losses.batch import PairBatch, validate_batch
from mirrorpo.losses.errors import LossInputError, UnknownLossError
from mirrorpo.losses.ops import Array, concrete

ONE_STEP = "one_step"
SFT_THEN_PO = "sft_then_po"

# constraint name -> (predicate on a NumPy array, human description)
CONSTRAINTS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "real": (lambda v: np.isfinite(v), "a finite number"),
    "positive": (lambda v: np.isfinite(v) & (v > 0), "> 0"),
    "nonnegative": (lambda v: np.isfinite(v) & (v >= 0), ">= 0"),
    "open_half": (lambda v: (v > 0) & (v < 0.5), "in the open interval (0, 0.5)"),
    "half_open_half": (lambda v: (v >= 0) & (v < 0.5), "in [0, 0.5)"),
    "unit": (lambda v: (v >= 0) & (v <= 1), "in [0, 1]"),
}


@dataclass(frozen=True)
class HParam:
    """A named hyper-parameter with its default and the constraint its values must satisfy."""

    name: str
    default: float
    constraint: str = "real"
    doc: str = ""

    def __post_init__(self):
        if self.constraint not in CONSTRAINTS:
            raise ValueError(f"unknown constraint {self.constraint!r}; valid: {sorted(CONSTRAINTS)}")

    def check(self, value, loss_name: str) -> None:
        """Raise LossInputError if a concrete value (scalar or array of settings) violates the constraint."""
        host = concrete(value)
        if host is None:
            return
        ok, desc = CONSTRAINTS[self.constraint]
        if not np.all(ok(np.asarray(host, dtype=np.float64))):
            raise LossInputError(f"{loss_name}: hyper-parameter {self.name} must be {desc}; got {value!r}.")


@dataclass(frozen=True)
class LossSpec:
    """Everything the rest of mirrorpo needs to know about a loss.

    ``fn(batch, **hparams)`` returns per-pair losses of shape [B]. ``protocol`` is ``"one_step"``
    (train with this loss from the start) or ``"sft_then_po"`` (SFT first; the SFT policy is the
    reference). ``uses_progress``: the loss also takes ``progress`` = t ∈ [0, 1], the fraction of
    training done (temporally-aware objectives). ``batch_coupled``: a pair's loss depends on the
    rest of its batch (AOT sorts across the batch). ``portable``: ``fn`` is written with ``batch.ops``,
    so it runs on JAX arrays and on torch tensors alike.
    """

    name: str
    fn: Callable[..., Array]
    hparams: tuple[HParam, ...] = ()
    needs_reference: bool = False
    protocol: str = ONE_STEP
    formula: str = ""
    family: str = "user"
    uses_progress: bool = False
    batch_coupled: bool = False
    portable: bool = False
    metadata: Mapping[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def defaults(self) -> dict[str, float]:
        return {h.name: h.default for h in self.hparams}

    def resolve_hparams(self, given: Mapping[str, object]) -> dict[str, object]:
        """Defaults overridden by ``given``; unknown names and invalid values raise LossInputError."""
        known = {h.name: h for h in self.hparams}
        unknown = sorted(set(given) - set(known))
        if unknown:
            valid = ", ".join(f"{h.name}={h.default}" for h in self.hparams) or "none"
            raise LossInputError(
                f"loss '{self.name}' has no hyper-parameter {', '.join(unknown)}; its hyper-parameters are: {valid}."
            )
        values = {**self.defaults, **given}
        for name, value in values.items():
            known[name].check(value, self.name)
        return values

    def per_pair(self, batch: PairBatch, hparams: Mapping[str, object], progress=0.0) -> Array:
        """``fn`` on resolved hyper-parameters, without any check (for loops that validated once)."""
        extra = {"progress": progress} if self.uses_progress else {}
        return self.fn(batch, **hparams, **extra)


LOSSES: dict[str, LossSpec] = {}
ALIASES: dict[str, str] = {"sigmoid": "dpo"}  # TRL's name for DPO
# name prefixes resolved by another module of this package: {"mpo:": resolver(rest of the name)}
PREFIXES: dict[str, Callable[[str], LossSpec]] = {}


def register_prefix(prefix: str, resolver: Callable[[str], LossSpec]) -> None:
    """Let names ``PREFIX…`` resolve through ``resolver`` (``mpo:`` → saved objectives)."""
    PREFIXES[prefix] = resolver


def register_loss(
    name: str,
    fn: Callable[..., Array] | None = None,
    *,
    hparams: Mapping[str, float] | Sequence[HParam] = (),
    needs_reference: bool = False,
    protocol: str | None = None,
    formula: str = "",
    family: str = "user",
    uses_progress: bool = False,
    batch_coupled: bool = False,
    portable: bool = False,
    overwrite: bool = False,
):
    """Add a loss to the registry; usable as a decorator. Returns the function unchanged.

    ``hparams`` is either ``{"beta": 0.1}`` (unconstrained defaults) or a sequence of :class:`HParam`.
    A registered loss gets input validation, landscape plots, training and benchmarking for free;
    written with ``batch.ops`` and registered ``portable=True``, it also runs on torch tensors::

        @register_loss("my_loss", hparams=[HParam("beta", 0.5, "positive")], formula="−log σ(β(ℓ_w − ℓ_l))",
                       portable=True)
        def my_loss(batch, beta):
            return -batch.ops.log_sigmoid(beta * (batch.mean_w - batch.mean_l))
    """

    def decorate(f):
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise LossInputError(f"loss name {name!r} must be lower_snake_case (letters, digits, _).")
        if (name in LOSSES or name in ALIASES) and not overwrite:
            raise LossInputError(f"a loss named '{name}' is already registered; pass overwrite=True to replace it.")
        specs = tuple(
            HParam(k, float(v)) for k, v in hparams.items()
        ) if isinstance(hparams, Mapping) else tuple(hparams)
        LOSSES[name] = LossSpec(
            name=name,
            fn=f,
            hparams=specs,
            needs_reference=needs_reference,
            protocol=protocol or (SFT_THEN_PO if needs_reference else ONE_STEP),
            formula=formula or _first_line(f.__doc__),
            family=family,
            uses_progress=uses_progress,
            batch_coupled=batch_coupled,
            portable=portable,
        )
        return f

    return decorate if fn is None else decorate(fn)


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def unregister_loss(name: str) -> None:
    """Remove a user-registered loss (built-ins cannot be removed)."""
    spec = get_spec(name)
    if spec.family != "user":
        raise LossInputError(f"'{name}' is a built-in loss and cannot be unregistered.")
    del LOSSES[name]


def available_losses() -> list[str]:
    return sorted(LOSSES)


def _unknown(name: str) -> UnknownLossError:
    return UnknownLossError(
        f"unknown loss '{name}'. Valid names: {', '.join(available_losses())}; "
        "also 'mpo:PATH' for a saved MPO objective and weighted sums such as 'dpo+0.5*sft'."
    )


_TERM = re.compile(r"^\s*(?:(?P<w>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<n>[A-Za-z][\w.:/\\-]*)\s*$")


def get_spec(loss: str | LossSpec) -> LossSpec:
    """The LossSpec for a name, alias, ``mpo:FILE``, weighted sum ``a+0.5*b``, or a LossSpec itself."""
    if isinstance(loss, LossSpec):
        return loss
    if not isinstance(loss, str):
        raise LossInputError(f"a loss is a name or a LossSpec, not {type(loss).__name__}.")
    name = loss.strip()
    if name in LOSSES:
        return LOSSES[name]
    if name in ALIASES:
        return LOSSES[ALIASES[name]]
    if "+" in name or "*" in name:
        terms = []
        for part in name.split("+"):
            m = _TERM.match(part)
            if not m:
                raise LossInputError(f"cannot parse loss term {part!r} in {loss!r}; write e.g. 'dpo+0.5*sft'.")
            terms.append((float(m["w"] or 1.0), m["n"]))
        return combine(terms, name=name)
    for prefix, resolver in PREFIXES.items():
        if name.startswith(prefix):
            return resolver(name[len(prefix):])
    raise _unknown(name)


def combine(terms: Sequence[tuple], name: str | None = None) -> LossSpec:
    """A weighted sum of losses, itself a loss: Σ_k w_k · loss_k(batch).

    ``terms`` are ``(weight, loss)`` or ``(weight, loss, fixed_hparams)``. Hyper-parameters that are
    not fixed are exposed by name and shared between terms (TRL's convention for ``beta``); the
    first term's default wins. The combination needs a reference if any term does, and uses the
    SFT-then-PO protocol if any term does.
    """
    if not terms:
        raise LossInputError("combine() needs at least one (weight, loss) term.")
    parts = []
    for term in terms:
        if not isinstance(term, tuple | list) or len(term) not in (2, 3):
            raise LossInputError(f"combine(): a term is (weight, loss) or (weight, loss, hparams); got {term!r}.")
        weight, loss, given = (*term, {}) if len(term) == 2 else term
        spec = get_spec(loss)
        if not math.isfinite(float(weight)):
            raise LossInputError(f"combine(): weight of '{spec.name}' must be finite; got {weight!r}.")
        resolved = spec.resolve_hparams(given)
        parts.append((float(weight), spec, {k: resolved[k] for k in given}))
    exposed: dict[str, HParam] = {}
    for _, spec, fixed in parts:
        for h in spec.hparams:
            if h.name not in fixed:
                exposed.setdefault(h.name, h)

    def combined(batch: PairBatch, progress=0.0, **hp):
        total = 0.0
        for weight, spec, fixed in parts:
            own = {h.name: hp[h.name] for h in spec.hparams if h.name not in fixed}
            total = total + weight * spec.per_pair(batch, {**fixed, **own}, progress)
        return total

    label = name or "+".join(f"{w:g}*{s.name}" for w, s, _ in parts)
    return LossSpec(
        name=label,
        fn=combined,
        hparams=tuple(exposed.values()),
        needs_reference=any(s.needs_reference for _, s, _ in parts),
        protocol=SFT_THEN_PO if any(s.protocol == SFT_THEN_PO for _, s, _ in parts) else ONE_STEP,
        formula=" + ".join(f"{w:g}·[{s.formula or s.name}]" for w, s, _ in parts),
        family="combo",
        uses_progress=any(s.uses_progress for _, s, _ in parts),
        batch_coupled=any(s.batch_coupled for _, s, _ in parts),
        portable=all(s.portable for _, s, _ in parts),
        metadata={"terms": tuple(parts)},  # (weight, LossSpec, fixed hyper-parameters) per term
    )


def pair_loss(loss: str | LossSpec, batch: PairBatch, *, progress=None, **hparams) -> Array:
    """Unreduced per-pair losses, shape [B], of ``loss`` on ``batch``.

    ``hparams`` override the loss's defaults (see ``LOSSES[name].hparams``); ``progress`` = t ∈ [0, 1]
    is the fraction of training done, used by temporally-aware objectives and ignored by others.
    Works under ``jit``/``vmap``/``grad``; hyper-parameters may be traced arrays (e.g. vmapped over a
    grid), in which case their constraints are checked only when concrete. Torch batches run portable
    losses (``mirrorpo.llm.losses.pair_loss`` checks that first).
    """
    spec = get_spec(loss)
    values = spec.resolve_hparams(hparams)
    validate_batch(batch, needs_reference=spec.needs_reference, loss_name=spec.name)
    if spec.uses_progress:
        # in the batch's dtype: a weakly-typed Python float would keep float64 batches' t-terms in float32
        ops = batch.ops
        t = ops.as_like(0.0 if progress is None else progress, batch.logp_w)
        host = ops.host(t)
        if host is not None and not np.all((host >= 0) & (host <= 1)):
            raise LossInputError(f"{spec.name}: progress must be in [0, 1]; got {progress!r}.")
        values["progress"] = t
    return spec.fn(batch, **values)


def reduce_loss(loss: str | LossSpec, batch: PairBatch, *, progress=None, **hparams) -> Array:
    """Mean of :func:`pair_loss` over the batch — the scalar an optimizer minimises."""
    per_pair = pair_loss(loss, batch, progress=progress, **hparams)
    return batch.ops.mean(per_pair)
