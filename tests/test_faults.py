"""Fault injection: a bench and a discovery SIGKILLed at random moments resume to the results of an
uninterrupted run, and two runs on one output folder exclude each other."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mirrorpo.errors import MirrorpoError
from mirrorpo.fileio import run_lock

ROOT = str(Path(__file__).resolve().parents[1])
WORKER = """
import json, sys
sys.path.insert(0, {root!r})
from dataclasses import replace
from tests.toy_task import ToyTask
kind, out = sys.argv[1], sys.argv[2]
if kind == "bench":
    from mirrorpo.benchmark import Bench
    from tests.benchmark.test_bench import TINY
    records = Bench(ToyTask(), TINY, out).run(["sft", "dpo", "cpo", "simpo"], ["base", "noisy-0.2"])
    print(json.dumps([{{k: v for k, v in r.items() if k != "seconds"}} for r in records]))
else:
    from mirrorpo.losses import load_objective
    from mirrorpo.meta import Discovery
    from mirrorpo.train import TrainConfig
    from tests.meta.test_discovery import TINY, CONFIG
    slower = replace(TINY, pairs=64, train=TrainConfig(epochs=200, lr=0.05))  # ≈ 0.2 s a generation
    done = Discovery(ToyTask(), slower, replace(CONFIG, generations=20), out).run()
    print(json.dumps({{"mean": load_objective(done["paths"]["mean"]).flat.tolist(),
                      "best": load_objective(done["paths"]["best"]).flat.tolist(),
                      "log": [{{k: v for k, v in r.items() if not k.endswith("_s") and k != "seconds"}}
                              for r in done["log"]]}}))
"""
KILLS = 5


def _start(kind: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER.format(root=ROOT), kind, str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen):
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    return json.loads(stdout.strip().splitlines()[-1])


def _progress(kind: str, out: Path) -> int:
    """Units of work finished in ``out``: cells of a bench, generations of a discovery."""
    if kind == "bench":
        return len(list(out.glob("cells/*/*.json")))
    log = out / "log.jsonl"
    return len(log.read_text().splitlines()) if log.is_file() else 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bench", "discover"])
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(kind, tmp_path):
    clean = _finish(_start(kind, tmp_path / "clean"))
    rng = random.Random(17)  # the kill moments, from a fixed seed
    out, landed = tmp_path / "killed", 0
    for _ in range(4 * KILLS):
        before = _progress(kind, out)
        proc = _start(kind, out)
        # a random moment: after 0 or 1 more finished units of work (start-up, data, compilation, or
        # the middle of a unit), then a random fraction of a second more
        target = before + rng.choice([0, 1])
        while _progress(kind, out) < target and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is not None:  # finished before the kill: nothing left to interrupt
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        landed += 1
        if landed == KILLS:
            break
    assert landed == KILLS, f"only {landed} kills landed before the run finished; make the run longer"
    assert _progress(kind, out) < _progress(kind, tmp_path / "clean")  # the kills did interrupt the work
    assert _finish(_start(kind, out)) == clean


def test_two_runs_on_one_folder_exclude_each_other(tmp_path):
    with run_lock(tmp_path, "bench"):
        assert (tmp_path / ".lock").read_text() == f"pid {os.getpid()}"
        held = f"in use by another bench \\(pid {os.getpid()}\\).*another --out"
        with pytest.raises(MirrorpoError, match=held), run_lock(tmp_path, "bench"):
            pass
        proc = _start("bench", tmp_path)  # a second process is refused too, at once, with one line
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode != 0 and "is in use by another bench" in stderr
        assert not (tmp_path / "cells").exists()
    with run_lock(tmp_path, "bench"):  # released: the folder can be used again
        pass
