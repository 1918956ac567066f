"""`--cpu-devices`: XLA exposes the cores as CPU devices, and one process shards a population over as
many of them as divide it (each in a fresh interpreter: the device count is fixed when JAX starts)."""

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, os
from mirrorpo.meta import population_sharding, use_cpu_devices
asked = use_cpu_devices({count})
import jax
print(json.dumps({{"asked": asked, "devices": len(jax.devices()),
                  "mesh": {{p: population_sharding(p).mesh.size for p in (8, 6, 7, 2)}}}}))
"""


def probe(count, xla_flags=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    proc = subprocess.run([sys.executable, "-c", PROBE.format(count=count)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_four_cpu_devices_and_the_largest_divisor_of_the_population():
    got = probe(4)
    assert got["asked"] == 4 and got["devices"] == 4
    assert got["mesh"] == {"8": 4, "6": 3, "7": 1, "2": 2}


def test_default_is_the_cores_this_process_may_use():
    assert probe(None)["devices"] == len(os.sched_getaffinity(0))


def test_xla_flags_that_set_the_count_win():
    assert probe(3, "--xla_force_host_platform_device_count=2")["devices"] == 2


def test_a_count_below_one_is_one_clear_error():
    from mirrorpo.errors import MirrorpoError
    from mirrorpo.meta import use_cpu_devices

    with pytest.raises(MirrorpoError, match="--cpu-devices must be ≥ 1"):
        use_cpu_devices(0)
