"""The paper's findings checked on synthetic leaderboards whose answer is known."""

import json

import pytest

from mirrorpo.report.findings import check_findings, noisiest

REFS = {"start policy": {"mean": 2000.0, "stderr": 10.0}, "target": {"mean": 4000.0, "stderr": 20.0},
        "original": {"mean": 2000.0, "stderr": 10.0}}


def rec(algo, variant, mean, stderr=10.0):
    return {"algo": algo, "variant": variant, "mean": mean, "stderr": stderr}


def paper_like():
    """The paper's pattern: LPO > SLiC > RRHF, SimPO collapses, SFT best at noise 0.3."""
    base = {"lpo": 3700, "slic_hf": 3500, "rrhf": 3300, "simpo": 3600, "sft": 3000, "dpo": 3400}
    noisy = {"lpo": 1800, "slic_hf": 1900, "rrhf": 1700, "simpo": 300, "sft": 2000, "dpo": 1500}
    return [rec(a, "base", m) for a, m in base.items()] + [rec(a, "noisy-0.3", m) for a, m in noisy.items()] + \
        [rec("dpo", "noisy-0.1", 3000), rec("bco_pair", "noisy-0.3", 9999)]  # not a paper baseline: ignored


def by_claim(findings):
    return [f.holds for f in findings]


def test_paper_pattern_holds_everywhere():
    findings = check_findings(paper_like(), REFS)
    assert by_claim(findings) == [True, True, True, True]
    assert "noisy-0.3" in findings[0].evidence and "3600" in findings[0].evidence
    assert findings[1].evidence.startswith("noisy-0.3: sft 2000")
    assert "lpo 3700 vs target 4000 (92.5%)" in findings[3].evidence and "s.e." in findings[3].evidence


@pytest.mark.parametrize("change, broken", [
    (("simpo", "noisy-0.3", 1900), 0),  # SimPO drops less than LPO
    (("dpo", "noisy-0.3", 2500), 1),  # a non-SFT loss is best at the highest noise
    (("rrhf", "base", 3600), 2),  # RRHF above SLiC-HF
    (("lpo", "base", None), 2),  # LPO diverged: ranks last
    (("lpo", "base", 4100), 3),  # a baseline beats the target
])
def test_each_finding_can_fail(change, broken):
    algo, variant, mean = change
    records = [r if (r["algo"], r["variant"]) != (algo, variant) else rec(algo, variant, mean) for r in paper_like()]
    holds = by_claim(check_findings(records, REFS))
    assert holds[broken] is False
    assert all(h for i, h in enumerate(holds) if i != broken)  # the others are untouched


def test_missing_cells_are_not_checked():
    assert by_claim(check_findings([rec("dpo", "base", 1.0)], None)) == [None, None, None, None]
    assert noisiest(["base", "noisy-0.1", "noisy-0.3", "noisy-0.2", "mixed"]) == "noisy-0.3"
    assert noisiest(["base", "mixed"]) is None


def test_comparison_table_sets_the_papers_numbers_and_normalised_scores_beside_ours():
    from mirrorpo.report.paper import PAPER_TLA, comparison_table, normalised, paper_cell

    refs = {"start policy": {"mean": 2000.0}, "target": {"mean": 5000.0}, "original": {"mean": 2000.0}}
    table = comparison_table([rec("lpo", "base", 3500.0, 20.0), rec("bco_pair", "base", None, None),
                              rec("lpo", "noisy-0.3", 2600.0, 30.0)], refs, "tla").splitlines()
    assert table[0] == ("| algorithm | base (ours) | base (paper) | n ours / paper | noisy-0.3 (ours) | "
                        "noisy-0.3 (paper) | n ours / paper |")
    # LPO: ours (3500 − 2000) / 3000 = 0.50; paper (3774 − 1700) / 2200 = 0.94; noisy-0.3 paper 1569
    assert table[2] == "| lpo | 3500 ± 20 | 3774 ± 102 | 0.50 / 0.94 | 2600 ± 30 | 1569 ± 156 | 0.20 / -0.06 |"
    assert table[3].startswith("| bco_pair | diverged |  |")  # not in the paper; after the paper's losses
    assert paper_cell("tla", "simpo", "noisy-0.2") == PAPER_TLA["simpo"][3] == (118, 715)
    assert paper_cell("hopper", "cpo", "noisy-0.2") == (1813, 33) and paper_cell("hopper", "lpo", "base") is None
    assert normalised(3900, 1700, 3900) == 1.0


