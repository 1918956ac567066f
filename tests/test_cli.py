"""The `mirrorpo` command: catalogue, landscape, data info, and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys

import pytest

from mirrorpo.data import GenerationConfig, generate
from mirrorpo.losses import LOSSES
from tests.toy_task import ToySampler


def mirrorpo(*args, timeout=300, env=None):
    """Run the CLI in a fresh interpreter; ``env`` adds environment variables."""
    code = "import sys; from mirrorpo.cli import main; sys.argv = ['mirrorpo', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          check=False, env=None if env is None else {**os.environ, **env})


def test_losses_json_lists_every_loss_with_defaults():
    proc = mirrorpo("losses", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(LOSSES)
    assert rows["dpo"]["hparams"] == {"beta": 0.1} and rows["dpo"]["needs_reference"]
    assert rows["colpo"]["formula"].startswith("−λ·ℓ_w")


def test_landscape_writes_png_and_errors_are_one_line(tmp_path):
    out = tmp_path / "x.png"
    proc = mirrorpo("landscape", "--loss", "simpo", "--out", str(out), "--hp", "beta=2", "--n", "9")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for args, message in ((("--loss", "nope"), "Valid names"), (("--loss", "dpo", "--hp", "beta=-1"), "beta must be > 0"),
                          (("--loss", "dpo", "--hp", "beta"), "NAME=NUMBER")):
        proc = mirrorpo("landscape", *args, "--out", str(out))
        assert proc.returncode == 2
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("as_json", [True, False])
def test_data_info(tmp_path, as_json):
    folder = generate(GenerationConfig(task="tla", variant="noisy", epsilon=0.2, pairs=32, horizon=4, chunk_size=16),
                      tmp_path / "ds", ToySampler())
    proc = mirrorpo("data", "info", str(folder), *(["--json"] if as_json else []))
    assert proc.returncode == 0, proc.stderr
    if as_json:
        info = json.loads(proc.stdout)
        assert info["pairs"] == 32 and {"flip_rate", "label_agreement", "agent_mix"} <= set(info)
    else:
        assert "realised flip rate" in proc.stdout
    proc = mirrorpo("data", "info", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_bench_errors_are_one_line(tmp_path):
    for args, msg in ((["--cached-only"], "holds no finished cells"), (["--algos", "nope"], "Valid names"),
                      (["--variants", "noisy-0.9"], "unknown variant"), (["--seeds", "0"], "--seeds must be"),
                      (["--algos", "sft", "--grid", "beta=0.1"], "no loss of this run (sft) has")):
        proc = mirrorpo("bench", "--out", str(tmp_path / "b"), *args)
        assert proc.returncode == 2 and msg in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
