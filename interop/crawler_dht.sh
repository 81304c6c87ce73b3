#!/usr/bin/env bash
# Interop tier for the DHT crawler: `onionlab-crawl dht crawl` against a real Mainline DHT formed
# by aria2, libtorrent (python3-libtorrent), qBittorrent-nox and rtorrent on loopback. A libtorrent
# seeder announces a trackerless torrent (mktorrent without -a) to the DHT; the crawl must find
# every node started, as responsive, and `--info-hash` must find the seeder among the torrent's
# peers.
#
# Everything runs inside one private network namespace that has only `lo`. Each client gets its
# own 127.x address (aria2 binds its DHT socket to the wildcard address, so its replies come from
# 127.0.0.1: it takes that address). Every wait is bounded; every process started here is
# stopped by PID.
#
# Needs root (ip netns; apt-get if a client is missing). Environment knobs:
#   CARGO_TARGET_DIR   where cargo builds (default: target/)
#   CRAWL_BIN          use this onionlab-crawl binary instead of building one
#   INTEROP_KEEP=1     keep the work directory even when every check passes
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

NS=onionlab-dht-$$
WORK=$(mktemp -d /tmp/onionlab-dht.XXXXXX)
NS_CREATED=0
PIDS=()
SCRIPT_START=$SECONDS
LT_PY=/usr/bin/python3 # Debian's python: the one with the libtorrent module

# The DHT: one client per address. "name addr:port" of each client's DHT endpoint.
ARIA2_IP=127.0.0.1 ARIA2_DHT=6882 ARIA2_BT=6883
LT_IP=127.0.1.1 LT_PORT=6881
QB_IP=127.0.3.1 QB_PORT=6991 QB_WEB=8081
RT_IP=127.0.4.1 RT_BT=7001 RT_DHT=7002
NODES=("aria2 $ARIA2_IP:$ARIA2_DHT" "libtorrent $LT_IP:$LT_PORT" "qbittorrent $QB_IP:$QB_PORT" "rtorrent $RT_IP:$RT_DHT")
SEEDER=$LT_IP:$LT_PORT

JOIN_SECS=90     # bound on the wait for the clients to know each other
ANNOUNCE_SECS=90 # bound on the wait for the seeder's announce to be stored
CRAWL_SECS=60    # the crawl's own --max-duration

