"""Environment construction: Ant, Three-Legged Ant (TLA) and Hopper on brax.

Backend: **spring** (brax's spring-based maximal-coordinates physics) by default, chosen by
measurement on the CPU machine (docs/envs.md, benchmarks/results/envs.json): it is the fastest
backend for both Ant and Hopper on CPU (docs/design.md §7: Ant 7.6k/17.9k/21.6k steps/s at batch 1/16/128,
≈1.3× mjx; Hopper 31.7k/34.0k/89.9k, 10–30× mjx), it gave no NaNs, whereas ``generalized`` is 3–10×
slower and produced NaNs on Ant, and ``positional`` is 2–3× slower. ``mjx`` (MuJoCo's own solver,
the most faithful) is available through ``backend="mjx"`` — the right choice on a GPU — but all
shipped agents were trained and evaluated with ``spring``; returns are only comparable within one
backend.

Conventions (all environments):

* actions are clipped to [-1, 1] (the actuators' control range) *before* the physics and the
  reward see them; the clipped action is the executed action, and the one rollouts store;
* ``ant`` / ``three_legged_ant`` never terminate early (``terminate_when_unhealthy=False``: an
  unhealthy ant just loses its +1 healthy bonus), so every Ant/TLA episode has the full length;
  ``hopper`` terminates when unhealthy (brax's default ranges);
* the per-step true reward is brax's reward (TLA: minus the leg-4 penalty below).

TLA penalty: in brax's ``ant.xml`` the *first two* actuators drive the fourth leg (``hip_4``,
``ankle_4``). TLA charges ``TLA_PENALTY * (a[0]**2 + a[1]**2)`` per step on the clipped commands,
on top of Ant's own control cost — nothing else differs from Ant (same observation and action
spaces, same physics, same other reward terms). The constant (10) was set so that an Ant-trained agent
loses most of its return on TLA, as in the paper (6000 → 1700): with 2, a 1M-step Ant agent kept ≈80 %.

Two other ways of making the fourth leg costly, for the fidelity study (docs/results/fidelity/):
``three_legged_ant_foot`` charges for *using* the leg instead of commanding it —
``TLA_FOOT_PENALTY`` per step, scaled from 0 (the fourth foot ``TLA_FOOT_CLEARANCE`` or more above the
ground) to 1 (the foot on the ground), from the physics state — and ``three_legged_ant_disabled``
executes 0 on the leg's two actuators whatever the policy commands (no penalty: the leg hangs).
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from dataclasses import dataclass

from mirrorpo.errors import MirrorpoError

DEFAULT_BACKEND = "spring"
BACKENDS = ("spring", "positional", "generalized", "mjx")

# Per-step penalty per unit of squared command on each of the fourth leg's two actuators.
TLA_PENALTY = 10.0
# Indices of the fourth leg's actuators (hip_4, ankle_4) in brax's ant.xml actuator order.
TLA_LEG4_ACTUATORS = (0, 1)
# three_legged_ant_foot: the fourth foot (ant.xml's fourth_foot_geom, a sphere of radius 0.08 at (0.4, -0.4, 0)
# in the frame of the link ankle_4 moves, brax's link 8) and the per-step penalty for having it on the ground.
TLA_FOOT_LINK = 8
TLA_FOOT_OFFSET = (0.4, -0.4, 0.0)
TLA_FOOT_RADIUS = 0.08
TLA_FOOT_CLEARANCE = 0.2
TLA_FOOT_PENALTY = 12.0  # the original agent scores 2101 of its 5808 on Ant here (2030 on three_legged_ant)
TLA_ENVS = ("three_legged_ant", "three_legged_ant_foot", "three_legged_ant_disabled")


class EnvError(MirrorpoError):
    """Unknown environment or backend, or an invalid rollout request."""


@dataclass(frozen=True)
class EnvSpec:
    name: str
    obs_dim: int
    act_dim: int
    episode_length: int  # default (maximum) episode length in steps
    terminates: bool  # whether episodes can end early
    dt: float


SPECS = {
    "ant": EnvSpec("ant", 27, 8, 1000, False, 0.05),
    "three_legged_ant": EnvSpec("three_legged_ant", 27, 8, 1000, False, 0.05),
    "three_legged_ant_foot": EnvSpec("three_legged_ant_foot", 27, 8, 1000, False, 0.05),
    "three_legged_ant_disabled": EnvSpec("three_legged_ant_disabled", 27, 8, 1000, False, 0.05),
    "hopper": EnvSpec("hopper", 11, 3, 1000, True, 0.008),
}
ENV_NAMES = tuple(SPECS)


def get_spec(name: str) -> EnvSpec:
    if name not in SPECS:
        raise EnvError(f"unknown environment '{name}'; valid: {', '.join(ENV_NAMES)}.")
    return SPECS[name]


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise EnvError(f"unknown brax backend '{backend}'; valid: {', '.join(BACKENDS)}.")


def tla_penalty(action):
    """The TLA penalty of (already clipped) actions [..., 8] → [...]."""
    import jax.numpy as jnp

    leg4 = jnp.take(action, jnp.asarray(TLA_LEG4_ACTUATORS), axis=-1)
    return TLA_PENALTY * jnp.sum(jnp.square(leg4), axis=-1)


def fourth_foot_height(link_pos, link_rot):
    """Height of the fourth foot's centre from the links' world positions [..., L, 3] and unit
    quaternions (w, x, y, z) [..., L, 4]: z of pos + R(q)·TLA_FOOT_OFFSET for link TLA_FOOT_LINK."""
    import jax.numpy as jnp

    p, (w, x, y, z) = link_pos[..., TLA_FOOT_LINK, :], jnp.moveaxis(link_rot[..., TLA_FOOT_LINK, :], -1, 0)
    ox, oy, oz = TLA_FOOT_OFFSET  # the third row of the rotation matrix of q, times the offset
    return p[..., 2] + 2 * (x * z - w * y) * ox + 2 * (y * z + w * x) * oy + (1 - 2 * (x * x + y * y)) * oz


def tla_foot_penalty(foot_height):
    """TLA_FOOT_PENALTY · clip((clearance − h) / (clearance − radius), 0, 1): the full penalty with the
    fourth foot on the ground (h = its radius), none from TLA_FOOT_CLEARANCE up."""
    import jax.numpy as jnp

    used = (TLA_FOOT_CLEARANCE - foot_height) / (TLA_FOOT_CLEARANCE - TLA_FOOT_RADIUS)
    return TLA_FOOT_PENALTY * jnp.clip(used, 0.0, 1.0)


def make(name: str, backend: str = DEFAULT_BACKEND):
    """A brax environment (``reset(key)``, ``step(state, action)``, single, un-batched) for ``name``.

    One instance per (name, backend), however the arguments are spelled, built eagerly even when first
    asked for inside a ``jit`` trace (its arrays would otherwise be that trace's tracers and leak into
    every later use of the cached env). Brax is imported here, not at package import time."""
    get_spec(name)
    _check_backend(backend)
    import jax

    with jax.ensure_compile_time_eval(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Brax System", category=UserWarning)  # brax's notice to all users
        return _build(name, backend)


@contextlib.contextmanager
def _devices_of_this_process():
    """While it is active, ``jax.devices()`` lists only this process's devices.

    mujoco.mjx puts a model on ``jax.devices()[0]``, in a multi-process run process 0's device: any
    other process would then hold an env whose arrays it cannot address (nor copy to its own)."""
    import jax

    if jax.process_count() == 1:
        yield
        return
    all_devices = jax.devices
    jax.devices = lambda backend=None: jax.local_devices(backend=backend)
    try:
        yield
    finally:
        jax.devices = all_devices


@functools.cache
def _build(name: str, backend: str):
    import jax.numpy as jnp

    with contextlib.redirect_stdout(io.StringIO()):  # mujoco.mjx prints "Failed to import warp" (a GPU-only extra)
        from brax import envs as brax_envs
        from brax.envs.base import Wrapper

    class _Clipped(Wrapper):
        """Clips actions to [-1, 1] before the physics and the reward."""

        def step(self, state, action):
            return self.env.step(state, jnp.clip(action, -1.0, 1.0))

    class _ThreeLeggedAnt(Wrapper):
        """Ant plus a penalty on the fourth leg (``variant``: its command, its foot on the ground, or
        none with the leg disabled)."""

        def __init__(self, env, variant: str):
            super().__init__(env)
            self.variant = variant

        def step(self, state, action):
            action = jnp.clip(action, -1.0, 1.0)
            if self.variant == "three_legged_ant_disabled":
                action = action.at[..., jnp.asarray(TLA_LEG4_ACTUATORS)].set(0.0)
            nstate = self.env.step(state, action)
            if self.variant == "three_legged_ant":
                penalty = tla_penalty(action)
            elif self.variant == "three_legged_ant_foot":
                penalty = tla_foot_penalty(fourth_foot_height(nstate.pipeline_state.x.pos, nstate.pipeline_state.x.rot))
            else:
                penalty = jnp.zeros(())
            metrics = dict(nstate.metrics)
            metrics["tla_penalty"] = -penalty
            return nstate.replace(reward=nstate.reward - penalty, metrics=metrics)

        def reset(self, rng):
            state = self.env.reset(rng)
            metrics = dict(state.metrics)
            metrics["tla_penalty"] = jnp.zeros(())
            return state.replace(metrics=metrics)

    with _devices_of_this_process():
        if name == "ant" or name in TLA_ENVS:
            base = brax_envs.get_environment("ant", backend=backend, terminate_when_unhealthy=False)
        else:
            base = brax_envs.get_environment("hopper", backend=backend)
    return _ThreeLeggedAnt(base, name) if name in TLA_ENVS else _Clipped(base)
