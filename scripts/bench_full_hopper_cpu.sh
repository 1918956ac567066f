#!/usr/bin/env bash
# The full Hopper preset on a CPU, in the background, most informative cells first: the five losses of the
# paper's Hopper table (CPO, IPO, DPO, SimPO, ORPO) and SFT, on base, then noisy-0.2, then mixed, then every
# other cell. Cells are cached under OUT/cells, so
# rerunning this resumes where a killed run stopped; collect every finished cell with
# `mirrorpo bench --suite "$SUITE" --task hopper --preset full --variants base,mixed,noisy-0.2 --algos all --cached-only --out "$OUT"`.
set -euo pipefail
SUITE=${SUITE:-v2}  # suite version; the results under docs/results/v1/ were made with SUITE=v1
OUT=${OUT:-runs/bench-hopper-full}
FIRST=cpo,sft,ipo,dpo,simpo,orpo
mkdir -p "$OUT"
for variant in base noisy-0.2 mixed; do
  mirrorpo bench --suite "$SUITE" --task hopper --preset full --variants "$variant" --algos "$FIRST" --out "$OUT"
done
mirrorpo bench --suite "$SUITE" --task hopper --preset full --variants base,mixed,noisy-0.2 --out "$OUT"
