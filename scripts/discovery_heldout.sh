#!/usr/bin/env bash
# Held-out judgement of the CPU searches (issue 16): each objective on every quick variant (the
# cross-table), base seed 1 (a dataset, training seeds and evaluation keys the seed-0 searches never
# saw; SEED=2 a second held-out seed), 10 seeds, the paper's ten baselines with their full grids
# searched at the same scale.
# One folder: the baselines' cells are shared. Resumable (finished cells are cached).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/results/discovery/heldout}
VARIANTS=${VARIANTS:-mixed,noisy-0.3,base,noisy-0.2}
for run in ${RUNS:-tla-mixed tla-noisy-0.3}; do
  .venv/bin/mirrorpo judge "mpo:docs/results/discovery/$run/mean_objective.mpo.safetensors" --task tla \
    --variants "$VARIANTS" --seeds 10 --seed "${SEED:-1}" --out "$OUT"
done
