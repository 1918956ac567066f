"""The loss library against independent float64 NumPy references (docs/design.md §3 / TRL formulas),
finite differences, the MPO reductions, edge probabilities, bad input, jit/vmap, objective files.

Each loss is one definition run by two backends: the NumPy-reference tests (values and gradients)
run it on JAX arrays and on torch tensors (skipped where torch is not installed)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mirrorpo.losses import (
    LOSSES,
    HParam,
    LossInputError,
    MPOObjective,
    MPOStructure,
    ObjectiveFileError,
    PairBatch,
    UnknownLossError,
    bco_baseline_update,
    combine,
    exo,
    get_spec,
    load_objective,
    mpo_one_step,
    mpo_two_step,
    pair_loss,
    register_loss,
    save_objective,
    unregister_loss,
)
from mirrorpo.losses.landscape import gradient_landscape
from mirrorpo.losses.mpo import monotone


@pytest.fixture(autouse=True)
def x64():
    """References are float64 (scoped to this module); float32 behaviour is tested explicitly."""
    with jax.enable_x64(True):
        yield


# ---------------------------------------------------------------- independent NumPy references
def ls(x):
    """log σ(x), float64."""
    return -np.logaddexp(0.0, -x)


def sg(x):
    return 1.0 / (1.0 + np.exp(-x))


def logit_from_log(l):
    return l - np.log(-np.expm1(l))


def reference(name, b, hp):
    Lw, Ll, nw, nl = b["logp_w"], b["logp_l"], b["len_w"], b["len_l"]
    mw, ml = Lw / nw, Ll / nl
    rw = Lw - b.get("ref_logp_w", np.nan)
    rl = Ll - b.get("ref_logp_l", np.nan)
    z = rw - rl
    g = hp.get
    if name == "sft":
        return -mw
    if name == "rrhf":
        return np.maximum(0, ml - mw) - g("lam") * mw
    if name == "slic_hf":
        return np.maximum(0, g("delta") - Lw + Ll) - g("lam") * Lw
    if name == "dpo":
        return -ls(g("beta") * z)
    if name == "ipo":
        return (z - 1 / (2 * g("beta"))) ** 2
    if name == "cpo":
        return -ls(g("beta") * (Lw - Ll)) - g("lam") * Lw
    if name == "orpo":
        return -mw - g("lam") * ls(logit_from_log(mw) - logit_from_log(ml))
    if name == "rdpo":
        return -ls(g("beta") * z - g("alpha") * (nw - nl))
    if name == "simpo":
        return -ls(g("beta") * (mw - ml) - g("gamma"))
    if name == "lpo":
        return -(Lw - Ll) - g("lam") * Lw
    if name == "colpo":
        return -g("lam") * mw - g("beta") * (mw >= g("delta")) * (mw - ml)
    if name == "exo_pair":
        x, e = g("beta") * z, g("epsilon")
        return np.exp(ls(x)) * (ls(x) - np.log(1 - e)) + np.exp(ls(-x)) * (ls(-x) - np.log(e))
    if name == "hinge":
        return np.maximum(0, 1 - g("beta") * z)
    if name == "robust":
        e, x = g("epsilon"), g("beta") * z
        return (-(1 - e) * ls(x) + e * ls(-x)) / (1 - 2 * e)
    if name == "nca_pair":
        cw, cl = g("beta") * rw, g("beta") * rl
        return -ls(cw) - 0.5 * ls(-cw) - 0.5 * ls(-cl)
    if name == "bco_pair":
        return -ls(g("beta") * rw - g("delta")) - ls(-(g("beta") * rl - g("delta")))
    if name == "sppo_hard":
        return (rw - 0.5 / g("beta")) ** 2 + (rl + 0.5 / g("beta")) ** 2
    if name in ("aot", "aot_unpaired"):
        if name == "aot":
            d = np.sort(Lw - Ll) - np.sort(b["ref_logp_w"] - b["ref_logp_l"])
        else:
            d = np.sort(rw) - np.sort(rl)
        e, x = g("epsilon"), g("beta") * d
        return -(1 - e) * ls(x) - e * ls(-x)
    if name == "apo_zero":
        return 1 - sg(g("beta") * rw) + sg(g("beta") * rl)
    if name == "apo_down":
        return sg(g("beta") * rw) + 1 - sg(g("beta") * z)
    if name == "discopop":
        x = g("beta") * z
        m = sg(x / g("tau"))
        return (1 - m) * (-ls(x)) + m * np.exp(-x)
    if name == "sigmoid_norm":
        return -ls(g("beta") * (rw / nw - rl / nl))
    if name == "ipo_norm":  # TRL's ipo
        return (rw / nw - rl / nl - 1 / (2 * g("beta"))) ** 2
    if name == "sft_tokens":  # TRL's sft: all chosen tokens of the batch
        return np.full_like(Lw, -np.sum(Lw) / np.sum(nw))
    if name.startswith("fdpo_"):  # f-DPO, TRL 1.16's scores s = f'(e^r)
        return -ls(g("beta") * (f_score(name, rw, hp) - f_score(name, rl, hp)))
    if name == "mpo_two_step":
        rmw, rml = b["ref_logp_w"] / nw, b["ref_logp_l"] / nl
        return -ls(g("beta") * (mw - rmw - ml + rml))
    if name == "mpo_one_step":
        return -mw - g("lam") * ls(g("beta") * (logit_from_log(mw) - logit_from_log(ml)))
    raise AssertionError(f"no NumPy reference for '{name}': add one")


def f_score(name, r, hp):
    """f'(u) at u = e^r for the f-DPO losses (Wang et al., 2023), as TRL 1.16 computes it: α-divergence
    (u^(α−1) − 1)/(α−1) with the exponent capped at 80 (forward KL is α = 0), JS log(2u/(1+u))."""
    if name == "fdpo_js":
        return np.log(2.0) + ls(r)
    alpha = 0.0 if name == "fdpo_forward_kl" else hp["alpha"]
    if abs(alpha - 1.0) < 1e-6:
        return r
    return (np.exp(np.minimum((alpha - 1.0) * r, 80.0)) - 1.0) / (alpha - 1.0)


NONDEFAULT = {"beta": 0.7, "lam": 0.3, "delta": -1.3, "alpha": 0.05, "gamma": 0.4, "epsilon": 0.15, "tau": 0.2}


def random_batch(seed, n=16, low=-3.0, high=-0.05, ref=True):
    rng = np.random.default_rng(seed)
    nw, nl = rng.integers(1, 50, n).astype(float), rng.integers(1, 50, n).astype(float)
    b = {"logp_w": rng.uniform(low, high, n) * nw, "logp_l": rng.uniform(low, high, n) * nl, "len_w": nw, "len_l": nl}
    if ref:
        b["ref_logp_w"] = rng.uniform(low, high, n) * nw
        b["ref_logp_l"] = rng.uniform(low, high, n) * nl
    return b


def to_batch(b, dtype=jnp.float64):
    return PairBatch(**{k: jnp.asarray(v, dtype) for k, v in b.items()})


ALL = sorted(LOSSES)
BACKENDS = ["jax", "torch"]
LOGPS = ("logp_w", "logp_l", "ref_logp_w", "ref_logp_l")


def run_backend(backend, name, b, **hp):
    """Per-pair losses of ``name`` on the float64 batch ``b`` and the gradients of their sum with respect
    to each log-likelihood field, as NumPy, computed on ``backend`` (JAX arrays or torch tensors)."""
    if backend == "jax":
        def total(*logps):
            per = pair_loss(name, PairBatch(**{**{k: jnp.asarray(v) for k, v in b.items()}, **dict(zip(LOGPS, logps))}),
                            **hp)
            return jnp.sum(per), per

        (_, per), grads = jax.value_and_grad(total, argnums=(0, 1, 2, 3), has_aux=True)(*(jnp.asarray(b[f]) for f in LOGPS))
        return np.asarray(per), [np.asarray(g) for g in grads]
    torch = pytest.importorskip("torch")
    from mirrorpo.llm import losses as tl

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in LOGPS) for k, v in b.items()}
    per = tl.pair_loss(name, tl.PairBatch(**t), **hp)
    assert isinstance(per, torch.Tensor) and per.dtype == torch.float64
    per.sum().backward()
    return per.detach().numpy(), [np.zeros_like(b[f]) if t[f].grad is None else t[f].grad.numpy() for f in LOGPS]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("which", ["default", "nondefault"])
def test_every_loss_matches_numpy_reference(name, which, backend):
    spec = LOSSES[name]
    hp = spec.defaults if which == "default" else {h.name: NONDEFAULT[h.name] for h in spec.hparams}
    for seed in range(3):
        b = random_batch(seed)
        got, _ = run_backend(backend, name, b, **hp)
        assert got.shape == (16,)
        np.testing.assert_allclose(got, reference(name, b, {**spec.defaults, **hp}), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("which", ["default", "nondefault"])
def test_every_gradient_matches_numpy_reference(name, which, backend):
    """Autodiff gradients of Σ_i loss_i on each backend equal central differences of the NumPy reference."""
    spec = LOSSES[name]
    hp = {**spec.defaults, **({} if which == "default" else {h.name: NONDEFAULT[h.name] for h in spec.hparams})}
    b = random_batch(9, n=8)
    keep = kink_free(name, b, hp)
    b = {k: v[keep] for k, v in b.items()}
    _, grads = run_backend(backend, name, b, **hp)
    h = 1e-5
    for f, grad in zip(LOGPS, grads):
        for j in range(len(b[f])):
            step = np.where(np.arange(len(b[f])) == j, h, 0.0)
            fd = np.sum(reference(name, {**b, f: b[f] + step}, hp) - reference(name, {**b, f: b[f] - step}, hp)) / (2 * h)
            np.testing.assert_allclose(grad[j], fd, rtol=1e-6, atol=1e-8, err_msg=f"{name} ({backend}) d/d{f}[{j}]")


def kink_free(name, b, hp):
    """Pairs away from the kinks of hinge/relu/indicator losses (finite differences need smoothness)."""
    Lw, Ll, nw, nl = b["logp_w"], b["logp_l"], b["len_w"], b["len_l"]
    mw, ml = Lw / nw, Ll / nl
    z = (Lw - b["ref_logp_w"]) - (Ll - b["ref_logp_l"])
    margins = {"rrhf": ml - mw, "slic_hf": hp.get("delta", 0) - Lw + Ll, "colpo": mw - hp.get("delta", 0),
               "hinge": 1 - hp.get("beta", 1) * z}
    m = margins.get(name)
    keep = np.ones_like(Lw, bool) if m is None else np.abs(m) > 1e-3
    if name in ("fdpo_forward_kl", "fdpo_alpha"):
        # exponential f-DPO scores e^((α−1)r): pairs with (α−1)r ≤ 5, so that no e^80-sized pair swamps the finite
        # differences (test_f_dpo_losses_at_moderate_log_ratios covers them on realistic log-ratios)
        a1 = -1.0 if name == "fdpo_forward_kl" else hp.get("alpha", 0.5) - 1.0
        keep &= np.maximum(a1 * (Lw - b["ref_logp_w"]), a1 * (Ll - b["ref_logp_l"])) <= 5.0
    return keep


@pytest.mark.parametrize("name", [n for n in ALL if not LOSSES[n].batch_coupled])
def test_gradients_match_finite_differences(name):
    spec = LOSSES[name]
    b = random_batch(7, n=8)
    keep = kink_free(name, b, spec.defaults)
    b = {k: v[keep] for k, v in b.items()}
    fields = ["logp_w", "logp_l"] + (["ref_logp_w", "ref_logp_l"] if spec.needs_reference else [])

    def total(*arrays):
        bb = {**{k: jnp.asarray(v) for k, v in b.items()}, **dict(zip(fields, arrays))}
        return jnp.sum(pair_loss(name, PairBatch(**bb)))

    args = [jnp.asarray(b[f]) for f in fields]
    grads = jax.grad(total, argnums=tuple(range(len(fields))))(*args)
    h = 1e-6
    for i, f in enumerate(fields):
        for j in range(len(b[f])):
            plus = [a.at[j].add(h) if k == i else a for k, a in enumerate(args)]
            minus = [a.at[j].add(-h) if k == i else a for k, a in enumerate(args)]
            fd = (total(*plus) - total(*minus)) / (2 * h)
            np.testing.assert_allclose(grads[i][j], fd, rtol=1e-5, atol=1e-7, err_msg=f"{name} d/d{f}[{j}]")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,hp", [("fdpo_forward_kl", {"beta": 0.1}), ("fdpo_forward_kl", {"beta": 0.7}),
                                     ("fdpo_js", {"beta": 0.1}), ("fdpo_js", {"beta": 2.0}),
                                     *[("fdpo_alpha", {"beta": 0.3, "alpha": a}) for a in (0.0, 0.05, 0.5, 1.0, 1.5, 2.0)]])
def test_f_dpo_losses_at_moderate_log_ratios(name, hp, backend):
    """f-DPO (Wang et al., 2023) on log-ratios |r| ≲ 6, where the exponential scores are O(1)–O(e^6): values and
    gradients on each backend equal the float64 NumPy reference of TRL 1.16's formulas."""
    rng = np.random.default_rng(17)
    b = random_batch(17, n=12)
    b["ref_logp_w"] = b["logp_w"] + rng.uniform(-6, 6, 12)  # r = L − L^ref ∈ (−6, 6)
    b["ref_logp_l"] = b["logp_l"] + rng.uniform(-6, 6, 12)
    got, grads = run_backend(backend, name, b, **hp)
    np.testing.assert_allclose(got, reference(name, b, hp), rtol=1e-10, atol=1e-12)
    h = 1e-6
    for f, grad in zip(LOGPS, grads):  # pair i depends on entry i only: all central differences at once
        fd = (reference(name, {**b, f: b[f] + h}, hp) - reference(name, {**b, f: b[f] - h}, hp)) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9, err_msg=f"{name} ({backend}) d/d{f}")
    if name == "fdpo_alpha" and hp["alpha"] in (0.0, 1.0):  # α = 0: forward KL; α = 1: reverse KL, i.e. DPO
        twin = "fdpo_forward_kl" if hp["alpha"] == 0.0 else "dpo"
        np.testing.assert_allclose(got, run_backend(backend, twin, b, beta=hp["beta"])[0], rtol=1e-12)


