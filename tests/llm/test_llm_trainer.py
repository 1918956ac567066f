"""MirrorPOTrainer: TRL's DPOTrainer with any mirrorpo loss."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from mirrorpo import losses as jl
from mirrorpo.llm.losses import LossInputError, UnknownLossError
from mirrorpo.llm.trainer import (
    PAPER_SETTING,
    MirrorPOConfig,
    MirrorPOTrainer,
    paper_config,
    paper_lora_config,
)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before, model):
    return {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}


def train(model, tokenizer, dataset, tmp_path, tiny_args, **kw):
    trainer = MirrorPOTrainer(model, args=tiny_args(tmp_path, **kw.pop("args", {})), train_dataset=dataset,
                              processing_class=tokenizer, **kw)
    trainer.train()
    return trainer


def test_reference_free_loss_trains_without_a_reference_model(make_model, tokenizer, pref_dataset,
                                                              tmp_path, tiny_args):
    model = make_model()
    before = snapshot(model)
    trainer = train(model, tokenizer, pref_dataset, tmp_path, tiny_args, loss="colpo", loss_hparams={"delta": -5.0})
    assert trainer.ref_model is None and not trainer.needs_reference
    assert changed(before, model) == set(before)  # every parameter moved
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 3
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
                "logps/rejected", "entropy", "mean_token_accuracy"):
        assert np.isfinite(logs[-1][key]), key
    # reference-free rewards are β·L (β = CoLPO's), TRL's CPO/ORPO convention
    assert logs[0]["rewards/chosen"] == pytest.approx(1.0 * logs[0]["logps/chosen"], rel=1e-6)


def test_reference_loss_uses_the_initial_policy(make_model, tokenizer, pref_dataset, tmp_path, tiny_args):
    model = make_model()
    before = snapshot(model)
    trainer = train(model, tokenizer, pref_dataset, tmp_path, tiny_args, loss="dpo", loss_hparams={"beta": 0.5})
    assert trainer.ref_model is not None and trainer.ref_model is not model
    assert changed(before, trainer.ref_model) == set()   # the reference is frozen at the initial weights
    assert changed(before, model) == set(before)
    first = trainer.state.log_history[0]
    # step 1: policy == reference, so rewards are 0 and the DPO loss is log 2
    assert first["rewards/chosen"] == pytest.approx(0.0, abs=1e-6)
    assert first["loss"] == pytest.approx(np.log(2.0), rel=1e-5)
    assert trainer.state.log_history[2]["rewards/margins"] > 0


def test_same_numbers_as_trl_dpo(make_model, tokenizer, pref_dataset, tmp_path, tiny_settings, tiny_args):
    """loss="dpo" reproduces TRL's DPOTrainer(loss_type="sigmoid") step for step."""
    from trl import DPOConfig, DPOTrainer

    ours = train(make_model(), tokenizer, pref_dataset, tmp_path / "ours", tiny_args, loss="sigmoid")
    m = make_model()
    ref = make_model()
    theirs = DPOTrainer(m, ref_model=ref, args=DPOConfig(output_dir=str(tmp_path / "trl"), **tiny_settings),
                        train_dataset=pref_dataset, processing_class=tokenizer)
    theirs.train()
    keys = ("loss", "grad_norm", "rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected",
            "logits/chosen", "entropy", "mean_token_accuracy", "num_tokens")
    for a, b in zip(ours.state.log_history[:3], theirs.state.log_history[:3]):
        for k in keys:
            assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k


def test_lora_trains_only_the_adapters(make_model, tokenizer, pref_dataset, tmp_path, tiny_args):
    from peft import LoraConfig

    for loss in ("dpo", "orpo"):  # reference via the disabled adapter / no reference
        model = make_model()
        base = snapshot(model)
        trainer = train(model, tokenizer, pref_dataset, tmp_path / loss, tiny_args, loss=loss,
                        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                               task_type="CAUSAL_LM"))
        assert trainer.ref_model is None
        peft_model = trainer.model
        after = dict(peft_model.state_dict().items())
        lora_b = [k for k in after if "lora_B" in k and ".default." in k]
        assert lora_b and all(not torch.equal(after[k], torch.zeros_like(after[k])) for k in lora_b)
        for k, v in base.items():  # base weights untouched
            wrapped = [n for n in after if n.endswith((k.replace(".weight", ".base_layer.weight"), "model." + k))]
            assert wrapped, k
            assert torch.equal(after[wrapped[0]], v), k
        logs = [h for h in trainer.state.log_history if "loss" in h]
        if loss == "dpo":  # the disabled adapter is the reference: rewards start at 0
            assert logs[0]["rewards/chosen"] == pytest.approx(0.0, abs=1e-6)


