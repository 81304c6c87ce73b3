#!/usr/bin/env bash
# Every experiment campaign in experiments/campaigns/ through the real `onionlab run` binary,
# as the README tells students to run them: the loopback ones start their own testbed on
# 127.0.0.0/8 (the simulations also run in `cargo test`, and take a second here). Each must
# pass its checks (the binary exits non-zero otherwise) and its wall time is printed.
# Results land in experiments/campaigns/results/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ulimit -n 65536 2>/dev/null || true
source "$ROOT/interop/lib.sh"
ONIONLAB=$(workspace_bin onionlab)
FAILED=0
for campaign in experiments/campaigns/*.yaml; do
  started=$(date +%s)
  if "$ONIONLAB" run "$campaign"; then
    echo "PASS $campaign ($(($(date +%s) - started)) s)"
  else
    echo "FAIL $campaign"
    FAILED=1
  fi
done
exit $FAILED
