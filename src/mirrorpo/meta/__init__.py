"""Meta-learning: discovering MPO objectives with evolution strategies."""

from mirrorpo.meta.discovery import Discovery, DiscoveryConfig, DiscoveryError, make_strategy
from mirrorpo.meta.sharding import host_array, init_distributed, is_main_process, population_sharding

__all__ = ["Discovery", "DiscoveryConfig", "DiscoveryError", "host_array", "init_distributed", "is_main_process",
           "make_strategy", "population_sharding"]
