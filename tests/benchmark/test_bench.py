"""The benchmark end to end on the toy task: cells, caching/resume, results files, bad input."""

import json
from dataclasses import replace

import pytest
from tests.toy_task import ToyTask

from mirrorpo.benchmark import Bench, get_preset, grid, parse_grid
from mirrorpo.benchmark.runner import padded_runs
from mirrorpo.data import DatasetError, load_dataset
from mirrorpo.errors import MirrorpoError
from mirrorpo.losses import UnknownLossError
from mirrorpo.provenance import machine
from mirrorpo.report.leaderboard import write_results
from mirrorpo.train import TrainConfig

TINY = replace(get_preset("quick"), pairs=16, horizon=8, eval_episodes=4, eval_horizon=8, seeds=2,
               train=TrainConfig(epochs=3, sft_epochs=2, po_epochs=1, lr=0.05))
ALGOS = ["sft", "simpo", "dpo", "cpo"]


def test_bench_end_to_end_and_resume(tmp_path, monkeypatch):
    bench = Bench(ToyTask(), TINY, tmp_path)
    seen, partial = [], []
    records = bench.run(ALGOS, ["base", "noisy-0.2"], progress=lambda label, d, t: seen.append((d, t)),
                        on_records=partial.append)
    assert seen[-1] == (8, 8)
    assert [len(p) for p in partial] == list(range(1, 9)) and partial[-1] == records  # results after every cell
    assert {(r["algo"], r["variant"]) for r in records} == {(a, v) for a in ALGOS for v in ("base", "noisy-0.2")}
    for r in records:
        assert {"algo", "variant", "mean", "stderr", "seeds", "hparams"} <= set(r)
        assert r["seeds"] == 2 and len(r["seed_returns"]) == 2
        assert r["machine"] == machine()  # where the cell was computed: CPU, ISA, XLA flags, JAX
    sft = next(r for r in records if r["algo"] == "sft" and r["variant"] == "base")
    assert sft["mean"] > -40  # trained towards the good agent: an untrained policy scores ≈ −8·‖W*‖² ≈ −50
    refs = bench.references()
    assert set(refs) == {"start policy", "good"} and refs["good"]["mean"] > refs["start policy"]["mean"]
    assert refs["good"]["mean"] > sft["mean"]  # the toy 'good' agent is the optimum
    paths = write_results(records, tmp_path / "report", "toy", refs)
    assert json.loads(paths["json"].read_text()) == records
    assert paths["csv"].read_text().count("\n") == 1 + len(records)
    assert paths["png"].stat().st_size > 1000
    assert load_dataset(tmp_path / "data" / "noisy-0.2").meta["epsilon"] == 0.2

    # resume: cached cells are not recomputed, a deleted cell is
    (tmp_path / "cells" / "base" / "cpo.json").unlink()
    calls = []
    real = Bench.run_cell
    monkeypatch.setattr(Bench, "run_cell", lambda self, *a: calls.append(a[1]) or real(self, *a))
    again = Bench(ToyTask(), TINY, tmp_path).run(ALGOS, ["base", "noisy-0.2"])
    assert calls == ["cpo"]
    assert [r["algo"] for r in again] == [r["algo"] for r in records]

    # cached_only: collects finished cells, trains none (an unfinished or never-run cell is left out)
    (tmp_path / "cells" / "noisy-0.2" / "dpo.json").unlink()
    collected = Bench(ToyTask(), TINY, tmp_path).run(ALGOS + ["ipo"], ["base", "noisy-0.2"], cached_only=True)
    assert calls == ["cpo"]
    assert len(collected) == 7 and ("dpo", "noisy-0.2") not in {(r["algo"], r["variant"]) for r in collected}
    assert collected == [r for r in again if (r["algo"], r["variant"]) != ("dpo", "noisy-0.2")]


def test_bad_input(tmp_path):
    bench = Bench(ToyTask(), TINY, tmp_path)
    with pytest.raises(UnknownLossError, match="Valid names"):
        bench.run(["nope"], ["base"])
    with pytest.raises(MirrorpoError, match="unknown variant"):
        bench.run(["sft"], ["noisy-0.7"])
    bench.run(["sft"], ["base"])
    with pytest.raises(DatasetError, match="'hopper' dataset is needed"):
        load_dataset(tmp_path / "data" / "base", task="hopper")
    with pytest.raises(MirrorpoError, match="unknown preset"):
        get_preset("medium")


def test_single_seed_and_diverged_cells_are_reported_not_crashed(tmp_path):
    records = [{"algo": "a", "variant": "base", "mean": None, "stderr": None, "seeds": 1, "hparams": {}},
               {"algo": "b", "variant": "base", "mean": 5.0, "stderr": None, "seeds": 1, "hparams": {"beta": 1}}]
    paths = write_results(records, tmp_path, "t")
    assert json.loads(paths["json"].read_text())[0]["mean"] is None
    from mirrorpo.report.leaderboard import best_per_variant, fmt

    assert best_per_variant(records) == {"base": "b"}
    assert fmt(records[0]) == "diverged" and fmt(records[1]) == "5"


