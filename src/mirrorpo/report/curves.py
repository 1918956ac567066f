"""Curves and tables for TensorBoard (``--log-dir``), written with tensorboardX.

    tensorboard --logdir LOG_DIR

* discovery: ``discovery/return_mean``, ``return_max``, ``return_min``, ``best_return``, ``sigma``,
  ``nonfinite``, ``seconds`` per generation;
* bench: ``bench/<variant>/<algo>`` (the cell's mean true return, step = the cell's index in the run)
  and, at the end, the table beside the paper's as a Markdown text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

DISCOVERY_SCALARS = ("return_mean", "return_max", "return_min", "best_return", "sigma", "nonfinite", "seconds")


class CurveLog:
    """A TensorBoard event file in ``log_dir``; every method is a no-op when ``log_dir`` is None."""

    def __init__(self, log_dir: str | Path | None):
        self.writer = None
        if log_dir is not None:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))

    def scalar(self, tag: str, value, step: int) -> None:
        if self.writer is not None and value is not None:
            self.writer.add_scalar(tag, float(value), step)

    def generation(self, row: dict) -> None:
        for name in DISCOVERY_SCALARS:
            self.scalar(f"discovery/{name}", row.get(name), int(row["generation"]))

    def cell(self, record: dict, index: int) -> None:
        self.scalar(f"bench/{record['variant']}/{record['algo']}", record.get("mean"), index)

    def text(self, tag: str, markdown: str) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, markdown)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@contextlib.contextmanager
def curve_log(log_dir: str | Path | None) -> Iterator[CurveLog]:
    log = CurveLog(log_dir)
    try:
        yield log
    finally:
        log.close()
