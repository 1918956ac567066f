"""Summary statistics of a preference dataset (``mirrorpo data info``)."""

from __future__ import annotations

import numpy as np

from mirrorpo.data.format import PreferenceDataset


def dataset_info(ds: PreferenceDataset) -> dict:
    """Counts, agent mix, return statistics, label agreement with true returns, realised flip rate.

    ``label_agreement``: fraction of pairs (with unequal returns) whose chosen trajectory has the
    higher true return; ``expected_agreement``: the same under the Bradley–Terry judge before noise,
    mean σ(|ΔR| / T), for comparison.
    """
    names = [a["name"] for a in ds.meta["agents"]]
    agents, returns, preferred = ds.agents, ds.returns, ds.preferred.astype(np.int64)
    n = ds.num_pairs
    low, high = np.sort(agents, axis=1).T
    mix = {f"{names[i]}-{names[j]}": float(np.mean((low == i) & (high == j))) if n else 0.0
           for i in range(len(names)) for j in range(i, len(names))}
    per_agent = {}
    for i, name in enumerate(names):
        r = returns[agents == i]
        per_agent[name] = {"trajectories": int(r.size), "mean": float(r.mean()) if r.size else None,
                           "std": float(r.std()) if r.size else None,
                           "min": float(r.min()) if r.size else None, "max": float(r.max()) if r.size else None}
    gap = returns[:, 0] - returns[:, 1]
    decided = gap != 0
    better = np.where(gap > 0, 0, 1)
    agreement = float(np.mean(preferred[decided] == better[decided])) if decided.any() else None
    expected = float(np.mean(1.0 / (1.0 + np.exp(-np.abs(gap) / ds.meta["temperature"])))) if n else None
    lengths = ds.lengths
    return {
        "task": ds.meta["task"], "env": ds.meta["env"], "variant": ds.meta["variant"], "pairs": n,
        "horizon": ds.meta["horizon"], "temperature": ds.meta["temperature"], "epsilon": ds.meta["epsilon"],
        "seed": ds.meta["seed"], "agents": ds.meta["agents"], "agent_mix": mix, "returns": per_agent,
        "mean_length": float(lengths.mean()) if n else None,
        "label_agreement": agreement, "expected_agreement": expected,
        "flip_rate": float(ds.flipped.mean()) if n else None,
    }
