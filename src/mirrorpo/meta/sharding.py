"""Spreading a population over devices (jax.sharding) and processes (jax.distributed).

In a multi-process run every process holds the same ES state (each asks and tells with the same
keys on the same host-local arrays); the population is put on a global array sharded over every
process's devices, so each process trains its own slice inside one SPMD program, then evaluates
that slice on host-local arrays (:func:`map_local_shards`); the per-candidate returns are
all-gathered (a [P] vector) for the ES update. Only process 0 writes files.
"""

from __future__ import annotations

import os
import socket
import time

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mirrorpo.errors import MirrorpoError

# seconds a process waits for the coordinator (and the others) before giving up with one clear line
DEFAULT_INIT_TIMEOUT = 60
ENV_VARS = ("MIRRORPO_COORDINATOR", "MIRRORPO_NUM_PROCESSES", "MIRRORPO_PROCESS_ID")


DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def use_cpu_devices(count: int | None = None) -> int:
    """Let XLA expose ``count`` CPU devices (default: the cores this process may use), so one
    process trains that many candidates at once, one per core. Must run before JAX starts its
    backend; ``XLA_FLAGS`` that set the count already, or a started backend, are left alone.
    Returns the count asked for. (Candidates are trained one chunk at a time on their own device, so
    results do not depend on the count.)"""
    count = len(os.sched_getaffinity(0)) if count is None else count
    if count < 1:
        raise MirrorpoError(f"--cpu-devices must be ≥ 1; got {count}.")
    from jax._src import xla_bridge  # no public way to ask whether the backend has started

    flags = os.environ.get("XLA_FLAGS", "")
    if DEVICE_COUNT_FLAG not in flags and not xla_bridge.backends_are_initialized():
        os.environ["XLA_FLAGS"] = f"{flags} {DEVICE_COUNT_FLAG}={count}".strip()
    return count


def population_sharding(population: int) -> NamedSharding:
    """Shard a [population, ...] array over the visible devices (all processes' devices after
    :func:`init_distributed`); the inner loop's program is partitioned along that axis. A single
    process uses as many of its devices as divide the population; several processes need all."""
    devices = jax.devices()
    if jax.process_count() == 1:
        devices = devices[:max(d for d in range(1, len(devices) + 1) if population % d == 0)]
    elif population % len(devices):
        raise MirrorpoError(f"population {population} must be a multiple of the {len(devices)} devices of all "
                            f"processes; change --population.")
    mesh = Mesh(np.asarray(devices), ("population",))
    return NamedSharding(mesh, PartitionSpec("population"))


def map_local_shards(fn, tree) -> np.ndarray:
    """``fn`` on this process's rows of a population sharded along its first axis, with every
    process's results put back in population order: [P, ...] on every process.

    Each process evaluates only the candidates it trained, on host-local arrays (brax's rollouts
    cannot take arrays that span other processes), and the per-candidate results are all-gathered.
    A process's shards of a 1-D population mesh are contiguous rows."""
    leaves = jax.tree.leaves(tree)
    if all(not isinstance(x, jax.Array) or x.is_fully_addressable for x in leaves):
        return np.asarray(fn(tree))
    shards = leaves[0].addressable_shards
    order = sorted(range(len(shards)), key=lambda i: shards[i].index[0].start or 0)
    local = jax.tree.map(lambda x: np.concatenate([np.asarray(x.addressable_shards[i].data) for i in order]), tree)
    gathered = np.asarray(multihost_utils.process_allgather(np.asarray(fn(local))))  # [processes, rows, ...]
    starts = np.asarray(multihost_utils.process_allgather(np.asarray(shards[order[0]].index[0].start or 0)))
    return np.concatenate([gathered[i] for i in np.argsort(starts)])


def is_main_process() -> bool:
    """True on the process that writes files (process 0; the only one without jax.distributed)."""
    return jax.process_index() == 0


def agree(flag: bool) -> bool:
    """Process 0's ``flag`` on every process (a decision all processes must take together)."""
    if jax.process_count() == 1:
        return flag
    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


