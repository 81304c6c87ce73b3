#!/usr/bin/env bash
# Interop: our BitTorrent peer (`onionlab bt`) with aria2, libtorrent and Transmission,
# unmodified, on loopback.
#
# In a private network namespace that has only `lo`:
#   1. our tracker (`onionlab bt tracker`) and our seed (`onionlab bt seed`, which writes the
#      .torrent) on their own addresses;
#   2. an aria2 leecher, a libtorrent leecher (Debian's python3-libtorrent) and a Transmission
#      leecher (transmission-cli, its default settings but DHT, LPD and uTP off), one after
#      the other, find our seed through our tracker and download the payload from it: each
#      file must equal the payload byte for byte. Each client is paused (SIGSTOP) once it has
#      the file, so the next one can only get it from our seed, which must have sent three
#      copies;
#   3. our seed stops; aria2 resumes, and our leecher (`onionlab bt leech`) downloads the
#      payload from it and must write the same bytes;
#   4. aria2 and libtorrent stop; Transmission resumes, and a second leecher of ours gets the
#      payload from it.
# Prints PASS/FAIL per check; exits non-zero on any FAIL. Needs root (ip netns), aria2c,
# python3-libtorrent and transmission-cli (installed when missing).
# Environment: ONIONLAB (the binary; default: the one `cargo test --workspace` builds), INTEROP_KEEP=1 keeps the work folder.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NS=onionlab-bt-$$
WORK=$(mktemp -d /tmp/onionlab-bt-interop.XXXXXX)
NS_CREATED=0
PIDS=()
FAILS=0
TRACKER=127.0.0.1:6969
SEED_IP=127.0.1.1
ARIA_IP=127.0.2.1
LT_IP=127.0.4.1
TR_IP=127.0.5.1
PAYLOAD_MIB=8
WAIT_SECS=${WAIT_SECS:-60}

