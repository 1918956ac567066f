"""PyTorch twin of :mod:`mirrorpo.losses.mpo` (DESIGN §4): monotone networks and MPO objectives.

The math only: parameter layout, file format, structure validation and hyper-parameter metadata
are the JAX library's (:class:`~mirrorpo.losses.mpo.MPOStructure`,
:func:`~mirrorpo.losses.mpo.load_objective`), so an objective discovered in JAX loads here as is.

    f(x)    = base(x) + Σ_j |v_j| · a_j(|u_j|·x + b_j)                        (static)
    f(x, t) = base(x) + Σ_j |v_j + v'_j·t| · a_j(|u_j|·x + w_j·t + b_j)       (temporally aware)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mirrorpo.llm._numerics import log_odds
from mirrorpo.losses.mpo import monotone as _jax_monotone
from mirrorpo.losses.mpo.objective import MPOObjective, load_objective

EPS = _jax_monotone.EPS
EXP_MAX = _jax_monotone.EXP_MAX


def _logit_clipped(x: torch.Tensor) -> torch.Tensor:
    c = torch.clamp(x, EPS, 1.0 - EPS)
    return torch.log(c) - torch.log1p(-c)


# Same names, same order as mirrorpo.losses.mpo.monotone.ACTIVATIONS (a test checks it).
ACTIVATIONS: tuple[tuple[str, object], ...] = (
    ("identity", lambda x: x),
    ("relu_square", lambda x: torch.relu(x) ** 2),
    ("cube", lambda x: x**3),
    ("sqrt_relu", lambda x: torch.sqrt(torch.relu(x) + EPS)),
    ("cbrt_relu", lambda x: (torch.relu(x) + EPS) ** (1.0 / 3.0)),  # argument > 0: the real cube root
    ("log_relu", lambda x: torch.log(torch.relu(x) + EPS)),
    ("exp", lambda x: torch.exp(torch.clamp(x, max=EXP_MAX))),
    ("tanh", torch.tanh),
    ("logit_clip", _logit_clipped),
)
ACTIVATION_NAMES = tuple(name for name, _ in ACTIVATIONS)

Params = dict[str, dict[str, torch.Tensor]]


def network(params: dict[str, torch.Tensor], x: torch.Tensor, t=0.0) -> torch.Tensor:
    """Σ_j |v_j(t)| a_j(|u_j| x + w_j t + b_j), elementwise over x, one activation group at a time."""
    group = params["u"].shape[-1] // len(ACTIVATIONS)
    u, b, v = params["u"].abs(), params["b"], params["v"].abs()
    if "w" in params:
        b = b + params["w"] * t
        v = (params["v"] + params["vt"] * t).abs()
    out = torch.zeros_like(x)
    for i, (_, fn) in enumerate(ACTIVATIONS):
        units = slice(i * group, (i + 1) * group)
        out = out + fn(u[units] * x[..., None] + b[units]) @ v[units]
    return out


def apply(params: dict[str, torch.Tensor] | None, x: torch.Tensor, base_value: torch.Tensor, t=0.0) -> torch.Tensor:
    """f(x[, t]) = base(x) + network(x[, t]); with ``params`` None, f is its base."""
    return base_value if params is None else base_value + network(params, x, t)


def _phi_inv_terms(params: Params | None, mean_logp: torch.Tensor, base: str, t) -> torch.Tensor:
    base_value = mean_logp if base == "log" else log_odds(mean_logp)
    return apply((params or {}).get("phi_inv"), torch.exp(mean_logp), base_value, t)


def _psi(params: Params | None, z: torch.Tensor, t) -> torch.Tensor:
    return apply((params or {}).get("psi"), torch.sigmoid(z), F.logsigmoid(z), t)


def mpo_two_step(batch, params: Params | None = None, *, beta=1.0, progress=0.0) -> torch.Tensor:
    """Two-step MPO: −ψ(σ(β[ϕ⁻¹(p_w) − ϕ⁻¹(p_w^ref) − ϕ⁻¹(p_l) + ϕ⁻¹(p_l^ref)])), per pair [B]."""
    phi = lambda m: _phi_inv_terms(params, m, "log", progress)
    z = beta * (phi(batch.mean_w) - phi(batch.ref_mean_w) - phi(batch.mean_l) + phi(batch.ref_mean_l))
    return -_psi(params, z, progress)


def mpo_one_step(batch, params: Params | None = None, *, beta=1.0, lam=0.1, progress=0.0) -> torch.Tensor:
    """One-step MPO: −g(p_w) − λ·ψ(σ(β[ϕ⁻¹(p_w) − ϕ⁻¹(p_l)])), per pair [B]."""
    phi = lambda m: _phi_inv_terms(params, m, "logit", progress)
    z = beta * (phi(batch.mean_w) - phi(batch.mean_l))
    g = apply((params or {}).get("g"), torch.exp(batch.mean_w), batch.mean_w, progress)
    return -g - lam * _psi(params, z, progress)


MPO_LOSSES = {"two_step": mpo_two_step, "one_step": mpo_one_step}


class TorchObjective:
    """A learned MPO objective's PyTorch loss: ``fn(batch, progress=0.0, **hparams)`` → [B].

    Parameters are unflattened with the JAX :class:`MPOStructure` (one layout, one place) and kept
    as float32 NumPy arrays; they are moved to the batch's device and dtype on first use there."""

    def __init__(self, objective: MPOObjective):
        self.objective = objective
        structure = objective.structure
        params = structure.unflatten(np.asarray(objective.flat))
        self._host = {f: {k: np.asarray(v, dtype=np.float32) for k, v in p.items()} for f, p in params.items()}
        self._placed: dict[tuple, Params] = {}
        self._fn = MPO_LOSSES[structure.family]

    def params_for(self, like: torch.Tensor) -> Params:
        key = (like.device, like.dtype)
        if key not in self._placed:
            self._placed[key] = {
                f: {k: torch.tensor(v, device=like.device, dtype=like.dtype) for k, v in p.items()}
                for f, p in self._host.items()
            }
        return self._placed[key]

    def __call__(self, batch, progress=0.0, **hparams) -> torch.Tensor:
        return self._fn(batch, self.params_for(batch.logp_w), progress=progress, **hparams)


@functools.lru_cache(maxsize=32)
def _cached_objective(path: str, mtime_ns: int, size: int) -> TorchObjective:
    return TorchObjective(load_objective(path))


def load_torch_objective(path: str | os.PathLike) -> TorchObjective:
    """The saved objective at ``path`` (a JAX export, ``*.mpo.safetensors``) as a torch loss; cached
    until the file changes. A missing or damaged file raises the JAX side's ObjectiveFileError."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        return TorchObjective(load_objective(p))  # raises the clear "not found" error
    return _cached_objective(str(p), st.st_mtime_ns, st.st_size)