def test_f_dpo_alpha_vmapped_over_alpha():
    """α traced (a grid under vmap), the α = 1 fallback included, equals each α given as a number."""
    batch = to_batch(random_batch(5, n=6))
    alphas = [0.0, 0.5, 1.0, 1.0 + 1e-8, 2.0]
    vm = jax.vmap(lambda a: pair_loss("fdpo_alpha", batch, alpha=a))(jnp.array(alphas))
    for i, a in enumerate(alphas):
        np.testing.assert_allclose(vm[i], pair_loss("fdpo_alpha", batch, alpha=a), rtol=1e-12)
    grads = jax.grad(lambda a: jnp.sum(pair_loss("fdpo_alpha", batch, alpha=a)))(jnp.float64(1.0))
    assert np.isfinite(grads)


def test_trl_forms_of_ipo_and_sft():
    """ipo_norm and sft_tokens are TRL's ipo and sft; with equal lengths they are mirrorpo's ipo (β/n) and sft."""
    b = random_batch(3)
    n = 7.0
    b["len_w"] = b["len_l"] = np.full(16, n)
    batch = to_batch(b)
    np.testing.assert_allclose(pair_loss("ipo_norm", batch, beta=0.2), pair_loss("ipo", batch, beta=0.2 / n) / n**2,
                               rtol=1e-10)
    np.testing.assert_allclose(pair_loss("sft_tokens", batch), np.full(16, np.mean(pair_loss("sft", batch))),
                               rtol=1e-12)
    assert LOSSES["sft_tokens"].batch_coupled and not LOSSES["sft_tokens"].needs_reference


