"""Array backends: the few operations the losses use, so that each loss is one formula for JAX and PyTorch.

A loss takes its namespace from its batch (``ops = batch.ops``) and calls only these operations::

    def dpo(batch, beta):
        return -batch.ops.log_sigmoid(beta * (batch.ratio_w - batch.ratio_l))

:func:`ops_for` gives the PyTorch namespace (:mod:`mirrorpo.losses.ops_torch`, imported on first use, so
the JAX side never needs torch) for torch tensors and :data:`JAX` for anything else: JAX arrays and
tracers (inside ``jit``/``vmap``/``grad``), NumPy arrays, Python numbers. Both namespaces have the same
attributes with JAX's signatures; ``log`` and ``log1p`` also take Python numbers (hyper-parameters).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = Any  # a JAX array (or tracer) or a torch tensor, as accepted by ops_for


def _host(x) -> np.ndarray | None:
    """The value of ``x`` as a NumPy array, or None when it is traced (inside jit/vmap/grad)."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


JAX = SimpleNamespace(
    name="jax",
    abs=jnp.abs, cbrt=jnp.cbrt, exp=jnp.exp, expm1=jnp.expm1, log=jnp.log, log1p=jnp.log1p, sqrt=jnp.sqrt,
    tanh=jnp.tanh, log_sigmoid=jax.nn.log_sigmoid, sigmoid=jax.nn.sigmoid, relu=jax.nn.relu,
    log_softmax=jax.nn.log_softmax,  # (x, axis=-1)
    minimum=jnp.minimum, clip=jnp.clip, where=jnp.where,  # minimum(x, number), clip(x, lo, hi)
    sort=jnp.sort, concatenate=jnp.concatenate, sum=jnp.sum, mean=jnp.mean,  # sum/mean(x, axis=None)
    stop_gradient=jax.lax.stop_gradient,
    astype=lambda x, dtype: x.astype(dtype),
    as_like=lambda x, like: jnp.asarray(x, dtype=jnp.result_type(like)),  # x in like's dtype (and device)
    host=_host,  # value as NumPy for validation; None when traced
)


def ops_for(x: Array) -> SimpleNamespace:
    """The namespace of ``x``'s backend: PyTorch's for a torch tensor, else :data:`JAX`."""
    if type(x).__module__.startswith("torch"):
        from mirrorpo.losses.ops_torch import TORCH

        return TORCH
    return JAX


def concrete(x) -> np.ndarray | None:
    """The value of ``x`` (number, array or tensor) as NumPy, or None when it is a JAX tracer."""
    return ops_for(x).host(x)