log() { printf '[bt-interop %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() { echo "PASS $1"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL $1${2:+: $2}"; }
in_ns() { ip netns exec "$NS" "$@"; }
alive() { kill -0 "$1" 2>/dev/null; }

cleanup() {
  local rc=$? pid
  set +e
  for pid in "${PIDS[@]}"; do alive "$pid" && kill -TERM "$pid" && kill -CONT "$pid"; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid"
    wait "$pid" 2>/dev/null
  done
  if ((NS_CREATED)); then
    local left
    left=$(ip netns pids "$NS" 2>/dev/null | tr '\n' ' ')
    [[ -n ${left// /} ]] && kill -KILL $left 2>/dev/null
    ip netns del "$NS"
  fi
  if ((rc != 0 || FAILS > 0)) || [[ ${INTEROP_KEEP:-0} == 1 ]]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source "$ROOT/interop/lib.sh"

listening() { in_ns ss -H -ltn "src $1" | grep -q .; }

need=()
command -v aria2c >/dev/null || need+=(aria2)
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || need+=(python3-libtorrent)
command -v transmission-cli >/dev/null || need+=(transmission-cli)
if ((${#need[@]})); then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" iproute2
fi
if [[ -n ${ONIONLAB:-} ]]; then
  BIN=$ONIONLAB
else
  BIN=$(workspace_bin onionlab)
fi

ip netns add "$NS"
NS_CREATED=1
in_ns ip link set lo up
mkdir -p "$WORK/seed" "$WORK/aria" "$WORK/lt" "$WORK/tr/config" "$WORK/ours" "$WORK/ours2"
head -c $((PAYLOAD_MIB << 20)) /dev/urandom >"$WORK/seed/payload.bin"

start "$WORK/tracker.log" "$BIN" bt tracker --listen $TRACKER
wait_for 20 "our tracker" listening $TRACKER || { fail setup "tracker"; exit 1; }
start "$WORK/seed.log" "$BIN" bt seed "$WORK/seed/payload.bin" --torrent "$WORK/payload.torrent" \
  --announce "http://$TRACKER/announce" --ip $SEED_IP --port 6881
SEED_PID=${PIDS[-1]}
wait_for 20 "our seed" listening $SEED_IP:6881 || { fail setup "seed"; exit 1; }

# A client that completed is paused: stopped, it answers no one, so the next client's only
# source is our seed.
pause() { kill -STOP "$1"; }
resume() { kill -CONT "$1"; }

# aria2 leeches from our seed and then keeps seeding.
start "$WORK/aria2.log" aria2c --interface=$ARIA_IP --listen-port=6882 --enable-dht=false --enable-dht6=false \
  --bt-enable-lpd=false --disable-ipv6=true --enable-peer-exchange=false --console-log-level=warn \
  --summary-interval=0 --log-level=debug -l "$WORK/aria2-debug.log" --seed-ratio=0.0 --seed-time=10 -d "$WORK/aria" "$WORK/payload.torrent"
ARIA_PID=${PIDS[-1]}
complete() { cmp -s "$WORK/aria/payload.bin" "$WORK/seed/payload.bin"; }
if wait_for $WAIT_SECS "aria2's download" complete; then
  pass "aria2 downloaded $PAYLOAD_MIB MiB from our seed, found through our tracker"
else
  fail "aria2 leeching from our seed" "$(tail -3 "$WORK/aria2.log" | tr '\n' ' ')"
fi
pause $ARIA_PID

# libtorrent leeches from our seed too (its own extensions offered, ours none).
start "$WORK/lt.log" /usr/bin/python3 "$ROOT/interop/tools/lt_peer.py" "$WORK/payload.torrent" "$WORK/lt" $LT_IP 6884 $WAIT_SECS
LT_PID=${PIDS[-1]}
lt_complete() { cmp -s "$WORK/lt/payload.bin" "$WORK/seed/payload.bin"; }
if wait_for $WAIT_SECS "libtorrent's download" lt_complete; then
  pass "libtorrent downloaded $PAYLOAD_MIB MiB from our seed, found through our tracker ($(grep -m1 COMPLETE "$WORK/lt.log"))"
else
  fail "libtorrent leeching from our seed" "$(tail -3 "$WORK/lt.log" | tr '\n' ' ')"
fi
pause $LT_PID

# Transmission leeches from our seed (it prefers encryption, which we do not speak; our seed
# dials it, in plain BitTorrent). Transmission's DHT drops every 127/8
# sender (interop.md), so it is off along with LPD and uTP; it binds its own address.
cat >"$WORK/tr/config/settings.json" <<JSON
{"dht-enabled": false, "lpd-enabled": false, "utp-enabled": false, "port-forwarding-enabled": false,
 "bind-address-ipv4": "$TR_IP", "peer-port": 6885, "message-level": 2}
JSON
start "$WORK/transmission.log" transmission-cli -g "$WORK/tr/config" -w "$WORK/tr" -M "$WORK/payload.torrent"
TR_PID=${PIDS[-1]}
tr_complete() { cmp -s "$WORK/tr/payload.bin" "$WORK/seed/payload.bin"; }
# Transmission never dials a loopback address a tracker names: our seed dials it once its next
# announce (every 30 s) names it, hence the longer wait.
if wait_for $((WAIT_SECS + 30)) "Transmission's download" tr_complete; then
  pass "Transmission downloaded $PAYLOAD_MIB MiB from our seed, found through our tracker"
else
  fail "Transmission leeching from our seed" "$(tail -c 300 "$WORK/transmission.log" | tr '\r\n' '  ')"
fi
pause $TR_PID

# Our seed leaves; it sent each of the three clients the whole payload. aria2 resumes, and our
# leecher must get every piece from it (libtorrent and Transmission stay paused).
kill -INT "$SEED_PID"
wait_for 10 "our seed to stop" bash -c "! kill -0 $SEED_PID"
sent=$(sed -n 's/^uploaded \([0-9]*\) bytes$/\1/p' "$WORK/seed.log")
if ((${sent:-0} >= 3 * (PAYLOAD_MIB << 20))); then
  pass "our seed sent $sent bytes: the payload to each of the three clients"
else
  fail "our seed's upload" "sent ${sent:-nothing}, less than 3 x $PAYLOAD_MIB MiB"
fi
resume $ARIA_PID
if timeout 90 ip netns exec "$NS" "$BIN" bt leech "$WORK/payload.torrent" --out "$WORK/ours/payload.bin" \
  --ip 127.0.3.1 --timeout-secs $WAIT_SECS >"$WORK/leech.log" 2>&1 &&
  cmp -s "$WORK/ours/payload.bin" "$WORK/seed/payload.bin"; then
  pass "our leecher downloaded the payload from aria2 ($(tail -1 "$WORK/leech.log"))"
else
  fail "our leecher from aria2" "$(tail -3 "$WORK/leech.log" | tr '\n' ' ')"
fi

# aria2 and libtorrent leave too; a second leecher of ours must get every piece from
# Transmission.
for pid in $ARIA_PID $LT_PID; do alive "$pid" && kill -TERM "$pid" && resume "$pid"; done
resume $TR_PID
if alive "$TR_PID" && timeout 90 ip netns exec "$NS" "$BIN" bt leech "$WORK/payload.torrent" --out "$WORK/ours2/payload.bin" \
  --ip 127.0.3.2 --timeout-secs $WAIT_SECS >"$WORK/leech2.log" 2>&1 &&
  cmp -s "$WORK/ours2/payload.bin" "$WORK/seed/payload.bin"; then
  pass "our leecher downloaded the payload from Transmission alone ($(tail -1 "$WORK/leech2.log"))"
else
  fail "our leecher from Transmission" "$(tail -3 "$WORK/leech2.log" | tr '\n' ' ')"
fi
((FAILS == 0))
