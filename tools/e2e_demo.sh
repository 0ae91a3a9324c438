#!/usr/bin/env bash
# The whole sdm path as a user runs it: generate a trace, profile it, plan it for a Yosemite V2
# server (per-card view + modelled six-card timeline), explain a table, replay the trace through the
# cache simulator in the plan's page layout, execute the plan on the six-card path (`run --plan`:
# real inference, host tables in an EmbeddingStore on disk) and compare hardware configurations.
#
#   tools/e2e_demo.sh [WORKDIR]        # default: a temporary directory, removed at the end
#
# Small enough for a busy 2-core machine (~1 min). The run prints the plan's predicted share of
# lookups per tier (cards, host DRAM, SCM) beside what the executed replay measured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
SDM=("$PY" -c "import sys; from sdm.cli import main; sys.exit(main(sys.argv[1:]))")
if [[ $# -ge 1 ]]; then
  WORK="$1"; mkdir -p "$WORK"
else
  WORK="$(mktemp -d -t sdm-e2e-XXXXXX)"; trap 'rm -rf "$WORK"' EXIT
fi
MODEL="60000-20000-3000-90000:32"
# shrink the cards' usable memory so this 22 MB model spreads over cards, host DRAM and SCM
SMALL=(--set plan.sram_usable_fraction=0.0003 --set plan.lpddr_usable_fraction=0.000002
       --set host.dram.capacity_bytes=2605176 --dram-cache-fraction 0.7)

step() { printf '\n=== %s\n' "$*"; }

step "1. trace: 4 Zipf tables, 8192 samples in requests of 512"
"$PY" "$ROOT/tools/gen_trace.py" zipf --tables 60000,20000,3000,90000 --samples 8192 --batch-size 512 \
  --pooling 3 --alpha 1.0 --seed 7 --out "$WORK/trace.npz"

step "2. profile"
"${SDM[@]}" profile "$WORK/trace.npz" --out "$WORK/profile.npz" --no-progress

step "3. plan on yosemite-v2-nand (raw counts: predicts a replay of this trace)"
"${SDM[@]}" plan --model "$MODEL" --trace "$WORK/trace.npz" --hardware yosemite-v2-nand --counts raw \
  --items-per-request 512 "${SMALL[@]}" --page-layout co-access --out "$WORK/plan.json" --no-progress

step "4. explain table t3"
"${SDM[@]}" explain "$WORK/plan.json" t3

step "5. simulate: LRU page cache of 2000 rows, id-order pages vs the plan's page layout"
"${SDM[@]}" simulate "$WORK/trace.npz" --capacity 2000 --policy lru --dim 32 --page-bytes 4096 --no-progress
"${SDM[@]}" simulate "$WORK/trace.npz" --capacity 2000 --policy lru --dim 32 --page-bytes 4096 --no-progress \
  --plan "$WORK/plan.json"

step "6. run the plan on the six-card path (real inference; card time modelled)"
"${SDM[@]}" run --model "$MODEL" --trace "$WORK/trace.npz" --plan "$WORK/plan.json" --store "$WORK/store"

step "7. compare hardware (fleet for 2000 requests/s)"
"${SDM[@]}" compare --model "$MODEL" --trace "$WORK/trace.npz" --hardware host-dram,host-nand,yosemite-v2-nand \
  --qps 2000 --no-progress
