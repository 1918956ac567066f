"""Mirror Preference Optimization objectives (Alfano et al., 2024; docs/design.md §4).

Two-step MPO (needs a reference; the SFT policy in the two-step protocol):
    loss = −ψ( σ( β[ϕ⁻¹(p_w) − ϕ⁻¹(p_w^ref) − ϕ⁻¹(p_l) + ϕ⁻¹(p_l^ref)] ) )       bases ψ = log, ϕ⁻¹ = log
One-step MPO (uniform reference, plus an SFT term g):
    loss = −g(p_w) − λ·ψ( σ( β[ϕ⁻¹(p_w) − ϕ⁻¹(p_l)] ) )                          bases ψ = g = log, ϕ⁻¹ = logit

With the base functions, two-step MPO is DPO on mean log-likelihoods and one-step MPO with β = 1 is
ORPO. Learned functions are :mod:`monotone` networks added to the bases. An objective's learnable
parameters form one flat vector (:class:`MPOStructure`), the search space of evolution strategies.
The objectives are written once with ``batch.ops`` and run on JAX arrays and torch tensors; the
search (initialisation, flattening) and the file format are JAX / NumPy.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mirrorpo.fileio import atomic_write_bytes
from mirrorpo.losses.batch import PairBatch, log_odds
from mirrorpo.losses.errors import LossInputError, ObjectiveFileError
from mirrorpo.losses.mpo import monotone, shipped
from mirrorpo.losses.ops import Array, ops_for
from mirrorpo.losses.registry import ONE_STEP, SFT_THEN_PO, HParam, LossSpec, register_loss, register_prefix

FAMILIES = {"one_step": ("phi_inv", "psi", "g"), "two_step": ("phi_inv", "psi")}
FORMAT = "mirrorpo-mpo-objective"
FORMAT_VERSION = 1
SUFFIX = ".mpo.safetensors"

Params = dict[str, dict[str, Array]]  # learned function name -> monotone-network parameters


def _phi_inv_terms(params: Params | None, mean_logp: Array, base: str, t) -> Array:
    """ϕ⁻¹(p) from ℓ = log p; base log (ϕ = exp) or logit."""
    base_value = mean_logp if base == "log" else log_odds(mean_logp)
    return monotone.apply((params or {}).get("phi_inv"), ops_for(mean_logp).exp(mean_logp), base_value, t)


def _psi(params: Params | None, z: Array, t) -> Array:
    """ψ(σ(z)), base log σ(z), computed from the logit z."""
    ops = ops_for(z)
    return monotone.apply((params or {}).get("psi"), ops.sigmoid(z), ops.log_sigmoid(z), t)


def mpo_two_step(batch: PairBatch, params: Params | None = None, *, beta=1.0, progress=0.0) -> Array:
    """Two-step MPO: −ψ(σ(β[ϕ⁻¹(p_w) − ϕ⁻¹(p_w^ref) − ϕ⁻¹(p_l) + ϕ⁻¹(p_l^ref)])), per pair [B].

    ``params`` maps "phi_inv" / "psi" to monotone-network parameters; a missing entry is the base
    function (log). ``progress`` t ∈ [0, 1] feeds temporally-aware networks."""
    phi = lambda m: _phi_inv_terms(params, m, "log", progress)
    z = beta * (phi(batch.mean_w) - phi(batch.ref_mean_w) - phi(batch.mean_l) + phi(batch.ref_mean_l))
    return -_psi(params, z, progress)


def mpo_one_step(batch: PairBatch, params: Params | None = None, *, beta=1.0, lam=0.1, progress=0.0) -> Array:
    """One-step MPO: −g(p_w) − λ·ψ(σ(β[ϕ⁻¹(p_w) − ϕ⁻¹(p_l)])), per pair [B].

    Bases: g = log, ψ = log, ϕ⁻¹ = logit (so β = 1 gives ORPO)."""
    phi = lambda m: _phi_inv_terms(params, m, "logit", progress)
    z = beta * (phi(batch.mean_w) - phi(batch.mean_l))
    g = monotone.apply((params or {}).get("g"), batch.ops.exp(batch.mean_w), batch.mean_w, progress)
    return -g - lam * _psi(params, z, progress)


MPO_HPARAMS = {
    "two_step": (HParam("beta", 1.0, "positive", "inverse temperature on mean log-likelihoods"),),
    "one_step": (HParam("beta", 1.0, "positive", "inverse temperature"),
                 HParam("lam", 0.1, "nonnegative", "weight of the preference term")),
}
MPO_FORMULAS = {
    "two_step": "−ψ(σ(β[ϕ⁻¹(p_w) − ϕ⁻¹(p_w^ref) − ϕ⁻¹(p_l) + ϕ⁻¹(p_l^ref)]))",
    "one_step": "−g(p_w) − λ·ψ(σ(β[ϕ⁻¹(p_w) − ϕ⁻¹(p_l)]))",
}
MPO_LOSSES = {"two_step": mpo_two_step, "one_step": mpo_one_step}

for _family, _fn in MPO_LOSSES.items():
    register_loss(
        f"mpo_{_family}", lambda batch, _fn=_fn, **hp: _fn(batch, None, **hp), hparams=MPO_HPARAMS[_family],
        formula=MPO_FORMULAS[_family] + "  (base functions; learned ones via 'mpo:FILE')", family="mpo",
        needs_reference=_family == "two_step", portable=True,
    )


@dataclass(frozen=True)
class MPOStructure:
    """The static shape of an MPO search space: which family, which functions are learned, whether
    they see training progress, and the hidden width. Maps a flat parameter vector to ``Params``."""

    family: str = "one_step"
    learn: tuple[str, ...] = ("psi",)
    temporal: bool = False
    hidden: int = 126

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise LossInputError(f"MPO family must be one of {sorted(FAMILIES)}; got {self.family!r}.")
        allowed = FAMILIES[self.family]
        if not self.learn or any(f not in allowed for f in self.learn) or len(set(self.learn)) != len(self.learn):
            raise LossInputError(
                f"{self.family} MPO can learn a non-empty subset of {', '.join(allowed)}; got {list(self.learn)}."
            )
        object.__setattr__(self, "learn", tuple(f for f in allowed if f in self.learn))  # canonical order
        n_act = len(monotone.ACTIVATIONS)
        if self.hidden <= 0 or self.hidden % n_act:
            raise LossInputError(f"hidden must be a positive multiple of {n_act} (one group per activation); "
                                 f"got {self.hidden}.")

    @property
    def fields(self) -> tuple[str, ...]:
        return monotone.fields(self.temporal)

    @property
    def size(self) -> int:
        """Length of the flat parameter vector."""
        return len(self.learn) * len(self.fields) * self.hidden

    def init(self, key: jax.Array) -> jax.Array:
        """A flat parameter vector whose objective equals the base (DPO / ORPO)."""
        keys = jax.random.split(key, len(self.learn))
        return self.flatten({f: monotone.init_params(k, self.hidden, self.temporal) for f, k in zip(self.learn, keys)})

    def flatten(self, params: Params) -> jax.Array:
        return jnp.concatenate([jnp.ravel(params[f][k]) for f in self.learn for k in self.fields])

    def unflatten(self, flat: Array) -> Params:
        if flat.shape[-1:] != (self.size,):
            raise LossInputError(f"flat MPO parameters must have length {self.size} for {self}; got {flat.shape}.")
        blocks = flat.reshape(len(self.learn), len(self.fields), self.hidden)
        return {f: {k: blocks[i, j] for j, k in enumerate(self.fields)} for i, f in enumerate(self.learn)}

    def loss(self, flat: Array, batch: PairBatch, *, progress=0.0, **hparams) -> Array:
        """Per-pair losses for a flat parameter vector (of the batch's backend) — vmap this over a population."""
        return MPO_LOSSES[self.family](batch, self.unflatten(flat), progress=progress, **hparams)


@dataclass
class MPOObjective:
    """A learned MPO objective: structure, flat parameters and default hyper-parameters."""

    structure: MPOStructure
    flat: np.ndarray
    hparams: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # provenance: task, variant, generation, fitness, ...
    name: str = "mpo"

    def __post_init__(self):
        self.flat = np.asarray(self.flat, dtype=np.float32)
        if self.flat.shape != (self.structure.size,):
            raise LossInputError(f"parameters of length {self.flat.shape} do not fit {self.structure} "
                                 f"(expects {self.structure.size}).")
        self.hparams = {**{h.name: h.default for h in MPO_HPARAMS[self.structure.family]}, **self.hparams}

    def spec(self) -> LossSpec:
        """This objective as a registry loss (usable wherever a loss name is, on either backend); the
        parameters are placed on each batch's device and dtype."""
        structure, flat = self.structure, jnp.asarray(self.flat)
        family = structure.family

        def fn(batch, progress=0.0, **hp):
            return structure.loss(batch.ops.as_like(flat, batch.logp_w), batch, progress=progress, **hp)

        return LossSpec(
            name=self.name,
            fn=fn,
            hparams=tuple(HParam(h.name, float(self.hparams[h.name]), h.constraint, h.doc)
                          for h in MPO_HPARAMS[family]),
            needs_reference=family == "two_step",
            protocol=SFT_THEN_PO if family == "two_step" else ONE_STEP,
            formula=MPO_FORMULAS[family] + f"  learned: {', '.join(structure.learn)}"
            + ("  (temporally aware)" if structure.temporal else ""),
            family="mpo",
            uses_progress=structure.temporal,
            portable=True,
            metadata={"info": self.info, "structure": structure},
        )


def save_objective(path: str | os.PathLike, objective: MPOObjective) -> Path:
    """Write an objective to one safetensors file (arrays ``<function>.<field>``, settings in its
    header metadata), atomically. Readable without mirrorpo by any safetensors reader."""
    from safetensors.numpy import save

    path = Path(path)
    s = objective.structure
    params = s.unflatten(jnp.asarray(objective.flat))
    tensors = {f"{f}.{k}": np.asarray(v, dtype=np.float32) for f, p in params.items() for k, v in p.items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "family": s.family,
        "learn": ",".join(s.learn),
        "temporal": json.dumps(s.temporal),
        "hidden": str(s.hidden),
        "activations": ",".join(monotone.ACTIVATION_NAMES),
        "hparams": json.dumps(objective.hparams),
        "info": json.dumps(objective.info),
        "name": objective.name,
    }
    return atomic_write_bytes(path, save(tensors, metadata=metadata))


def load_objective(path: str | os.PathLike) -> MPOObjective:
    """Read an objective written by :func:`save_objective`, validating every field."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ObjectiveFileError(f"MPO objective file not found: {path} (expected a *{SUFFIX} file "
                                 "written by mirrorpo, e.g. DIR/best_objective.mpo.safetensors).")
    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is no dict)
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise ObjectiveFileError(f"{path} is not a readable safetensors file ({exc}); it may be truncated.") from exc
    if meta.get("format") != FORMAT:
        raise ObjectiveFileError(f"{path} is not an MPO objective (format {meta.get('format')!r}, expected {FORMAT!r}).")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise ObjectiveFileError(f"{path} has objective format version {meta.get('format_version')}; "
                                 f"this mirrorpo reads version {FORMAT_VERSION}. Upgrade mirrorpo.")
    if meta.get("activations") != ",".join(monotone.ACTIVATION_NAMES):
        raise ObjectiveFileError(f"{path} was written with activations {meta.get('activations')}; this mirrorpo "
                                 f"uses {','.join(monotone.ACTIVATION_NAMES)}.")
    try:
        structure = MPOStructure(meta["family"], tuple(meta["learn"].split(",")), json.loads(meta["temporal"]),
                                 int(meta["hidden"]))
        hparams, info = json.loads(meta["hparams"]), json.loads(meta["info"])
    except (KeyError, ValueError, LossInputError) as exc:
        raise ObjectiveFileError(f"{path} has invalid objective metadata: {exc}") from exc
    expected = {f"{f}.{k}" for f in structure.learn for k in structure.fields}
    if set(tensors) != expected:
        raise ObjectiveFileError(f"{path}: arrays {sorted(tensors)} do not match the declared structure "
                                 f"(expected {sorted(expected)}).")
    for key, value in tensors.items():
        if value.shape != (structure.hidden,) or not np.all(np.isfinite(value)):
            raise ObjectiveFileError(f"{path}: array {key} must be {structure.hidden} finite values; "
                                     f"got shape {value.shape}.")
    params = {f: {k: tensors[f"{f}.{k}"] for k in structure.fields} for f in structure.learn}
    flat = np.asarray(structure.flatten(params))
    return MPOObjective(structure, flat, hparams, info, meta.get("name") or path.name.removesuffix(SUFFIX))


@functools.lru_cache(maxsize=32)
def _cached_spec(path: str, mtime_ns: int, size: int) -> LossSpec:
    return load_objective(path).spec()


def objective_spec(path: str | os.PathLike) -> LossSpec:
    """The LossSpec of a saved objective, cached until the file changes (for ``mpo:PATH`` names);
    a bare name that is not a file names a shipped objective (``mpo:NAME``)."""
    name = str(path)
    if not Path(path).exists() and "/" not in name and os.sep not in name and not name.endswith(SUFFIX):
        path = shipped.path(name)  # a bare name: a shipped objective (an unknown one lists them)
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        return load_objective(p).spec()  # raises the clear "not found" error
    return _cached_spec(str(p), st.st_mtime_ns, st.st_size)


register_prefix("mpo:", objective_spec)
