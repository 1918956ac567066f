"""Policy checkpoints: ``<name>.safetensors`` (the policy's arrays, flat ``actor/0/w`` keys) plus
``<name>.json`` (metadata: env, obs/act sizes, network sizes, training config, steps, seed, the
safetensors file's sha256, evaluation returns). Loading verifies the hash, the array shapes and, when
asked, the environment's observation/action sizes, raising :class:`CheckpointError` otherwise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from mirrorpo.errors import MirrorpoError

FORMAT = "mirrorpo-policy-v1"


class CheckpointError(MirrorpoError):
    """A checkpoint is missing, corrupt, or does not fit the requested environment."""


def flatten(params) -> dict[str, np.ndarray]:
    """Flat arrays: the vectors as they are, a network's layers as ``<net>/<i>/{w,b}``."""
    out = {}
    for key, value in params.items():
        if isinstance(value, list):
            out.update({f"{key}/{i}/{f}": layer[f] for i, layer in enumerate(value) for f in ("w", "b")})
        else:
            out[key] = value
    return {k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in out.items()}


def unflatten(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    import jax.numpy as jnp

    params: dict[str, Any] = {k: jnp.asarray(v) for k, v in flat.items() if "/" not in k}
    for net in sorted({k.split("/")[0] for k in flat if "/" in k}):
        n = len([k for k in flat if k.startswith(f"{net}/") and k.endswith("/w")])
        params[net] = [{"w": jnp.asarray(flat[f"{net}/{i}/w"]), "b": jnp.asarray(flat[f"{net}/{i}/b"])}
                       for i in range(n)]
    return params


def _network(flat: dict[str, np.ndarray]) -> str | None:
    """The name of the policy network among flat arrays (``POLICY_KINDS``' values), or None."""
    from mirrorpo.agents.policy import POLICY_KINDS

    return next((net for net in POLICY_KINDS.values() if f"{net}/0/w" in flat), None)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save(path: str | Path, params, metadata: dict) -> dict:
    """Writes ``path.safetensors`` and ``path.json`` (atomically, tensors first); returns the metadata."""
    from safetensors.numpy import save as st_save

    from mirrorpo.fileio import atomic_write_bytes

    st_path, js_path = _paths(path)
    st_path.parent.mkdir(parents=True, exist_ok=True)
    from mirrorpo.agents.policy import POLICY_KINDS, action_dim, policy_kind

    flat = flatten(params)
    blob = st_save(flat)
    atomic_write_bytes(st_path, blob)
    meta = dict(metadata)
    kind = policy_kind(params)
    net = POLICY_KINDS[kind]
    meta.update({
        "format": FORMAT,
        "policy_kind": kind,
        "obs_dim": int(flat["obs_mean"].shape[0]),
        "act_dim": action_dim(params),
        "policy_hidden": [int(flat[f"{net}/{i}/w"].shape[1]) for i in range(len(params[net]) - 1)],
        "sha256": hashlib.sha256(blob).hexdigest(),
        "file": st_path.name,
    })
    atomic_write_bytes(js_path, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return meta


def load_metadata(path: str | Path) -> dict:
    _, js_path = _paths(path)
    if not js_path.exists():
        raise CheckpointError(f"checkpoint metadata '{js_path}' not found.")
    try:
        meta = json.loads(js_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint metadata '{js_path}' is corrupt ({exc}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"'{js_path}' is not a mirrorpo policy checkpoint (format {FORMAT}).")
    return meta


def load(path: str | Path, env: str | None = None) -> tuple[dict, dict]:
    """(params, metadata) of a checkpoint. With ``env``, checks that the policy fits that
    environment's observation and action sizes."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    st_path, _ = _paths(path)
    meta = load_metadata(path)
    if not st_path.exists():
        raise CheckpointError(f"checkpoint tensors '{st_path}' not found.")
    blob = st_path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta.get("sha256"):
        raise CheckpointError(f"checkpoint '{st_path}' is corrupt: sha256 {digest[:12]}… does not match the "
                              f"metadata's {str(meta.get('sha256'))[:12]}…; re-download or retrain it.")
    try:
        flat = st_load(blob)
    except (SafetensorError, ValueError, OSError) as exc:
        raise CheckpointError(f"checkpoint '{st_path}' cannot be read ({exc}).") from None
    net = _network(flat)
    needed = {"obs_mean", "obs_std", f"{net or 'actor'}/0/w", f"{net or 'actor'}/0/b"} | (
        {"log_std"} if net in (None, "actor") else set())
    if not needed <= set(flat):
        raise CheckpointError(f"checkpoint '{st_path}' lacks arrays {sorted(needed - set(flat))}.")
    from mirrorpo.agents.policy import action_dim

    params = unflatten(flat)
    obs_dim, act_dim = flat["obs_mean"].shape[0], action_dim(params)
    if (obs_dim, act_dim) != (meta.get("obs_dim"), meta.get("act_dim")):
        raise CheckpointError(f"checkpoint '{st_path}' arrays ({obs_dim}/{act_dim}) disagree with its metadata.")
    if env is not None:
        from mirrorpo.envs import get_spec

        spec = get_spec(env)
        if (obs_dim, act_dim) != (spec.obs_dim, spec.act_dim):
            raise CheckpointError(
                f"checkpoint '{st_path.name}' (trained on '{meta.get('env')}', obs {obs_dim}, act {act_dim}) does not fit "
                f"environment '{env}' (obs {spec.obs_dim}, act {spec.act_dim}).")
    return params, meta
