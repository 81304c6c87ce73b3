#!/usr/bin/env bash
# testbed.sh: onionlab's testbed measured in one run, optionally side by side with a real tor.
#
# 1. Builds the `onionlab` binary in release mode (honours CARGO_TARGET_DIR).
# 2. Runs `onionlab bench`: a whole testbed (authority, relays, client, demo site) on free
#    loopback ports in one process, measuring launch -> first byte through 3 hops, circuit build
#    p50/p99 over --circuits fresh circuits, and a --mib MiB download direct vs through 3 hops
#    (best of --rounds). Printed as `onionlab: key=value` lines too.
# 3. If tor is installed, or --with-tor is given (installs it with apt-get), runs
#    bench/tor_reference.sh: the same download on a private tor network in a network namespace.
# 4. Prints a side-by-side table, the project's targets, and "onionlab is X times faster".
#
# Takes: the build (seconds when up to date, a few minutes from scratch), the onionlab bench
# (about 10-30 s), and with tor 1-2 minutes more (its bootstrap alone is 35-60 s).
# Needs root for the tor part (ip netns).
#
# usage: bench/testbed.sh [--with-tor | --no-tor] [--mib N] [--circuits N] [--rounds N]
#                         [--relays N (tor exit relays)]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
MIB=64
CIRCUITS=200
ROUNDS=3
RELAYS=5
TOR=auto
while [[ $# -gt 0 ]]; do
    case "$1" in
        --with-tor) TOR=yes; shift ;;
        --no-tor) TOR=no; shift ;;
        --mib) MIB=$2; shift 2 ;;
        --circuits) CIRCUITS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --relays) RELAYS=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "testbed.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
