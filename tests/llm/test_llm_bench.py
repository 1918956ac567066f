"""The offline LLM diagnostic: problem reward, Bradley–Terry pairs and variants, end-to-end run."""

from __future__ import annotations

import csv
import json
import random
import statistics
import sys

import pytest

from mirrorpo.errors import MirrorpoError
from mirrorpo.llm.bench import BenchConfig, build_pairs, parse_variant
from mirrorpo.llm.bench_results import combine
from mirrorpo.llm.tiny import SortingProblem


def test_sort_task_reward():
    problem = SortingProblem()
    p = problem.prompt("4132")
    assert problem.reward(p, "1234") == 1.0
    assert problem.reward(p, "") == 0.0
    assert 0 < problem.reward(p, "1243") < 1 and problem.reward(p, "1243") > problem.reward(p, "9999")
    assert problem.reward(p, "12345") < 1.0  # too long
    prompt, answer = problem.sample(random.Random(0))
    assert problem.reward(prompt, answer) == 1.0


def fake_samples(n, rng):
    problem = SortingProblem(4, 4)
    prompts = [problem.sample(rng)[0] for _ in range(n)]
    good = [[problem.answer(problem.digits_of(p)) if rng.random() < 0.9 else "0000" for p in prompts] for _ in range(2)]
    bad = [["".join(rng.choice("0123456789") for _ in range(4)) for _ in prompts] for _ in range(2)]
    return problem, prompts, {"expert": good, "novice": bad}


def test_variants_follow_the_suite():
    problem, prompts, samples = fake_samples(2000, random.Random(1))
    base, s_base = build_pairs("base", prompts, samples, problem, temperature=0.1, seed=0)
    _, s_noisy = build_pairs("noisy-0.3", prompts, samples, problem, temperature=0.1, seed=0)
    _, s_mixed = build_pairs("mixed", prompts, samples, problem, temperature=0.1, seed=0)
    _, s_bad = build_pairs("bad-judge", prompts, samples, problem, temperature=0.1, seed=0)
    assert s_base["same_agent_pairs"] == 0 and s_base["label_accuracy"] > 0.85
    assert s_noisy["label_accuracy"] == pytest.approx(s_base["label_accuracy"] * 0.7 + (1 - s_base["label_accuracy"])
                                                      * 0.3, abs=0.05)
    assert 0.35 < s_mixed["same_agent_pairs"] / s_mixed["pairs"] < 0.65  # ≈ ¼ + ¼ same-agent
    assert s_bad["label_accuracy"] < s_base["label_accuracy"]
    assert all(set(r) == {"prompt", "chosen", "rejected"} and r["chosen"] != r["rejected"] for r in base)
    assert parse_variant("noisy-0.1") == {"variant": "noisy", "epsilon": 0.1}
    with pytest.raises(MirrorpoError, match="unknown variant"):
        parse_variant("noisy-2")


def test_variants_are_spelt_and_parsed_as_in_the_suite():
    import mirrorpo.benchmark

    assert parse_variant is mirrorpo.benchmark.parse_variant  # one parser for every bench
    problem, prompts, samples = fake_samples(10, random.Random(0))
    for old in ("badjudge",):
        with pytest.raises(MirrorpoError, match="now written 'bad-judge'"):
            BenchConfig(variants=("base", old))
        with pytest.raises(MirrorpoError, match="now written 'bad-judge'"):
            build_pairs(old, prompts, samples, problem, temperature=0.1, seed=0)
    for bad in ("noisy-0.5", "noisy-0", "bad_judge"):  # ε in (0, 0.5), as the MuJoCo bench
        with pytest.raises(MirrorpoError, match="unknown variant"):
            BenchConfig(variants=(bad,))
    _, stats = build_pairs("bad-judge", prompts, samples, problem, temperature=0.1, seed=0)
    assert stats["judge_temperature"] == pytest.approx(1.0) and stats["epsilon"] == 0.0


def _seed_run(seed, rewards, wins):
    rows = [{"variant": "base", "loss": loss, "seed": seed, "mean_reward": r, "reward_se": 0.01, "exact_match": r / 2,
             "win_rate": w, "seconds": 1.0, "final_loss": 0.5, "error": None} for loss, r, w in zip(("dpo", "orpo"),
                                                                                                    rewards, wins)]
    baseline = {"variant": "-", "loss": "SFT model (start)", "seed": seed, "mean_reward": 0.2 + seed / 10,
                "reward_se": 0.02, "exact_match": 0.0, "win_rate": 0.5, "seconds": 2.0, "final_loss": None,
                "error": None}
    return {"seed": seed, "agents": {"expert": {"sft_steps": 6, "greedy_reward": 0.5 + seed / 10}},
            "datasets": {"base": {"pairs": 20 + seed, "variant": "base"}}, "baseline": baseline, "rows": rows}


