"""Numerics shared by the torch losses and MPO objectives (twins of :mod:`mirrorpo.losses.batch`)."""

from __future__ import annotations

import math

import torch

from mirrorpo.losses.batch import LOG_P_MAX

_LOG2 = math.log(2.0)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − eˣ) for x < 0, accurate at both ends (Mächler 2012), with NaN-free gradients."""
    x = torch.clamp(x, max=LOG_P_MAX)
    near_zero = x > -_LOG2
    safe_near = torch.where(near_zero, x, -1.0)
    safe_far = torch.where(near_zero, -1.0, x)
    return torch.where(near_zero, torch.log(-torch.expm1(safe_near)), torch.log1p(-torch.exp(safe_far)))


def log_odds(log_p: torch.Tensor) -> torch.Tensor:
    """logit(p) = log(p / (1 − p)) computed from log p (p clipped to ≤ exp(LOG_P_MAX))."""
    log_p = torch.clamp(log_p, max=LOG_P_MAX)
    return log_p - log1mexp(log_p)
