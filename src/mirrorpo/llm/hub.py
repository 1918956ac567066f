"""Loading models and preference datasets from a local path or the Hugging Face Hub, failing fast
with one clear :class:`~mirrorpo.errors.MirrorpoError` when they cannot be reached.

Local paths are used as they are. A Hub id is tried only when the Hub answers (a 3-second probe);
otherwise, or with ``offline=True``, the libraries run in offline mode (local cache only), so an
unreachable Hub costs seconds, not the minutes of retries the libraries would spend.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from mirrorpo.errors import MirrorpoError

DATA_SUFFIXES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow"}
REQUIRED_COLUMNS = ("chosen", "rejected")  # "prompt" too, unless conversational (TRL extracts it)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint accepts a TCP connection within ``timeout`` seconds."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def offline_mode(enabled: bool = True):
    """Run the block with huggingface_hub / transformers / datasets in offline mode (cache only)."""
    if not enabled:
        yield
        return
    import datasets.config
    import huggingface_hub.constants as hub_constants

    saved_env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")}
    saved = (hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE)
    os.environ.update(dict.fromkeys(saved_env, "1"))
    hub_constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE = saved
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _is_local(ref: str) -> bool:
    return Path(ref).expanduser().exists()


def _looks_like_path(ref: str) -> bool:
    return ref.startswith(("/", "./", "../", "~")) or Path(ref).suffix.lower() in DATA_SUFFIXES \
        or ref.count("/") > 1


def decide_offline(ref: str, offline: bool | None) -> bool:
    """Whether to load the Hub id ``ref`` in offline mode (local cache only): ``offline`` if given, else
    true when HF_HUB_OFFLINE is set or the Hub does not answer a quick probe."""
    if offline is not None:
        return offline
    import huggingface_hub.constants as hub_constants

    return bool(hub_constants.HF_HUB_OFFLINE) or not hub_reachable()


def _unreachable(kind: str, ref: str, offline: bool, exc: BaseException | None) -> MirrorpoError:
    if _looks_like_path(ref):
        return MirrorpoError(f"cannot load {kind} '{ref}': no such file or directory.")
    where = ("the Hugging Face Hub is unreachable (or offline mode is on) and it is not in the local cache"
             if offline else "it was not found on the Hugging Face Hub")
    detail = f" ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})" if exc is not None and str(exc) else ""
    return MirrorpoError(f"cannot load {kind} '{ref}': not a local path; {where}{detail}. "
                         f"Pass a local directory or file, or connect to the Hub.")


# --- datasets ---------------------------------------------------------------------------------------------


def load_preference_dataset(ref: str, *, split: str = "train", offline: bool | None = None):
    """A ``datasets.Dataset`` in the prompt / chosen / rejected convention, from a local json / jsonl /
    parquet / csv file, a directory saved with ``save_to_disk`` (a Dataset or a DatasetDict), a
    directory of data files, or a Hub id (e.g. ``argilla/dpo-mix-7k``)."""
    import datasets

    datasets.disable_progress_bars()
    path = Path(ref).expanduser()
    try:
        if path.is_file():
            builder = DATA_SUFFIXES.get(path.suffix.lower())
            if builder is None:
                raise MirrorpoError(f"cannot read dataset file '{ref}': use one of {', '.join(sorted(DATA_SUFFIXES))}.")
            ds = datasets.load_dataset(builder, data_files=str(path), split="train")
        elif path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() \
                    or (path / "state.json").exists():
                ds = datasets.load_from_disk(str(path))
            else:
                ds = datasets.load_dataset(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = _pick_split(ds, split, ref)
        else:
            if _looks_like_path(ref):
                raise _unreachable("dataset", ref, True, None)
            is_offline = decide_offline(ref, offline)
            with offline_mode(is_offline):
                try:
                    ds = datasets.load_dataset(ref, split=split)
                except (OSError, ValueError, FileNotFoundError) as exc:  # ConnectionError ⊂ OSError
                    if isinstance(exc, ValueError) and "split" in str(exc).lower():
                        raise MirrorpoError(f"dataset '{ref}' has no split '{split}': {exc}") from None
                    raise _unreachable("dataset", ref, is_offline, exc) from None
                except Exception as exc:  # noqa: BLE001  (DatasetNotFoundError, HfHubHTTPError, ...)
                    raise _unreachable("dataset", ref, is_offline, exc) from None
    except MirrorpoError:
        raise
    except Exception as exc:  # noqa: BLE001  (a damaged local file: many exception types)
        raise MirrorpoError(f"cannot read dataset '{ref}': {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") \
            from None
    check_preference_columns(ds, ref)
    return ds


def _pick_split(dd, split: str, ref: str):
    if split in dd:
        return dd[split]
    if len(dd) == 1:
        return next(iter(dd.values()))
    raise MirrorpoError(f"dataset '{ref}' has splits {sorted(dd)}; choose one with --split.")


def check_preference_columns(ds, ref: str) -> None:
    cols = list(ds.column_names)
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise MirrorpoError(f"dataset '{ref}' has columns {cols}; a preference dataset needs prompt / chosen / "
                            f"rejected (prompt may be implicit in conversational chosen/rejected). Missing: "
                            f"{', '.join(missing)}.")
    if len(ds) == 0:
        raise MirrorpoError(f"dataset '{ref}' is empty.")
    if "prompt" not in cols and isinstance(ds[0]["chosen"], str):
        raise MirrorpoError(f"dataset '{ref}' has no 'prompt' column and its 'chosen' is plain text: add a prompt "
                            "column (the prompt can be implicit only in conversational data).")


# --- models -----------------------------------------------------------------------------------------------


def load_model_and_tokenizer(ref: str, *, offline: bool | None = None, dtype: str = "float32",
                             trust_remote_code: bool = False):
    """``(model, tokenizer)`` for a causal LM at a local directory or Hub id; one clear error if it
    cannot be reached or is not a causal LM."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = _is_local(ref)
    if not local and _looks_like_path(ref):
        raise _unreachable("model", ref, True, None)
    is_offline = False if local else decide_offline(ref, offline)
    import torch

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}
    if dtype not in torch_dtype:
        raise MirrorpoError(f"--dtype must be one of {', '.join(torch_dtype)}; got {dtype!r}.")
    with offline_mode(is_offline):
        try:
            tokenizer = AutoTokenizer.from_pretrained(ref, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(ref, dtype=torch_dtype[dtype],
                                                         trust_remote_code=trust_remote_code)
        except OSError as exc:  # not found, offline, no such local file; also ConnectionError
            if local:
                raise MirrorpoError(f"cannot load model '{ref}': {str(exc).splitlines()[0][:300]}") from None
            raise _unreachable("model", ref, is_offline, exc) from None
        except ValueError as exc:  # unrecognized configuration / not a causal LM
            raise MirrorpoError(f"cannot load '{ref}' as a causal language model: {str(exc).splitlines()[0][:300]}") \
                from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
