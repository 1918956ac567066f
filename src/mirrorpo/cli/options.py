"""What the commands share: the fixed choices (as enums, so ``--help`` lists them and typer rejects
anything else), the comma-separated list syntax and ``--json``.

The choices are spelled out here rather than imported, so that ``mirrorpo --help`` imports neither
jax nor brax; tests/test_cli.py checks them against the library's own lists."""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Annotated

import typer

from mirrorpo.errors import MirrorpoError


class Task(str, Enum):
    """The suite's tasks (:data:`mirrorpo.data.generation.TASKS`)."""

    tla = "tla"
    hopper = "hopper"


class BenchPreset(str, Enum):
    """The bench's scales (:data:`mirrorpo.benchmark.PRESETS`), also those of ``mirrorpo discover``."""

    quick = "quick"
    full = "full"


class Family(str, Enum):
    """MPO families as the CLI spells them (:data:`mirrorpo.losses.mpo.FAMILIES`, with '-' for '_')."""

    one_step = "one-step"
    two_step = "two-step"


class Suite(str, Enum):
    """Suite versions (:data:`mirrorpo.tasks.SUITE_VERSIONS`)."""

    v1 = "v1"
    v2 = "v2"


class Env(str, Enum):
    """The environments (:data:`mirrorpo.envs.ENV_NAMES`)."""

    ant = "ant"
    three_legged_ant = "three_legged_ant"
    three_legged_ant_foot = "three_legged_ant_foot"
    three_legged_ant_disabled = "three_legged_ant_disabled"
    hopper = "hopper"


class PolicyKind(str, Enum):
    """The policy parametrisations (:data:`mirrorpo.agents.policy.POLICY_KINDS`)."""

    gaussian = "gaussian"
    gaussian_sd = "gaussian_sd"
    tanh_gaussian_sd = "tanh_gaussian_sd"


class Backend(str, Enum):
    """brax backends (:data:`mirrorpo.envs.BACKENDS`)."""

    spring = "spring"
    positional = "positional"
    generalized = "generalized"
    mjx = "mjx"


class LlmPreset(str, Enum):
    """``mirrorpo llm train --preset``."""

    paper = "paper"
    trl = "trl"


class Dtype(str, Enum):
    """Weights dtype of ``mirrorpo llm train``."""

    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"
    auto = "auto"


JSON_HELP = "Print JSON instead of text."
JsonFlag = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


def print_json(data) -> None:
    """The one JSON output of every command: indented, non-ASCII characters as they are."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def comma_list(value: str | None, option: str, example: str) -> tuple[str, ...] | None:
    """``"a, b,c"`` → ``("a", "b", "c")`` (None stays None): the list syntax of every command.

    Spaces around a sum's operators are dropped (``"0.5 * sft + dpo"`` → ``"0.5*sft+dpo"``); any other
    space-separated list (``"a b"``, as a shell would pass a quoted one) is refused with the fix."""
    if value is None:
        return None
    items = tuple(re.sub(r"\s*([+*])\s*", r"\1", x.strip()) for x in value.split(",") if x.strip())
    if not items:
        raise MirrorpoError(f"{option} expects a comma-separated list, e.g. {option} {example}.")
    spaced = [x for x in items if len(x.split()) > 1]
    if spaced:
        raise MirrorpoError(f"{option} takes a comma-separated list ({option} {example}); got {spaced[0]!r}.")
    return items
