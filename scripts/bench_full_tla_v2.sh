#!/usr/bin/env bash
# The full TLA preset on suite v2 (the default), the paper's ten baselines, column by column in the
# order the session could afford them (base first, then the noisiest and mixed). Resumable: rerun it;
# commit docs/results/tla-full/cells as they finish. Collect a stopped or running run with
# `mirrorpo bench --task tla --preset full --algos $ALGOS --cached-only --out docs/results/tla-full`.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-docs/results/tla-full}
ALGOS=sft,rrhf,slic_hf,lpo,dpo,ipo,cpo,orpo,rdpo,simpo
for variant in base noisy-0.3 mixed noisy-0.1 noisy-0.2; do
  .venv/bin/mirrorpo bench --task tla --preset full --variants "$variant" --algos "$ALGOS" --out "$OUT"
done
