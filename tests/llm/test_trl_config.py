"""TRL's loss settings mean what they mean in TRL: a DPOConfig's loss settings, given to MirrorPOTrainer
(as a MirrorPOConfig or a plain DPOConfig), give TRL's DPOTrainer loss and gradients on the same batch and
model, computed by the mirrorpo registry; a setting that cannot apply is one clear LossInputError."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirrorpo.llm.losses import LossInputError
from mirrorpo.llm.trainer import (
    TRL_LOSS_SETTINGS,
    TRL_LOSS_TYPES,
    MirrorPOConfig,
    MirrorPOTrainer,
    resolve_loss,
)

# id -> (DPOConfig loss settings, extra MirrorPOConfig settings for our trainer)
CASES = {
    "default": ({}, {}),
    "beta": ({"beta": 0.3}, {}),
    "beta-with-loss=dpo": ({"beta": 0.3}, {"loss": "dpo"}),  # the field is no longer ignored by loss=
    **{f"loss_type-{t}": ({"loss_type": t, "beta": 0.3}, {}) for t in TRL_LOSS_TYPES if t != "exo_pair"},
    "loss_type-exo_pair": ({"loss_type": "exo_pair", "beta": 0.3, "label_smoothing": 1e-3}, {}),
    "robust-label_smoothing": ({"loss_type": ["robust"], "beta": 0.3, "label_smoothing": 0.2}, {}),
    "aot-label_smoothing": ({"loss_type": ["aot"], "label_smoothing": 0.1}, {}),
    "aot_unpaired-label_smoothing": ({"loss_type": ["aot_unpaired"], "label_smoothing": 0.1}, {}),
    "discopop_tau": ({"loss_type": ["discopop"], "beta": 0.3, "discopop_tau": 0.2}, {}),
    "list-issue": ({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}, {}),
    "list-mpo-style": ({"loss_type": ["sigmoid", "bco_pair", "sft"], "loss_weights": [0.8, 0.2, 1.0], "beta": 0.2}, {}),
    "list-no-weights": ({"loss_type": ["robust", "hinge", "ipo"], "label_smoothing": 0.1, "beta": 0.4}, {}),
    "f-forward_kl": ({"f_divergence_type": "forward_kl", "beta": 0.3}, {}),
    "f-js_divergence": ({"f_divergence_type": "js_divergence", "beta": 0.3}, {}),
    "f-alpha_divergence": ({"f_divergence_type": "alpha_divergence", "beta": 0.3}, {}),
    "f-alpha_divergence-0.2": ({"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 0.2}, {}),
    "f-alpha_divergence-1.0": ({"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 1.0}, {}),
    "f-js-with-sft": ({"f_divergence_type": "js_divergence", "loss_type": ["sigmoid", "sft"],
                       "loss_weights": [1.0, 0.3]}, {}),
    "ld_alpha": ({"ld_alpha": 0.5, "beta": 0.3}, {}),
    "ld_alpha-0-sigmoid_norm": ({"ld_alpha": 0.0, "loss_type": "sigmoid_norm", "beta": 0.5}, {}),
    "ld_alpha-precomputed-reference": ({"ld_alpha": 0.3, "precompute_ref_log_probs": True}, {}),
    "use_weighting": ({"use_weighting": True, "beta": 0.3}, {}),
    "use_weighting-list": ({"use_weighting": True, "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]}, {}),
    "use_weighting-ld_alpha-forward_kl": ({"use_weighting": True, "ld_alpha": 0.5,
                                           "f_divergence_type": "forward_kl"}, {}),
    "use_weighting-loss=dpo": ({"use_weighting": True}, {"loss": "dpo"}),
}


@pytest.fixture
def uneven_dataset(pref_rows):
    """The preference pairs with rejected completions 1–2 digits shorter or longer than the chosen ones, so that
    length-dependent settings (ld_alpha, sigmoid_norm, ipo, sft over tokens) act."""
    from datasets import Dataset

    rows = []
    for i, row in enumerate(pref_rows):
        rejected = row["rejected"]
        rejected = rejected[:-1 - i % 2] if i % 3 == 0 else rejected + rejected[: 1 + i % 2]
        rows.append({**row, "rejected": rejected})
    return Dataset.from_list(rows)


def reference_model(make_model):
    """The policy's weights (seed 0), perturbed: log-ratios of a few nats, as during training."""
    model = make_model(0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model


def loss_and_grads(trainer, inputs):
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    return loss.item(), {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def both(settings, ours_extra, *, make_model, tokenizer, dataset, tmp_path, tiny_settings, ours_config=MirrorPOConfig):
    from trl import DPOConfig, DPOTrainer

    common = {**tiny_settings, **settings}
    theirs = DPOTrainer(make_model(0), ref_model=reference_model(make_model), train_dataset=dataset,
                        args=DPOConfig(output_dir=str(tmp_path / "trl"), **common), processing_class=tokenizer)
    ours = MirrorPOTrainer(make_model(0), ref_model=reference_model(make_model), train_dataset=dataset,
                           args=ours_config(output_dir=str(tmp_path / "ours"), **common, **ours_extra),
                           processing_class=tokenizer)
    return ours, theirs


@pytest.fixture
def trl_sft_weighting_fixed(monkeypatch):
    """TRL 1.16 cannot weight its 'sft' term (use_weighting): it multiplies an ``expand``-ed tensor in place and
    raises. This is its ``_compute_loss`` with that one line copied first, i.e. TRL's intended value."""
    import inspect
    import textwrap

    import trl.trainer.dpo_trainer as dpo_module

    source = textwrap.dedent(inspect.getsource(dpo_module.DPOTrainer._compute_loss))
    broken = "per_sequence_loss = batch_loss.expand(batch_size)"
    assert broken in source
    namespace = {}
    fixed = compile(source.replace(broken, broken + ".clone()"), dpo_module.__file__, "exec")
    exec(fixed, vars(dpo_module), namespace)  # noqa: S102 (TRL's own source with one line changed)
    monkeypatch.setattr(dpo_module.DPOTrainer, "_compute_loss", namespace["_compute_loss"])


@pytest.mark.parametrize("case", list(CASES))
def test_trl_settings_give_trls_loss_and_gradients(case, make_model, tokenizer, uneven_dataset, tmp_path,
                                                   tiny_settings, request):
    settings, ours_extra = CASES[case]
    if settings.get("use_weighting") and "sft" in settings.get("loss_type", ()):
        request.getfixturevalue("trl_sft_weighting_fixed")
    ours, theirs = both(settings, ours_extra, make_model=make_model, tokenizer=tokenizer, dataset=uneven_dataset,
                        tmp_path=tmp_path, tiny_settings=tiny_settings)
    assert (ours.ref_model is not None) == ours.needs_reference  # no reference for loss_type ["sft"]
    inputs = next(iter(theirs.get_train_dataloader()))
    len_w, len_l = inputs["completion_mask"][:, 1:].sum(dim=1).chunk(2)
    assert (len_w != len_l).any() and len(set(len_w.tolist())) > 1  # LD-DPO, per-token and length terms act
    ours_loss, ours_grads = loss_and_grads(ours, inputs)
    theirs_loss, theirs_grads = loss_and_grads(theirs, inputs)
    assert np.isfinite(theirs_loss) and theirs_loss != pytest.approx(0.0, abs=1e-6)
    assert ours_loss == pytest.approx(theirs_loss, rel=1e-6, abs=1e-7), case
    assert ours_grads.keys() == theirs_grads.keys() and ours_grads
    for name, g in theirs_grads.items():
        scale = g.abs().max().item()
        torch.testing.assert_close(ours_grads[name], g, rtol=1e-5, atol=1e-5 * max(scale, 1e-4), msg=f"{case}: {name}")
    # TRL's metrics, with the loss's β
    for key in ("rewards/chosen", "rewards/margins", "logps/chosen", "logps/rejected"):
        if ours.needs_reference or key.startswith("logps"):
            assert ours._metrics["train"][key][-1] == pytest.approx(theirs._metrics["train"][key][-1], rel=1e-5,
                                                                    abs=1e-6), (case, key)


def test_a_plain_dpo_config_gives_trls_loss(make_model, tokenizer, uneven_dataset, tmp_path, tiny_settings):
    from trl import DPOConfig

    for i, settings in enumerate(({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5], "beta": 0.3},
                                  {"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 0.3,
                                   "use_weighting": True, "ld_alpha": 0.7})):
        ours, theirs = both(settings, {}, make_model=make_model, tokenizer=tokenizer, dataset=uneven_dataset,
                            tmp_path=tmp_path / str(i), tiny_settings=tiny_settings, ours_config=DPOConfig)
        inputs = next(iter(theirs.get_train_dataloader()))
        assert loss_and_grads(ours, inputs)[0] == pytest.approx(loss_and_grads(theirs, inputs)[0], rel=1e-6)


@pytest.mark.parametrize("settings,name,hparams", [
    ({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5], "beta": 0.3}, "1*dpo+0.5*sft_tokens", {"beta": 0.3}),
    ({"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 0.3, "ld_alpha": 0.5, "use_weighting": True},
     "fdpo_alpha", {"beta": 0.1, "alpha": 0.3}),
], ids=["issue", "alpha-ld-wpo"])
def test_trl_configs_train_step_for_step_like_trl(settings, name, hparams, make_model, tokenizer, uneven_dataset,
                                                  tmp_path, tiny_settings):
    """The issue's ``MirrorPOConfig(loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.5])`` (β = 0.3), and the
    α-divergence with LD-DPO and WPO weighting: the same losses, gradient norms and rewards as TRL over 3
    optimizer steps."""
    ours, theirs = both(settings, {}, make_model=make_model, tokenizer=tokenizer, dataset=uneven_dataset,
                        tmp_path=tmp_path, tiny_settings=tiny_settings)
    assert ours.mirror_loss.name == name and ours.loss_hparams == hparams
    ours.train()
    theirs.train()
    keys = ("loss", "grad_norm", "rewards/chosen", "rewards/margins", "logps/chosen", "entropy")
    a, b = ours.state.log_history[:3], theirs.state.log_history[:3]
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        for k in keys:
            assert x[k] == pytest.approx(y[k], rel=1e-5, abs=1e-6), k
    description = ours.loss_description()
    assert description.get("use_weighting", False) == settings.get("use_weighting", False)
    assert description.get("ld_alpha") == settings.get("ld_alpha")


def test_the_mapping_table():
    def resolved(**settings):
        loss, hp = resolve_loss(MirrorPOConfig("out", use_cpu=True, bf16=False, **settings))
        return loss.name, hp

    assert resolved() == ("dpo", {"beta": 0.1})
    assert resolved(loss_type="ipo", beta=0.2) == ("ipo_norm", {"beta": 0.2})
    assert resolved(loss_type="sft", beta=0.2) == ("sft_tokens", {})  # β only scales the logged rewards
    assert resolved(loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.5]) == ("1*dpo+0.5*sft_tokens", {"beta": 0.1})
    assert resolved(loss_type="robust", label_smoothing=0.1) == ("robust", {"beta": 0.1, "epsilon": 0.1})
    assert resolved(loss_type="discopop", discopop_tau=0.2) == ("discopop", {"beta": 0.1, "tau": 0.2})
    assert resolved(f_divergence_type="forward_kl") == ("fdpo_forward_kl", {"beta": 0.1})
    assert resolved(f_divergence_type="js_divergence") == ("fdpo_js", {"beta": 0.1})
    assert resolved(f_divergence_type="alpha_divergence", f_alpha_divergence_coef=0.3) == (
        "fdpo_alpha", {"beta": 0.1, "alpha": 0.3})
    # the mirrorpo way, as before; a changed TRL field sets the loss's hyper-parameter of that name
    assert resolved(loss="simpo") == ("simpo", {"beta": 2.0, "gamma": 1.0})
    assert resolved(loss="simpo", loss_hparams={"gamma": 0.5}) == ("simpo", {"beta": 2.0, "gamma": 0.5})
    assert resolved(loss="dpo", beta=0.3) == ("dpo", {"beta": 0.3})
    assert resolved(loss="robust", label_smoothing=0.2) == ("robust", {"beta": 0.1, "epsilon": 0.2})
    assert resolved(loss="sft", beta=0.5) == ("sft", {})
    assert resolved(loss_type="bco_pair", loss_hparams={"delta": 0.2}) == ("bco_pair", {"beta": 0.1, "delta": 0.2})
    assert resolved(loss_type="hinge", loss_hparams={"beta": 0.4}) == ("hinge", {"beta": 0.4})