# value KEY FILE: the value of the last `KEY=value` on a line of FILE.
value() { sed -n "s/^.*[: ]$1=\([^ ]*\).*$/\1/p" "$2" | tail -n 1; }
LOGS=$(mktemp -d /tmp/onionlab-bench.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT

# --- 1. build ------------------------------------------------------------------------------------
cd "$ROOT"
t=$(now)
cargo build --release -p onionlab-experiments --bin onionlab
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET == /* ]] || TARGET=$ROOT/$TARGET
BIN=$TARGET/release/onionlab
[[ -x $BIN ]] || { echo "testbed.sh: $BIN not found after the build" >&2; exit 1; }
echo "testbed: build_s=$(since "$t")"

# --- 2. onionlab bench ---------------------------------------------------------------------------
echo "== onionlab bench --mib $MIB --circuits $CIRCUITS --rounds $ROUNDS"
t=$(now)
"$BIN" bench --mib "$MIB" --circuits "$CIRCUITS" --rounds "$ROUNDS" | tee "$LOGS/onionlab.txt"
OL_WALL=$(since "$t")
# Parse the human-readable report (see experiments/src/perf.rs, PerfReport::render).
num='\([0-9][0-9.]*\)'
OL_FIRST_MS=$(sed -n "s/^launch to first byte.*: $num ms.*/\1/p" "$LOGS/onionlab.txt")
OL_P50=$(sed -n "s/^circuit build.* p50 $num ms.*/\1/p" "$LOGS/onionlab.txt")
OL_P99=$(sed -n "s/^circuit build.* p99 $num ms.*/\1/p" "$LOGS/onionlab.txt")
OL_DIRECT=$(sed -n "s/^[0-9]* MiB direct: *$num MB\/s.*/\1/p" "$LOGS/onionlab.txt")
OL_ONION=$(sed -n "s/^[0-9]* MiB through 3 hops: *$num MB\/s.*/\1/p" "$LOGS/onionlab.txt")
OL_RATIO=$(sed -n "s/^3-hop \/ direct.*: $num.*/\1/p" "$LOGS/onionlab.txt")
for v in OL_FIRST_MS OL_P50 OL_P99 OL_DIRECT OL_ONION OL_RATIO; do
    [[ -n ${!v} ]] || { echo "testbed.sh: could not parse $v from onionlab bench output" >&2; exit 1; }
done
OL_FIRST_S=$(awk -v m="$OL_FIRST_MS" 'BEGIN { printf "%.3f", m / 1000 }')
cat <<EOF
onionlab: first_byte_s=$OL_FIRST_S
onionlab: circuit_p50_ms=$OL_P50
onionlab: circuit_p99_ms=$OL_P99
onionlab: direct_MBps=$OL_DIRECT
onionlab: 3hop_MBps=$OL_ONION
onionlab: ratio=$OL_RATIO
onionlab: wall_s=$OL_WALL
EOF

# --- 3. tor --------------------------------------------------------------------------------------
if [[ $TOR == auto ]]; then
    if command -v tor >/dev/null; then TOR=yes; else
        TOR=no
        echo "testbed: tor not installed; skipping the tor reference (use --with-tor to install it)"
    fi
fi
HAVE_TOR=0
if [[ $TOR == yes ]]; then
    echo "== bench/tor_reference.sh --mib $MIB --rounds $ROUNDS --relays $RELAYS"
    t=$(now)
    if "$HERE/tor_reference.sh" --mib "$MIB" --rounds "$ROUNDS" --relays "$RELAYS" | tee "$LOGS/tor.txt"; then
        HAVE_TOR=1
    else
        echo "testbed: the tor reference failed; reporting onionlab alone" >&2
    fi
    echo "testbed: tor_part_wall_s=$(since "$t")"
fi

# --- 4. side by side -----------------------------------------------------------------------------
verdict() { awk -v v="$1" -v lim="$2" -v op="$3" 'BEGIN {
    ok = (op == ">=") ? (v >= lim) : (v < lim); print ok ? "met" : "MISSED" }'; }
echo
echo "== targets (2-core machine)"
printf '%-34s %12s %10s  %s\n' "3-hop throughput >= 50 MB/s" "$OL_ONION" "MB/s" "$(verdict "$OL_ONION" 50 '>=')"
printf '%-34s %12s %10s  %s\n' "circuit build p50 < 5 ms" "$OL_P50" "ms" "$(verdict "$OL_P50" 5 '<')"
printf '%-34s %12s %10s  %s\n' "first byte < 3 s after launch" "$OL_FIRST_S" "s" "$(verdict "$OL_FIRST_S" 3 '<')"

echo
if [[ $HAVE_TOR -eq 1 ]]; then
    T_ONION=$(value 3hop_MBps "$LOGS/tor.txt")
    T_DIRECT=$(value direct_MBps "$LOGS/tor.txt")
    T_RATIO=$(value ratio "$LOGS/tor.txt")
    T_BOOT=$(value bootstrap_s "$LOGS/tor.txt")
    T_VER=$(value version "$LOGS/tor.txt")
    echo "== side by side ($MIB MiB, best of $ROUNDS; MB = 10^6 bytes)"
    printf '%-36s %14s %14s\n' "" "onionlab" "tor $T_VER"
    printf '%-36s %14s %14s\n' "3-hop throughput (MB/s)" "$OL_ONION" "$T_ONION"
    printf '%-36s %14s %14s\n' "direct throughput (MB/s)" "$OL_DIRECT" "$T_DIRECT"
    printf '%-36s %14s %14s\n' "3-hop / direct ratio" "$OL_RATIO" "$T_RATIO"
    printf '%-36s %14s %14s\n' "launch to first byte (s)" "$OL_FIRST_S" "$T_BOOT"
    printf '%-36s %14s %14s\n' "circuit build p50 / p99 (ms)" "$OL_P50 / $OL_P99" "-"
    echo
    awk -v o="$OL_ONION" -v t="$T_ONION" -v fo="$OL_FIRST_S" -v ft="$T_BOOT" 'BEGIN {
        printf "onionlab is %.1f times faster than tor through 3 hops", o / t
        printf " (and reaches its first byte %.0f times sooner after launch)\n", ft / fo
        printf "testbed: speedup_3hop=%.2f\n", o / t
    }'
    echo "note: onionlab's direct figure is its in-process demo site, tor's is python3 -m http.server read by curl."
else
    echo "== onionlab alone (no tor reference)"
    printf '%-36s %14s\n' "3-hop throughput (MB/s)" "$OL_ONION"
    printf '%-36s %14s\n' "direct throughput (MB/s)" "$OL_DIRECT"
    printf '%-36s %14s\n' "3-hop / direct ratio" "$OL_RATIO"
    printf '%-36s %14s\n' "launch to first byte (s)" "$OL_FIRST_S"
    printf '%-36s %14s\n' "circuit build p50 / p99 (ms)" "$OL_P50 / $OL_P99"
fi
