"""The offline PO inner loop: one jit-compilable function from (initial policy, preference pairs,
objective, hyper-parameters, key) to a trained policy, following docs/design.md §3.

Protocols (``LossSpec.protocol``):

* ``one_step``: ``epochs`` (12) epochs of the loss.
* ``sft_then_po``: ``sft_epochs`` (10) epochs of SFT (−ℓ_w); the SFT policy becomes the reference
  (its log-likelihoods of every trajectory are computed once); then ``po_epochs`` (2) of the loss,
  with a fresh Adam (``po_keeps_optimizer=True``: continuing SFT's Adam state, as one run of 12 epochs
  whose loss changes after the tenth would).

Each epoch shuffles the pairs and takes ⌊N / batch_pairs⌋ Adam steps (lr 1e-3) on minibatches of
``batch_pairs`` (2) pairs, gradients clipped to global norm ``max_grad_norm`` (1.3). Training
progress t ∈ [0, 1] (for temporally-aware objectives) is the fraction of the objective's own phase
done. Everything is traced once; ``jax.vmap`` over keys, hyper-parameters or MPO parameter vectors
gives many runs in one program (purejaxrl style).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mirrorpo.errors import MirrorpoError
from mirrorpo.losses import LOSSES, ONE_STEP, LossSpec, PairBatch, get_spec

# per-step log-probabilities of a trajectory: (policy params, obs [T, O], actions [T, A]) -> [T]
StepLogProb = Callable[[Any, jax.Array, jax.Array], jax.Array]
# objective: (batch, hyper-parameters pytree, progress t) -> per-pair losses [B]
Objective = Callable[[PairBatch, Any, jax.Array], jax.Array]


# Pairs whose log-likelihoods are computed at once outside the update steps (the reference and final
# log-likelihoods). Bounds memory: on Hopper's 5120 pairs × 1000 steps, 8 vmapped runs would otherwise
# hold every hidden activation of the dataset at once (~32 GB).
LOGP_CHUNK_PAIRS = 256


class TrainError(MirrorpoError):
    """Invalid training input (config, data or objective)."""


@dataclass(frozen=True)
class TrainConfig:
    """docs/design.md §3 protocol settings; every field may be changed."""

    epochs: int = 12  # one-step protocol
    sft_epochs: int = 10  # two-step protocol: SFT phase ...
    po_epochs: int = 2  # ... then the PO loss with the SFT policy as reference
    batch_pairs: int = 2
    lr: float = 1e-3
    max_grad_norm: float = 1.3
    po_keeps_optimizer: bool = False  # two-step: the PO phase continues SFT's Adam state (else a fresh Adam)

    def __post_init__(self):
        for name in ("epochs", "sft_epochs", "po_epochs", "batch_pairs"):
            if int(getattr(self, name)) < (0 if name == "sft_epochs" else 1):
                raise TrainError(f"TrainConfig.{name} must be a positive integer; got {getattr(self, name)}.")
        if not self.lr > 0 or not self.max_grad_norm > 0:
            raise TrainError(f"lr and max_grad_norm must be > 0; got {self.lr}, {self.max_grad_norm}.")


class Pairs(NamedTuple):
    """Preference pairs, chosen first: observations [N, T, O], actions [N, T, A], lengths [N]."""

    obs_w: jax.Array
    act_w: jax.Array
    len_w: jax.Array
    obs_l: jax.Array
    act_l: jax.Array
    len_l: jax.Array

    @property
    def num_pairs(self) -> int:
        return self.obs_w.shape[0]


class TrainResult(NamedTuple):
    params: Any
    epoch_loss: jax.Array  # mean objective per epoch of the objective's phase [E]
    sft_loss: jax.Array  # mean SFT loss per SFT epoch [E_sft] (empty for one-step)
    final_mean_w: jax.Array  # mean over pairs of ℓ_w (per token) after training
    final_mean_l: jax.Array
    final_accuracy: jax.Array  # fraction of pairs with ℓ_w > ℓ_l after training
    steps: jax.Array  # optimizer steps taken (Adam's own counter, summed over phases)


def registry_objective(loss: str | LossSpec) -> tuple[LossSpec, Objective]:
    """A registry loss as an Objective taking its hyper-parameters as a dict pytree."""
    spec = get_spec(loss)

    def objective(batch, hparams, t):
        return spec.fn(batch, **hparams, **({"progress": t} if spec.uses_progress else {}))

    return spec, objective


def check_pairs(pairs: Pairs) -> None:
    n = pairs.num_pairs
    if n == 0:
        raise TrainError("the dataset has no pairs; generate one with `mirrorpo data generate`.")
    shapes = {f: getattr(pairs, f).shape for f in Pairs._fields}
    ok = (shapes["obs_w"] == shapes["obs_l"] and shapes["act_w"] == shapes["act_l"]
          and shapes["obs_w"][:2] == shapes["act_w"][:2] and shapes["len_w"] == shapes["len_l"] == (n,))
    if not ok:
        raise TrainError(f"inconsistent pair arrays: {shapes} (expect obs [N,T,O], act [N,T,A], len [N]).")


def make_train(
    step_logp: StepLogProb,
    spec: LossSpec,
    objective: Objective,
    num_pairs: int,
    config: TrainConfig = TrainConfig(),
    tokens_per_step: int = 1,
) -> Callable[[Any, Pairs, Any, jax.Array], TrainResult]:
    """Build ``train(params0, pairs, hparams, key) -> TrainResult`` (pure; jit/vmap it).

    ``hparams`` is any pytree the objective understands (a dict of floats for registry losses, or
    e.g. ``{"flat": mpo_params, "beta": 1.0}``); vmap over it, over ``key`` or over ``params0``.

    ``tokens_per_step``: the length n the losses see is steps × tokens_per_step. With one token per
    action dimension, ℓ = L/n is the mean log-probability per action coordinate — the analogue of
    an LLM's per-token mean — so p = exp(ℓ) spans (0, 1] instead of vanishing as a product over
    dimensions (which would leave ORPO's odds and the MPO networks nothing to act on).
    """
    if tokens_per_step < 1:
        raise TrainError(f"tokens_per_step must be ≥ 1; got {tokens_per_step}.")
    if config.batch_pairs > num_pairs:
        raise TrainError(f"batch_pairs={config.batch_pairs} exceeds the {num_pairs} pairs of the dataset.")
    two_step = spec.protocol != ONE_STEP
    steps_per_epoch = num_pairs // config.batch_pairs
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.lr))
    sft = LOSSES["sft"]

    def summed_logp(params, obs, act, length):
        """Σ_{t < length} log π(a_t|s_t) for a batch of trajectories [B, T, ...]."""
        step = jax.vmap(step_logp, in_axes=(None, 0, 0))(params, obs, act)  # [B, T]
        mask = jnp.arange(step.shape[1])[None, :] < length[:, None]
        return jnp.sum(jnp.where(mask, step, 0.0), axis=1)

    def batch_for(params, pairs: Pairs, idx, ref) -> PairBatch:
        lw, ll = pairs.len_w[idx], pairs.len_l[idx]
        logp_w = summed_logp(params, pairs.obs_w[idx], pairs.act_w[idx], lw)
        logp_l = summed_logp(params, pairs.obs_l[idx], pairs.act_l[idx], ll)
        ref_w, ref_l = (None, None) if ref is None else (ref[0][idx], ref[1][idx])
        n_w, n_l = (x.astype(logp_w.dtype) * tokens_per_step for x in (lw, ll))
        return PairBatch(logp_w, logp_l, n_w, n_l, ref_w, ref_l)

    def run_phase(params, opt_state, pairs, key, epochs, loss_of_batch, ref):
        total = epochs * steps_per_epoch
        perms = jax.vmap(lambda k: jax.random.permutation(k, num_pairs))(jax.random.split(key, epochs))
        idx = perms[:, : steps_per_epoch * config.batch_pairs].reshape(total, config.batch_pairs)

        def step(carry, inputs):
            params, opt_state = carry
            i, batch_idx = inputs
            t = i / jnp.maximum(total - 1, 1)

            def loss_fn(p):
                return jnp.mean(loss_of_batch(batch_for(p, pairs, batch_idx, ref), t))

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (jnp.arange(total), idx))
        return params, opt_state, losses.reshape(epochs, steps_per_epoch).mean(axis=1)

    def all_logp(params, pairs):
        """Summed log-likelihoods (chosen [N], rejected [N]) of every pair, LOGP_CHUNK_PAIRS at a time."""
        def logp(rows):
            ow, aw, lw, ol, al, ll = rows
            return summed_logp(params, ow, aw, lw), summed_logp(params, ol, al, ll)

        if num_pairs <= LOGP_CHUNK_PAIRS:
            return logp(tuple(pairs))
        one_pair = lambda row: jax.tree.map(lambda v: v[0], logp(jax.tree.map(lambda v: v[None], row)))
        return jax.lax.map(one_pair, tuple(pairs), batch_size=LOGP_CHUNK_PAIRS)

    def adam_steps(opt_state):
        return opt_state[1][0].count  # chain(clip, adam): adam's ScaleByAdamState

    def train(params0, pairs: Pairs, hparams, key) -> TrainResult:
        pairs = Pairs(*(jnp.asarray(x) for x in pairs))  # NumPy arrays closed over by a jit become constants
        k_sft, k_po = jax.random.split(key)
        objective_loss = lambda batch, t: objective(batch, hparams, t)
        steps = jnp.zeros((), jnp.int32)
        params, sft_loss, ref, opt_state = params0, jnp.zeros((0,)), None, optimizer.init(params0)
        if two_step:
            params, opt_state, sft_loss = run_phase(params, opt_state, pairs, k_sft, config.sft_epochs,
                                                    lambda b, t: sft.fn(b), None)
            ref = jax.lax.stop_gradient(all_logp(params, pairs))
            if not config.po_keeps_optimizer:  # a fresh Adam for the PO phase
                steps, opt_state = adam_steps(opt_state), optimizer.init(params)
        epochs = config.po_epochs if two_step else config.epochs
        params, opt_state, epoch_loss = run_phase(params, opt_state, pairs, k_po, epochs, objective_loss, ref)
        lw, ll = all_logp(params, pairs)
        mean_w, mean_l = lw / (pairs.len_w * tokens_per_step), ll / (pairs.len_l * tokens_per_step)
        return TrainResult(params, epoch_loss, sft_loss, mean_w.mean(), mean_l.mean(), (mean_w > mean_l).mean(),
                           steps + adam_steps(opt_state))

    return train


def switch_objective(losses: list[str | LossSpec]) -> tuple[list[LossSpec], Objective]:
    """One objective for several losses of the same protocol, chosen per run by ``hparams["algo"]``.

    ``hparams`` holds ``algo`` (index into ``losses``) plus every hyper-parameter any of the losses
    takes (:func:`switch_hparams` builds it). Training many algorithms then compiles once; under
    ``vmap`` the switch evaluates every loss on the shared log-likelihoods, which is cheap next to
    the policy's forward and backward pass.
    """
    specs = [get_spec(loss) for loss in losses]
    if len({s.protocol for s in specs}) != 1:
        raise TrainError(f"switch_objective needs losses of one protocol; got {[(s.name, s.protocol) for s in specs]}.")

    def branch(spec):
        def run(batch, hparams, t):
            own = {h.name: hparams[h.name] for h in spec.hparams}
            return spec.fn(batch, **own, **({"progress": t} if spec.uses_progress else {}))
        return run

    branches = [branch(s) for s in specs]

    def objective(batch, hparams, t):
        return jax.lax.switch(hparams["algo"], branches, batch, hparams, t)

    return specs, objective


def switch_hparams(specs: list[LossSpec], index: int, values: dict[str, float]) -> dict[str, jax.Array]:
    """The hparams pytree for run ``index`` of :func:`switch_objective`: every name any spec takes,
    this loss's values (validated, defaults filled), 1.0 for names it does not use."""
    spec = specs[index]
    resolved = spec.resolve_hparams(values)
    names = sorted({h.name for s in specs for h in s.hparams})
    out = {name: jnp.asarray(float(resolved.get(name, 1.0)), jnp.float32) for name in names}
    out["algo"] = jnp.asarray(index, jnp.int32)
    return out
