"""The state-dependent policies (brax's PPO network, clipped or tanh-squashed): the probability of a
stored action against float64 references, tails, gradients, checkpoints and PPO on each kind."""

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from scipy.special import log_ndtr

from mirrorpo.agents import checkpoint
from mirrorpo.agents.policy import (
    MIN_STD,
    POLICY_KINDS,
    RESOLUTION,
    act,
    action_log_prob_dims,
    distribution,
    init_policy,
    policy_kind,
    step_log_probs,
)
from mirrorpo.agents.ppo import PPOConfig, make_train

SD_KINDS = ("gaussian_sd", "tanh_gaussian_sd")


def _policy(kind, seed=0, obs_dim=11, act_dim=3):
    p = init_policy(jax.random.PRNGKey(seed), obs_dim, act_dim, (16, 16), kind=kind)
    net = POLICY_KINDS[kind]
    p["obs_mean"] = jax.random.normal(jax.random.PRNGKey(seed + 1), (obs_dim,))
    p[net][-1]["w"] = p[net][-1]["w"] * 80  # means and scales that vary with the state
    return p


def _numpy_reference(params, obs, actions, tanh, w=0.0, h=RESOLUTION):
    """float64: Σ_i log((1 − w)(Φ(z_hi) − Φ(z_lo)) + w·|bin ∩ [−1, 1]|/2), the bin mapped through atanh."""
    mu, sigma = (np.asarray(x, np.float64) for x in distribution(params, jnp.asarray(obs)))
    a = np.asarray(actions, np.float64)
    to_raw = np.arctanh if tanh else (lambda x: x)
    lo = np.where(a - h / 2 <= -1, -np.inf, to_raw(np.clip(a - h / 2, -1 + 1e-12, 1 - 1e-12)))
    hi = np.where(a + h / 2 >= 1, np.inf, to_raw(np.clip(a + h / 2, -1 + 1e-12, 1 - 1e-12)))
    z_lo, z_hi = (lo - mu) / sigma, (hi - mu) / sigma
    flip = z_lo + z_hi > 0  # Φ(b) − Φ(a) = Φ(−a) − Φ(−b): stay in the left tail, where log_ndtr is exact
    z_lo, z_hi = np.where(flip, -z_hi, z_lo), np.where(flip, -z_lo, z_hi)
    with np.errstate(divide="ignore"):
        log_gauss = log_ndtr(z_hi) + np.log1p(-np.exp(log_ndtr(z_lo) - log_ndtr(z_hi)))
        uniform = (np.minimum(a + h / 2, 1) - np.maximum(a - h / 2, -1)) / 2
        log_p = log_gauss if w == 0 else np.logaddexp(np.log1p(-w) + log_gauss, np.log(w * uniform))
    return log_p.sum(-1)


@pytest.mark.parametrize("kind", SD_KINDS)
def test_kind_is_read_from_the_network_and_sigma_depends_on_the_state(kind):
    p = _policy(kind)
    assert policy_kind(p) == kind and "log_std" not in p
    obs = jax.random.normal(jax.random.PRNGKey(3), (50, 11)) * 3
    mu, sigma = distribution(p, obs)
    assert mu.shape == sigma.shape == (50, 3)
    assert float(sigma.min()) >= MIN_STD and float(jnp.std(sigma, axis=0).min()) > 1e-3
    fresh = init_policy(jax.random.PRNGKey(0), 11, 3, (16, 16), init_log_std=-0.5, kind=kind)
    np.testing.assert_allclose(np.asarray(distribution(fresh, obs)[1]), np.exp(-0.5), rtol=0.1)
    a = act(p, obs, jax.random.PRNGKey(4))
    assert float(jnp.abs(a).max()) <= 1.0
    if kind == "tanh_gaussian_sd":  # deterministic action = tanh(μ)
        np.testing.assert_allclose(np.asarray(act(p, obs, jax.random.PRNGKey(4), True)), np.tanh(np.asarray(mu)),
                                   rtol=1e-6)


@pytest.mark.parametrize("w", [0.0, 0.05])
@pytest.mark.parametrize("kind", SD_KINDS)
def test_log_likelihood_matches_float64_reference_and_is_nonpositive(kind, w):
    p = _policy(kind)
    obs = jax.random.normal(jax.random.PRNGKey(5), (4, 20, 11)) * 2
    actions = jnp.clip(jax.random.normal(jax.random.PRNGKey(6), (4, 20, 3)), -1, 1)
    actions = actions.at[0, :5].set(1.0).at[1, :5].set(-1.0).at[2, :5].set(0.99)  # edge and near-edge bins
    lp = np.asarray(step_log_probs(p, obs, actions, uniform_weight=w))
    ref = _numpy_reference(p, obs, actions, kind == "tanh_gaussian_sd", w)
    np.testing.assert_allclose(lp, ref, rtol=1e-4, atol=1e-3)
    assert np.all(lp <= 0) and np.all(np.isfinite(lp))


