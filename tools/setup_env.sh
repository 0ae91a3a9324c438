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
.venv/bin/python -c "import sdm, torch; assert not torch.version.cuda, 'a CUDA build of torch got installed'"
