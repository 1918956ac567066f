"""Settings of the offline LLM diagnostic (:mod:`mirrorpo.llm.bench`) and its dataset variants, which
are the suite's: :func:`mirrorpo.benchmark.parse_variant` parses them for every bench."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mirrorpo.benchmark import parse_variant
from mirrorpo.errors import MirrorpoError

DEFAULT_LOSSES = ("sft", "dpo", "ipo", "slic_hf", "cpo", "orpo", "simpo", "lpo", "colpo", "mpo_one_step")
DEFAULT_VARIANTS = ("base", "noisy-0.3")
BAD_JUDGE_FACTOR = 10.0  # bad-judge: the judge's temperature × this
OLD_SPELLINGS = {"badjudge": "bad-judge"}  # the llm bench's spelling before it took the suite's


def variant_spec(name: str) -> dict:
    """The suite's variant (``{"variant": ..., "epsilon": ...}``), with the fix for an old spelling."""
    if name in OLD_SPELLINGS:
        raise MirrorpoError(f"dataset variant '{name}' is now written '{OLD_SPELLINGS[name]}', as in "
                            f"`mirrorpo bench` and `mirrorpo data`.")
    return {"epsilon": 0.0, **parse_variant(name)}


@dataclass
class BenchConfig:
    """Settings of the diagnostic; the defaults run in a few minutes on 2 CPU cores."""

    losses: Sequence[str] = DEFAULT_LOSSES
    variants: Sequence[str] = DEFAULT_VARIANTS
    steps: int = 60  # preference-optimisation steps per loss
    batch_size: int = 16  # pairs per step
    lr: float = 5e-4
    sft_steps: int = 40  # the SFT model (novice agent, start of PO, reference) after this many steps
    expert_steps: int = 200  # the expert agent: SFT continued to this many steps
    sft_lr: float = 3e-3
    sft_batch_size: int = 64
    pairs: int = 512
    eval_prompts: int = 128
    judge_temperature: float = 0.1
    sample_temperature: float = 1.0
    hidden: int = 64
    layers: int = 2
    min_digits: int = 4
    max_digits: int = 7
    seed: int = 0  # the first seed; seed k of --seeds N is seed + k
    seeds: int = 1  # whole runs (SFT, pairs, every loss) averaged: mean ± standard error over seeds
    threads: int = 1  # torch intra-op threads: a tiny model gains nothing from more, and loses a lot on a busy CPU
    hparams: dict[str, dict[str, float]] = field(default_factory=dict)  # per-loss overrides

    def __post_init__(self):
        self.losses = tuple(self.losses)
        self.variants = tuple(self.variants)
        if not self.losses or not self.variants:
            raise MirrorpoError("the bench needs at least one loss and one variant.")
        for v in self.variants:
            variant_spec(v)
        from mirrorpo.llm.losses import get_loss

        for name in self.losses:
            get_loss(name).resolve_hparams(self.hparams.get(name, {}))
        for key in ("steps", "batch_size", "sft_steps", "expert_steps", "pairs", "eval_prompts", "hidden",
                    "layers", "seeds", "threads"):
            if getattr(self, key) <= 0:
                raise MirrorpoError(f"bench: {key} must be positive; got {getattr(self, key)}.")
        if self.expert_steps < self.sft_steps:
            raise MirrorpoError("bench: expert_steps must be ≥ sft_steps (the expert continues the SFT model).")
        if not 1 <= self.min_digits <= self.max_digits:
            raise MirrorpoError("bench: need 1 ≤ min_digits ≤ max_digits.")

    @property
    def seed_values(self) -> tuple[int, ...]:
        return tuple(range(self.seed, self.seed + self.seeds))
