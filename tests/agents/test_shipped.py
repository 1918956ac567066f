"""The shipped agents: manifest, structure of the paper, and returns re-measured on a few episodes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mirrorpo.agents import load_agent, shipped
from mirrorpo.agents.checkpoint import sha256_file

EPISODES = 6  # full-length episodes per re-measurement (one batch)
FIDELITY_AGENTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "fidelity" / "agents"
POLICY_AGENTS = FIDELITY_AGENTS.with_name("agents-policy")


def test_manifest_lists_the_four_agents_with_hashes():
    m = shipped.manifest()
    names = [a["name"] for a in m["agents"]]
    assert sorted(names) == sorted(shipped.AGENT_NAMES)
    for a in m["agents"]:
        assert sha256_file(shipped.ROOT / a["file"]) == a["sha256"]
        assert a["steps"] > 0 and "seed" in a and a["training_command"]
        for r in a["returns"].values():
            assert set(r) >= {"mean", "stderr", "episodes"} and r["episodes"] >= 1 and r["stderr"] >= 0
        _params, meta = load_agent(a["name"], a["env"])
        assert meta["env"] == a["env"]


def test_manifest_has_the_structure_of_the_paper():
    r = {a["name"]: a["returns"] for a in shipped.list_agents()}
    orig_ant, orig_tla = r["ant_original"]["ant"]["mean"], r["ant_original"]["three_legged_ant"]["mean"]
    target_tla = r["tla_target"]["three_legged_ant"]["mean"]
    assert orig_ant > orig_tla + 500  # the original agent pays heavily for its fourth leg on TLA
    assert target_tla >= 1.8 * orig_tla
    assert r["hopper_expert"]["hopper"]["mean"] >= 2 * r["hopper_bad"]["hopper"]["mean"]


def test_fidelity_candidate_targets_have_the_structure_of_the_paper_on_their_environments():
    """The TLA targets retrained for the fidelity study: files as the manifest says, and on each one's
    environment the original agent pays for its fourth leg while the target does not."""
    m = json.loads((FIDELITY_AGENTS / "manifest.json").read_text())
    original, orig_ant = m["original_agent"]["returns"], shipped.entry("ant_original")["returns"]["ant"]["mean"]
    assert {a["env"] for a in m["agents"]} == {"three_legged_ant_foot", "three_legged_ant_disabled"}
    for a in m["agents"]:
        assert sha256_file(FIDELITY_AGENTS / a["file"]) == a["sha256"] and a["training_command"]
        _params, meta = load_agent(str(FIDELITY_AGENTS / a["name"]), a["env"])
        assert meta["env"] == a["env"]
        assert orig_ant > original[a["env"]]["mean"] + 500
        assert a["returns"][a["env"]]["mean"] >= 1.8 * original[a["env"]]["mean"]


@pytest.mark.parametrize("tag, kind", [("tanh_sd", "tanh_gaussian_sd"), ("sd", "gaussian_sd")])
def test_fidelity_policy_candidates_have_the_structure_of_the_paper(tag, kind):
    """Both TLA agents retrained with brax's policy network: files and kind as the manifest says, and the
    paper's structure (the original pays for its fourth leg on TLA, the target does not)."""
    m = {a["name"]: a for a in json.loads((POLICY_AGENTS / "manifest.json").read_text())["agents"]}
    original, target = m[f"ant_original_{tag}"], m[f"tla_target_{tag}"]
    for a, env in ((original, "ant"), (target, "three_legged_ant")):
        assert sha256_file(POLICY_AGENTS / a["file"]) == a["sha256"] and a["training_command"]
        _params, meta = load_agent(str(POLICY_AGENTS / a["name"]), env)
        assert meta["env"] == env and meta["policy_kind"] == a["policy_kind"] == kind
    orig = original["returns"]
    assert orig["ant"]["mean"] > orig["three_legged_ant"]["mean"] + 500
    assert target["returns"]["three_legged_ant"]["mean"] >= 1.8 * orig["three_legged_ant"]["mean"]


def test_cli_list_json():
    out = subprocess.run([sys.executable, "-c", "from mirrorpo.cli import main; main()", "agents", "list", "--json"],
                         capture_output=True, text=True, check=True).stdout
    agents = json.loads(out)
    assert {a["name"] for a in agents} == set(shipped.AGENT_NAMES)
    for a in agents:
        assert a["env"] in ("ant", "three_legged_ant", "hopper")
        for r in a["returns"].values():
            assert isinstance(r["mean"], float) and isinstance(r["stderr"], float) and isinstance(r["episodes"], int)


def test_cli_import_does_not_import_brax():
    code = "import sys, mirrorpo.cli; assert 'brax' not in sys.modules and 'mujoco' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("name,env", [("ant_original", "ant"), ("ant_original", "three_legged_ant"),
                                      ("tla_target", "three_legged_ant"), ("hopper_expert", "hopper"),
                                      ("hopper_bad", "hopper")])
def test_returns_remeasured_are_consistent_with_manifest(name, env):
    """A few fresh full-length episodes (other seeds than the manifest's) must agree with the manifest's
    mean within 4 combined standard errors plus 10 % (policies' return distributions are skewed)."""
    from mirrorpo.agents.train import evaluate

    params, meta = load_agent(name, env)
    ref = shipped.entry(name)["returns"][env]
    got = evaluate(env, params, EPISODES, seed=777, backend=meta["backend"])
    sd = ref["stderr"] * np.sqrt(ref["episodes"])  # per-episode spread from the manifest
    tol = 4 * np.sqrt(ref["stderr"] ** 2 + sd**2 / EPISODES) + 0.1 * abs(ref["mean"])
    assert abs(got["mean"] - ref["mean"]) <= tol, (got, ref, tol)