def test_temporally_aware_objective_gets_training_progress(make_model, tokenizer, pref_dataset,
                                                           tmp_path, tiny_args):
    structure = jl.MPOStructure("one_step", ("psi", "g"), temporal=True, hidden=9)
    flat = structure.init(jax.random.PRNGKey(0)) + 0.3 * jax.random.normal(jax.random.PRNGKey(1), (structure.size,))
    path = jl.save_objective(tmp_path / "ta.mpo.safetensors", jl.MPOObjective(structure, np.asarray(flat)))
    model = make_model()
    before = snapshot(model)
    trainer = train(model, tokenizer, pref_dataset, tmp_path, tiny_args, loss=f"mpo:{path}", args={"max_steps": 4})
    assert trainer.ref_model is None and trainer.mirror_loss.uses_progress
    progress = [h["progress"] for h in trainer.state.log_history if "loss" in h]
    assert progress == [0.0, 0.25, 0.5, 0.75]
    assert changed(before, model)


def test_two_step_objective_and_combination(make_model, tokenizer, pref_dataset, tmp_path, tiny_args):
    structure = jl.MPOStructure("two_step", ("phi_inv", "psi"), temporal=False, hidden=9)
    flat = structure.init(jax.random.PRNGKey(2)) + 0.3 * jax.random.normal(jax.random.PRNGKey(3), (structure.size,))
    path = jl.save_objective(tmp_path / "two.mpo.safetensors", jl.MPOObjective(structure, np.asarray(flat)))
    trainer = train(make_model(), tokenizer, pref_dataset, tmp_path, tiny_args, loss=f"0.5*sft+mpo:{path}",
                    args={"max_steps": 2})
    assert trainer.needs_reference and trainer.ref_model is not None
    assert all(np.isfinite(h["loss"]) for h in trainer.state.log_history if "loss" in h)


def test_config_validates_the_loss_early(tmp_path):
    with pytest.raises(UnknownLossError, match="unknown loss 'nope'"):
        MirrorPOConfig(str(tmp_path), loss="nope")
    with pytest.raises(LossInputError, match="beta must be > 0"):
        MirrorPOConfig(str(tmp_path), loss="dpo", loss_hparams={"beta": -1.0})
    with pytest.raises(LossInputError, match="has no hyper-parameter gamma"):
        MirrorPOConfig(str(tmp_path), loss="dpo", loss_hparams={"gamma": 1.0})
    with pytest.raises(LossInputError, match="loss_type"):
        MirrorPOConfig(str(tmp_path), loss="dpo", loss_type=["hinge"], use_cpu=True, bf16=False)
    cfg = MirrorPOConfig(str(tmp_path), loss="simpo", loss_hparams="{\"gamma\": 0.5}", use_cpu=True, bf16=False)
    assert cfg.loss_hparams == {"gamma": 0.5}


def test_paper_preset(tmp_path):
    cfg = paper_config(str(tmp_path), per_device_train_batch_size=8, world_size=2, use_cpu=True, bf16=False)
    assert cfg.loss == "colpo" and cfg.learning_rate == 5e-5 and cfg.num_train_epochs == 3
    assert cfg.max_length == 2048 and cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * 2 == 64
    assert cfg.disable_dropout is False
    lora = paper_lora_config()
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (128, 256, 0.05)
    assert PAPER_SETTING["total_batch_size"] == 64
    with pytest.raises(LossInputError, match="multiple"):
        paper_config(str(tmp_path), per_device_train_batch_size=3)


