"""The shipped, versioned pretrained agents (docs/design.md §1): ``v1/<name>.safetensors`` + ``v1/<name>.json``
and ``v1/manifest.json`` (env, training command, steps, seed, sha256, returns over evaluation
episodes with standard error). Installed with the package (pyproject package-data)."""

from __future__ import annotations

import json
from pathlib import Path

from mirrorpo.agents.checkpoint import CheckpointError

VERSION = "v1"
ROOT = Path(__file__).parent / VERSION
MANIFEST = ROOT / "manifest.json"
AGENT_NAMES = ("ant_original", "tla_target", "hopper_expert", "hopper_bad")


def manifest() -> dict:
    if not MANIFEST.exists():
        raise CheckpointError(f"the shipped agents' manifest '{MANIFEST}' is missing; reinstall mirrorpo.")
    return json.loads(MANIFEST.read_text())


def names() -> list[str]:
    try:
        return [a["name"] for a in manifest()["agents"]]
    except CheckpointError:
        return []


def entry(name: str) -> dict:
    for a in manifest()["agents"]:
        if a["name"] == name:
            return a
    raise CheckpointError(f"no shipped agent '{name}'; shipped: {', '.join(names())}.")


def list_agents() -> list[dict]:
    """[{name, env, returns: {env: {mean, stderr, episodes}}, ...}] for every shipped agent."""
    return [dict(a) for a in manifest()["agents"]]


def path(name: str) -> Path:
    return ROOT / entry(name)["name"]


def load(name: str, env: str | None = None):
    """(params, metadata) of a shipped agent; verifies its hash against the manifest too."""
    from mirrorpo.agents import checkpoint

    e = entry(name)
    params, meta = checkpoint.load(ROOT / name, env)
    if meta["sha256"] != e["sha256"]:
        raise CheckpointError(f"shipped agent '{name}' does not match its manifest hash; reinstall mirrorpo.")
    return params, meta