def test_exo_k_responses_matches_reference():
    rng = np.random.default_rng(0)
    logp, ref, rew = -rng.uniform(1, 5, (4, 3)), -rng.uniform(1, 5, (4, 3)), rng.normal(size=(4, 3))
    p = np.exp(0.3 * (logp - ref))
    p /= p.sum(1, keepdims=True)
    q = np.exp(rew / 2.0)
    q /= q.sum(1, keepdims=True)
    expected = np.sum(p * (np.log(p) - np.log(q)), axis=1)
    np.testing.assert_allclose(exo(logp, ref, rew, beta_pi=0.3, beta_r=2.0), expected, rtol=1e-10)
    with pytest.raises(LossInputError, match=r"\[B, K\]"):
        exo(logp[:, 0], ref[:, 0], rew[:, 0])


# ---------------------------------------------------------------- MPO reductions and networks
def test_two_step_mpo_with_log_is_dpo_on_means():
    b = random_batch(3)
    batch = to_batch(b)
    m = lambda k: b[k] / b["len_" + k[-1]]
    z = m("logp_w") - m("ref_logp_w") - m("logp_l") + m("ref_logp_l")
    np.testing.assert_allclose(mpo_two_step(batch, beta=2.0), -ls(2.0 * z), rtol=1e-12)
    n = np.full(16, 10.0)  # equal lengths: DPO with β/n
    eq = {**b, "len_w": n, "len_l": n}
    np.testing.assert_allclose(mpo_two_step(to_batch(eq), beta=2.0), pair_loss("dpo", to_batch(eq), beta=0.2),
                               rtol=1e-12)


