#!/usr/bin/env bash
# Interop: onionlab-crawl against real, unmodified BitTorrent software on loopback.
#
# In a private network namespace that has only `lo`: opentracker (HTTP and UDP on one port, the
# torrent whitelisted), an aria2 seeder, an aria2 leecher and a libtorrent leecher, each on its
# own 127.0.x.1 address. Once both leechers have the whole payload, the `onionlab-crawl`
# binary must:
#   - scrape the same counts over HTTP and over UDP, the counts the swarm really has;
#   - announce over HTTP and UDP and get the same counts and the three peers back;
#   - handshake every peer and read its client name (BEP 10 `v`) and pieces held;
#   - fetch the metainfo over ut_metadata from aria2 and from libtorrent, with the right info-hash;
#   - download a piece from the aria2 seeder and verify it (and compare it with the payload);
#   - run two swarm-monitor rounds that reach all three peers and check their pieces, and one
#     from a magnet link alone (metadata fetched from the peers, then pieces checked).
# Prints PASS/FAIL per check; exits non-zero on any FAIL.
#
# Needs root (ip netns), aria2c, opentracker, mktorrent, Debian's python3-libtorrent.
# Environment:
#   ONIONLAB_CRAWL     the onionlab-crawl binary (default: build it with cargo)
#   CARGO_TARGET_DIR   where cargo builds when ONIONLAB_CRAWL is unset (default: target/)
#   INTEROP_KEEP=1     keep the work directory even when every check passes
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NS=onionlab-crawl-$$
WORK=$(mktemp -d /tmp/onionlab-crawl-interop.XXXXXX)
NS_CREATED=0
PIDS=()
FAILS=0
PASSES=0

TRACKER_IP=127.0.0.1
TRACKER_PORT=6969
HTTP_TRACKER=http://$TRACKER_IP:$TRACKER_PORT/announce
UDP_TRACKER=udp://$TRACKER_IP:$TRACKER_PORT
SEED_ADDR=127.0.1.1:6881       # aria2 seeder
LEECH_ADDR=127.0.2.1:6882      # aria2 leecher
LT_ADDR=127.0.3.1:6883         # libtorrent leecher
OUR_PORT=7001                  # the port the crawler claims in its announces
PAYLOAD_MIB=64
PIECE_LOG2=16                  # 64 KiB pieces (4 blocks each): 1024 of them, 20 KiB of metadata
READY_SECS=20                  # bound on each start-up wait
DOWNLOAD_SECS=90               # bound on the leechers' downloads

