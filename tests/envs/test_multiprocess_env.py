"""An env built in a multi-process run lives on the building process's own device.

mujoco.mjx places a model on ``jax.devices()[0]``, which on jax.distributed is process 0's device;
without :func:`mirrorpo.envs.core._devices_of_this_process` every other process held an env it could
not use ("Closing over jax.Array that spans non-addressable devices" at its first rollout)."""

from __future__ import annotations

import pytest

from tests.processes import run_processes

SCRIPT = """
import json, jax
from mirrorpo.meta.sharding import init_distributed
init_distributed()
from mirrorpo.envs import make
out = {"process": jax.process_index()}
for name in ("three_legged_ant", "hopper"):
    env = make(name)
    leaves = [x for x in jax.tree.leaves(env.sys) if isinstance(x, jax.Array)]
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    out[name] = {"leaves": len(leaves), "addressable": all(x.is_fully_addressable for x in leaves),
                 "obs_finite": bool(jax.numpy.isfinite(state.obs).all())}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_every_process_builds_an_env_it_can_run():
    results = run_processes(SCRIPT)
    assert [r["process"] for r in results] == [0, 1]
    for r in results:
        for name in ("three_legged_ant", "hopper"):
            assert r[name]["leaves"] > 10 and r[name]["addressable"] and r[name]["obs_finite"], r