def test_one_step_mpo_with_bases_is_orpo():
    batch = to_batch(random_batch(4, ref=False))
    np.testing.assert_allclose(mpo_one_step(batch, beta=1.0, lam=0.37), pair_loss("orpo", batch, lam=0.37), rtol=1e-12)


STRUCTURES = [MPOStructure(f, learn, t) for f, learn in (("one_step", ("phi_inv", "psi", "g")), ("one_step", ("g",)),
                                                         ("two_step", ("phi_inv", "psi")), ("two_step", ("psi",)))
              for t in (False, True)]


@pytest.mark.parametrize("structure", STRUCTURES, ids=str)
def test_zero_initialised_networks_are_the_base(structure):
    batch = to_batch(random_batch(5))
    flat = structure.init(jax.random.PRNGKey(0))
    base = pair_loss(f"mpo_{structure.family}", batch)
    for t in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(structure.loss(flat, batch, progress=t), base, rtol=1e-12)


def test_random_networks_are_non_decreasing_in_x_and_vary_in_t():
    x = jnp.linspace(1e-6, 1.0, 2001)
    for seed in range(5):
        params = monotone.init_params(jax.random.PRNGKey(seed), 126, temporal=True)
        key = jax.random.PRNGKey(seed + 100)
        noise = jax.tree.map(lambda a, k=key: jax.random.normal(k, a.shape), params)
        params = jax.tree.map(lambda a, n: a + n, params, noise)
        outs = [monotone.network(params, x, t) for t in (0.0, 0.5, 1.0)]
        for out in outs:
            assert np.all(np.diff(np.asarray(out)) >= -1e-9 * np.abs(out).max())
        assert not np.allclose(outs[0], outs[2])


