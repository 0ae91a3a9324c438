#!/usr/bin/env bash
# Creates .venv (if missing) and installs sdm with its dev extra; constraints.txt pins the CPU torch.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
log=$(mktemp)
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]" >"$log" 2>&1; then
  cat "$log"; rm -f "$log"; exit 1
fi
rm -f "$log"
# Optional extra (sdm[torchrec]): real KeyedJaggedTensor / KeyedTensor and wrap of a torchrec
# EmbeddingBagCollection. Failure-tolerant: sdm works without it and its tests skip with a reason.
# --no-deps for torchrec and fbgemm-gpu-cpu: their dependency pins would replace the CPU torch.
if ! { .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt --no-deps \
         torchrec==1.8.0 fbgemm-gpu-cpu==1.8.0 \
       && .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
         tensordict pyre-extensions torchmetrics; } >"$log" 2>&1; then
  echo "setup_env: optional torchrec extra not installed (its tests will skip):" >&2; tail -3 "$log" >&2
fi
rm -f "$log"
.venv/bin/python -c "import sdm, torch; assert not torch.version.cuda, 'a CUDA build of torch got installed'"
