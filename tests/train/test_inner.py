"""The offline PO inner loop on a toy linear-Gaussian policy with binned action probabilities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tests.toy_task import ACT, OBS, W_GOOD, ToyTask, step_logp

from mirrorpo.losses import MPOStructure
from mirrorpo.train import Pairs, TrainConfig, TrainError, make_train, registry_objective

T, N = 6, 8


init_params = ToyTask().initial_params


def make_pairs(key):
    """Chosen actions follow a 'good' linear policy; rejected ones are noise. Lengths vary."""
    k = jax.random.split(key, 5)
    obs_w, obs_l = jax.random.normal(k[0], (N, T, OBS)), jax.random.normal(k[1], (N, T, OBS))
    act_w = obs_w @ W_GOOD + 0.1 * jax.random.normal(k[2], (N, T, ACT))
    act_l = jax.random.normal(k[3], (N, T, ACT))
    lengths = jax.random.randint(k[4], (N,), 2, T + 1)
    return Pairs(obs_w, act_w, lengths, obs_l, act_l, lengths[::-1])


@pytest.fixture(scope="module")
def pairs():
    return make_pairs(jax.random.PRNGKey(0))


SHORT = TrainConfig(epochs=6, sft_epochs=4, po_epochs=2)


def trained(loss, pairs, config=SHORT, hparams=None, key=0):
    spec, objective = registry_objective(loss)
    train = jax.jit(make_train(step_logp, spec, objective, pairs.num_pairs, config))
    return train(init_params(jax.random.PRNGKey(1)), pairs, hparams or spec.defaults, jax.random.PRNGKey(key))


@pytest.mark.parametrize("loss", ["sft", "orpo", "cpo"])
def test_one_step_loss_decreases_and_params_change(loss, pairs):
    result = trained(loss, pairs, TrainConfig(epochs=20, lr=0.05))
    assert result.epoch_loss.shape == (20,) and result.sft_loss.shape == (0,)
    assert result.epoch_loss[-1] < result.epoch_loss[0]
    p0 = init_params(jax.random.PRNGKey(1))
    assert not np.allclose(result.params["w"], p0["w"])
    assert result.final_accuracy > 0.5  # chosen trajectories became more likely than rejected ones


def test_two_step_protocol_runs_sft_then_po(pairs):
    result = trained("dpo", pairs, TrainConfig(sft_epochs=4, po_epochs=2, lr=0.05), hparams={"beta": 0.5})
    assert result.sft_loss.shape == (4,) and result.epoch_loss.shape == (2,)
    assert result.sft_loss[-1] < result.sft_loss[0]
    # the first PO epoch starts at the reference, where DPO's loss is log 2; it then decreases
    assert float(result.epoch_loss[0]) < np.log(2) + 1e-3


@pytest.mark.parametrize("loss, expected_epochs", [("sft", 3), ("dpo", 4 + 1)])
def test_documented_number_of_steps(loss, expected_epochs, pairs):
    """Adam steps = epochs × ⌊N / batch_pairs⌋: 3 epochs one-step; 4 SFT + 1 PO epochs two-step."""
    config = TrainConfig(epochs=3, sft_epochs=4, po_epochs=1, batch_pairs=3)
    result = trained(loss, pairs, config)
    assert int(result.steps) == expected_epochs * (N // 3)
    assert result.epoch_loss.shape == ((3,) if loss == "sft" else (1,))



def test_po_phase_can_continue_sfts_adam_state(pairs):
    """po_keeps_optimizer: the PO phase's updates use SFT's Adam moments, so the policy differs from
    the fresh-Adam protocol's while the step count is the same; a one-step loss is unaffected."""
    config = TrainConfig(sft_epochs=4, po_epochs=1, batch_pairs=3, lr=0.05)
    kept = trained("dpo", pairs, TrainConfig(**{**config.__dict__, "po_keeps_optimizer": True}))
    fresh = trained("dpo", pairs, config)
    assert int(kept.steps) == int(fresh.steps) == 5 * (N // 3)
    np.testing.assert_array_equal(kept.sft_loss, fresh.sft_loss)  # the SFT phase is the same
    assert not np.allclose(kept.params["w"], fresh.params["w"])
    one_step = trained("sft", pairs, TrainConfig(epochs=3, po_keeps_optimizer=True))  # no effect on one-step
    np.testing.assert_array_equal(one_step.params["w"], trained("sft", pairs, TrainConfig(epochs=3)).params["w"])

def test_vmap_over_seeds_equals_separate_runs(pairs):
    spec, objective = registry_objective("simpo")
    train = make_train(step_logp, spec, objective, N, TrainConfig(epochs=2))
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    p0 = init_params(jax.random.PRNGKey(1))
    batched = jax.jit(jax.vmap(train, in_axes=(None, None, None, 0)))(p0, pairs, spec.defaults, keys)
    single = jax.jit(train)
    for i, key in enumerate(keys):
        one = single(p0, pairs, spec.defaults, key)
        np.testing.assert_allclose(batched.params["w"][i], one.params["w"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batched.epoch_loss[i], one.epoch_loss, rtol=1e-5, atol=1e-6)


def test_vmap_over_hparams_and_mpo_population(pairs):
    structure = MPOStructure("one_step", ("psi",), temporal=True)
    pop = structure.init(jax.random.PRNGKey(0)) + 0.03 * jax.random.normal(jax.random.PRNGKey(1), (4, structure.size))

    def objective(batch, hp, t):
        return structure.loss(hp["flat"], batch, progress=t, beta=hp["beta"], lam=hp["lam"])

    spec, _ = registry_objective("mpo_one_step")
    train = make_train(step_logp, spec, objective, N, TrainConfig(epochs=2))
    hp = {"flat": pop, "beta": jnp.full(4, 1.0), "lam": jnp.array([0.0, 0.1, 1.0, 2.0])}
    out = jax.jit(jax.vmap(train, in_axes=(None, None, 0, None)))(
        init_params(jax.random.PRNGKey(1)), pairs, hp, jax.random.PRNGKey(0))
    assert out.epoch_loss.shape == (4, 2) and np.all(np.isfinite(out.epoch_loss))
    assert len({float(x) for x in out.params["b"][:, 0]}) == 4  # different objectives, different policies


def test_bad_input():
    with pytest.raises(TrainError, match="batch_pairs"):
        TrainConfig(batch_pairs=0)
    spec, objective = registry_objective("sft")
    with pytest.raises(TrainError, match="exceeds"):
        make_train(step_logp, spec, objective, 1, TrainConfig(batch_pairs=2))


def test_switch_objective_equals_each_loss(pairs):
    """One compiled program for several losses gives each loss's own training run."""
    from mirrorpo.train import switch_hparams, switch_objective

    names = ["sft", "simpo", "orpo"]
    specs, objective = switch_objective(names)
    config = TrainConfig(epochs=3, lr=0.05)
    train = make_train(step_logp, specs[0], objective, N, config)
    hps = [switch_hparams(specs, i, {}) for i in range(len(names))]
    stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *hps)
    p0 = init_params(jax.random.PRNGKey(1))
    many = jax.jit(jax.vmap(train, in_axes=(None, None, 0, None)))(p0, pairs, stacked, jax.random.PRNGKey(0))
    for i, name in enumerate(names):
        one = trained(name, pairs, config)
        np.testing.assert_allclose(many.epoch_loss[i], one.epoch_loss, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(many.params["w"][i], one.params["w"], rtol=2e-5, atol=1e-6)
    with pytest.raises(TrainError, match="one protocol"):
        switch_objective(["sft", "dpo"])


def test_empty_or_inconsistent_pairs_are_rejected(pairs):
    from mirrorpo.train import check_pairs

    empty = Pairs(*(x[:0] for x in pairs))
    with pytest.raises(TrainError, match="no pairs"):
        check_pairs(empty)
    with pytest.raises(TrainError, match="inconsistent"):
        check_pairs(pairs._replace(len_l=pairs.len_l[:-1]))


def test_tokens_per_step_scales_lengths_only(pairs):
    """Per-token means: SFT's loss is −L/(n·k); with k tokens per step the loss is divided by k."""
    spec, objective = registry_objective("sft")
    config = TrainConfig(epochs=1, lr=1e-9)
    p0 = init_params(jax.random.PRNGKey(1))
    one = make_train(step_logp, spec, objective, N, config)(p0, pairs, {}, jax.random.PRNGKey(0))
    two = make_train(step_logp, spec, objective, N, config, tokens_per_step=ACT)(p0, pairs, {}, jax.random.PRNGKey(0))
    np.testing.assert_allclose(two.epoch_loss * ACT, one.epoch_loss, rtol=1e-5)
    np.testing.assert_allclose(two.final_mean_w * ACT, one.final_mean_w, rtol=1e-5)
    with pytest.raises(TrainError, match="tokens_per_step"):
        make_train(step_logp, spec, objective, N, config, tokens_per_step=0)


def test_chunked_log_likelihoods_equal_the_whole_batch(pairs, monkeypatch):
    """Reference and final log-likelihoods computed 3 pairs at a time (8 pairs: a remainder of 2), in a
    vmapped program, equal those computed at once."""
    from mirrorpo.train import inner

    spec, objective = registry_objective("dpo")
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    params0 = jax.vmap(init_params)(keys)

    def run():
        train = make_train(step_logp, spec, objective, pairs.num_pairs, SHORT)
        return jax.jit(jax.vmap(train, in_axes=(0, None, None, 0)))(params0, pairs, spec.defaults, keys)

    whole = run()
    monkeypatch.setattr(inner, "LOGP_CHUNK_PAIRS", 3)
    batch_sizes, lax_map = [], jax.lax.map
    monkeypatch.setattr(jax.lax, "map", lambda f, xs, batch_size: batch_sizes.append(batch_size) or lax_map(
        f, xs, batch_size=batch_size))
    chunked = run()
    assert batch_sizes == [3, 3]  # the reference and the final log-likelihoods took the chunked path
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(chunked)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(whole.final_mean_w.std()) > 0  # the two runs differ: a real comparison
