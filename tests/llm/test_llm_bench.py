"""The offline LLM diagnostic: task reward, Bradley–Terry pairs and variants, end-to-end run."""

from __future__ import annotations

import csv
import json
import random
import sys

import pytest

from mirrorpo.errors import MirrorpoError
from mirrorpo.llm.bench import BenchConfig, build_pairs, parse_variant
from mirrorpo.llm.tiny import SortTask


def test_sort_task_reward():
    task = SortTask()
    p = task.prompt("4132")
    assert task.reward(p, "1234") == 1.0
    assert task.reward(p, "") == 0.0
    assert 0 < task.reward(p, "1243") < 1 and task.reward(p, "1243") > task.reward(p, "9999")
    assert task.reward(p, "12345") < 1.0  # too long
    prompt, answer = task.sample(random.Random(0))
    assert task.reward(prompt, answer) == 1.0


def fake_samples(n, rng):
    task = SortTask(4, 4)
    prompts = [task.sample(rng)[0] for _ in range(n)]
    good = [[task.answer(task.digits_of(p)) if rng.random() < 0.9 else "0000" for p in prompts] for _ in range(2)]
    bad = [["".join(rng.choice("0123456789") for _ in range(4)) for _ in prompts] for _ in range(2)]
    return task, prompts, {"expert": good, "novice": bad}


def test_variants_follow_the_suite():
    task, prompts, samples = fake_samples(2000, random.Random(1))
    base, s_base = build_pairs("base", prompts, samples, task, temperature=0.1, seed=0)
    _, s_noisy = build_pairs("noisy-0.3", prompts, samples, task, temperature=0.1, seed=0)
    _, s_mixed = build_pairs("mixed", prompts, samples, task, temperature=0.1, seed=0)
    _, s_bad = build_pairs("badjudge", prompts, samples, task, temperature=0.1, seed=0)
    assert s_base["same_agent_pairs"] == 0 and s_base["label_accuracy"] > 0.85
    assert s_noisy["label_accuracy"] == pytest.approx(s_base["label_accuracy"] * 0.7 + (1 - s_base["label_accuracy"])
                                                      * 0.3, abs=0.05)
    assert 0.35 < s_mixed["same_agent_pairs"] / s_mixed["pairs"] < 0.65  # ≈ ¼ + ¼ same-agent
    assert s_bad["label_accuracy"] < s_base["label_accuracy"]
    assert all(set(r) == {"prompt", "chosen", "rejected"} and r["chosen"] != r["rejected"] for r in base)
    assert parse_variant("noisy-0.1") == {"kind": "noisy", "epsilon": 0.1}
    with pytest.raises(MirrorpoError, match="unknown dataset variant"):
        parse_variant("noisy-2")


def test_config_is_checked():
    with pytest.raises(MirrorpoError, match="unknown loss"):
        BenchConfig(losses=("nope",))
    with pytest.raises(MirrorpoError, match="beta must be > 0"):
        BenchConfig(losses=("dpo",), hparams={"dpo": {"beta": -1.0}})
    with pytest.raises(MirrorpoError, match="expert_steps"):
        BenchConfig(sft_steps=10, expert_steps=5)


@pytest.mark.slow
def test_bench_end_to_end_via_cli(monkeypatch, capsys, tmp_path):
    from mirrorpo.cli import main

    out = tmp_path / "bench"
    monkeypatch.setattr(sys, "argv", [
        "mirrorpo", "llm", "bench", "--out", str(out), "--losses", "sft,dpo,orpo", "--variants", "base,mixed",
        "--steps", "2", "--sft-steps", "3", "--expert-steps", "6", "--pairs", "24", "--eval-prompts", "8",
        "--hidden", "16", "--layers", "1", "--hp", "dpo:beta=0.5",
    ])
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    stdout = capsys.readouterr().out
    assert "Tiny-LLM diagnostic" in stdout and "win vs SFT" in stdout
    result = json.loads((out / "results.json").read_text())
    assert len(result["rows"]) == 6 and all(r["error"] is None for r in result["rows"]), result["rows"]
    assert {r["loss"] for r in result["leaderboard"]} == {"sft", "dpo", "orpo"}
    for r in result["rows"]:
        assert 0.0 <= r["mean_reward"] <= 1.0 and 0.0 <= r["win_rate"] <= 1.0
    assert result["config"]["hparams"] == {"dpo": {"beta": 0.5}}
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 7 and rows[0]["loss"] == "SFT model (start)"
