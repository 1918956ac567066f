#!/usr/bin/env bash
# The full TLA preset on a CPU, in the background, most informative cells first: the paper's baselines on
# the base dataset, then at noise 0.3 (SFT-term losses and SimPO first: the findings of docs/design.md §5 rest on
# them), then every other cell. Cells are cached under OUT/cells, so rerunning this resumes where a killed
# run stopped, across sessions; OUT/results.{json,csv} and leaderboard.png are rewritten after every
# finished cell (they list the cells of the current step; collect every finished cell with
# `mirrorpo bench --suite "$SUITE" --task tla --preset full --cached-only --out "$OUT"`).
set -euo pipefail
SUITE=${SUITE:-v2}  # suite version; the results under docs/results/v1/ were made with SUITE=v1
OUT=${OUT:-runs/bench-tla-full}
mkdir -p "$OUT"
mirrorpo bench --suite "$SUITE" --task tla --preset full --variants base --algos sft,rrhf,slic_hf,lpo,dpo,ipo,cpo,orpo,rdpo,simpo \
  --out "$OUT"
mirrorpo bench --suite "$SUITE" --task tla --preset full --variants noisy-0.3 --algos sft,simpo,cpo,orpo,dpo,ipo,rdpo,lpo,slic_hf,rrhf \
  --out "$OUT"
mirrorpo bench --suite "$SUITE" --task tla --preset full --out "$OUT"
