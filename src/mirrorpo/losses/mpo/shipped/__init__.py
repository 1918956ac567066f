"""Shipped discovered objectives, like the shipped agents: ``v1/<name>.mpo.safetensors`` and
``v1/manifest.json`` (task, variant, bench preset, family, learned functions, temporal or not, ES
settings, seed, CPU time, held-out results, sha256). Installed with the package; each is usable as
``mpo:NAME`` wherever a loss name is (bench, landscape, the torch losses, the TRL trainer)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mirrorpo.losses.errors import ObjectiveFileError

VERSION = "v1"
ROOT = Path(__file__).parent / VERSION
MANIFEST = ROOT / "manifest.json"


def manifest() -> dict:
    if not MANIFEST.is_file():
        raise ObjectiveFileError(f"the shipped objectives' manifest '{MANIFEST}' is missing; reinstall mirrorpo.")
    return json.loads(MANIFEST.read_text())


def names() -> list[str]:
    return [o["name"] for o in manifest()["objectives"]] if MANIFEST.is_file() else []


def path(name: str) -> Path:
    """The file of the shipped objective ``name``, checked against its manifest hash."""
    for entry in manifest()["objectives"]:
        if entry["name"] == name:
            file = ROOT / entry["file"]
            if not file.is_file() or hashlib.sha256(file.read_bytes()).hexdigest() != entry["sha256"]:
                raise ObjectiveFileError(f"shipped objective '{name}' is missing or does not match its manifest "
                                         "hash; reinstall mirrorpo.")
            return file
    raise ObjectiveFileError(f"no shipped objective '{name}'; shipped: {', '.join(names()) or 'none'} "
                             f"(or give a file: mpo:path/to/x.mpo.safetensors).")


def list_objectives() -> list[dict]:
    """Every shipped objective's manifest entry, with its absolute ``path``."""
    return [{**entry, "path": str(ROOT / entry["file"])} for entry in manifest()["objectives"]]