log() { printf '[dht-interop %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
show_tail() { # FILE [LINES]
  local f=$1 n=${2:-15}
  [[ -s $f ]] || { echo "    ($f is empty)"; return 0; }
  echo "    --- last $n lines of $f ---"
  tail -n "$n" "$f" | sed 's/^/    | /'
}

# True while PID exists and is not a zombie.
alive() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

# SIGTERM, then SIGKILL after 5 s, for one PID started by this script.
stop_pid() {
  local pid=$1 i
  alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    alive "$pid" || break
    sleep 0.1
  done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid
  set +e
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if ((NS_CREATED)); then
    # Whatever is still inside the private namespace was started by this script (a client's
    # helper process that outlived its parent).
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null || log "warning: could not delete netns $NS"
  fi
  if ((rc == 0)) && [[ -z ${INTEROP_KEEP:-} ]]; then
    rm -rf "$WORK"
  else
    log "logs kept in $WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

RESULTS=()
FAILS=0
pass() { log "PASS $1: $2"; RESULTS+=("PASS  $1  $2"); }
fail() { log "FAIL $1: $2"; RESULTS+=("FAIL  $1  $2"); FAILS=$((FAILS + 1)); }

# ---------------------------------------------------------------------------------------------
# 1. The clients.
need=()
for tool in aria2c mktorrent qbittorrent-nox rtorrent ip; do command -v "$tool" >/dev/null || need+=("$tool"); done
"$LT_PY" -c 'import libtorrent' 2>/dev/null || need+=(python3-libtorrent)
if ((${#need[@]})); then
  log "installing: ${need[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    aria2 mktorrent python3-libtorrent qbittorrent-nox rtorrent iproute2
fi
log "$(aria2c --version | head -n 1); libtorrent $("$LT_PY" -c 'import libtorrent; print(libtorrent.__version__)');" \
  "$(qbittorrent-nox --version); $(rtorrent -h 2>&1 | head -n 1)"

# 2. The crawler.
if [[ -n ${CRAWL_BIN:-} ]]; then
  BIN=$CRAWL_BIN
else
  log "building onionlab-crawl"
  source "$ROOT/interop/lib.sh"
  BIN=$(workspace_bin onionlab-crawl)
fi
[[ $BIN = /* ]] || BIN=$ROOT/$BIN
[[ -x $BIN ]] || { log "no binary at $BIN"; exit 1; }

# 3. A private namespace with only loopback.
ip netns add "$NS"
NS_CREATED=1
inns() { ip netns exec "$NS" "$@"; }
inns ip link set lo up
log "netns $NS: interfaces $(inns ip -o link show | awk -F': ' '{printf "%s ", $2}')"

# 4. A trackerless torrent whose `nodes` (BEP 5) name every client, so each one learns the others
# from the metainfo whatever its own bootstrap settings (qBittorrent 4.5 has none).
mkdir -p "$WORK"/{seed,a2/dl,qb/dl,rt/dl,rt/session,rt/watch}
head -c $((3 * 1024 * 1024)) /dev/urandom >"$WORK/seed/payload.bin"
mktorrent -l 18 -n payload.bin -o "$WORK/plain.torrent" "$WORK/seed/payload.bin" >/dev/null
"$LT_PY" - "$WORK/plain.torrent" "$WORK/payload.torrent" "${NODES[@]}" <<'EOF'
import sys, libtorrent as lt
src, dst, nodes = sys.argv[1], sys.argv[2], sys.argv[3:]
meta = lt.bdecode(open(src, "rb").read())
meta[b"nodes"] = [[a.rsplit(":", 1)[0].split()[-1].encode(), int(a.rsplit(":", 1)[1])] for a in nodes]
open(dst, "wb").write(lt.bencode(meta))
EOF
IH=$("$BIN" info "$WORK/payload.torrent" | awk '/^info-hash:/ { print $2 }')
[[ $IH =~ ^[0-9a-f]{40}$ ]] || { log "could not read the info-hash ($IH)"; exit 1; }
log "torrent: $IH (3 MiB, trackerless, nodes: ${NODES[*]})"

# 5. The clients, each on its own address.
start() { # NAME LOG COMMAND...: start in the namespace, remember the PID
  local name=$1 out=$2
  shift 2
  ip netns exec "$NS" "$@" >"$out" 2>&1 &
  PIDS+=("$!")
  log "started $name (pid $!)"
}

cat >"$WORK/lt_seed.py" <<'EOF'
import sys, time, warnings, libtorrent as lt
warnings.simplefilter("ignore")
tor, save, ip, port, boot = sys.argv[1:6]
ses = lt.session({
    "listen_interfaces": f"{ip}:{port}",
    "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_dht": True, "dht_bootstrap_nodes": boot,
    "allow_multiple_connections_per_ip": True,
    "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
    "dht_ignore_dark_internet": False, "dht_prefer_verified_node_ids": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.dht_notification,
})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(tor)
p.save_path = save
p.flags |= lt.torrent_flags.seed_mode
h = ses.add_torrent(p)
last = 0
while True:
    for a in ses.pop_alerts():
        print("alert:", a.message(), flush=True)
    if time.time() - last >= 2:
        last = time.time()
        st = h.status()
        print(f"{st.state} peers={st.num_peers} dht_nodes={ses.status().dht_nodes}", flush=True)
    time.sleep(0.2)
EOF
# No bootstrap node for libtorrent: it never puts its "router" nodes into its routing table, so
# it would never list aria2; it learns every client from the torrent's `nodes` instead.
start "libtorrent seeder $LT_IP:$LT_PORT" "$WORK/libtorrent.log" \
  "$LT_PY" "$WORK/lt_seed.py" "$WORK/payload.torrent" "$WORK/seed" "$LT_IP" "$LT_PORT" ""

start "aria2 $ARIA2_IP:$ARIA2_DHT" "$WORK/aria2.log" \
  aria2c --enable-dht=true --dht-listen-port="$ARIA2_DHT" --listen-port="$ARIA2_BT" \
  --dht-file-path="$WORK/a2/dht.dat" --bt-enable-lpd=false --enable-peer-exchange=false \
  --seed-ratio=0.0 --dir="$WORK/a2/dl" --console-log-level=notice --summary-interval=5 \
  "$WORK/payload.torrent"

mkdir -p "$WORK/qb/profile/qBittorrent/config"
cat >"$WORK/qb/profile/qBittorrent/config/qBittorrent.conf" <<EOF
[BitTorrent]
Session\\BTProtocol=TCP
Session\\DHTEnabled=true
Session\\DefaultSavePath=$WORK/qb/dl
Session\\Interface=lo
Session\\InterfaceAddress=$QB_IP
Session\\InterfaceName=lo
Session\\LSDEnabled=false
Session\\MultiConnectionsPerIp=true
Session\\PeXEnabled=false
Session\\Port=$QB_PORT
Session\\QueueingSystemEnabled=false

[LegalNotice]
Accepted=true

[Network]
PortForwardingEnabled=false

[Preferences]
WebUI\\Address=$QB_IP
WebUI\\Enabled=true
WebUI\\LocalHostAuth=false
WebUI\\Port=$QB_WEB
WebUI\\UseUPnP=false
EOF
start "qBittorrent $QB_IP:$QB_PORT" "$WORK/qbittorrent.log" \
  env HOME="$WORK/qb" qbittorrent-nox --profile="$WORK/qb/profile" --save-path="$WORK/qb/dl" \
  --skip-dialog=true "$WORK/payload.torrent"

cat >"$WORK/rt/rtorrent.rc" <<EOF
directory.default.set = $WORK/rt/dl
session.path.set = $WORK/rt/session
network.port_range.set = $RT_BT-$RT_BT
network.port_random.set = no
network.bind_address.set = $RT_IP
network.local_address.set = $RT_IP
dht.mode.set = on
dht.port.set = $RT_DHT
protocol.pex.set = no
trackers.use_udp.set = no
system.daemon.set = true
schedule2 = dht_boot, 2, 0, "dht.add_node=$ARIA2_IP:$ARIA2_DHT"
schedule2 = watch_start, 1, 1, "load.start=$WORK/rt/watch/*.torrent"
log.open_file = "rtlog", $WORK/rt/rtorrent.log
log.add_output = "info", "rtlog"
EOF
cp "$WORK/payload.torrent" "$WORK/rt/watch/"
start "rtorrent $RT_IP:$RT_DHT" "$WORK/rtorrent.log" env HOME="$WORK/rt" rtorrent -n -o "import=$WORK/rt/rtorrent.rc"

# 6. Wait (bounded) until every client answers KRPC, then until every client is in another one's
# routing table (what a crawl needs to find it), then until the seeder's announce is stored.
# One fixed source address and node id for these probes: clients that ignore BEP 43's ro=1 (aria2
# 1.36 does) keep it in their tables, and the crawl then reports it as the one unresponsive node.
PROBE_FROM=127.0.9.1:6999
PROBE_ID=6f6e696f6e6c61622d696e7465726f702d646874 # "onionlab-interop-dht"
krpc() {
  local sub=$1
  shift
  inns "$BIN" --per-ip-interval 0s --timeout 1s --attempts 1 dht "$sub" --bind "$PROBE_FROM" --node-id "$PROBE_ID" \
    "$@" 2>/dev/null
}
deadline=$((SECONDS + JOIN_SECS))
for entry in "${NODES[@]}"; do
  name=${entry%% *} addr=${entry#* }
  until krpc ping "$addr" >"$WORK/ping.$name" 2>&1; do
    if ((SECONDS >= deadline)); then
      fail "up/$name" "$addr never answered a KRPC ping within ${JOIN_SECS} s"
      show_tail "$WORK/$name.log"
      break
    fi
    sleep 1
  done
done
log "every client answers ping"
joined() { # every endpoint listed in some client's find_node reply for a random target
  local entry addr listed=""
  for entry in "${NODES[@]}"; do
    listed+=$(krpc find-node "${entry#* }" | awk 'length($1) == 40 && $1 ~ /^[0-9a-f]+$/ { print $2 }')$'\n'
  done
  for entry in "${NODES[@]}"; do
    addr=${entry#* }
    grep -qxF "$addr" <<<"$listed" || { echo "$addr"; return 1; }
  done
}
t=$SECONDS
until missing=$(joined); do
  if ((SECONDS >= deadline)); then
    log "warning: after ${JOIN_SECS} s no client lists $missing; crawling anyway"
    break
  fi
  sleep 2
done
log "routing tables: every client is known to another one ($((SECONDS - t)) s)"
deadline=$((SECONDS + ANNOUNCE_SECS))
t=$SECONDS
stored() { # the seeder is among the values some client returns for the torrent
  local entry replies=""
  for entry in "${NODES[@]}"; do replies+=$(krpc get-peers "${entry#* }" --info-hash "$IH")$'\n'; done
  grep -qxF "    $SEEDER" <<<"$replies"
}
until stored; do
  if ((SECONDS >= deadline)); then
    log "warning: after ${ANNOUNCE_SECS} s no client returns the seeder for $IH; crawling anyway"
    break
  fi
  sleep 2
done
log "the seeder's announce is stored ($((SECONDS - t)) s)"

# 7. The crawl, with the default politeness (1 query/s per IP).
t=$SECONDS
rc=0
inns timeout $((CRAWL_SECS + 60)) "$BIN" --timeout 2s dht crawl --bootstrap "$ARIA2_IP:$ARIA2_DHT" \
  --info-hash "$IH" --max-duration "${CRAWL_SECS}s" --sample --list >"$WORK/crawl.out" 2>"$WORK/crawl.err" || rc=$?
log "crawl finished in $((SECONDS - t)) s (exit $rc)"
sed 's/^/    | /' "$WORK/crawl.out"
if ((rc)); then
  fail crawl "onionlab-crawl dht crawl exited with $rc"
  show_tail "$WORK/crawl.err"
fi

# 8. Checks: every client found responsive (with its `v`), nothing else, and the seeder as a peer.
for entry in "${NODES[@]}"; do
  name=${entry%% *} addr=${entry#* }
  line=$(grep -F "node $addr " "$WORK/crawl.out" || true)
  if [[ $line == *" responsive "* ]]; then
    pass "node/$name" "$addr responsive, ${line#* responsive }"
  elif [[ -n $line ]]; then
    fail "node/$name" "$addr found but not responsive: $line"
  else
    fail "node/$name" "$addr not found by the crawl"
  fi
done
found=$(grep -c ' responsive ' "$WORK/crawl.out" || true)
if ((found == ${#NODES[@]})); then
  pass nodes "the crawl found exactly the ${#NODES[@]} nodes started, all responsive"
else
  fail nodes "the crawl reports $found responsive nodes, ${#NODES[@]} were started: $(grep '^node ' "$WORK/crawl.out" | tr '\n' ';')"
fi
others=$(awk '$1 == "node" { print $2 }' "$WORK/crawl.out" | grep -vxF -f <(printf '%s\n' "${NODES[@]#* }") || true)
if [[ -n $others ]]; then
  log "note: other addresses in routing tables (our probes' $PROBE_FROM if a client ignores ro=1): $(tr '\n' ' ' <<<"$others")"
fi
peers=$(awk -v ih="$IH" '$1 == "peer" && $2 == ih { print $3 }' "$WORK/crawl.out")
if grep -qxF "$SEEDER" <<<"$peers"; then
  pass peers "get_peers lookup for $IH found the seeder $SEEDER among $(wc -l <<<"$peers") peer(s): $(tr '\n' ' ' <<<"$peers")"
else
  fail peers "the seeder $SEEDER is not among the peers found for $IH: '$(tr '\n' ' ' <<<"$peers")'"
fi

# 9. Summary.
echo
echo "== onionlab DHT crawler interop summary ($((SECONDS - SCRIPT_START)) s) =="
printf '  %s\n' "${RESULTS[@]}"
if ((FAILS)); then
  echo "== $FAILS check(s) FAILED =="
  exit 1
fi
echo "== all ${#RESULTS[@]} checks passed =="