def test_runs_are_padded_to_powers_of_two_on_accelerators_only():
    assert [padded_runs(n, "gpu") for n in (1, 3, 5, 8, 9)] == [1, 4, 8, 8, 16]
    assert [padded_runs(n, "cpu") for n in (1, 3, 5, 8, 9)] == [1, 3, 5, 8, 9]


def test_searched_grids_at_quick_scale_are_the_full_grids():
    from mirrorpo.benchmark.presets import FULL_GRIDS

    assert grid("cpo", "quick") == [{"beta": 0.1, "lam": 1.0}]  # quick: each axis's middle value
    searched = grid("cpo", "quick", searched=True)
    assert searched == grid("cpo", "full") and len(searched) == len(FULL_GRIDS["cpo"]["beta"]) * 2
    assert grid("cpo", "quick", parse_grid(["cpo.lam=0.3"], ["cpo"]), searched=True) == [
        {"beta": b, "lam": 0.3} for b in FULL_GRIDS["cpo"]["beta"]]  # overrides still replace an axis


def test_folder_records_cover_the_cells_of_earlier_calls_made_with_the_same_settings(tmp_path):
    """A column run by a separate call joins the folder's results; cells of other seeds or grids do not."""
    Bench(ToyTask(), TINY, tmp_path).run(["sft", "dpo"], ["base"])
    bench = Bench(ToyTask(), TINY, tmp_path)
    records = bench.run(["sft"], ["noisy-0.2"])
    folder, left_out = bench.folder_records(records)
    assert [(r["algo"], r["variant"]) for r in folder] == [("sft", "noisy-0.2"), ("dpo", "base"), ("sft", "base")]
    assert left_out == 0 and folder[2] == json.loads((tmp_path / "cells" / "base" / "sft.json").read_text())
    assert Bench(ToyTask(), TINY, tmp_path, seeds=3).folder_records([]) == ([], 3)  # other seeds
    other_grid = Bench(ToyTask(), TINY, tmp_path, grid_overrides=parse_grid(["beta=0.3"], ["dpo"]))
    kept, left_out = other_grid.folder_records([])
    assert [(r["algo"], r["variant"]) for r in kept] == [("sft", "base"), ("sft", "noisy-0.2")] and left_out == 1
    (tmp_path / "cells" / "base" / "sft.json").write_text('{"algo": "sft"')  # a truncated file is left out
    assert bench.folder_records(records)[1] == 1


def test_grid_overrides_are_searched_and_guard_the_cache(tmp_path):
    """--grid replaces an axis (every loss with it, or one loss); a cached cell searched over another grid
    is an error, not a silently reused result."""
    overrides = parse_grid(["beta=0.02,0.2", "cpo.lam=0.3"], ALGOS)
    assert grid("dpo", "quick", overrides) == [{"beta": 0.02}, {"beta": 0.2}]
    assert grid("cpo", "quick", overrides) == [{"beta": 0.02, "lam": 0.3}, {"beta": 0.2, "lam": 0.3}]
    assert grid("sft", "quick", overrides) == [{}]  # no β: untouched
    records = Bench(ToyTask(), TINY, tmp_path, grid_overrides=overrides).run(["dpo"], ["base"])
    assert [s["hparams"] for s in records[0]["search"]] == [{"beta": 0.02}, {"beta": 0.2}]
    assert records[0]["hparams"] in ({"beta": 0.02}, {"beta": 0.2})
    with pytest.raises(MirrorpoError, match="was searched over .* use another --out"):
        Bench(ToyTask(), TINY, tmp_path).run(["dpo"], ["base"], cached_only=True)
    (tmp_path / "cells" / "base" / "dpo.json").write_text('{"algo": "dpo"')  # a truncated file
    with pytest.raises(MirrorpoError, match="is not a finished cell .* delete it"):
        Bench(ToyTask(), TINY, tmp_path, grid_overrides=overrides).run(["dpo"], ["base"])


@pytest.mark.parametrize("entry, message", [
    ("gamma=1", "no loss of this run .* has a hyper-parameter 'gamma'; valid: beta, lam"),
    ("ipo.beta=1", "'ipo' is not among the losses of this run"),
    ("beta", "expected NAME=V1,V2"), ("beta=x", "expected NAME=V1,V2"),
    ("dpo.beta=0.1,-1", "beta must be > 0; got \\[0.1, -1.0\\]"),
])
def test_bad_grid_overrides(entry, message):
    with pytest.raises(MirrorpoError, match=message):
        parse_grid([entry], ["dpo", "cpo", "sft"])


def test_machine_names_the_cpu_its_isa_and_the_xla_flags_in_force():
    import os
    import platform

    import jax

    m = machine()
    assert m["xla_flags"] == os.environ.get("XLA_FLAGS", "") and m["jax"] == jax.__version__
    assert m["cores"] == os.cpu_count() and m["cpu"]
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        from pathlib import Path

        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in cpuinfo if line.startswith("flags")).split()
        assert m["isa"] in flags and m["isa"] in ("avx512f", "avx2", "avx", "sse4_2")
        assert m["isa"] == "avx512f" or "avx512f" not in flags
        family = next(line for line in cpuinfo if line.startswith("cpu family")).split(":")[1].strip()
        assert m["cpu_id"].split()[:3] == [next(line for line in cpuinfo if line.startswith("vendor_id")).split(":")[1].strip(),
                                          "family", family]
