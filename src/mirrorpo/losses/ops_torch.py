"""The PyTorch namespace of :mod:`mirrorpo.losses.ops` (imported by ``ops_for`` on the first torch tensor)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F


def _or_number(tensor_fn, number_fn):
    """``tensor_fn`` on tensors, ``number_fn`` on Python numbers (e.g. log ε of a hyper-parameter)."""
    return lambda x: tensor_fn(x) if isinstance(x, torch.Tensor) else number_fn(x)


def _reduction(fn):
    return lambda x, axis=None: fn(x) if axis is None else fn(x, dim=axis)


def _as_like(x, like: torch.Tensor) -> torch.Tensor:
    """``x`` (number, NumPy or JAX array, tensor) as a tensor of ``like``'s dtype on ``like``'s device."""
    if isinstance(x, torch.Tensor):
        return x.to(device=like.device, dtype=like.dtype)
    return torch.tensor(np.asarray(x), dtype=like.dtype, device=like.device)


def _host(x: torch.Tensor) -> np.ndarray:
    """The value as float64 NumPy (one device-to-host copy; NumPy has no bfloat16)."""
    return x.detach().to("cpu", torch.float64).numpy()


TORCH = SimpleNamespace(
    name="torch",
    abs=torch.abs, cbrt=lambda x: torch.sign(x) * torch.abs(x) ** (1.0 / 3.0), exp=torch.exp, expm1=torch.expm1,
    log=_or_number(torch.log, math.log), log1p=_or_number(torch.log1p, math.log1p), sqrt=torch.sqrt,
    tanh=torch.tanh, log_sigmoid=F.logsigmoid, sigmoid=torch.sigmoid, relu=torch.relu,
    log_softmax=lambda x, axis=-1: torch.log_softmax(x, dim=axis),
    minimum=lambda x, c: torch.clamp(x, max=c), clip=torch.clamp, where=torch.where,
    sort=lambda x: torch.sort(x).values, concatenate=torch.cat, sum=_reduction(torch.sum), mean=_reduction(torch.mean),
    stop_gradient=torch.Tensor.detach,
    astype=lambda x, dtype: x.to(dtype),
    as_like=_as_like,
    host=_host,
)
