#!/usr/bin/env bash
# The CPU search configuration (issue 16): one-step MPO, learned ψ only (9 units, 27 parameters: on
# 8-dimensional continuous actions p = exp(mean log-prob per step) is ~1e-19, so learned g and ϕ⁻¹,
# which see p, are inert), λ = 1 (the quick preset's ORPO), σ₀ 0.5, ES lr 0.1, population 16, fresh
# keys every generation, quick preset data. Usage: scripts/discover_cpu_search.sh VARIANT [MINUTES]
# DATASETS=K rotates the generations over K datasets of the variant (--datasets); TRAIN_SEEDS=N averages
# each fitness over N training seeds, each on its own dataset (--train-seeds); GENERATIONS=G raises the
# cap of 300 (a finished run rerun with a larger cap continues). Resumable (rerun continues from
# OUT/checkpoint.msgpack); stops cleanly within the time budget.
set -euo pipefail
cd "$(dirname "$0")/.."
VARIANT=${1:?variant, e.g. mixed or noisy-0.3}
MINUTES=${2:-80}
OUT=${OUT:-docs/results/discovery/tla-$VARIANT}
.venv/bin/mirrorpo discover --task tla --variant "$VARIANT" --preset quick --family one-step --learn psi \
  --hidden 9 --lam 1 --sigma0 0.5 --lr 0.1 --population 16 --generations "${GENERATIONS:-300}" --time-budget "$MINUTES" \
  ${TEMPORAL:+--temporal} ${DATASETS:+--datasets "$DATASETS"} \
  ${TRAIN_SEEDS:+--train-seeds "$TRAIN_SEEDS"} --out "$OUT"
