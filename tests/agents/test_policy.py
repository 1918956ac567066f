"""The policy's trajectory log-likelihood (docs/design.md §2 convention) and checkpoints."""

import json

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from scipy.special import log_ndtr, ndtr

from mirrorpo.agents import CheckpointError, checkpoint
from mirrorpo.agents.policy import (
    ATANH_EDGE,
    RESOLUTION,
    _log_ndtr_left,
    action_log_prob_dims,
    distribution,
    init_policy,
    log_interval_prob,
    step_log_probs,
    trajectory_log_likelihood,
)


def _random_policy(seed=0, obs_dim=11, act_dim=3):
    p = init_policy(jax.random.PRNGKey(seed), obs_dim, act_dim)
    # non-trivial normaliser and last layer so the means vary
    p["obs_mean"] = jax.random.normal(jax.random.PRNGKey(seed + 1), (obs_dim,))
    p["obs_std"] = jnp.exp(jax.random.normal(jax.random.PRNGKey(seed + 2), (obs_dim,)) * 0.3)
    p["actor"][-1]["w"] = p["actor"][-1]["w"] * 50
    return p


def _numpy_step_log_probs(params, obs, actions, h=RESOLUTION):
    """Per-step reference in float64 NumPy: Σ_i log(Φ(u_i) − Φ(l_i)), edge bins open."""
    mu, sigma = (np.asarray(x, np.float64) for x in distribution(params, jnp.asarray(obs)))
    a = np.asarray(actions, np.float64)
    lo = np.where(a - h / 2 <= -1, -np.inf, a - h / 2)
    hi = np.where(a + h / 2 >= 1, np.inf, a + h / 2)
    p = ndtr((hi - mu) / sigma) - ndtr((lo - mu) / sigma)
    return np.log(p).sum(-1)


def test_log_likelihood_matches_numpy_and_is_nonpositive():
    params = _random_policy()
    obs = jax.random.normal(jax.random.PRNGKey(5), (4, 20, 11)) * 2
    actions = jnp.clip(jax.random.normal(jax.random.PRNGKey(6), (4, 20, 3)), -1, 1)  # includes edge bins
    actions = actions.at[0, :5].set(1.0).at[1, :5].set(-1.0)
    lengths = jnp.array([20, 13, 1, 7])
    lp = np.asarray(step_log_probs(params, obs, actions))
    ref = _numpy_step_log_probs(params, obs, actions)
    assert lp.shape == (4, 20)
    np.testing.assert_allclose(lp, ref, rtol=1e-4, atol=1e-4)
    assert np.all(lp <= 0)
    L = np.asarray(trajectory_log_likelihood(params, obs, actions, lengths))
    expected = np.array([ref[i, :n].sum() for i, n in enumerate(np.asarray(lengths))])
    np.testing.assert_allclose(L, expected, rtol=1e-4, atol=1e-3)
    assert np.all(L <= 0)


def test_edge_bins_take_the_tail_and_probabilities_sum_to_one():
    mu, sigma = jnp.array([0.3]), jnp.array([0.4])
    h = 0.25  # bins centred on -1, -0.75, ..., 1: edge bins open to ±inf
    centres = jnp.linspace(-1, 1, 9)[:, None]
    p = jnp.exp(action_log_prob_dims(mu, sigma, centres, h))
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("z", [-40.0, -12.0, 8.0, 35.0])
def test_tails_are_accurate_and_differentiable(z):
    w = 0.05
    got = float(log_interval_prob(jnp.float32(z), jnp.float32(z + w)))
    mpmath.mp.dps = 50
    lo, hi = (z, z + w) if z < 0 else (-z - w, -z)  # exact symmetry keeps mpmath in the left tail
    ref = float(mpmath.log(mpmath.ncdf(hi) - mpmath.ncdf(lo)))
    assert np.isfinite(got) and got == pytest.approx(ref, rel=1e-3, abs=1e-3)
    g = jax.grad(lambda m: action_log_prob_dims(m, jnp.float32(0.01), jnp.float32(0.0), 0.0005))(jnp.float32(z * 0.01))
    assert np.isfinite(float(g))


def test_log_likelihood_gradient_is_finite_far_from_the_actions():
    params = _random_policy()
    obs = jax.random.normal(jax.random.PRNGKey(5), (2, 10, 11))
    actions = jnp.ones((2, 10, 3)) * jnp.array([1.0, -1.0, 0.2])
    params["log_std"] = jnp.full((3,), -4.5)
    g = jax.grad(lambda p: trajectory_log_likelihood(p, obs, actions, jnp.array([10, 4])).sum())(params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))