def test_learned_g_keeps_one_step_loss_decreasing_in_chosen_likelihood():
    s = MPOStructure("one_step", ("g",))
    flat = s.init(jax.random.PRNGKey(1)) + jax.random.normal(jax.random.PRNGKey(2), (s.size,))
    grid = jnp.linspace(-5.0, -0.01, 200)
    n = jnp.ones(200)
    batch = PairBatch(grid, jnp.full(200, -2.0), n, n)
    loss = np.asarray(s.loss(flat, batch, lam=0.0))
    assert np.all(np.diff(loss) <= 1e-12)


# ---------------------------------------------------------------- edge probabilities, float32
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("mean", [-200.0, -50.0, -1e-5, -1e-7, 0.0])
def test_finite_near_zero_and_one_in_float32(name, mean):
    n = jnp.array([1.0, 3.0], jnp.float32)
    L = jnp.array([mean, mean * 0.5], jnp.float32) * n
    other = jnp.array([-1.0, -2.0], jnp.float32) * n
    for lw, ll in ((L, other), (other, L), (L, L)):
        batch = PairBatch(lw, ll, n, n, other, other)
        val, grads = jax.value_and_grad(lambda a, c, b=batch: jnp.sum(pair_loss(name, b._replace(logp_w=a, logp_l=c))),
                                        argnums=(0, 1))(lw, ll)
        assert np.isfinite(val), (name, mean)
        assert all(np.all(np.isfinite(g)) for g in grads), (name, mean)


