"""Meta-learning: discovering MPO objectives with evolution strategies."""

from mirrorpo.meta.discovery import (
           SCALES,
           Discovery,
           DiscoveryConfig,
           DiscoveryError,
           default_scale,
           make_strategy,
)
from mirrorpo.meta.sharding import (
           init_distributed,
           is_main_process,
           map_local_shards,
           population_sharding,
           use_cpu_devices,
)

__all__ = ["SCALES", "Discovery", "DiscoveryConfig", "DiscoveryError", "default_scale", "init_distributed",
           "is_main_process", "make_strategy", "map_local_shards", "population_sharding", "use_cpu_devices"]
