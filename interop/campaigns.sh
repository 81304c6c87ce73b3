#!/usr/bin/env bash
# Every experiment campaign in experiments/campaigns/ through the real `onionlab run` binary,
# as the README tells students to run them: the loopback ones start their own testbed on
# 127.0.0.0/8 (the simulations also run in `cargo test`, and take a second here). Each must
# pass its checks (the binary exits non-zero otherwise) within 5 minutes (the issue's limit:
# past it the run gets SIGINT, as Ctrl-C, then SIGKILL 30 s later) and its wall time is
# printed. Results land in experiments/campaigns/results/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ulimit -n 65536 2>/dev/null || true
source "$ROOT/interop/lib.sh"
ONIONLAB=$(workspace_bin onionlab)
LIMIT=300   # seconds per campaign
FAILED=0
for campaign in experiments/campaigns/*.yaml; do
  started=$(date +%s)
  status=0
  timeout -s INT -k 30 "$LIMIT" "$ONIONLAB" run "$campaign" || status=$?
  took=$(($(date +%s) - started))
  if [[ $status -eq 0 ]]; then
    echo "PASS $campaign ($took s)"
  elif [[ $took -ge $LIMIT ]]; then
    echo "FAIL $campaign (stopped after $took s: over the $LIMIT s limit)"
    FAILED=1
  else
    echo "FAIL $campaign (exit $status after $took s)"
    FAILED=1
  fi
done
exit $FAILED