@pytest.mark.parametrize("w", [0.01, 0.2])
def test_uniform_mixture_matches_numpy_sums_to_one_and_bounds_the_likelihood(w):
    params = _random_policy()
    obs = jax.random.normal(jax.random.PRNGKey(5), (3, 15, 11)) * 2
    actions = jnp.clip(jax.random.normal(jax.random.PRNGKey(6), (3, 15, 3)), -1, 1).at[0, :4].set(1.0)
    mu, sigma = (np.asarray(x, np.float64) for x in distribution(params, obs))
    a, h = np.asarray(actions, np.float64), RESOLUTION
    gauss = ndtr((np.where(a + h / 2 >= 1, np.inf, a + h / 2) - mu) / sigma) - \
        ndtr((np.where(a - h / 2 <= -1, -np.inf, a - h / 2) - mu) / sigma)
    uniform = (np.minimum(a + h / 2, 1) - np.maximum(a - h / 2, -1)) / 2
    ref = np.log((1 - w) * gauss + w * uniform).sum(-1)
    lp = np.asarray(step_log_probs(params, obs, actions, uniform_weight=w))
    np.testing.assert_allclose(lp, ref, rtol=1e-4, atol=1e-4)
    assert np.all(lp <= 0) and np.all(lp >= 3 * np.log(w * h / 4) - 1e-4)
    # far from the mean every coordinate sits at the floor, finite, with a vanishing gradient in μ
    far = action_log_prob_dims(jnp.float32(-50.0), jnp.float32(0.01), jnp.float32(0.5), h, w)
    assert float(far) == pytest.approx(np.log(w * h / 2), rel=1e-5)
    g = jax.grad(lambda m: action_log_prob_dims(m, jnp.float32(0.01), jnp.float32(0.5), h, w))(jnp.float32(-50.0))
    assert np.isfinite(float(g)) and abs(float(g)) < 1e-6
    centres = jnp.linspace(-1, 1, 9)[:, None]  # bins of width 0.25 tile [−1, 1] (edge bins half inside)
    p = jnp.exp(action_log_prob_dims(jnp.array([0.3]), jnp.array([0.4]), centres, 0.25, w))
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)


def test_uniform_mixture_gradient_matches_finite_differences():
    w, h = 0.05, RESOLUTION
    f = lambda m, s: action_log_prob_dims(m, s, jnp.float64(0.3), h, w)
    with jax.enable_x64(True):
        for m, s in [(0.1, 0.2), (0.6, 0.05), (-0.4, 0.3)]:
            m, s = jnp.float64(m), jnp.float64(s)
            gm, gs = jax.grad(f, argnums=(0, 1))(m, s)
            eps = 1e-6
            assert float(gm) == pytest.approx(float(f(m + eps, s) - f(m - eps, s)) / (2 * eps), rel=1e-5, abs=1e-7)
            assert float(gs) == pytest.approx(float(f(m, s + eps) - f(m, s - eps)) / (2 * eps), rel=1e-5, abs=1e-7)


def test_float32_log_ndtr_matches_scipy_far_into_the_tail():
    """The float32 left-tail log Φ (Numerical Recipes' erfc in log space) against float64 SciPy."""
    x = -np.concatenate([np.logspace(-6, 4, 20001), [0.0]]).astype(np.float32)
    got = np.asarray(_log_ndtr_left(jnp.asarray(x)), np.float64)
    ref = log_ndtr(x.astype(np.float64))
    np.testing.assert_allclose(got, ref, rtol=2e-6)


def _reference_bin_log_prob(mu, sigma, action, h, w, tanh):
    """The same per-coordinate log-probability from SciPy-grade pieces (float64 ``log_ndtr``), for
    autodiff: the independent check of the closed-form gradient."""
    lo, hi = action - h / 2, action + h / 2
    if tanh:
        lo, hi = (jnp.arctanh(jnp.clip(b, -ATANH_EDGE, ATANH_EDGE)) for b in (lo, hi))
    lo = jnp.where(action - h / 2 <= -1, -1e3, lo)
    hi = jnp.where(action + h / 2 >= 1, 1e3, hi)
    z_lo, z_hi = (lo - mu) / sigma, (hi - mu) / sigma
    flip = z_lo + z_hi > 0
    a, b = jnp.where(flip, -z_hi, z_lo), jnp.where(flip, -z_lo, z_hi)
    gauss = jax.scipy.special.log_ndtr(b) + jnp.log(-jnp.expm1(jax.scipy.special.log_ndtr(a) - jax.scipy.special.log_ndtr(b)))
    if not w:
        return gauss
    width = jnp.minimum(action + h / 2, 1) - jnp.maximum(action - h / 2, -1)
    return jnp.logaddexp(jnp.log1p(-w) + gauss, jnp.log(w * width / 2))