@pytest.mark.parametrize("name", ALL)
def test_finite_near_zero_and_one_in_float32_on_torch(name):
    torch = pytest.importorskip("torch")
    from mirrorpo.llm import losses as tl

    n = torch.tensor([1.0, 3.0])
    other = torch.tensor([-1.0, -2.0]) * n
    for mean in (-200.0, -50.0, -1e-5, -1e-7, 0.0):
        L = torch.tensor([mean, mean * 0.5]) * n
        for lw, ll in ((L, other), (other, L), (L, L)):
            a, c = lw.clone().requires_grad_(), ll.clone().requires_grad_()
            val = tl.pair_loss(name, tl.PairBatch(a, c, n, n, other, other)).sum()
            val.backward()
            assert val.dtype == torch.float32 and torch.isfinite(val), (name, mean)
            assert all(torch.all(torch.isfinite(g)) for g in (a.grad, c.grad) if g is not None), (name, mean)


# ---------------------------------------------------------------- bad input
def test_bad_input_errors():
    good = to_batch(random_batch(0))
    with pytest.raises(UnknownLossError, match="Valid names: .*dpo"):
        pair_loss("dpoo", good)
    with pytest.raises(LossInputError, match="needs a reference"):
        pair_loss("dpo", good._replace(ref_logp_w=None, ref_logp_l=None))
    with pytest.raises(LossInputError, match="same shape"):
        pair_loss("sft", good._replace(logp_l=good.logp_l[:3]))
    with pytest.raises(LossInputError, match="1-D"):
        pair_loss("sft", PairBatch(*(jnp.ones((2, 2)) * -1 for _ in range(4))))
    for beta in (0.0, -1.0):
        with pytest.raises(LossInputError, match="beta must be > 0"):
            pair_loss("dpo", good, beta=beta)
    for eps in (0.0, 0.5, 0.7):
        with pytest.raises(LossInputError, match=r"epsilon must be in the open interval \(0, 0.5\)"):
            pair_loss("exo_pair", good, epsilon=eps)
    with pytest.raises(LossInputError, match="hyper-parameters are: beta"):
        pair_loss("dpo", good, lam=1.0)
    with pytest.raises(LossInputError, match="log-probabilities ≤ 0"):
        pair_loss("sft", good._replace(logp_w=-good.logp_w))
    with pytest.raises(LossInputError, match="positive lengths"):
        pair_loss("sft", good._replace(len_w=good.len_w * 0))
    with pytest.raises(LossInputError, match="non-finite"):
        pair_loss("sft", good._replace(logp_w=good.logp_w.at[0].set(jnp.nan)))
    s = MPOStructure("one_step", ("psi",), temporal=True)
    save_objective("/tmp/_t.mpo.safetensors", MPOObjective(s, s.init(jax.random.PRNGKey(0))))
    with pytest.raises(LossInputError, match=r"progress must be in \[0, 1\]"):
        pair_loss("mpo:/tmp/_t.mpo.safetensors", good, progress=1.5)
    with pytest.raises(LossInputError, match="subset"):
        MPOStructure("two_step", ("g",))


