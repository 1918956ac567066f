"""The on-disk preference dataset: a folder readable with NumPy and JSON alone.

    DIR/meta.json   {"format": "mirrorpo-preference-dataset", "format_version": 1, "task", "env",
                     "variant", "pairs", "horizon", "obs_dim", "act_dim", "temperature", "epsilon",
                     "seed", "same_start", "agents": [{"name", "env", "sha256"}], ...}
    DIR/pairs.npz   obs       float32 [N, 2, T, O]   observations (zero after a trajectory ends)
                    actions   float32 [N, 2, T, A]
                    rewards   float32 [N, 2, T]      true per-step reward (zero after the end)
                    lengths   int32   [N, 2]         steps actually taken (≤ T; Hopper stops early)
                    agents    int8    [N, 2]         index into meta["agents"] of each trajectory's agent
                    returns   float32 [N, 2]         Σ rewards
                    preferred int8    [N]            index (0/1) of the chosen trajectory (after noise)
                    flipped   bool    [N]            whether label noise flipped the judge's label

``meta.json`` is written last: a folder without it is an unfinished generation (resumable).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirrorpo.errors import MirrorpoError
from mirrorpo.fileio import atomic_path, atomic_write_text

FORMAT = "mirrorpo-preference-dataset"
FORMAT_VERSION = 1
ARRAYS = {  # name -> (dtype, shape built from N, T, O, A)
    "obs": (np.float32, lambda n, t, o, a: (n, 2, t, o)),
    "actions": (np.float32, lambda n, t, o, a: (n, 2, t, a)),
    "rewards": (np.float32, lambda n, t, o, a: (n, 2, t)),
    "lengths": (np.int32, lambda n, t, o, a: (n, 2)),
    "agents": (np.int8, lambda n, t, o, a: (n, 2)),
    "returns": (np.float32, lambda n, t, o, a: (n, 2)),
    "preferred": (np.int8, lambda n, t, o, a: (n,)),
    "flipped": (np.bool_, lambda n, t, o, a: (n,)),
}


class DatasetError(MirrorpoError):
    """A dataset folder that is missing, truncated, corrupt, or for another task."""


@dataclass
class PreferenceDataset:
    meta: dict
    arrays: dict[str, np.ndarray]

    def __getattr__(self, name):
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)

    @property
    def num_pairs(self) -> int:
        return int(self.arrays["preferred"].shape[0])

    def chosen_rejected(self) -> dict[str, np.ndarray]:
        """Arrays reordered so that index 0 is the chosen and 1 the rejected trajectory."""
        pick = self.arrays["preferred"].astype(np.int64)
        rows = np.arange(self.num_pairs)
        out = {}
        for name in ("obs", "actions", "rewards", "lengths", "agents", "returns"):
            a = self.arrays[name]
            out[name + "_w"], out[name + "_l"] = a[rows, pick], a[rows, 1 - pick]
        return out


def save_dataset(directory: str | Path, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write pairs.npz then meta.json, each atomically."""
    directory = Path(directory)
    validate(meta, arrays, where=str(directory))
    with atomic_path(directory / "pairs.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    atomic_write_text(directory / "meta.json", json.dumps(meta, indent=2))
    return directory


def load_dataset(directory: str | Path, *, task: str | None = None) -> PreferenceDataset:
    """Read and validate a dataset folder; ``task`` (e.g. "tla") rejects a dataset of another task."""
    directory = Path(directory)
    meta_path, npz_path = directory / "meta.json", directory / "pairs.npz"
    if not directory.is_dir():
        raise DatasetError(f"dataset folder not found: {directory}. Create one with `mirrorpo data generate`.")
    if not meta_path.is_file():
        hint = " (an unfinished generation: rerun the same `mirrorpo data generate` to resume)" \
            if (directory / "chunks").is_dir() else ""
        raise DatasetError(f"{directory} has no meta.json{hint}.")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{meta_path} is not valid JSON ({exc}).") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DatasetError(f"{directory} is not a mirrorpo preference dataset (format {meta.get('format')!r}).")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{directory} has dataset format version {meta.get('format_version')}; this mirrorpo "
                           f"reads version {FORMAT_VERSION}. Regenerate it or upgrade mirrorpo.")
    if task is not None and meta.get("task") != task:
        raise DatasetError(f"{directory} is a '{meta.get('task')}' dataset, but a '{task}' dataset is needed.")
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise DatasetError(f"{directory} has meta.json but no pairs.npz.") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"{npz_path} is truncated or corrupt ({exc}); regenerate the dataset.") from exc
    validate(meta, arrays, where=str(directory))
    return PreferenceDataset(meta, arrays)


def validate(meta: dict, arrays: dict[str, np.ndarray], where: str) -> None:
    """Check names, dtypes, shapes against meta, finiteness and index ranges."""
    missing = sorted(set(ARRAYS) - set(arrays))
    if missing:
        raise DatasetError(f"{where}: missing arrays {missing}.")
    try:
        n, t, o, a = (int(meta[k]) for k in ("pairs", "horizon", "obs_dim", "act_dim"))
        n_agents = len(meta["agents"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: meta.json lacks a valid {exc} entry.") from None
    for name, (dtype, shape_of) in ARRAYS.items():
        arr = arrays[name]
        if arr.dtype != dtype:
            raise DatasetError(f"{where}: array '{name}' has dtype {arr.dtype}, expected {np.dtype(dtype)}.")
        if arr.shape != shape_of(n, t, o, a):
            raise DatasetError(f"{where}: array '{name}' has shape {arr.shape}, expected {shape_of(n, t, o, a)} "
                               f"from meta.json (pairs={n}, horizon={t}, obs_dim={o}, act_dim={a}).")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise DatasetError(f"{where}: array '{name}' contains non-finite values.")
    lengths = arrays["lengths"]
    if n and (lengths.min() < 1 or lengths.max() > t):
        raise DatasetError(f"{where}: lengths must lie in [1, {t}].")
    if n and (arrays["agents"].min() < 0 or arrays["agents"].max() >= n_agents):
        raise DatasetError(f"{where}: agent indices must lie in [0, {n_agents}).")
    if n and not np.isin(arrays["preferred"], (0, 1)).all():
        raise DatasetError(f"{where}: 'preferred' must be 0 or 1.")
    if not np.allclose(arrays["rewards"].sum(axis=2), arrays["returns"], rtol=1e-4, atol=1e-2):
        raise DatasetError(f"{where}: 'returns' do not equal the summed 'rewards'; the file is inconsistent.")
