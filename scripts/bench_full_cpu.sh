#!/usr/bin/env bash
# The full TLA preset on a CPU, in the background, most informative cells first: the paper's baselines on
# the base dataset and at noise 0.3 (the four findings of DESIGN §5), then every other cell.
# Cells are cached under OUT/cells, so rerunning this resumes where a killed run stopped, across sessions;
# OUT/results.{json,csv} and leaderboard.png are rewritten after every finished cell.
set -euo pipefail
OUT=${OUT:-runs/bench-tla-full}
PAPER=sft,rrhf,slic_hf,lpo,dpo,ipo,cpo,orpo,rdpo,simpo
mkdir -p "$OUT"
mirrorpo bench --task tla --preset full --variants base,noisy-0.3 --algos "$PAPER" --out "$OUT"
mirrorpo bench --task tla --preset full --out "$OUT"
