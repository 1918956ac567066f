"""Meta-learning: discovering MPO objectives with evolution strategies."""

from mirrorpo.meta.discovery import Discovery, DiscoveryConfig, DiscoveryError, make_strategy
from mirrorpo.meta.sharding import init_distributed, population_sharding

__all__ = ["Discovery", "DiscoveryConfig", "DiscoveryError", "init_distributed", "make_strategy",
           "population_sharding"]
