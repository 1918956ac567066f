"""The diagnostic benchmark: per (algorithm, dataset variant) hyper-parameter search, seeds, leaderboard."""

from mirrorpo.benchmark.presets import (
    ALL_VARIANTS,
    PRESETS,
    Preset,
    get_preset,
    grid,
    parse_grid,
    parse_variant,
)
from mirrorpo.benchmark.runner import Bench, BenchTask, CellResult, check_cells, dataset_pairs, mean_stderr

__all__ = ["ALL_VARIANTS", "PRESETS", "Bench", "BenchTask", "CellResult", "Preset", "check_cells", "dataset_pairs",
           "get_preset", "grid", "mean_stderr", "parse_grid", "parse_variant"]
