#!/usr/bin/env bash
# Tests the explanation of docs/results/v1/tla-full/README.md for six DPO-style losses returning identical
# results on the full TLA base dataset (their sigmoids saturate on margins summed over 1000 steps × 8
# action coordinates, for every β of the paper's grid 0.01–1): rerun three of them with β two and
# three orders of magnitude smaller. If the explanation holds they now differ from one another.
set -euo pipefail
SUITE=${SUITE:-v2}  # suite version; the results under docs/results/v1/ were made with SUITE=v1
OUT=${OUT:-runs/tla-full-small-beta}
mirrorpo bench --suite "$SUITE" --task tla --preset full --variants base --algos dpo,aot,hinge --grid beta=0.0001,0.001 \
  --seeds 3 --out "$OUT"