# TRL loss_type -> (mirrorpo name, mirrorpo hyper-parameters, TRL config) with the same meaning
TRL_EQUIVALENTS = {
    "sigmoid": ("dpo", {"beta": 0.3}, {"beta": 0.3}),
    "hinge": ("hinge", {"beta": 0.3}, {"beta": 0.3}),
    "robust": ("robust", {"beta": 0.3, "epsilon": 0.1}, {"beta": 0.3, "label_smoothing": 0.1}),
    "exo_pair": ("exo_pair", {"beta": 0.3, "epsilon": 1e-3}, {"beta": 0.3, "label_smoothing": 1e-3}),
    "nca_pair": ("nca_pair", {"beta": 0.3}, {"beta": 0.3}),
    "bco_pair": ("bco_pair", {"beta": 0.3}, {"beta": 0.3}),  # TRL 1.16: no running baseline (δ = 0)
    "sppo_hard": ("sppo_hard", {"beta": 0.3}, {"beta": 0.3}),
    "aot": ("aot", {"beta": 0.3}, {"beta": 0.3}),
    "aot_unpaired": ("aot_unpaired", {"beta": 0.3}, {"beta": 0.3}),
    "apo_zero": ("apo_zero", {"beta": 0.3}, {"beta": 0.3}),
    "apo_down": ("apo_down", {"beta": 0.3}, {"beta": 0.3}),
    "discopop": ("discopop", {"beta": 0.3, "tau": 0.1}, {"beta": 0.3, "discopop_tau": 0.1}),
    "sigmoid_norm": ("sigmoid_norm", {"beta": 0.3}, {"beta": 0.3}),
}


@pytest.mark.slow
def test_trl_family_matches_trl_inside_the_trainer(make_model, tokenizer, pref_dataset, tmp_path,
                                                   tiny_args, tiny_settings):
    """Each TRL loss_type and its mirrorpo twin give the same losses and updates (2 steps)."""
    from trl import DPOConfig, DPOTrainer

    settings = {**tiny_settings, "max_steps": 2}
    for trl_name, (name, hp, trl_cfg) in TRL_EQUIVALENTS.items():
        ours = MirrorPOTrainer(make_model(), args=tiny_args(tmp_path / name, max_steps=2), loss=name,
                               loss_hparams=hp, train_dataset=pref_dataset, processing_class=tokenizer)
        ours.train()
        theirs = DPOTrainer(make_model(), ref_model=make_model(), train_dataset=pref_dataset,
                            args=DPOConfig(output_dir=str(tmp_path / trl_name), loss_type=[trl_name], **trl_cfg,
                                           **settings), processing_class=tokenizer)
        theirs.train()
        a = [h["loss"] for h in ours.state.log_history if "loss" in h]
        b = [h["loss"] for h in theirs.state.log_history if "loss" in h]
        assert len(a) == len(b) == 2
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=trl_name)


def test_model_given_as_a_path_and_precomputed_reference(local_model_dir, tokenizer, pref_dataset,
                                                         tmp_path, tiny_args):
    free = MirrorPOTrainer(str(local_model_dir), args=tiny_args(tmp_path / "a"), loss="sft",
                           train_dataset=pref_dataset, processing_class=tokenizer)
    assert free.ref_model is None  # no reference loaded for a reference-free loss
    with_ref = MirrorPOTrainer(str(local_model_dir), args=tiny_args(tmp_path / "b"), loss="ipo",
                               train_dataset=pref_dataset, processing_class=tokenizer)
    assert with_ref.ref_model is not None
    pre = MirrorPOTrainer(str(local_model_dir), args=tiny_args(tmp_path / "c", precompute_ref_log_probs=True,
                                                                 max_steps=2), loss="dpo",
                          train_dataset=pref_dataset, eval_dataset=pref_dataset, processing_class=tokenizer)
    assert pre.ref_model is None and "ref_chosen_logps" in pre.train_dataset.column_names
    pre.train()
    first = pre.state.log_history[0]
    assert first["loss"] == pytest.approx(np.log(2.0), rel=1e-5)
    assert first["rewards/chosen"] == pytest.approx(0, abs=1e-6)
    metrics = pre.evaluate()
    assert np.isfinite(metrics["eval_loss"]) and "eval_rewards/margins" in metrics