def test_every_trl_loss_setting_exists_in_this_trl():
    """The DPOConfig fields mapped here are all in the installed TRL (1.16)."""
    import dataclasses

    from trl import DPOConfig

    names = {f.name for f in dataclasses.fields(DPOConfig)}
    assert set(TRL_LOSS_SETTINGS) <= names


BAD = [
    ({"loss_type": "rpo"}, "loss_type 'rpo' is not one of TRL's loss types"),
    ({"loss_type": "dpo"}, "write loss='dpo' instead of loss_type"),
    ({"loss_type": []}, "loss_type is empty"),
    ({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0]}, "loss_weights has 1 weight"),
    ({"loss_weights": [1.0, 2.0]}, "give one weight per loss_type entry"),
    ({"label_smoothing": 0.1}, "label_smoothing=0.1 cannot apply: loss 'dpo' has no hyper-parameter epsilon"),
    ({"loss_type": "hinge", "label_smoothing": 0.1}, "label_smoothing=0.1 cannot apply: loss 'hinge'"),
    ({"discopop_tau": 0.1}, "discopop_tau=0.1 cannot apply"),
    ({"loss_type": "exo_pair"}, "label_smoothing=0.0 is the epsilon of loss 'exo_pair'"),
    ({"loss_type": ["robust", "exo_pair"]}, "label_smoothing=0.0 is the epsilon of loss 'exo_pair'"),
    ({"loss_type": "robust", "label_smoothing": 0.5}, "label_smoothing=0.5 is the epsilon of loss 'robust'"),
    ({"beta": -1.0}, "beta=-1.0 is the beta of loss 'dpo'"),
    ({"f_divergence_type": "chi2"}, "f_divergence_type 'chi2' is not one of TRL's"),
    ({"f_divergence_type": "forward_kl", "loss_type": "hinge"}, "f-divergence form of 'sigmoid' only"),
    ({"f_divergence_type": "js_divergence", "loss_type": "nca_pair"}, "cannot apply to loss_type 'nca_pair'"),
    ({"f_alpha_divergence_coef": 0.3}, "applies only with f_divergence_type='alpha_divergence'"),
    ({"ld_alpha": 1.5}, r"ld_alpha must be None or in \[0, 1\]"),
    ({"ld_alpha": 0.5, "loss_type": ["sigmoid", "sft"]}, "ld_alpha cannot apply with loss_type 'sft'"),
    ({"use_weighting": True, "loss_type": "aot"}, "use_weighting \\(WPO\\) cannot apply to 'aot'"),
    ({"use_weighting": True, "loss": "aot_unpaired"}, "use_weighting \\(WPO\\) cannot apply to 'aot_unpaired'"),
    ({"loss": "dpo", "loss_type": ["hinge"]}, "loss='dpo' and TRL's loss_type=\\['hinge'\\] both choose the loss"),
    ({"loss": "dpo", "loss_weights": [1.0]}, "both choose the loss"),
    ({"loss": "dpo", "f_divergence_type": "forward_kl"}, "f-DPO is 'fdpo_forward_kl'"),
    ({"loss": "dpo", "beta": 0.3, "loss_hparams": {"beta": 0.5}}, "beta=0.3 and loss_hparams beta=0.5 disagree"),
    ({"loss": "sft", "label_smoothing": 0.1}, "loss 'sft' has no hyper-parameter epsilon"),
    ({"loss": "colpo", "discopop_tau": 0.1}, "loss 'colpo' has no hyper-parameter tau"),
    ({"loss_type": "exo_pair", "label_smoothing": 0.01, "loss_hparams": {"epsilon": 0.02}}, "disagree"),
]