def test_compare_command(tmp_path):
    from tests.test_cli import mirrorpo

    (tmp_path / "results.json").write_text(json.dumps(paper_like()))
    (tmp_path / "references.json").write_text(json.dumps(REFS))
    proc = mirrorpo("compare", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "| lpo | 3700 ± 10 | 3774 ± 102 |" in proc.stdout
    assert proc.stdout.count(": holds (") == 4
    assert "- Kendall τ vs the paper, base: +0.60 over 6 algorithms" in proc.stdout
    (tmp_path / "references.json").write_text("{")
    proc = mirrorpo("compare", str(tmp_path))
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_kendall_tau_on_hand_computed_examples():
    from scipy.stats import kendalltau

    from mirrorpo.report.paper import kendall_tau

    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # one discordant pair of six
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    # a tie in x: n_c = 2, n_d = 0, n_0 = 3, t_x = 1 → 2 / √(2·3)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 6**0.5)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(kendalltau([1, 1, 2], [1, 2, 3]).statistic)
    # a diverged value (None) ranks last: (0,1), (0,2) discordant, (1,2) concordant
    assert kendall_tau([None, 1, 2], [3, 1, 2]) == pytest.approx(-1 / 3)
    assert kendall_tau([1], [2]) is None and kendall_tau([1, 1], [1, 2]) is None


def test_paper_taus_per_column_over_the_algorithms_both_have():
    from mirrorpo.report.paper import PAPER_HOPPER, PAPER_TLA, findings_report, paper_taus

    same = [rec(a, "base", PAPER_TLA[a][0][0]) for a in PAPER_TLA]  # the paper's own order: τ = 1
    reversed_mixed = [rec(a, "mixed", -PAPER_TLA[a][1][0]) for a in PAPER_TLA]  # reversed: τ = −1
    extra = [rec("bco_pair", "base", 1e9)]  # not in the paper's table: left out
    taus = paper_taus(same + reversed_mixed + extra, "tla")
    assert taus == [{"variant": "base", "paper_column": "base", "tau": 1.0, "n": 10},
                    {"variant": "mixed", "paper_column": "mixed", "tau": -1.0, "n": 10}]
    hopper = [rec(a, "noisy-0.2", PAPER_HOPPER[a][2][0]) for a in PAPER_HOPPER] + [rec("sft", "noisy-0.2", 0.0)]
    assert paper_taus(hopper, "hopper") == [{"variant": "noisy-0.2", "paper_column": "noisy", "tau": 1.0, "n": 5}]
    report = findings_report(same + reversed_mixed, REFS, "tla")
    assert report["mean_tau"] == 0.0 and len(report["findings"]) == 4 and report["task"] == "tla"
    # the hand-made leaderboard above: base LPO 3700 > SimPO 3600 > SLiC 3500 > DPO 3400 > RRHF 3300 > SFT 3000
    # against the paper's LPO 3774 > SimPO 3683 > DPO 3528 > SFT 3287 > SLiC 3255 > RRHF 2789: 15 pairs,
    # discordant: (SLiC, DPO), (SLiC, SFT), (RRHF, SFT) → τ = (12 − 3) / 15
    assert paper_taus(paper_like(), "tla")[0]["tau"] == pytest.approx(9 / 15)


def test_paired_differences_by_seed():
    from mirrorpo.report.paper import paired_differences

    records = [{"algo": "mpo:x", "variant": "base", "seed_returns": [10.0, 12.0, 14.0]},
               {"algo": "cpo", "variant": "base", "seed_returns": [9.0, 9.0, 12.0]},
               {"algo": "dpo", "variant": "base", "seed_returns": [1.0, None, 2.0]},  # diverged seed: skipped
               {"algo": "cpo", "variant": "mixed", "seed_returns": [1.0, 2.0, 3.0]}]  # no mpo:x cell there
    (row,) = paired_differences(records, "mpo:x")
    # differences 1, 3, 2: mean 2, sample s.d. 1, s.e. 1/√3
    assert row == {"variant": "base", "algo": "mpo:x", "against": "cpo", "mean": 2.0, "stderr": pytest.approx(3 ** -0.5),
                   "seeds": 3, "z": pytest.approx(2 * 3 ** 0.5)}


def test_judgement_against_the_best_baseline():
    from mirrorpo.report.paper import judgement

    records = [{"algo": "mpo:x", "variant": "mixed", "mean": 13.0, "seed_returns": [10.0, 13.0, 16.0]},
               {"algo": "cpo", "variant": "mixed", "mean": 9.0, "seed_returns": [9.0, 9.0, 9.0]},  # the best
               {"algo": "dpo", "variant": "mixed", "mean": 2.0, "seed_returns": [1.0, 2.0, 3.0]},
               {"algo": "mpo:x", "variant": "base", "mean": 5.0, "seed_returns": [4.0, 5.0, 6.0]},
               {"algo": "sft", "variant": "base", "mean": 5.0, "seed_returns": [5.0, 5.5, 4.5]}]
    base, mixed = judgement(records, "mpo:x")
    # mixed: differences to cpo 1, 4, 7: mean 4, s.d. 3, s.e. √3, z 4/√3 ≈ 2.31 ≥ 2
    assert (mixed["best_baseline"], mixed["difference"], mixed["wins"]) == ("cpo", 4.0, True)
    assert mixed["stderr"] == pytest.approx(3 ** 0.5) and len(mixed["against"]) == 2
    # base: differences −1, −0.5, 1.5: mean 0, no win
    assert (base["best_baseline"], base["difference"], base["wins"]) == ("sft", 0.0, False)


def test_pooled_judgement_averages_paired_differences_over_datasets():
    from mirrorpo.report.paper import pooled_judgement

    def bench(ours, cpo, sft):
        return [{"algo": "mpo:x", "variant": "mixed", "mean": sum(ours) / 3, "seed_returns": ours},
                {"algo": "cpo", "variant": "mixed", "mean": sum(cpo) / 3, "seed_returns": cpo},
                {"algo": "sft", "variant": "mixed", "mean": sum(sft) / 3, "seed_returns": sft}]

    one = bench([10.0, 13.0, 16.0], [9.0, 9.0, 9.0], [12.0, 12.0, 12.0])  # sft best here (12 vs 9)
    two = bench([20.0, 20.0, 23.0], [10.0, 16.0, 19.0], [5.0, 5.0, 5.0])  # cpo best here (15 vs 5)
    (row,) = pooled_judgement([one, two], "mpo:x")
    # pooled baseline means: cpo (9 + 15)/2 = 12 > sft (12 + 5)/2 = 8.5, so cpo is the best, chosen once
    # against cpo: dataset 1 differences 1, 4, 7 (mean 4, s.e. √3); dataset 2: 10, 4, 4 (mean 6, s.e. 2)
    assert (row["best_baseline"], row["best_baseline_mean"], row["datasets"], row["seeds"]) == ("cpo", 12.0, 2, 6)
    assert row["difference"] == pytest.approx(5.0) and row["stderr"] == pytest.approx((3 + 4) ** 0.5 / 2)
    assert row["mean"] == pytest.approx((13 + 21) / 2) and row["wins"] == (5 / (7 ** 0.5 / 2) >= 2)
    assert {r["against"] for r in row["against"]} == {"cpo", "sft"}
    assert pooled_judgement([one, [r for r in two if r["algo"] != "sft"]], "mpo:x")[0]["against"][0]["against"] == "cpo"


def test_judge_runs_each_held_out_dataset_in_its_folder_and_pools_them(tmp_path, monkeypatch):
    from mirrorpo.cli import experiments
    from mirrorpo.cli.options import BenchPreset, Task
    from mirrorpo.errors import MirrorpoError
    from mirrorpo.report.paper import judgement, pooled_judgement

    def bench(ours, cpo):
        return [{"algo": "mpo:x", "variant": "mixed", "mean": sum(ours) / 3, "seed_returns": ours},
                {"algo": "cpo", "variant": "mixed", "mean": sum(cpo) / 3, "seed_returns": cpo}]

    benches = {1: bench([10.0, 13.0, 16.0], [9.0, 9.0, 9.0]), 4: bench([20.0, 20.0, 23.0], [10.0, 16.0, 19.0])}
    calls = []

    def fake_run_bench(task, preset, algos, variants, seeds, out, seed, suite=None, searched_grids=False):
        calls.append((out, seed, algos[0], searched_grids, seeds))
        return benches[seed]

    monkeypatch.setattr(experiments, "run_bench", fake_run_bench)
    judge = lambda seed, out: experiments.judge("mpo:x", task=Task.tla, variants="mixed", preset=BenchPreset.quick,
                                                seeds=3, seed=seed, out=out, suite=None)
    judge("1, 4", tmp_path / "two")
    assert calls == [(tmp_path / "two" / "seed-1", 1, "mpo:x", True, 3), (tmp_path / "two" / "seed-4", 4, "mpo:x", True, 3)]
    as_json = lambda rows: json.loads(json.dumps(rows))
    for s in (1, 4):
        assert json.loads((tmp_path / "two" / f"seed-{s}" / "judgement.json").read_text()) == as_json(judgement(benches[s], "mpo:x"))
    (pooled,) = json.loads((tmp_path / "two" / "pooled.json").read_text())
    assert pooled == as_json(pooled_judgement([benches[1], benches[4]], "mpo:x"))[0] and pooled["datasets"] == 2
    judge("1", tmp_path / "one")  # one seed: the folder itself, no pooled verdict
    assert calls[-1][0] == tmp_path / "one" and (tmp_path / "one" / "judgement.json").is_file()
    assert not (tmp_path / "one" / "pooled.json").exists()
    for bad in ("1,x", "1,1", "-2"):
        with pytest.raises(MirrorpoError, match="--seed"):
            judge(bad, tmp_path / "bad")


def test_merge_judgements_replaces_only_the_same_objective_and_variant():
    from mirrorpo.report.paper import merge_judgements

    v = lambda algo, variant, mean: {"algo": algo, "variant": variant, "mean": mean}
    earlier = [v("mpo:a", "mixed", 1.0), v("mpo:a", "base", 2.0), v("mpo:b", "mixed", 3.0)]
    merged = merge_judgements(earlier, [v("mpo:a", "base", 5.0), v("mpo:a", "noisy-0.3", 6.0)])
    assert merged == [v("mpo:a", "mixed", 1.0), v("mpo:b", "mixed", 3.0), v("mpo:a", "base", 5.0),
                      v("mpo:a", "noisy-0.3", 6.0)]


def test_loss_label_names_a_run_folders_objective_by_its_folder():
    from mirrorpo.report.paper import loss_label

    assert loss_label("mpo:runs/tla-mixed/best_objective.mpo.safetensors") == "tla-mixed"
    assert loss_label("mpo:tla-mixed-quick-es16x144-psi9-temporal") == "mpo:tla-mixed-quick-es16x144-psi9-temporal"
    assert loss_label("cpo") == "cpo"


def test_compare_paired_command(tmp_path):
    from tests.test_cli import mirrorpo

    records = [dict(rec(a, "base", m), seed_returns=[m - 1, m + 1]) for a, m in (("lpo", 3700), ("sft", 3000))]
    (tmp_path / "results.json").write_text(json.dumps(records))
    (tmp_path / "references.json").write_text(json.dumps(REFS))
    proc = mirrorpo("compare", str(tmp_path), "--paired", "lpo")
    assert proc.returncode == 0, proc.stderr
    assert "| base | sft | +700 | 0 | 2 |" in proc.stdout
    proc = mirrorpo("compare", str(tmp_path), "--paired", "nope")
    assert proc.returncode == 2 and "--paired nope" in proc.stderr
