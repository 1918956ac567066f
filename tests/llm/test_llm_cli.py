"""`mirrorpo llm ...`: clear one-line errors (exit code 2) and end-to-end training from local files."""

from __future__ import annotations

import json
import sys

from mirrorpo.cli import main


def run_cli(monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["mirrorpo", *map(str, argv)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, *needles):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), err
    assert len(lines) <= 3, err  # one message (rich may wrap it), nothing else
    for needle in needles:
        assert needle in err, (needle, err)


def test_unreachable_local_model(monkeypatch, capsys, tmp_path, jsonl_dataset):
    code, _, err = run_cli(monkeypatch, capsys, "llm", "train", "--model", tmp_path / "no-such-model",
                           "--dataset", jsonl_dataset, "--loss", "dpo", "--out", tmp_path / "out")
    assert_clean_error(code, err, "cannot load model", "no-such-model")


def test_unreachable_hub_model_and_dataset(monkeypatch, capsys, tmp_path, jsonl_dataset, local_model_dir):
    code, _, err = run_cli(monkeypatch, capsys, "llm", "train", "--model", "no-such-org/no-such-model",
                           "--dataset", jsonl_dataset, "--out", tmp_path / "out", "--offline")
    assert_clean_error(code, err, "cannot load model 'no-such-org/no-such-model'", "Hub")
    code, _, err = run_cli(monkeypatch, capsys, "llm", "train", "--model", local_model_dir,
                           "--dataset", "no-such-org/no-such-dataset", "--out", tmp_path / "out", "--offline")
    assert_clean_error(code, err, "cannot load dataset 'no-such-org/no-such-dataset'", "Hub")
    code, _, err = run_cli(monkeypatch, capsys, "llm", "train", "--model", local_model_dir,
                           "--dataset", tmp_path / "missing.jsonl", "--out", tmp_path / "out")
    assert_clean_error(code, err, "cannot load dataset", "no such file")


def test_bad_loss_and_bad_dataset(monkeypatch, capsys, tmp_path, local_model_dir, jsonl_dataset):
    code, _, err = run_cli(monkeypatch, capsys, "llm", "train", "--model", local_model_dir, "--dataset",
                           jsonl_dataset, "--out", tmp_path / "o", "--loss", "no_such_loss")
    assert_clean_error(code, err, "unknown loss 'no_such_loss'")
    code, _, err = run_cli(monkeypatch, capsys, "llm", "train", "--model", local_model_dir, "--dataset",
                           jsonl_dataset, "--out", tmp_path / "o", "--loss", "dpo", "--hp", "beta=-2")
    assert_clean_error(code, err, "beta must be > 0")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "x", "answer": "y"}) + "\n")
    code, _, err = run_cli(monkeypatch, capsys, "llm", "train", "--model", local_model_dir, "--dataset", bad,
                           "--out", tmp_path / "o")
    assert_clean_error(code, err, "prompt / chosen / rejected")


def test_train_from_local_files_full_and_lora(monkeypatch, capsys, tmp_path, local_model_dir, jsonl_dataset):
    out = tmp_path / "full"
    code, stdout, err = run_cli(monkeypatch, capsys, "llm", "train", "--model", local_model_dir, "--dataset",
                                jsonl_dataset, "--out", out, "--loss", "dpo+0.5*sft", "--hp", "beta=0.2",
                                "--preset", "trl", "--max-steps", "2", "--batch-size", "4", "--lr", "1e-3")
    assert code == 0, err
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    desc = json.loads((out / "mirrorpo_loss.json").read_text())
    assert desc["loss"] == "dpo+0.5*sft" and desc["hparams"] == {"beta": 0.2} and desc["needs_reference"]
    history = json.loads((out / "log_history.json").read_text())
    assert history[-1]["step"] == 2

    out = tmp_path / "lora"
    code, stdout, err = run_cli(monkeypatch, capsys, "llm", "train", "--model", local_model_dir, "--dataset",
                                jsonl_dataset, "--out", out, "--loss", "colpo", "--max-steps", "2",
                                "--batch-size", "2", "--grad-accum", "1", "--lora-r", "4", "--lora-alpha", "8")
    assert code == 0, err
    assert "LoRA" in stdout and "no reference" in stdout
    assert (out / "adapter_model.safetensors").exists() and (out / "adapter_config.json").exists()
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_dropout"] == 0.05


def test_llm_losses_lists_torch_coverage(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "llm", "losses", "--json")
    assert code == 0
    rows = json.loads(out)
    assert rows and all(r["torch"] for r in rows)


def test_cli_import_stays_light():
    import subprocess

    code = ("import sys, mirrorpo.cli; heavy = [m for m in ('torch', 'transformers', 'trl') if m in sys.modules];"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bench_variants_are_the_suites_and_lists_comma_separated(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "llm", "bench", "--out", tmp_path, "--variants", "base,badjudge")
    assert_clean_error(code, err, "'badjudge' is now written 'bad-judge'")
    code, _, err = run_cli(monkeypatch, capsys, "llm", "bench", "--out", tmp_path, "--variants", "noisy-0.5")
    assert_clean_error(code, err, "unknown variant 'noisy-0.5'")
    code, _, err = run_cli(monkeypatch, capsys, "llm", "bench", "--out", tmp_path, "--losses", "dpo orpo")
    assert_clean_error(code, err, "--losses takes a comma-separated list")
    code, _, err = run_cli(monkeypatch, capsys, "llm", "bench", "--out", tmp_path, "--seeds", "0")
    assert_clean_error(code, err, "--seeds must be ≥ 1")
    assert not any(tmp_path.iterdir())  # refused before any work


def test_train_choices_are_enumerated(tmp_path, jsonl_dataset):
    from typer.testing import CliRunner

    from mirrorpo.cli import app

    for option, value, valid in (("--preset", "nope", "'trl'"), ("--dtype", "float8", "'bfloat16'")):
        res = CliRunner().invoke(app, ["llm", "train", "--model", "m", "--dataset", str(jsonl_dataset),
                                       "--out", str(tmp_path / "o"), option, value])
        assert res.exit_code == 2 and f"Invalid value for '{option}'" in res.output and valid in res.output, \
            res.output