# ---------------------------------------------------------------- jit and vmap
@pytest.mark.parametrize("name", ALL)
def test_jit_and_vmap_over_hyperparameters(name):
    spec = LOSSES[name]
    batch = to_batch(random_batch(1, n=6))
    hp = {h.name: NONDEFAULT[h.name] for h in spec.hparams}
    np.testing.assert_allclose(jax.jit(lambda b: pair_loss(name, b, **hp))(batch), pair_loss(name, batch, **hp),
                               rtol=1e-12)
    if "beta" in hp:
        betas = jnp.array([0.1, 0.5, 2.0])
        vm = jax.vmap(lambda beta: pair_loss(name, batch, **{**hp, "beta": beta}))(betas)
        for i, beta in enumerate([0.1, 0.5, 2.0]):
            np.testing.assert_allclose(vm[i], pair_loss(name, batch, **{**hp, "beta": beta}), rtol=1e-10)


def test_vmap_over_mpo_population():
    s = MPOStructure("one_step", ("phi_inv", "psi", "g"), temporal=True)
    pop = s.init(jax.random.PRNGKey(0)) + 0.1 * jax.random.normal(jax.random.PRNGKey(1), (5, s.size))
    batch = to_batch(random_batch(2))
    vm = jax.jit(jax.vmap(lambda f: s.loss(f, batch, progress=0.3)))(pop)
    for i in range(5):
        np.testing.assert_allclose(vm[i], s.loss(pop[i], batch, progress=0.3), rtol=1e-10)


# ---------------------------------------------------------------- objective files
def test_objective_roundtrip_and_by_name(tmp_path):
    s = MPOStructure("two_step", ("phi_inv", "psi"), temporal=True)
    flat = np.asarray(s.init(jax.random.PRNGKey(0)) + 0.2 * jax.random.normal(jax.random.PRNGKey(3), (s.size,)),
                      np.float32)
    path = save_objective(tmp_path / "x.mpo.safetensors", MPOObjective(s, flat, {"beta": 3.0}, {"task": "tla"}))
    back = load_objective(path)
    assert back.structure == s and back.hparams == {"beta": 3.0} and back.info == {"task": "tla"}
    np.testing.assert_array_equal(back.flat, flat)
    batch = to_batch(random_batch(4))
    np.testing.assert_allclose(pair_loss(f"mpo:{path}", batch, progress=0.4),
                               s.loss(jnp.asarray(flat), batch, progress=jnp.float64(0.4), beta=3.0), rtol=1e-10)
    land = gradient_landscape(f"mpo:{path}", n=5, progress=0.4)
    assert np.all(np.isfinite(land.grad_w))