@pytest.mark.parametrize("settings,message", BAD, ids=[m.split(":")[0][:40] for _, m in BAD])
def test_a_setting_that_cannot_apply_is_one_clear_error(settings, message, tmp_path):
    with pytest.raises(LossInputError, match=message):
        MirrorPOConfig(str(tmp_path), use_cpu=True, bf16=False, **settings)


def test_the_trainer_checks_a_plain_dpo_config_and_its_own_loss_argument(make_model, tokenizer, pref_dataset,
                                                                         tmp_path, tiny_settings):
    from trl import DPOConfig

    cases = [(DPOConfig(str(tmp_path / "a"), label_smoothing=0.1, **tiny_settings), {}, "label_smoothing=0.1"),
             (DPOConfig(str(tmp_path / "b"), loss_type="hinge", f_divergence_type="js_divergence", **tiny_settings),
              {}, "f-divergence form of 'sigmoid' only"),
             (DPOConfig(str(tmp_path / "c"), loss_type="hinge", **tiny_settings), {"loss": "dpo"},
              "both choose the loss"),
             (MirrorPOConfig(str(tmp_path / "d"), beta=0.3, **tiny_settings), {"loss": "dpo", "loss_hparams": {"beta": 0.2}},
              "disagree")]
    for args, kwargs, message in cases:
        with pytest.raises(LossInputError, match=message):
            MirrorPOTrainer(make_model(), args=args, train_dataset=pref_dataset, processing_class=tokenizer, **kwargs)
