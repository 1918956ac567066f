"""The torch losses equal the JAX losses (values and gradients, float64) for every registry loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mirrorpo import losses as jl
from mirrorpo.llm import losses as tl

FIELDS = ("logp_w", "logp_l", "ref_logp_w", "ref_logp_l")


def random_batch(seed: int, pairs: int = 7) -> dict[str, np.ndarray]:
    """Mean log-likelihoods spread over (-4, -1e-3), lengths 1..40, references nearby."""
    rng = np.random.default_rng(seed)
    len_w = rng.integers(1, 40, pairs).astype(np.float64)
    len_l = rng.integers(1, 40, pairs).astype(np.float64)
    mean = lambda: -np.exp(rng.uniform(np.log(1e-3), np.log(4.0), pairs))
    return {
        "logp_w": mean() * len_w, "logp_l": mean() * len_l, "len_w": len_w, "len_l": len_l,
        "ref_logp_w": mean() * len_w, "ref_logp_l": mean() * len_l,
    }


def jax_value_and_grads(loss, arrays, progress=None, **hp):
    with jax.enable_x64(True):
        def total(*logps):
            b = jl.PairBatch(*logps[:2], jnp.asarray(arrays["len_w"]), jnp.asarray(arrays["len_l"]), *logps[2:])
            # progress as a float64 array: a Python float is weakly typed in JAX, and the float32 MPO
            # parameters would then evaluate w·t and v + v'·t in float32 (see the report)
            t = None if progress is None else jnp.asarray(np.float64(progress))
            per = jl.pair_loss(loss, b, progress=t, **hp)
            return jnp.sum(per * jnp.arange(1, per.shape[0] + 1)), per  # weights: catch per-pair mix-ups

        args = [jnp.asarray(arrays[f], dtype=jnp.float64) for f in FIELDS]
        (_, per), grads = jax.value_and_grad(total, argnums=(0, 1, 2, 3), has_aux=True)(*args)
        return np.asarray(per), [np.asarray(g) for g in grads]


def torch_value_and_grads(loss, arrays, progress=None, **hp):
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in FIELDS) for k, v in arrays.items()}
    per = tl.pair_loss(loss, tl.PairBatch(**t), progress=progress, **hp)
    assert per.dtype == torch.float64 and per.shape == (len(arrays["len_w"]),)
    (per * torch.arange(1, per.shape[0] + 1, dtype=torch.float64)).sum().backward()
    return per.detach().numpy(), [t[f].grad.numpy() if t[f].grad is not None else np.zeros_like(arrays[f])
                                  for f in FIELDS]


def assert_parity(loss, arrays, progress=None, rtol=1e-9, atol=1e-11, **hp):
    jv, jg = jax_value_and_grads(loss, arrays, progress, **hp)
    tv, tg = torch_value_and_grads(loss, arrays, progress, **hp)
    assert np.all(np.isfinite(jv)), loss
    np.testing.assert_allclose(tv, jv, rtol=rtol, atol=atol, err_msg=f"{loss}: values")
    for f, a, b in zip(FIELDS, tg, jg):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{loss}: d/d{f}")


def test_every_registry_loss_has_a_torch_implementation():
    assert tl.missing_torch_losses() == []
    arrays = random_batch(0)
    for name in jl.LOSSES:  # one definition each, run on torch tensors: differentiable tensors [B]
        out = tl.pair_loss(name, tl.PairBatch(**{k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}))
        assert isinstance(out, torch.Tensor) and out.shape == (7,) and out.requires_grad, name


def test_a_new_jax_loss_without_torch_twin_is_detected():
    @jl.register_loss("llm_test_only_margin", hparams=[jl.HParam("beta", 0.5, "positive")])
    def margin(batch, beta):
        return -jax.nn.log_sigmoid(beta * (batch.mean_w - batch.mean_l))

    try:
        assert tl.missing_torch_losses() == ["llm_test_only_margin"]
        arrays = random_batch(0)
        with pytest.raises(tl.LossInputError, match="no PyTorch implementation.*register_torch_loss"):
            tl.pair_loss("llm_test_only_margin", tl.PairBatch(*(torch.tensor(arrays[k]) for k in
                                                                  ("logp_w", "logp_l", "len_w", "len_l"))))

        @tl.register_torch_loss("llm_test_only_margin")
        def margin_t(batch, beta):
            return -torch.nn.functional.logsigmoid(beta * (batch.mean_w - batch.mean_l))

        assert tl.missing_torch_losses() == []
        assert_parity("llm_test_only_margin", arrays, beta=0.7)
    finally:
        jl.unregister_loss("llm_test_only_margin")


@pytest.mark.parametrize("name", sorted(jl.LOSSES))
def test_parity_with_defaults(name):
    for seed in range(3):
        assert_parity(name, random_batch(seed))


# non-default settings exercise every hyper-parameter (and CoLPO's gate on both sides)
SETTINGS = {
    "rrhf": {"lam": 0.3}, "slic_hf": {"delta": 2.5, "lam": 0.2}, "dpo": {"beta": 0.7}, "ipo": {"beta": 0.4},
    "cpo": {"beta": 0.3, "lam": 0.5}, "orpo": {"lam": 0.8}, "rdpo": {"beta": 0.2, "alpha": 0.05},
    "simpo": {"beta": 1.5, "gamma": 0.3}, "lpo": {"lam": 0.2}, "colpo": {"beta": 2.0, "lam": 0.5, "delta": -1.5},
    "exo_pair": {"beta": 0.3, "epsilon": 0.05}, "robust": {"beta": 0.2, "epsilon": 0.2},
    "bco_pair": {"beta": 0.2, "delta": 0.1}, "aot": {"beta": 0.3, "epsilon": 0.1},
    "aot_unpaired": {"beta": 0.3, "epsilon": 0.1}, "discopop": {"beta": 0.2, "tau": 0.1},
    "mpo_one_step": {"beta": 2.0, "lam": 0.5}, "mpo_two_step": {"beta": 3.0},
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_parity_with_settings(name):
    assert_parity(name, random_batch(11), **SETTINGS[name])


def test_aliases_and_combinations():
    arrays = random_batch(5)
    assert_parity("sigmoid", arrays, beta=0.3)
    assert_parity("dpo+0.5*sft", arrays, beta=0.3)
    assert_parity("0.3*orpo + 2*simpo + colpo", arrays)
    tc = tl.combine([(1.0, "dpo", {"beta": 0.2}), (0.5, "sft")])
    jc = jl.combine([(1.0, "dpo", {"beta": 0.2}), (0.5, "sft")])
    assert tc.spec.hparams == jc.hparams and tc.needs_reference
    assert_parity(jc, arrays)  # a combination built by mirrorpo.losses runs on torch tensors too
    t = {k: torch.tensor(v) for k, v in arrays.items()}
    with jax.enable_x64(True):
        expect = np.asarray(jl.pair_loss(jc, jl.PairBatch(**{k: jnp.asarray(v) for k, v in arrays.items()})))
    np.testing.assert_allclose(tl.pair_loss(tc, tl.PairBatch(**t)).numpy(), expect, rtol=1e-12)


def make_objective(tmp_path, family, learn, temporal, seed=0):
    structure = jl.MPOStructure(family, learn, temporal, hidden=18)
    flat = structure.init(jax.random.PRNGKey(seed))
    flat = flat + 0.5 * jax.random.normal(jax.random.PRNGKey(seed + 100), flat.shape)  # v ≠ 0: not the base
    obj = jl.MPOObjective(structure, np.asarray(flat), {"beta": 1.3} if family == "two_step" else {"lam": 0.4})
    return jl.save_objective(tmp_path / f"{family}-{'-'.join(learn)}-{temporal}.mpo.safetensors", obj)


@pytest.mark.parametrize("family,learn", [("one_step", ("phi_inv", "psi", "g")), ("one_step", ("psi",)),
                                          ("two_step", ("phi_inv", "psi"))])
@pytest.mark.parametrize("temporal", [False, True])
def test_saved_objective_parity(tmp_path, family, learn, temporal):
    path = make_objective(tmp_path, family, learn, temporal)
    arrays = random_batch(3)
    name = f"mpo:{path}"
    spec = tl.get_loss(name).spec
    assert spec.uses_progress == temporal and spec.needs_reference == (family == "two_step")
    for t in (0.0, 0.37, 1.0):
        assert_parity(name, arrays, progress=t, rtol=1e-8, atol=1e-10)
    assert_parity(name, arrays, progress=0.5, rtol=1e-8, atol=1e-10, beta=0.7)
    # inside a combination too
    assert_parity(f"sft+0.5*{name}", arrays, progress=0.25, rtol=1e-8, atol=1e-10)


def test_temporal_objective_depends_on_progress(tmp_path):
    path = make_objective(tmp_path, "one_step", ("psi", "g"), True, seed=3)
    b = tl.PairBatch(**{k: torch.tensor(v) for k, v in random_batch(1).items()})
    a0, a1 = tl.pair_loss(f"mpo:{path}", b, progress=0.0), tl.pair_loss(f"mpo:{path}", b, progress=1.0)
    assert not torch.allclose(a0, a1)


def test_float32_and_activation_layout():
    from mirrorpo.losses.mpo import monotone
    from mirrorpo.losses.ops import JAX, ops_for

    x = np.linspace(-3.0, 3.0, 61)
    torch_ops = ops_for(torch.zeros(1))
    assert torch_ops.name == "torch" and ops_for(jnp.zeros(1)) is JAX and ops_for(x) is JAX
    with jax.enable_x64(True):
        for name, activation in monotone.ACTIVATIONS:  # one layout; each activation equal on both backends
            np.testing.assert_allclose(activation(torch_ops, torch.tensor(x)).numpy(),
                                       activation(JAX, jnp.asarray(x)), rtol=1e-12, atol=1e-12, err_msg=name)
    arrays = random_batch(2)
    b = tl.PairBatch(**{k: torch.tensor(v, dtype=torch.float32) for k, v in arrays.items()})
    for name in jl.LOSSES:
        out = tl.pair_loss(name, b)
        assert out.dtype == torch.float32 and torch.all(torch.isfinite(out)), name


def test_exo_k_responses_and_bco_update():
    rng = np.random.default_rng(0)
    logp, ref, rew = (-rng.uniform(1, 10, (4, 3)) for _ in range(3))
    with jax.enable_x64(True):
        expect = np.asarray(jl.exo(jnp.asarray(logp), jnp.asarray(ref), jnp.asarray(rew), beta_pi=0.3, beta_r=0.5))
        arr = random_batch(0)
        jb = jl.PairBatch(**{k: jnp.asarray(v) for k, v in arr.items()})
        jm, jc = jl.bco_baseline_update((0.0, 0), jb, beta=0.2)
        jm, jc = jl.bco_baseline_update((jm, jc), jb, beta=0.2)
    got = tl.exo(torch.tensor(logp), torch.tensor(ref), torch.tensor(rew), beta_pi=0.3, beta_r=0.5)
    np.testing.assert_allclose(got.numpy(), expect, rtol=1e-12)
    tb = tl.PairBatch(**{k: torch.tensor(v) for k, v in arr.items()})
    tm, tc = tl.bco_baseline_update(tl.bco_baseline_update((0.0, 0), tb, beta=0.2), tb, beta=0.2)
    assert tc == jc and float(tm) == pytest.approx(float(jm), rel=1e-12)
    with pytest.raises(tl.LossInputError, match=r"shape \[B, K\]"):
        tl.exo(torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4, 1))
    with pytest.raises(tl.LossInputError, match="beta_r must be > 0"):
        tl.exo(torch.tensor(logp), torch.tensor(ref), torch.tensor(rew), beta_r=0.0)


def _same_error(call_jax, call_torch):
    with pytest.raises(Exception) as je:
        call_jax()
    with pytest.raises(Exception) as te:
        call_torch()
    assert type(te.value) is type(je.value)
    assert str(te.value) == str(je.value)
    return str(te.value)


def test_errors_match_the_jax_side(tmp_path):
    arr = random_batch(0, pairs=3)
    jb = jl.PairBatch(**{k: jnp.asarray(v) for k, v in arr.items()})
    tb = tl.PairBatch(**{k: torch.tensor(v) for k, v in arr.items()})
    no_ref_j, no_ref_t = jb._replace(ref_logp_w=None, ref_logp_l=None), tb._replace(ref_logp_w=None, ref_logp_l=None)
    cases = [
        ("no_such_loss", jb, tb, {}),                         # unknown name, lists valid ones
        ("dpo", no_ref_j, no_ref_t, {}),                      # missing reference
        ("dpo", jb, tb, {"beta": -1.0}),                      # invalid hyper-parameter
        ("dpo", jb, tb, {"gamma": 1.0}),                      # unknown hyper-parameter
        ("exo_pair", jb, tb, {"epsilon": 0.0}),               # constraint (0, 0.5)
        ("dpo+0.5*", jb, tb, {}),                             # unparsable combination
        (f"mpo:{tmp_path / 'missing.mpo.safetensors'}", jb, tb, {}),  # missing objective file
        ("sft", jb._replace(logp_w=jnp.ones(3)), tb._replace(logp_w=torch.ones(3, dtype=torch.float64)), {}),
        ("sft", jb._replace(len_w=jnp.zeros(3)), tb._replace(len_w=torch.zeros(3, dtype=torch.float64)), {}),
        ("sft", jb._replace(logp_w=jnp.zeros((3, 2))), tb._replace(logp_w=torch.zeros(3, 2, dtype=torch.float64)), {}),
        ("sft", jb._replace(logp_l=jnp.zeros(4)), tb._replace(logp_l=torch.zeros(4, dtype=torch.float64)), {}),
        ("sft", jb._replace(logp_w=jnp.full(3, jnp.nan)), tb._replace(logp_w=torch.full((3,), float("nan"))), {}),
    ]
    messages = []
    for name, j, t, hp in cases:
        messages.append(_same_error(lambda name=name, j=j, hp=hp: jl.pair_loss(name, j, **hp),
                                    lambda name=name, t=t, hp=hp: tl.pair_loss(name, t, **hp)))
    assert "Valid names" in messages[0] and "needs a reference" in messages[1]
    path = make_objective(tmp_path, "one_step", ("psi",), True)
    _same_error(lambda: jl.pair_loss(f"mpo:{path}", jb, progress=1.5),
                lambda: tl.pair_loss(f"mpo:{path}", tb, progress=1.5))
    with pytest.raises(tl.LossInputError, match="PairBatch of torch tensors"):
        tl.pair_loss("sft", jb)


def test_gradients_flow_through_reduce_loss():
    arr = random_batch(4)
    t = {k: torch.tensor(v, requires_grad=k == "logp_w") for k, v in arr.items()}
    tl.reduce_loss("colpo", tl.PairBatch(**t), beta=1.0, delta=-10.0).backward()
    assert torch.all(t["logp_w"].grad < 0)  # both terms push ℓ_w up
