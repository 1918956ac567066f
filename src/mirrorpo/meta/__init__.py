"""Meta-learning: discovering MPO objectives with evolution strategies."""

from mirrorpo.meta.discovery import (
           SCALES,
           Discovery,
           DiscoveryConfig,
           DiscoveryError,
           default_scale,
           make_strategy,
)
from mirrorpo.meta.sharding import host_array, init_distributed, is_main_process, population_sharding

__all__ = [
           "SCALES",
           "Discovery",
           "DiscoveryConfig",
           "DiscoveryError",
           "default_scale",
           "host_array",
           "init_distributed",
           "is_main_process",
           "make_strategy",
           "population_sharding",
]