def test_bad_objective_files(tmp_path):
    s = MPOStructure()
    good = save_objective(tmp_path / "g.mpo.safetensors", MPOObjective(s, s.init(jax.random.PRNGKey(0))))
    data = good.read_bytes()
    cases = {"truncated": data[: len(data) // 2], "random": bytes(range(256)) * 4}
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(ObjectiveFileError):
            load_objective(tmp_path / name)
    from safetensors.numpy import save

    (tmp_path / "other").write_bytes(save({"w": np.zeros(3, np.float32)}, metadata={"format": "pt"}))
    with pytest.raises(ObjectiveFileError, match="not an MPO objective"):
        load_objective(tmp_path / "other")
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    header["__metadata__"]["format_version"] = "9"
    new_header = json.dumps(header).encode()
    (tmp_path / "v9").write_bytes(len(new_header).to_bytes(8, "little") + new_header + data[8 + header_len:])
    with pytest.raises(ObjectiveFileError, match="version 9"):
        load_objective(tmp_path / "v9")
    with pytest.raises(ObjectiveFileError, match="not found"):
        pair_loss("mpo:" + str(tmp_path / "missing.mpo.safetensors"), to_batch(random_batch(0)))


# ---------------------------------------------------------------- registry: combine, register, specs
def test_combinations_equal_weighted_sums():
    batch = to_batch(random_batch(6))
    expected = pair_loss("dpo", batch, beta=0.3) + 0.5 * pair_loss("sft", batch)
    np.testing.assert_allclose(pair_loss("dpo+0.5*sft", batch, beta=0.3), expected, rtol=1e-12)
    spec = combine([(1.0, "dpo", {"beta": 0.3}), (2.0, "simpo", {"beta": 1.0})])
    np.testing.assert_allclose(pair_loss(spec, batch, gamma=0.2),
                               pair_loss("dpo", batch, beta=0.3) + 2 * pair_loss("simpo", batch, beta=1.0, gamma=0.2),
                               rtol=1e-12)
    assert spec.needs_reference and spec.protocol == "sft_then_po"
    assert get_spec("sigmoid") is LOSSES["dpo"]


@pytest.fixture
def user_loss():
    @register_loss("user_margin", hparams=[HParam("beta", 0.5, "positive")])
    def user_margin(batch, beta):
        """−log σ(β(ℓ_w − ℓ_l))"""
        return -jax.nn.log_sigmoid(beta * (batch.mean_w - batch.mean_l))

    yield "user_margin"
    unregister_loss("user_margin")


def test_registered_user_loss_gets_everything(user_loss):
    batch = to_batch(random_batch(8))
    b = random_batch(8)
    np.testing.assert_allclose(pair_loss(user_loss, batch), -ls(0.5 * (b["logp_w"] / b["len_w"] - b["logp_l"] / b["len_l"])),
                               rtol=1e-12)
    assert LOSSES[user_loss].formula == "−log σ(β(ℓ_w − ℓ_l))"
    with pytest.raises(LossInputError, match="beta must be > 0"):
        pair_loss(user_loss, batch, beta=-1.0)
    land = gradient_landscape(user_loss, n=5)
    np.testing.assert_allclose(land.grad_w, -0.5 * sg(-0.5 * (land.mean_w - land.mean_l)), rtol=1e-9)
    np.testing.assert_allclose(pair_loss(f"{user_loss}+sft", batch), pair_loss(user_loss, batch) + pair_loss("sft", batch))
    with pytest.raises(LossInputError, match="already registered"):
        register_loss(user_loss, lambda batch: batch.mean_w)
    with pytest.raises(LossInputError, match="built-in"):
        unregister_loss("dpo")


def test_specs_match_design_protocols():
    for name in ("dpo", "ipo", "rdpo", "exo_pair", "mpo_two_step"):
        assert LOSSES[name].needs_reference and LOSSES[name].protocol == "sft_then_po", name
    for name in ("sft", "rrhf", "slic_hf", "cpo", "orpo", "simpo", "lpo", "colpo", "mpo_one_step"):
        assert not LOSSES[name].needs_reference and LOSSES[name].protocol == "one_step", name
    assert LOSSES["discopop"].defaults == {"beta": 0.1, "tau": 0.05}
    assert LOSSES["aot"].batch_coupled


def test_bco_running_baseline():
    state = (0.0, 0)
    seen = []
    for seed in range(3):
        b = to_batch(random_batch(seed, n=4))
        state = bco_baseline_update(state, b, beta=0.2)
        seen += list(0.2 * np.asarray(b.ratio_w)) + list(0.2 * np.asarray(b.ratio_l))
        np.testing.assert_allclose(state[0], np.mean(seen), rtol=1e-10)
    assert state[1] == 24


def test_landscape_matches_closed_forms():
    land = gradient_landscape("sft", n=7, length=3.0)
    np.testing.assert_allclose(land.grad_w, -1.0)  # d(−ℓ_w)/dℓ_w
    np.testing.assert_allclose(land.grad_l, 0.0)
    land = gradient_landscape("dpo", n=7, length=2.0, ref=-1.0, beta=0.3)
    z = 2.0 * (land.mean_w - land.mean_l)  # r_w − r_l with equal references
    np.testing.assert_allclose(land.grad_w, -0.3 * 2.0 * sg(-0.3 * z), rtol=1e-9)
    np.testing.assert_allclose(land.grad_l, 0.3 * 2.0 * sg(-0.3 * z), rtol=1e-9)
    with pytest.raises(LossInputError, match="lo < hi ≤ 0"):
        gradient_landscape("dpo", lo=-1.0, hi=1.0)