@pytest.mark.parametrize("w,tanh", [(0.0, False), (0.05, False), (0.05, True)])
def test_closed_form_gradient_matches_autodiff_of_a_float64_reference(w, tanh):
    """∂/∂μ, ∂/∂σ and ∂/∂action of the float32 per-coordinate log-probability (closed form, computed
    in the forward pass) against autodiff of a float64 reference: interior and edge bins, near the
    mean and far in the tails, narrow and wide σ."""
    key = jax.random.split(jax.random.PRNGKey(7), 3)
    mu = jax.random.normal(key[0], (400,)) * 1.5
    sigma = jnp.exp(jax.random.uniform(key[1], (400,), minval=-4.0, maxval=1.5))
    action = jnp.clip(jax.random.normal(key[2], (400,)) * 0.7, -1, 1).at[:20].set(1.0).at[20:40].set(-1.0)
    if tanh:
        action = jnp.clip(action, -0.99, 0.99).at[:20].set(0.99)
    ours = jax.grad(lambda m, s, a: action_log_prob_dims(m, s, a, RESOLUTION, w, tanh).sum(), argnums=(0, 1, 2))
    got = [np.asarray(g, np.float64) for g in ours(mu, sigma, action)]
    with jax.enable_x64(True):
        ref_fn = jax.grad(lambda m, s, a: _reference_bin_log_prob(m, s, a, RESOLUTION, w, tanh).sum(), argnums=(0, 1, 2))
        ref = [np.asarray(g) for g in ref_fn(*(jnp.asarray(np.asarray(x), jnp.float64) for x in (mu, sigma, action)))]
        value = np.asarray(_reference_bin_log_prob(*(jnp.asarray(np.asarray(x), jnp.float64) for x in (mu, sigma, action)),
                                                   RESOLUTION, w, tanh))
    np.testing.assert_allclose(np.asarray(action_log_prob_dims(mu, sigma, action, RESOLUTION, w, tanh)),
                               np.minimum(value, 0), rtol=1e-5, atol=1e-5)
    for g, r in zip(got, ref, strict=True):
        assert np.all(np.isfinite(g))
        # float32: far in the tail φ(z)/P is exp(−z²/2 − log P) with both terms ~1e3–1e4, so the
        # exponent carries ~1e-3 of rounding (autodiff through log_ndtr: ~5e-4 on the same inputs)
        np.testing.assert_allclose(g, r, rtol=2e-3, atol=1e-5 * np.abs(r).max())


def test_checkpoint_round_trip_is_exact(tmp_path):
    params = _random_policy(seed=3)
    meta = checkpoint.save(tmp_path / "agent", params, {"env": "hopper", "steps": 123, "seed": 3})
    loaded, meta2 = checkpoint.load(tmp_path / "agent", env="hopper")
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded), strict=True):
        assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b))
    assert meta2 == meta and meta["obs_dim"] == 11 and meta["act_dim"] == 3 and len(meta["sha256"]) == 64
    assert meta["policy_hidden"] == [64, 64]


def test_checkpoint_wrong_env_and_corruption_raise_clear_errors(tmp_path):
    params = _random_policy(seed=3)
    checkpoint.save(tmp_path / "agent", params, {"env": "hopper"})
    with pytest.raises(CheckpointError, match="does not fit environment 'ant'"):
        checkpoint.load(tmp_path / "agent", env="ant")
    blob = bytearray((tmp_path / "agent.safetensors").read_bytes())
    blob[-3] ^= 0xFF
    (tmp_path / "agent.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(tmp_path / "agent")
    (tmp_path / "agent.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(tmp_path / "agent")
    (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a mirrorpo policy checkpoint"):
        checkpoint.load(tmp_path / "x")
    with pytest.raises(CheckpointError, match="not found"):
        checkpoint.load(tmp_path / "missing")
    assert issubclass(CheckpointError, ValueError)
