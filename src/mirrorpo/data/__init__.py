"""Preference datasets: trajectory pairs from two agents, a Bradley–Terry judge on true returns,
the base / noisy / mixed / bad-judge variants, and a documented on-disk format."""

from mirrorpo.data.format import DatasetError, PreferenceDataset, load_dataset, save_dataset
from mirrorpo.data.generation import TASKS, VARIANTS, GenerationConfig, PairSampler, generate, generate_chunk
from mirrorpo.data.info import dataset_info
from mirrorpo.data.judge import assign_agents, flip_labels, judge, preference_probability

__all__ = ["TASKS", "VARIANTS", "DatasetError", "GenerationConfig", "PairSampler", "PreferenceDataset",
           "assign_agents", "dataset_info", "flip_labels", "generate", "generate_chunk", "judge", "load_dataset",
           "preference_probability", "save_dataset"]
