"""The `mirrorpo` command: catalogue, landscape, data info, and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys

import pytest

from mirrorpo.data import GenerationConfig, generate
from mirrorpo.errors import MirrorpoError
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
                      (["--algos", "sft", "--grid", "beta=0.1"], "no loss of this run (sft) has"),
                      (["--algos", "dpo simpo"], "--algos takes a comma-separated list")):
        proc = mirrorpo("bench", "--out", str(tmp_path / "b"), *args)
        assert proc.returncode == 2 and msg in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = mirrorpo("discover", "--learn", "psi g", "--out", str(tmp_path / "d"))
    assert proc.returncode == 2 and "--learn takes a comma-separated list" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "d").exists()


def test_comma_list_keeps_sums_and_refuses_spaced_lists():
    from mirrorpo.cli.options import comma_list

    assert comma_list("sft, 0.5 * sft + dpo,ipo", "--algos", "sft,dpo") == ("sft", "0.5*sft+dpo", "ipo")
    assert comma_list(None, "--algos", "sft,dpo") is None
    with pytest.raises(MirrorpoError, match="got 'dpo simpo'"):
        comma_list("sft, dpo simpo", "--algos", "sft,dpo")


def test_agents_and_data_choices_are_the_librarys():
    from typer.testing import CliRunner

    from mirrorpo.agents.policy import POLICY_KINDS
    from mirrorpo.benchmark import PRESETS
    from mirrorpo.cli import app
    from mirrorpo.cli.options import Backend, BenchPreset, Env, Family, PolicyKind, Suite, Task
    from mirrorpo.data.generation import TASKS
    from mirrorpo.envs import BACKENDS, ENV_NAMES
    from mirrorpo.losses.mpo import FAMILIES
    from mirrorpo.tasks import SUITE_VERSIONS

    assert [e.value for e in Env] == list(ENV_NAMES) and [b.value for b in Backend] == list(BACKENDS)
    assert [t.value for t in Task] == list(TASKS) and [k.value for k in PolicyKind] == list(POLICY_KINDS)
    assert [p.value for p in BenchPreset] == list(PRESETS) and [s.value for s in Suite] == list(SUITE_VERSIONS)
    assert [f.value for f in Family] == [f.replace("_", "-") for f in FAMILIES]
    for argv, option in ((["agents", "train", "--env", "ants", "--out", "o"], "--env"),
                         (["agents", "train", "--env", "ant", "--out", "o", "--backend", "nope"], "--backend"),
                         (["agents", "train", "--env", "ant", "--out", "o", "--policy", "tanh"], "--policy"),
                         (["agents", "eval", "ant_original", "--env", "ants"], "--env"),
                         (["data", "generate", "--task", "tla3", "--out", "o"], "--task"),
                         (["bench", "--task", "nope"], "--task"), (["bench", "--preset", "huge"], "--preset"),
                         (["bench", "--suite", "v9"], "--suite"), (["judge", "mpo:x", "--preset", "huge"], "--preset"),
                         (["compare", "out", "--task", "walker"], "--task"),
                         (["discover", "--family", "one_step"], "--family")):
        res = CliRunner().invoke(app, argv)
        assert res.exit_code == 2 and f"Invalid value for '{option}'" in res.output, res.output
    assert "three_legged_ant" in CliRunner().invoke(app, ["agents", "train", "--help"]).output


def test_data_variants_are_spelt_as_in_the_bench():
    from mirrorpo.cli.data import variant_and_epsilon
    from mirrorpo.errors import MirrorpoError

    assert variant_and_epsilon("noisy-0.2", 0.0) == ("noisy", 0.2) == variant_and_epsilon("noisy-0.2", 0.2)
    assert variant_and_epsilon("noisy", 0.1) == ("noisy", 0.1)
    assert variant_and_epsilon("bad-judge", 0.0) == ("bad-judge", 0.0)
    with pytest.raises(MirrorpoError, match="unknown variant"):
        variant_and_epsilon("noisy-0.7", 0.0)
    with pytest.raises(MirrorpoError, match="drop --epsilon"):
        variant_and_epsilon("noisy-0.2", 0.3)


def test_a_bad_option_value_is_a_usage_line_not_a_traceback():
    proc = mirrorpo("agents", "train", "--env", "ant", "--out", "o", "--policy-hidden", "32,x")
    assert proc.returncode == 2 and "error: --policy-hidden takes positive integers" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = mirrorpo("bench", "--seeds", "abc")
    assert proc.returncode == 2 and "Invalid value for '--seeds'" in proc.stderr and "Traceback" not in proc.stderr
    proc = mirrorpo("bench", "--no-such-option")
    assert proc.returncode == 2 and "No such option" in proc.stderr and "Traceback" not in proc.stderr