# seconds a process waits at a barrier for the others (process 0 may be generating the dataset)
BARRIER_TIMEOUT = 3600


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (a no-op in a single process).

    A barrier of the coordination service, not a device collective: gloo gives up connecting
    after a short timeout, while process 0 may spend minutes generating the dataset."""
    if jax.process_count() > 1:
        from jax._src import distributed  # the coordination client (JAX has no public barrier with a timeout)

        distributed.global_state.client.wait_at_barrier(name, BARRIER_TIMEOUT * 1000)


def distributed_settings(environ=os.environ) -> dict:
    """jax.distributed.initialize's arguments from MIRRORPO_COORDINATOR (host:port),
    MIRRORPO_NUM_PROCESSES, MIRRORPO_PROCESS_ID and MIRRORPO_INIT_TIMEOUT (seconds, default 60);
    only the timeout when none of the first three is set (JAX then auto-detects SLURM, Cloud TPU, …)."""
    given = [v for v in ENV_VARS if v in environ]
    timeout = environ.get("MIRRORPO_INIT_TIMEOUT", str(DEFAULT_INIT_TIMEOUT))
    if not timeout.isdigit() or int(timeout) < 1:
        raise MirrorpoError(f"MIRRORPO_INIT_TIMEOUT must be a whole number of seconds ≥ 1; got '{timeout}'.")
    if not given:
        return {"initialization_timeout": int(timeout)}
    missing = [v for v in ENV_VARS if v not in environ]
    if missing:
        raise MirrorpoError(f"--distributed: set all of {', '.join(ENV_VARS)} (missing {', '.join(missing)}), "
                            "or none of them on a cluster JAX detects (SLURM).")
    host, _, port = environ["MIRRORPO_COORDINATOR"].rpartition(":")
    count, pid = environ["MIRRORPO_NUM_PROCESSES"], environ["MIRRORPO_PROCESS_ID"]
    if not host or not port.isdigit() or not count.isdigit() or not pid.isdigit() or not int(pid) < int(count):
        raise MirrorpoError(f"--distributed: need MIRRORPO_COORDINATOR=HOST:PORT, MIRRORPO_NUM_PROCESSES=N ≥ 1 and "
                            f"0 ≤ MIRRORPO_PROCESS_ID < N; got '{environ['MIRRORPO_COORDINATOR']}', '{count}', '{pid}'.")
    return {"coordinator_address": environ["MIRRORPO_COORDINATOR"], "num_processes": int(count),
            "process_id": int(pid), "initialization_timeout": int(timeout)}


def wait_for_coordinator(address: str, timeout: float) -> None:
    """Return once ``address`` (host:port) accepts TCP connections; one clear error after ``timeout`` s.

    JAX's own client aborts the whole process (a C++ fatal error, no Python exception) when it cannot
    register with the coordinator, so worker processes check that it is reachable first."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1.0).close()
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise MirrorpoError(f"--distributed: cannot reach the coordinator at {address} within {timeout:.0f} s "
                                    f"({exc.strerror or exc}); start process 0 first, check the address and port, "
                                    "or raise MIRRORPO_INIT_TIMEOUT.") from None
            time.sleep(0.2)


def init_distributed(environ=os.environ) -> None:
    """Join a multi-process run (CPU collectives over gloo). A worker that cannot reach the
    coordinator stops with one clear error line within MIRRORPO_INIT_TIMEOUT seconds. (Process 0
    waiting for workers that never come is ended by JAX itself after that timeout.)"""
    kwargs = distributed_settings(environ)
    if kwargs.get("process_id", 0) != 0:
        wait_for_coordinator(kwargs["coordinator_address"], kwargs["initialization_timeout"])
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as exc:  # XlaRuntimeError is a RuntimeError; both come with long traces
        where = kwargs.get("coordinator_address", "the auto-detected coordinator")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MirrorpoError(f"--distributed: could not join the run at {where} within "
                            f"{kwargs['initialization_timeout']} s ({first[:200]}); check that process 0 is "
                            "running, the address and port are reachable, and every process has the same "
                            "MIRRORPO_NUM_PROCESSES.") from None
