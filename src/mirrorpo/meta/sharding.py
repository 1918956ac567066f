"""Spreading a population over devices (jax.sharding) and hosts (jax.distributed)."""

from __future__ import annotations

import os

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mirrorpo.errors import MirrorpoError


def population_sharding(population: int) -> NamedSharding:
    """Shard a [population, ...] array over every visible device (all hosts' devices after
    :func:`init_distributed`); the inner loop's vmapped program is partitioned along that axis."""
    devices = jax.devices()
    if population % len(devices):
        raise MirrorpoError(f"population {population} must be a multiple of the {len(devices)} visible devices.")
    mesh = Mesh(devices, ("population",))
    return NamedSharding(mesh, PartitionSpec("population"))


def init_distributed() -> None:
    """Join a multi-host run. Reads JAX's standard settings (coordinator address, process count and
    id) from the environment, or auto-detects them on managed clusters (SLURM, Cloud TPU)."""
    kwargs = {}
    if "MIRRORPO_COORDINATOR" in os.environ:
        kwargs = {"coordinator_address": os.environ["MIRRORPO_COORDINATOR"],
                  "num_processes": int(os.environ["MIRRORPO_NUM_PROCESSES"]),
                  "process_id": int(os.environ["MIRRORPO_PROCESS_ID"])}
    jax.distributed.initialize(**kwargs)