def test_seeds_combine_to_mean_and_standard_error():
    runs = [_seed_run(0, (0.4, 0.6), (0.5, 0.7)), _seed_run(1, (0.5, float("nan")), (0.6, float("nan"))),
            _seed_run(2, (0.9, 0.7), (0.9, 0.8))]
    runs[1]["rows"][1]["error"] = "RuntimeError: boom"
    out = combine(runs)
    dpo, orpo = out["rows"]
    assert (dpo["loss"], dpo["seeds"], orpo["seeds"]) == ("dpo", 3, 2)
    assert dpo["mean_reward"] == pytest.approx(0.6) and dpo["exact_match"] == pytest.approx(0.3)
    assert dpo["reward_se"] == pytest.approx(statistics.stdev([0.4, 0.5, 0.9]) / 3 ** 0.5)  # over seeds
    assert dpo["win_rate"] == pytest.approx(2 / 3)
    assert dpo["win_rate_se"] == pytest.approx(statistics.stdev([0.5, 0.6, 0.9]) / 3 ** 0.5)
    assert orpo["mean_reward"] == pytest.approx(0.65) and orpo["reward_se"] == pytest.approx(0.05)  # seeds 0, 2
    assert orpo["error"] == "seed 1: RuntimeError: boom" and dpo["error"] is None
    assert out["baseline"]["mean_reward"] == pytest.approx(0.3) and out["baseline"]["seeds"] == 3
    assert out["agents"]["expert"] == {"sft_steps": 6, "greedy_reward": pytest.approx(0.6)}
    assert out["datasets"]["base"] == {"pairs": 21.0, "variant": "base"} and out["se_over"] == "seeds"
    one = combine(runs[:1])  # one seed: the reward's s.e. over prompts, as before --seeds
    assert one["rows"][0]["reward_se"] == 0.01 and one["rows"][0]["mean_reward"] == 0.4
    assert one["datasets"]["base"]["pairs"] == 20 and one["rows"][0]["error"] is None and one["se_over"] == "prompts"


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


@pytest.mark.slow
def test_bench_seeds_plot_and_log_dir(monkeypatch, capsys, tmp_path):
    """--seeds 2: every row is the mean ± s.e. of its two seeds' runs; the leaderboard is drawn, and
    --log-dir gets the rewards, win rates and the table."""
    from tests.test_curves import read_events

    from mirrorpo.cli import main

    out, logs = tmp_path / "bench", tmp_path / "tb"
    monkeypatch.setattr(sys, "argv", [
        "mirrorpo", "llm", "bench", "--out", str(out), "--losses", "sft,dpo", "--variants", "base",
        "--seeds", "2", "--seed", "3", "--steps", "2", "--sft-steps", "3", "--expert-steps", "6", "--pairs", "16",
        "--eval-prompts", "8", "--hidden", "16", "--layers", "1", "--log-dir", str(logs),
    ])
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    stdout = capsys.readouterr().out
    assert "seed 3: SFT" in stdout and "seed 4: SFT" in stdout and "over 2 seeds" in stdout
    result = json.loads((out / "results.json").read_text())
    assert [run["seed"] for run in result["per_seed"]] == [3, 4] and result["se_over"] == "seeds"
    assert len(result["rows"]) == 2 and all(r["error"] is None and r["seeds"] == 2 for r in result["rows"])
    for row in [*result["rows"], result["baseline"]]:
        per_seed = [r for run in result["per_seed"] for r in [*run["rows"], run["baseline"]]
                    if (r["variant"], r["loss"]) == (row["variant"], row["loss"])]
        rewards = [r["mean_reward"] for r in per_seed]
        assert len(rewards) == 2
        assert row["mean_reward"] == pytest.approx(statistics.mean(rewards))
        assert row["reward_se"] == pytest.approx(statistics.stdev(rewards) / 2 ** 0.5)
    assert (out / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = read_events(logs)
    scalars = {v.tag: v.simple_value for e in events for v in e.summary.value if v.HasField("simple_value")}
    rows = {r["loss"]: r for r in result["rows"]}
    assert scalars["llm_bench/base/dpo/reward"] == pytest.approx(rows["dpo"]["mean_reward"])
    assert scalars["llm_bench/base/sft/win_rate"] == pytest.approx(rows["sft"]["win_rate"])
    assert any(v.tag.startswith("llm_bench/leaderboard") for e in events for v in e.summary.value)
