#!/usr/bin/env bash
# A small discovery run that fits a 2-core CPU (~15 min): the quick preset's data and inner loop,
# population 16, 24 generations, one-step MPO with a learned ψ on noisy-0.2 TLA. Then the discovered
# objective (ES mean) is benchmarked on every quick TLA variant and transferred to quick Hopper.
# Paper-scale discovery (population 256, 256 generations) is for a GPU: see README "Reproducing".
set -euo pipefail
SUITE=${SUITE:-v2}  # suite version; the results under docs/results/v1/ were made with SUITE=v1
OUT=${OUT:-runs/discover-tla-quick}
mirrorpo discover --suite "$SUITE" --task tla --variant noisy-0.2 --family one-step --learn psi --preset quick \
  --population 16 --generations 24 --out "$OUT"
OBJ="mpo:$OUT/mean_objective.mpo.safetensors"
mirrorpo bench --suite "$SUITE" --task tla --preset quick --algos "mpo_one_step,$OBJ" --out "$OUT/bench-tla"
mirrorpo bench --suite "$SUITE" --task hopper --preset quick --algos "mpo_one_step,cpo,$OBJ" --variants mixed,noisy-0.2 \
  --out "$OUT/bench-hopper"