def test_tanh_bins_tile_the_action_range():
    """Bins of width 0.25 centred on −1, −0.75, …, 1 partition [−1, 1]; their probabilities sum to one."""
    centres = jnp.linspace(-1, 1, 9)[:, None]
    for mu, sigma in [(0.3, 0.4), (-2.0, 1.5), (4.0, 0.2)]:
        p = jnp.exp(action_log_prob_dims(jnp.array([mu]), jnp.array([sigma]), centres, 0.25, tanh=True))
        assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("mu", [-30.0, 25.0])
def test_tanh_tails_are_accurate_finite_and_differentiable(mu):
    a, h, sigma = 0.3, RESOLUTION, 0.5
    got = float(action_log_prob_dims(jnp.float32(mu), jnp.float32(sigma), jnp.float32(a), h, tanh=True))
    mpmath.mp.dps = 60
    z_lo, z_hi = ((mpmath.atanh(b) - mu) / sigma for b in (a - h / 2, a + h / 2))
    if z_lo > 0:  # exact symmetry keeps mpmath in the left tail
        z_lo, z_hi = -z_hi, -z_lo
    ref = float(mpmath.log(mpmath.ncdf(z_hi) - mpmath.ncdf(z_lo)))
    assert np.isfinite(got) and got == pytest.approx(ref, rel=1e-3)
    g = jax.grad(lambda m: action_log_prob_dims(m, jnp.float32(sigma), jnp.float32(a), h, tanh=True))(jnp.float32(mu))
    assert np.isfinite(float(g)) and abs(float(g)) > 1.0  # pulls μ back towards atanh(a), strongly


@pytest.mark.parametrize("kind", SD_KINDS)
def test_log_likelihood_gradient_matches_finite_differences(kind):
    p = _policy(kind)
    obs = jax.random.normal(jax.random.PRNGKey(7), (6, 11))
    actions = jnp.clip(jax.random.normal(jax.random.PRNGKey(8), (6, 3)) * 0.6, -1, 1).at[0, 0].set(1.0)
    net = POLICY_KINDS[kind]
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), p)
        obs64, act64 = jnp.asarray(obs, jnp.float64), jnp.asarray(actions, jnp.float64)

        def f(bias):
            q = {**p64, net: [*p64[net][:-1], {**p64[net][-1], "b": bias}]}
            return step_log_probs(q, obs64, act64, uniform_weight=0.05).sum()

        b0 = p64[net][-1]["b"]
        g = np.asarray(jax.grad(f)(b0))
        eps = 1e-6
        for i in range(b0.shape[0]):  # means (first half) and scales (second half)
            e = jnp.zeros_like(b0).at[i].set(eps)
            fd = float(f(b0 + e) - f(b0 - e)) / (2 * eps)
            assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("kind", SD_KINDS)
def test_checkpoint_round_trip_records_the_kind(kind, tmp_path):
    p = _policy(kind, seed=3)
    meta = checkpoint.save(tmp_path / "agent", p, {"env": "hopper"})
    loaded, meta2 = checkpoint.load(tmp_path / "agent", env="hopper")
    assert policy_kind(loaded) == kind and meta2 == meta
    assert meta["policy_kind"] == kind and meta["act_dim"] == 3 and meta["policy_hidden"] == [16, 16]
    for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(loaded), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_tiny_ppo_run_trains_a_tanh_policy():
    cfg = PPOConfig(env="hopper", total_steps=2 * 8 * 16, num_envs=8, unroll_length=16, num_minibatches=2,
                    update_epochs=1, policy_hidden=(8, 8), value_hidden=(8,), policy_kind="tanh_gaussian_sd")
    policy, metrics = jax.jit(make_train(cfg))(jax.random.PRNGKey(0))
    assert policy_kind(policy) == "tanh_gaussian_sd"
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(policy))
    assert np.all(np.isfinite(np.asarray(metrics.loss)))
    fresh = init_policy(jax.random.PRNGKey(0), 11, 3, (8, 8), kind="tanh_gaussian_sd")
    assert not np.array_equal(np.asarray(policy["actor_tanh_sd"][0]["w"]), np.asarray(fresh["actor_tanh_sd"][0]["w"]))
