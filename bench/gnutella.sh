#!/usr/bin/env bash
# gnutella.sh: the Gnutella crawler's crawl rate (nodes mapped per second) on the loopback
# overlay, at the issue's 500 nodes (50 ultrapeers) and at a larger size that fits the machine,
# measured in one run. For each size: start `onionlab gnutella` (every node on its own
# 127.x.y.z), wait until it prints its ultrapeers, crawl it with `onionlab-crawl gnutella crawl`
# (politeness off: our own testbed), once over ultrapeers only (Cruiser's way: leaves come from
# `Leaves:`) and once contacting every node, and print nodes and contacts per second.
#
# usage: bench/gnutella.sh [--large-ultrapeers U --large-leaves L] [--debug]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LARGE_UP=300
LARGE_LEAVES=6000
PROFILE=release
while (($#)); do
  case $1 in
    --large-ultrapeers) LARGE_UP=$2; shift 2 ;;
    --large-leaves) LARGE_LEAVES=$2; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    *) echo "usage: $0 [--large-ultrapeers U --large-leaves L] [--debug]" >&2; exit 2 ;;
  esac
done
ulimit -n 65536 2>/dev/null || true

if [ "$PROFILE" = release ]; then
  cargo build --release -q --bin onionlab --bin onionlab-crawl
else
  cargo build -q --bin onionlab --bin onionlab-crawl
fi
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE
OUT=$(mktemp -d /tmp/onionlab-gnutella-bench.XXXXXX)
OVERLAY=
cleanup() { [ -n "$OVERLAY" ] && kill "$OVERLAY" 2>/dev/null; rm -rf "$OUT"; }
trap cleanup EXIT

measure() { # ULTRAPEERS LEAVES BASE_IP
  local ups=$1 leaves=$2 base=$3 log="$OUT/overlay-$1.log"
  "$BIN/onionlab" gnutella --ultrapeers "$ups" --leaves "$leaves" --base-ip "$base" >"$log" 2>&1 &
  OVERLAY=$!
  for _ in $(seq 1 600); do
    grep -q 'leaves;' "$log" 2>/dev/null && break
    kill -0 "$OVERLAY" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.2
  done
  local boot
  boot=$(sed -n 's/^ultrapeer \([0-9.]*:[0-9]*\) .*/\1/p' "$log" | head -1)
  for mode in ultrapeers all; do
    local extra=()
    [ "$mode" = all ] && extra=(--contact-leaves)
    "$BIN/onionlab-crawl" gnutella crawl --bootstrap "$boot" --per-ip-interval 0s \
      --recrawl-interval 0s --timeout 5s --concurrency 256 "${extra[@]}" >"$OUT/crawl.txt" 2>&1
    local secs nodes contacted
    secs=$(sed -n 's/^snapshot 1\/1: \([0-9.]*\) s.*/\1/p' "$OUT/crawl.txt")
    contacted=$(sed -n 's/^snapshot 1\/1: .*, \([0-9]*\) contacted/\1/p' "$OUT/crawl.txt")
    nodes=$(sed -n 's/^  nodes *\([0-9]*\) .*/\1/p' "$OUT/crawl.txt")
    awk -v n="$nodes" -v c="$contacted" -v s="$secs" -v ups="$ups" -v l="$leaves" -v m="$mode" 'BEGIN {
      s = (s > 0.001) ? s : 0.001
      printf "%5d ultrapeers + %5d leaves, contacting %-10s: %6d nodes mapped, %6d contacted in %6.2f s = %8.0f nodes/s, %8.0f contacts/s\n", ups, l, m, n, c, s, n / s, c / s }'
  done
  kill "$OVERLAY"; wait "$OVERLAY" 2>/dev/null || true; OVERLAY=
}

echo "== Gnutella crawl rate ($PROFILE build, $(nproc) cores; the overlay runs on the same cores)"
measure 50 450 127.120.0.0
measure "$LARGE_UP" "$LARGE_LEAVES" 127.122.0.0
