#!/usr/bin/env bash
# crawler.sh: the measurement toolkit's three speed figures, measured in one run (release).
#
# 1. `onionlab-crawl dht bench --nodes N`: starts a loopback DHT of N real KRPC responders (each on
#    its own 127.x address, 50 planted Sybils near a target), crawls it with the default
#    politeness (1 query/s per IP) and prints the crawl time, recall, responses/s and the Sybil
#    analysis' precision/recall; then floods the same simulator with politeness off to measure
#    the KRPC responses/s the crawler's socket + engine + rows path handles.
# 2. `cargo bench --bench store`: observations per second written through the store's writer
#    (channel -> batched SQLite transactions on disk), 1M rows per sample.
# 3. Prints the figures next to the issue's targets.
#
# Needs `ulimit -n` above N + a few hundred. Takes the release build (minutes from scratch),
# about 20 s for the DHT part and 2-4 minutes for the store benchmark.
#
# usage: bench/crawler.sh [--nodes N]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NODES=10000
while (($#)); do
  case $1 in
    --nodes) NODES=$2; shift 2 ;;
    *) echo "usage: $0 [--nodes N]" >&2; exit 2 ;;
  esac
done

cargo build --release -q -p onionlab-crawler --bin onionlab-crawl
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/onionlab-crawl
OUT=$(mktemp -d /tmp/onionlab-crawler-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

echo "== DHT crawl of $NODES simulated nodes"
"$BIN" dht bench --nodes "$NODES" | tee "$OUT/dht.txt" | grep -vE '^  '
echo "== store writer"
cargo bench -q -p onionlab-crawler --bench store -- --noplot 2>&1 | tee "$OUT/store.txt" | grep -E 'store/|thrpt'

crawl_s=$(sed -n 's/^crawl result: .* in \([0-9.]*\) s$/\1/p' "$OUT/dht.txt")
recall=$(sed -n 's/^crawl result: .*(recall \([0-9.]*\) %).*/\1/p' "$OUT/dht.txt")
flood=$(sed -n 's/^throughput .*responses, \([0-9]*\) responses\/s.*/\1/p' "$OUT/dht.txt")
sybil=$(sed -n 's/^sybil analysis: .*: \(precision .*\)$/\1/p' "$OUT/dht.txt")
store=$(grep -A2 'store/visits' "$OUT/store.txt" | sed -n 's/.*thrpt: *\[[^ ]* [^ ]* \([0-9.]*\) \([KM]\)elem\/s.*/\1 \2/p' | head -n 1)

echo
echo "== figures (targets from issue 4)"
printf '  full crawl of %s nodes   %s s (recall %s %%)       target < 30 s, >= 99 %%\n' "$NODES" "${crawl_s:-?}" "${recall:-?}"
printf '  KRPC responses/s          %s (politeness off)    target >= 20,000/s\n' "${flood:-?}"
printf '  observations written/s    %s elem/s (visits)    target >= 500,000/s\n' "${store:-?}"
printf '  Sybil analysis            %s\n' "${sybil:-?}"
