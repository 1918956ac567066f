"""Tiny local model, tokenizer and preference data for the LLM tests (nothing is downloaded)."""

from __future__ import annotations

import json
import random
import warnings

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")


@pytest.fixture(autouse=True, scope="session")
def _quiet_and_offline():
    import os

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import datasets
    import torch
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is as fast, and far faster on a busy CPU
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tokenizer():
    from mirrorpo.llm.tiny import char_tokenizer

    return char_tokenizer()


@pytest.fixture
def make_model(tokenizer):
    from mirrorpo.llm.tiny import tiny_llama

    def make(seed: int = 0):
        return tiny_llama(tokenizer, hidden=32, layers=1, heads=2, seed=seed)

    return make


@pytest.fixture(scope="session")
def pref_rows():
    from mirrorpo.llm.tiny import SortingProblem

    problem, rng = SortingProblem(3, 5), random.Random(0)
    rows = []
    for _ in range(16):
        p, a = problem.sample(rng)
        rows.append({"prompt": p, "chosen": a, "rejected": problem.digits_of(p)[::-1]})
    return rows


@pytest.fixture
def pref_dataset(pref_rows):
    from datasets import Dataset

    return Dataset.from_list(pref_rows)


@pytest.fixture(scope="session")
def local_model_dir(tmp_path_factory, tokenizer):
    """A tiny model and tokenizer saved with save_pretrained, as a user's local checkpoint."""
    from mirrorpo.llm.tiny import tiny_llama

    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama(tokenizer, hidden=32, layers=1, heads=2).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def jsonl_dataset(tmp_path_factory, pref_rows):
    path = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pref_rows))
    return path


TINY_SETTINGS = {"per_device_train_batch_size": 4, "max_steps": 3, "learning_rate": 1e-2, "bf16": False,
                 "gradient_checkpointing": False, "report_to": [], "logging_steps": 1, "save_strategy": "no",
                 "use_cpu": True, "disable_tqdm": True, "seed": 0, "lr_scheduler_type": "constant"}


@pytest.fixture(scope="session")
def tiny_settings():
    """Trainer settings for a few CPU steps (shared by MirrorPOConfig and TRL's DPOConfig)."""
    return dict(TINY_SETTINGS)


@pytest.fixture(scope="session")
def tiny_args():
    """``tiny_args(out, **overrides)`` → a MirrorPOConfig for a few CPU steps."""
    from mirrorpo.llm.trainer import MirrorPOConfig

    def make(out, **kw):
        return MirrorPOConfig(output_dir=str(out), **{**TINY_SETTINGS, **kw})

    return make


def pytest_collection_modifyitems(config, items):
    """transformers / TRL deprecation notices are not ours to fix: keep them out of the LLM tests' output."""
    for item in items:
        if "tests/llm/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::FutureWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning"))
