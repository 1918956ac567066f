"""Benchmark presets and hyper-parameter grids (documented; the search picks the best per cell).

Grids span orders of magnitude because summed log-likelihoods of 1000-step trajectories are large:
a β that suits LLM sequences (0.1) can saturate a sigmoid here. ``quick`` grids are the middle
values of the ``full`` ones.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from mirrorpo.errors import MirrorpoError
from mirrorpo.losses import get_spec
from mirrorpo.train import TrainConfig

BETAS = (0.01, 0.1, 1.0)
FULL_GRIDS: dict[str, dict[str, tuple[float, ...]]] = {
    "sft": {},
    "rrhf": {"lam": (0.1, 1.0, 10.0)},
    "slic_hf": {"delta": (1.0, 10.0, 100.0), "lam": (0.1, 1.0)},
    "dpo": {"beta": BETAS},
    "ipo": {"beta": BETAS},
    "cpo": {"beta": BETAS, "lam": (0.1, 1.0)},
    "orpo": {"lam": (0.1, 1.0, 10.0)},
    "rdpo": {"beta": BETAS, "alpha": (0.0, 0.01)},
    "simpo": {"beta": (0.5, 2.0, 10.0), "gamma": (0.0, 1.0)},
    "lpo": {"lam": (0.1, 1.0, 10.0)},
    "colpo": {"beta": (0.1, 1.0), "lam": (0.1, 1.0), "delta": (-3.0, -1.0)},
    "exo_pair": {"beta": BETAS},
    "mpo_one_step": {"beta": (0.5, 1.0, 2.0), "lam": (0.1, 1.0)},
    "mpo_two_step": {"beta": (1.0, 10.0, 100.0)},
}
DEFAULT_GRID = {"beta": BETAS}  # the TRL family: β is their one knob


# --grid overrides: {loss name, or "*" for every loss with that hyper-parameter: {hyper-parameter: values}}
GridOverrides = dict[str, dict[str, tuple[float, ...]]]


def grid(algo: str, preset: str, overrides: GridOverrides | None = None,
         searched: bool = False) -> list[dict[str, float]]:
    """The hyper-parameter settings searched for ``algo`` (every combination of the grid).

    ``quick`` takes each axis's middle value unless ``searched`` (then the full grids, searched at
    quick scale: the fair comparison for a discovered objective). ``overrides`` (from
    :func:`parse_grid`) replace an axis, or add one, in any preset. A saved objective
    (``mpo:FILE``) runs with the hyper-parameters stored in its file."""
    if algo.startswith("mpo:"):
        return [{}]
    spec = get_spec(algo)
    axes = FULL_GRIDS.get(algo, DEFAULT_GRID if any(h.name == "beta" for h in spec.hparams) else {})
    if preset == "quick" and not searched:
        axes = {k: (v[len(v) // 2],) for k, v in axes.items()}
    for scope in ("*", spec.name):
        axes = {**axes, **{k: v for k, v in (overrides or {}).get(scope, {}).items() if k in spec.defaults}}
    names = sorted(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))] or [{}]


def parse_grid(entries: list[str], algos: list[str]) -> GridOverrides:
    """``["beta=1e-4,1e-3", "cpo.lam=0.1"]`` → overrides, checked against the losses of the run:
    ``NAME=V1,V2`` sets the values of hyper-parameter NAME for every loss that has one,
    ``LOSS.NAME=V1,V2`` for that loss only. Values must satisfy the hyper-parameter's constraint."""
    specs = {spec.name: spec for spec in (get_spec(a) for a in algos if not a.startswith("mpo:"))}
    overrides: GridOverrides = {}
    for entry in entries:
        key, sep, raw = entry.partition("=")
        scope, _, name = key.strip().rpartition(".")
        scope = get_spec(scope).name if scope and not scope.startswith("mpo:") else scope or "*"
        try:
            values = tuple(float(v) for v in raw.split(",") if v.strip())
        except ValueError:
            values = ()
        if not sep or not name or not values:
            raise MirrorpoError(f"--grid '{entry}': expected NAME=V1,V2,... or LOSS.NAME=V1,V2,... "
                                f"(e.g. beta=0.001,0.01 or dpo.beta=0.001).")
        if scope != "*" and scope not in specs:
            raise MirrorpoError(f"--grid '{entry}': '{scope}' is not among the losses of this run "
                                f"({', '.join(specs) or 'none'}).")
        targets = [specs[scope]] if scope != "*" else list(specs.values())
        owners = [spec for spec in targets if name in spec.defaults]
        if not owners:
            valid = sorted({n for spec in targets for n in spec.defaults})
            raise MirrorpoError(f"--grid '{entry}': no loss of this run ({', '.join(t.name for t in targets)}) has a "
                                f"hyper-parameter '{name}'; valid: {', '.join(valid) or 'none'}.")
        for spec in owners:
            spec.resolve_hparams({name: list(values)})  # the constraint's error for a bad value
        overrides.setdefault(scope, {})[name] = values
    return overrides


@dataclass(frozen=True)
class Preset:
    name: str
    pairs: int | None  # None: the paper's dataset size for the task
    horizon: int  # dataset trajectory length
    eval_episodes: int
    eval_horizon: int
    seeds: int  # seeds of the best setting
    search_seeds: int  # seeds per grid point during the search
    variants: tuple[str, ...]
    train: TrainConfig = field(default_factory=TrainConfig)


PRESETS = {
    # minutes on a 2-core CPU: reduced data, short episodes, middle grid values
    "quick": Preset("quick", pairs=128, horizon=200, eval_episodes=16, eval_horizon=200, seeds=3, search_seeds=1,
                    variants=("base", "mixed", "noisy-0.2")),
    # the paper's scale (docs/design.md §1, §3); meant for a GPU
    "full": Preset("full", pairs=None, horizon=1000, eval_episodes=100, eval_horizon=1000, seeds=5,
                   search_seeds=1, variants=("base", "mixed", "noisy-0.1", "noisy-0.2", "noisy-0.3")),
}
ALL_VARIANTS = ("base", "mixed", "noisy-0.1", "noisy-0.2", "noisy-0.3", "bad-judge")


def parse_variant(variant: str) -> dict:
    """'noisy-0.2' → {"variant": "noisy", "epsilon": 0.2}; 'base', 'mixed', 'bad-judge' as they are."""
    if variant in ("base", "mixed", "bad-judge"):
        return {"variant": variant}
    if variant.startswith("noisy-"):
        try:
            eps = float(variant.removeprefix("noisy-"))
        except ValueError:
            eps = -1.0
        if 0 < eps < 0.5:
            return {"variant": "noisy", "epsilon": eps}
    raise MirrorpoError(f"unknown variant '{variant}'; valid: base, mixed, bad-judge, noisy-EPS with EPS in (0, 0.5) "
                        f"(e.g. {', '.join(ALL_VARIANTS)}).")


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise MirrorpoError(f"unknown preset '{name}'; valid: {', '.join(PRESETS)}.")
    return PRESETS[name]