log() { printf '[crawler-interop %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() { PASSES=$((PASSES + 1)); echo "PASS $1"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL $1${2:+: $2}"; }
show_tail() { # FILE [LINES]
  local f=$1 n=${2:-15}
  [[ -s $f ]] || { echo "    ($f is empty)"; return 0; }
  tail -n "$n" "$f" | sed 's/^/    | /'
}
in_ns() { ip netns exec "$NS" "$@"; }

# True while PID exists and is not a zombie.
alive() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

cleanup() {
  local rc=$? pid i
  set +e
  for pid in "${PIDS[@]}"; do
    alive "$pid" && kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if ((NS_CREATED)); then
    # Anything still in our private namespace was started by the processes above.
    local left
    left=$(ip netns pids "$NS" 2>/dev/null | tr '\n' ' ')
    if [[ -n ${left// /} ]]; then
      log "processes left in $NS: $left"
      kill -KILL $left 2>/dev/null
    fi
    ip netns del "$NS"
  fi
  if ((rc != 0 || FAILS > 0)) || [[ ${INTEROP_KEEP:-0} == 1 ]]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source "$ROOT/interop/lib.sh"

listening() { # PROTO(t|u) IP:PORT
  in_ns ss -H -l"$1"n "src $2" | grep -q .
}

# The crawler, inside the namespace, bounded even if it hung.
crawl() { timeout 180 ip netns exec "$NS" "$BIN" --timeout 20s "$@"; }

need=()
for tool in aria2c opentracker mktorrent ip ss; do command -v "$tool" >/dev/null || need+=("$tool"); done
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || need+=(python3-libtorrent)
if ((${#need[@]})); then
  log "installing: ${need[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    aria2 opentracker mktorrent python3-libtorrent iproute2
fi

if [[ -n ${ONIONLAB_CRAWL:-} ]]; then
  BIN=$ONIONLAB_CRAWL
else
  log "building onionlab-crawl"
  BIN=$(workspace_bin onionlab-crawl)
fi
[[ -x $BIN ]] || { echo "FAIL setup: $BIN is not executable"; exit 1; }
log "crawler: $BIN"

ip netns add "$NS"
NS_CREATED=1
in_ns ip link set lo up

# --- payload, torrent, tracker --------------------------------------------------------------
mkdir -p "$WORK/seed" "$WORK/leech" "$WORK/lt" "$WORK/ot"
head -c $((PAYLOAD_MIB << 20)) /dev/urandom >"$WORK/seed/payload.bin"
mktorrent -a "$HTTP_TRACKER" -l $PIECE_LOG2 -n payload.bin -o "$WORK/payload.torrent" "$WORK/seed/payload.bin" \
  >"$WORK/mktorrent.log"
TORRENT=$WORK/payload.torrent
HASH=$("$BIN" info "$TORRENT" | awk '/^info-hash:/ { print $2 }')
PIECES=$("$BIN" info "$TORRENT" | awk '/^pieces:/ { print $2 }')
# An independent reading of the info-hash: SHA-1 over the raw `info` value, which is the last
# key of a mktorrent file and of the files `metadata --out` writes (from after the first
# "4:info" to the final "e").
py_info_hash() { # FILE
  /usr/bin/python3 -c '
import hashlib, sys
b = open(sys.argv[1], "rb").read()
i = b.index(b"4:info") + 6
print(hashlib.sha1(b[i:-1]).hexdigest())' "$1"
}
PY_HASH=$(py_info_hash "$TORRENT")
[[ $HASH == "$PY_HASH" && -n $HASH ]] || { echo "FAIL setup: info-hash $HASH vs $PY_HASH"; exit 1; }
log "torrent $HASH, $PIECES pieces"

echo "$HASH" >"$WORK/ot/whitelist.txt"
chmod 755 "$WORK" "$WORK/ot"
chmod 644 "$WORK/ot/whitelist.txt"
cat >"$WORK/opentracker.conf" <<EOF
access.whitelist /whitelist.txt
tracker.rootdir $WORK/ot
tracker.user _opentracker
EOF
start "$WORK/opentracker.log" opentracker -i $TRACKER_IP -p $TRACKER_PORT -P $TRACKER_PORT -A $TRACKER_IP \
  -f "$WORK/opentracker.conf"
wait_for $READY_SECS "opentracker" listening t $TRACKER_IP:$TRACKER_PORT ||
  { show_tail "$WORK/opentracker.log"; echo "FAIL setup: opentracker did not start"; exit 1; }

# --- peers ------------------------------------------------------------------------------------
aria2() { # IP PORT DIR LOG EXTRA...
  local ip=$1 port=$2 dir=$3 out=$4
  shift 4
  start "$out" aria2c --interface="$ip" --listen-port="$port" --enable-dht=false --enable-dht6=false \
    --bt-enable-lpd=false --disable-ipv6=true --follow-torrent=mem --console-log-level=warn --summary-interval=0 \
    --allow-overwrite=true -d "$dir" "$@" "$TORRENT"
}
aria2 127.0.1.1 6881 "$WORK/seed" "$WORK/aria2-seed.log" --check-integrity=true --seed-ratio=0.0
wait_for $READY_SECS "the aria2 seeder" listening t $SEED_ADDR ||
  { show_tail "$WORK/aria2-seed.log"; echo "FAIL setup: aria2 seeder"; exit 1; }

start "$WORK/lt.log" /usr/bin/python3 "$ROOT/interop/tools/lt_peer.py" "$TORRENT" "$WORK/lt" 127.0.3.1 6883 600
# aria2 runs the hook when the download completes, then keeps seeding.
printf '#!/bin/sh\ntouch "%s"\n' "$WORK/aria2-leech.done" >"$WORK/aria2-done.sh"
chmod +x "$WORK/aria2-done.sh"
aria2 127.0.2.1 6882 "$WORK/leech" "$WORK/aria2-leech.log" --seed-time=600 \
  --on-bt-download-complete="$WORK/aria2-done.sh"

aria2_done() { [[ -e $WORK/aria2-leech.done ]] && cmp -s "$WORK/leech/payload.bin" "$WORK/seed/payload.bin"; }
lt_done() { grep -q COMPLETE "$WORK/lt.log" && cmp -s "$WORK/lt/payload.bin" "$WORK/seed/payload.bin"; }
wait_for $DOWNLOAD_SECS "the aria2 leecher to complete" aria2_done ||
  { show_tail "$WORK/aria2-leech.log"; echo "FAIL setup: aria2 leecher"; exit 1; }
wait_for $DOWNLOAD_SECS "the libtorrent leecher to complete" lt_done ||
  { show_tail "$WORK/lt.log"; echo "FAIL setup: libtorrent leecher"; exit 1; }
log "both leechers have the payload"

# --- trackers: scrape and announce over HTTP and UDP -------------------------------------------
# Returns "seeders completed leechers" from `onionlab-crawl scrape`.
scrape() { # URL
  crawl scrape "$1" "$HASH" --udp-base 1s | awk -v h="$HASH" '$1 == h { print $3, $5, $7 }'
}
# The swarm now has 3 seeders (the leechers finished), no leecher, and 2 completed downloads.
# Peers announce `completed` as they finish; give the tracker a few seconds to hear both.
EXPECTED="3 2 0"
settled() { [[ $(scrape "$HTTP_TRACKER") == "$EXPECTED" ]]; }
wait_for $READY_SECS "the tracker to count 3 seeders and 2 completed" settled || true
HTTP_SCRAPE=$(scrape "$HTTP_TRACKER" || true)
UDP_SCRAPE=$(scrape "$UDP_TRACKER" || true)
[[ $HTTP_SCRAPE == "$EXPECTED" ]] && pass "HTTP scrape: seeders completed leechers = $HTTP_SCRAPE" ||
  fail "HTTP scrape" "got '$HTTP_SCRAPE', expected '$EXPECTED'"
[[ $UDP_SCRAPE == "$HTTP_SCRAPE" && -n $UDP_SCRAPE ]] && pass "UDP scrape matches HTTP scrape ($UDP_SCRAPE)" ||
  fail "UDP scrape" "got '$UDP_SCRAPE', HTTP said '$HTTP_SCRAPE'"

# Announces as a leecher (left=1) on OUR_PORT: the tracker counts us too.
announce() { # URL OUT EXTRA...
  local url=$1 out=$2
  shift 2
  crawl announce "$url" --info-hash "$HASH" --port $OUR_PORT --left 1 --udp-base 1s "$@" >"$out" 2>&1
}
counts() { awk '/^seeders:/ { s = $2 } /^leechers:/ { l = $2 } END { print s, l }' "$1"; }
peers_of() { awk '/^peer:/ { print $2 }' "$1" | sort | tr '\n' ' '; }
WANT_PEERS=$(printf '%s\n' $SEED_ADDR $LEECH_ADDR $LT_ADDR | sort | tr '\n' ' ')
for proto in HTTP UDP; do
  url=$HTTP_TRACKER
  [[ $proto == UDP ]] && url=$UDP_TRACKER
  out=$WORK/announce-$proto.txt
  if announce "$url" "$out" --event started; then
    c=$(counts "$out")
    got=$(peers_of "$out")
    missing=""
    for p in $SEED_ADDR $LEECH_ADDR $LT_ADDR; do [[ " $got " == *" $p "* ]] || missing+=" $p"; done
    if [[ $c == "3 1" && -z $missing ]]; then
      pass "$proto announce: seeders 3, leechers 1 (the crawler), peers $got"
    else
      fail "$proto announce" "counts '$c' (expected '3 1'), missing peers:${missing:- none}; got $got"
    fi
  else
    fail "$proto announce" "$(tail -n 3 "$out")"
  fi
done
[[ $(counts "$WORK/announce-HTTP.txt") == $(counts "$WORK/announce-UDP.txt") ]] &&
  pass "HTTP and UDP announces agree ($(counts "$WORK/announce-UDP.txt"))" ||
  fail "HTTP and UDP announces agree" "$(counts "$WORK/announce-HTTP.txt") vs $(counts "$WORK/announce-UDP.txt")"
HTTP_SCRAPE=$(scrape "$HTTP_TRACKER" || true)
UDP_SCRAPE=$(scrape "$UDP_TRACKER" || true)
[[ $HTTP_SCRAPE == "3 2 1" && $UDP_SCRAPE == "$HTTP_SCRAPE" ]] &&
  pass "scrape after our announce: HTTP and UDP both say $HTTP_SCRAPE" ||
  fail "scrape after our announce" "HTTP '$HTTP_SCRAPE', UDP '$UDP_SCRAPE', expected '3 2 1'"
if announce "$UDP_TRACKER" "$WORK/announce-stopped.txt" --event stopped; then
  HTTP_SCRAPE=$(scrape "$HTTP_TRACKER" || true)
  [[ $HTTP_SCRAPE == "$EXPECTED" ]] && pass "UDP stopped announce removes the crawler (HTTP scrape $HTTP_SCRAPE)" ||
    fail "stopped announce" "HTTP scrape '$HTTP_SCRAPE', expected '$EXPECTED'"
else
  fail "stopped announce" "$(tail -n 3 "$WORK/announce-stopped.txt")"
fi

# --- peers: handshake, client names, pieces -----------------------------------------------------
check_peer() { # NAME ADDR CLIENT-PREFIX
  local name=$1 addr=$2 prefix=$3 out=$WORK/peer-$2.txt client pieces
  if crawl peer "$addr" --torrent "$TORRENT" >"$out" 2>&1; then
    client=$(awk -F': +' '/^client:/ { print $2 }' "$out")
    pieces=$(awk '/^pieces:/ { print $2 }' "$out")
    if [[ $client == "$prefix"* && $pieces == "$PIECES/$PIECES" ]] && grep -q '^extensions:.*ut_metadata' "$out"; then
      pass "handshake $name $addr: client '$client', pieces $pieces, $(grep '^extensions:' "$out" | tr -s ' ')"
    else
      fail "handshake $name $addr" "client '$client' (expected $prefix...), pieces '$pieces'"
      show_tail "$out"
    fi
  else
    fail "handshake $name $addr" "$(tail -n 2 "$out")"
  fi
}
check_peer "aria2 seeder" $SEED_ADDR "aria2/"
check_peer "aria2 leecher" $LEECH_ADDR "aria2/"
check_peer "libtorrent leecher" $LT_ADDR "libtorrent/"

# --- ut_metadata from real clients --------------------------------------------------------------
check_metadata() { # NAME ADDR
  local name=$1 addr=$2 out=$WORK/metadata-$2.txt file=$WORK/fetched-$2.torrent got py
  if crawl metadata "$addr" --info-hash "$HASH" --out "$file" >"$out" 2>&1; then
    got=$("$BIN" info "$file" | awk '/^info-hash:/ { print $2 }')
    py=$(py_info_hash "$file")
    if [[ $got == "$HASH" && $py == "$HASH" ]]; then
      pass "metadata from $name $addr: $(grep '^metadata size:' "$out" | tr -s ' '), info-hash $got"
    else
      fail "metadata from $name $addr" "info-hash '$got' (python: '$py'), expected $HASH"
    fi
  else
    fail "metadata from $name $addr" "$(tail -n 2 "$out")"
  fi
}
check_metadata "aria2 seeder" $SEED_ADDR
check_metadata "libtorrent leecher" $LT_ADDR

# --- a verified piece from the real seeder --------------------------------------------------------
PIECE=5
if crawl piece $SEED_ADDR --torrent "$TORRENT" --piece $PIECE --out "$WORK/piece.bin" >"$WORK/piece.txt" 2>&1; then
  if cmp -s "$WORK/piece.bin" <(dd if="$WORK/seed/payload.bin" bs=$((1 << PIECE_LOG2)) skip=$PIECE count=1 status=none); then
    pass "piece $PIECE from the aria2 seeder: $(grep '^piece:' "$WORK/piece.txt" | tr -s ' ')"
  else
    fail "piece $PIECE from the aria2 seeder" "the verified piece differs from the payload"
  fi
else
  fail "piece $PIECE from the aria2 seeder" "$(tail -n 2 "$WORK/piece.txt")"
fi

# --- the swarm monitor ------------------------------------------------------------------------------
if crawl swarm --torrent "$TORRENT" --rounds 2 --interval 4s --sample-pieces 1 --linger 1s --port $OUR_PORT \
  >"$WORK/swarm.txt" 2>&1; then
  r1=$(grep '^round 1 ' "$WORK/swarm.txt" || true)
  r2=$(grep '^round 2 ' "$WORK/swarm.txt" || true)
  # Round 1 also tries the crawler's own announced address (the tracker lists it); the peers'
  # `yourip` gives it away, so round 2 visits only the three real peers.
  if [[ $r1 == *"reached 3, failed 1"* && $r1 == *"pieces ok 3 bad 0"* && $r2 == *"known 3, reached 3, failed 0"* ]]; then
    pass "swarm monitor: $r1 / ${r2%%, pieces*}"
  else
    fail "swarm monitor" "unexpected rounds"
    show_tail "$WORK/swarm.txt" 30
  fi
else
  fail "swarm monitor" "$(tail -n 3 "$WORK/swarm.txt")"
fi

# Only a magnet link: the monitor fetches the metadata from a real client first.
MAGNET="magnet:?xt=urn:btih:$HASH&tr=$HTTP_TRACKER"
if crawl swarm --magnet "$MAGNET" --rounds 1 --sample-pieces 1 --linger 0s --port $OUR_PORT \
  --save-torrent "$WORK/from-magnet.torrent" >"$WORK/swarm-magnet.txt" 2>&1; then
  r1=$(grep '^round 1 ' "$WORK/swarm-magnet.txt" || true)
  got=$(py_info_hash "$WORK/from-magnet.torrent" 2>/dev/null || true)
  if [[ $r1 == *"reached 3"* && $r1 == *"pieces ok 3 bad 0, metadata known"* && $got == "$HASH" ]]; then
    pass "swarm monitor from a magnet link: $r1"
  else
    fail "swarm monitor from a magnet link" "saved metadata hashes to '$got'"
    show_tail "$WORK/swarm-magnet.txt" 20
  fi
else
  fail "swarm monitor from a magnet link" "$(tail -n 3 "$WORK/swarm-magnet.txt")"
fi

log "$PASSES passed, $FAILS failed"
((FAILS == 0))
