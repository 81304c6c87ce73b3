#!/usr/bin/env bash
# The loopback experiment campaigns (the simulations run in `cargo test`): each runs through
# the real `onionlab run` binary, starts its own testbed on 127.0.0.0/8, and must pass its
# checks (the binary exits non-zero otherwise). Results land in experiments/campaigns/results/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ulimit -n 65536 2>/dev/null || true
cargo build -q -p onionlab-experiments --bin onionlab
ONIONLAB=${CARGO_TARGET_DIR:-$ROOT/target}/debug/onionlab
FAILED=0
for campaign in experiments/campaigns/dht-sybil-census.yaml experiments/campaigns/distribution-swarm.yaml; do
  started=$(date +%s)
  if "$ONIONLAB" run "$campaign"; then
    echo "PASS $campaign ($(($(date +%s) - started)) s)"
  else
    echo "FAIL $campaign"
    FAILED=1
  fi
done
exit $FAILED
