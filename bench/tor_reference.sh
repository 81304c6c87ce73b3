#!/usr/bin/env bash
# tor_reference.sh: the side-by-side reference for onionlab's testbed, measured on a REAL tor.
#
# Builds a private tor network on loopback inside a fresh network namespace that has nothing but
# `lo` (so nothing can leave the machine): 3 directory authorities (keys from tor-gencert),
# N exit relays and one client, all `TestingTorNetwork 1` with chutney-style 20 s voting.
# A file of random bytes is served by `python3 -m http.server` on 127.0.0.1 in the namespace.
#
# It measures, and prints as greppable `tor: key=value` lines:
#   bootstrap_s   launch of the tor processes -> first successful HTTP request through the
#                 client's SOCKS port (polled with curl every 0.5 s; includes the first consensus)
#   direct_MBps   best of --rounds plain curl downloads of the file (MB = 10^6 bytes)
#   3hop_MBps     best of --rounds downloads through the tor client (curl --socks5-hostname),
#                 each checked against the file's sha256
#   ratio         3hop_MBps / direct_MBps
#
# Takes about 1-2 minutes: bootstrap usually 35-60 s (bounded by --timeout, default 180 s),
# then the downloads (64 MiB through tor at a few MB/s is 10-20 s per round).
# Needs root (ip netns). Installs tor and curl with apt-get if they are missing.
#
# usage: bench/tor_reference.sh [--mib N] [--relays N] [--rounds N] [--timeout S] [--keep]
set -euo pipefail

MIB=${TOR_BENCH_MIB:-64}
RELAYS=5
ROUNDS=3
TIMEOUT=180
KEEP=0
# The file must be served on 127.0.0.1: every relay's address. Clients only reach it because an
# exit's own address is an "exit enclave" (tor pins the stream to that exit); for 127.0.0.2 the
# client finds no exit that supports the stream at all, despite `accept 127.0.0.0/8:*`.
HTTP_ADDR=127.0.0.1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --mib) MIB=$2; shift 2 ;;
        --relays) RELAYS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "tor_reference.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

log() { echo "tor_reference: $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root for ip netns"

# --- tools --------------------------------------------------------------------------------------
if ! command -v tor >/dev/null || ! command -v tor-gencert >/dev/null || ! command -v curl >/dev/null; then
    log "installing tor and curl"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends tor curl >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends tor curl >/dev/null; }
fi
for t in tor tor-gencert curl ip; do command -v "$t" >/dev/null || die "$t not found"; done
# Resolve python3 to the real interpreter (pyenv shims and the like are shell scripts).
PY=$(python3 -c 'import sys; print(sys.executable)')

# --- workspace, namespace, cleanup ---------------------------------------------------------------
T_START=$(date +%s.%N)
WORK=$(mktemp -d /tmp/torbench.XXXXXX)
NS=torbench-$$
PIDS=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    ip netns del "$NS" 2>/dev/null || true
    if [[ $KEEP -eq 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }
# A plain command (not a function) in the background, and `ip netns exec` execs its command,
# so $! is the started process itself and killing it leaves nothing behind.
spawn() { local out=$1; shift; ip netns exec "$NS" "$@" >"$out" 2>&1 & PIDS+=($!); }

# Fixed ports are fine: the namespace is new and ours alone.
AUTH_OR=5100 AUTH_DIR=7100 RELAY_OR=5110 RELAY_DIR=7110 CTL=8100
SOCKS=9150
HTTP=8080

# --- the file to serve ---------------------------------------------------------------------------
mkdir -p "$WORK/www"
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/www/bulk.bin"
echo ok >"$WORK/www/ping.txt"
WANT_SHA=$(sha256sum "$WORK/www/bulk.bin" | cut -d' ' -f1)
spawn "$WORK/http.log" "$PY" -m http.server "$HTTP" --bind "$HTTP_ADDR" --directory "$WORK/www"

# --- torrc pieces --------------------------------------------------------------------------------
# Settings every node shares; authorities.conf (DirAuthority lines) is filled in below.
torrc_common() { # nick datadir
    cat <<EOF
TestingTorNetwork 1
PathsNeededToBuildCircuits 0.67
TestingDirAuthVoteExit *
TestingDirAuthVoteGuard *
TestingDirAuthVoteHSDir *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
Nickname $1
DataDirectory $2
PidFile $2/pid
Log notice file $2/notice.log
RunAsDaemon 0
ShutdownWaitLength 0
DisableDebuggerAttachment 0
SafeLogging 0
LogTimeGranularity 1
Sandbox 0
ClientUseIPv6 0
%include $WORK/authorities.conf
EOF
}
# A reachable exit relay that exits only to loopback.
torrc_exit() { # orport dirport controlport
    cat <<EOF
SocksPort 0
Address 127.0.0.1
ORPort 127.0.0.1:$1
DirPort 127.0.0.1:$2
ControlPort 127.0.0.1:$3
AssumeReachable 1
ServerDNSDetectHijacking 0
ServerDNSTestAddresses
ServerDNSResolvConfFile /dev/null
ExitRelay 1
ExitPolicyRejectPrivate 0
ExitPolicy accept 127.0.0.0/8:*
ExitPolicy reject *:*
EOF
}
# chutney's fast voting schedule.
torrc_authority() { # nick
    cat <<EOF
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
ContactInfo $1@test.invalid
TestingV3AuthInitialVotingInterval 20
TestingV3AuthInitialVoteDelay 4
TestingV3AuthInitialDistDelay 4
V3AuthVotingInterval 20
V3AuthVoteDelay 4
V3AuthDistDelay 4
EOF
}

: >"$WORK/authorities.conf"
for i in 0 1 2; do
    nick=auth$i d=$WORK/auth$i
    mkdir -p -m 700 "$d/keys"
    echo "" | tor-gencert --create-identity-key --passphrase-fd 0 -m 12 \
        -a "127.0.0.1:$((AUTH_DIR + i))" \
        -i "$d/keys/authority_identity_key" -s "$d/keys/authority_signing_key" \
        -c "$d/keys/authority_certificate" >/dev/null 2>&1 || die "tor-gencert failed"
    # Relay identity fingerprint (creates keys/secret_id_key in the data directory).
    fp=$(tor --ignore-missing-torrc -f /dev/null --orport 1 --datadirectory "$d" --list-fingerprint 2>/dev/null \
        | tail -n 1 | awk '{$1=""; gsub(/ /, ""); print}')
    v3=$(awk '/^fingerprint/ {print $2}' "$d/keys/authority_certificate")
    [[ ${#fp} -eq 40 && ${#v3} -eq 40 ]] || die "could not read fingerprints of $nick (fp=$fp v3=$v3)"
    echo "DirAuthority $nick orport=$((AUTH_OR + i)) no-v2 v3ident=$v3 127.0.0.1:$((AUTH_DIR + i)) $fp" \
        >>"$WORK/authorities.conf"
    { torrc_common "$nick" "$d"; torrc_exit $((AUTH_OR + i)) $((AUTH_DIR + i)) $((CTL + i)); torrc_authority "$nick"; } >"$d/torrc"
done
for i in $(seq 0 $((RELAYS - 1))); do
    d=$WORK/relay$i
    mkdir -p -m 700 "$d"
    { torrc_common "relay$i" "$d"; torrc_exit $((RELAY_OR + i)) $((RELAY_DIR + i)) $((CTL + 10 + i)); } >"$d/torrc"
done
d=$WORK/client
mkdir -p -m 700 "$d"
{ torrc_common client "$d"; cat <<EOF
SocksPort 127.0.0.1:$SOCKS
ControlPort 127.0.0.1:$((CTL + 50))
# Microdescriptor policy summaries drop 127.0.0.0/8, so a microdescriptor client would see a
# consensus "with no exits" for loopback: use full descriptors.
UseMicrodescriptors 0
# One plain 3-hop circuit per stream (no conflux leg pairs).
ConfluxEnabled 0
EOF
  # Debugging aid: TOR_BENCH_CLIENT_LOG=info (or debug) adds a verbose client log.
  [[ -z ${TOR_BENCH_CLIENT_LOG:-} ]] || echo "Log ${TOR_BENCH_CLIENT_LOG} file $d/${TOR_BENCH_CLIENT_LOG}.log"
} >"$d/torrc"

# --- launch and wait for a working circuit ------------------------------------------------------
TOR_VERSION=$(tor --version | head -n 1 | awk '{print $3}' | sed 's/\.$//')
echo "tor: version=$TOR_VERSION"
echo "tor: nodes=$((3 + RELAYS)) authorities=3 relays=$RELAYS mib=$MIB"
T_LAUNCH=$(date +%s.%N)
for d in "$WORK"/auth[0-9] "$WORK"/relay[0-9]* "$WORK/client"; do
    spawn "$d/stdout.log" tor -f "$d/torrc" --quiet
done

socks_get() { # path out [max-time] -> prints "time_total size_download"
    in_ns curl -sS --fail --socks5-hostname "127.0.0.1:$SOCKS" --max-time "${3:-600}" \
        -o "$2" -w '%{time_total} %{size_download}\n' "http://$HTTP_ADDR:$HTTP/$1"
}
direct_get() { # path out
    in_ns curl -sS --fail --max-time 600 \
        -o "$2" -w '%{time_total} %{size_download}\n' "http://$HTTP_ADDR:$HTTP/$1"
}

bootstrapped=0
while :; do
    now=$(date +%s.%N)
    if awk -v a="$now" -v b="$T_LAUNCH" -v t="$TIMEOUT" 'BEGIN { exit !(a - b > t) }'; then break; fi
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || die "a started process (pid $pid) exited; see $WORK (use --keep)"; done
    if socks_get ping.txt /dev/null 3 >/dev/null 2>&1; then bootstrapped=1; break; fi
    sleep 0.5
done
T_READY=$(date +%s.%N)
if [[ $bootstrapped -ne 1 ]]; then
    log "no request through tor succeeded within ${TIMEOUT}s; last client log lines:"
    tail -n 15 "$WORK/client/notice.log" >&2 || true
    log "authority 0 consensus lines:"
    grep -i consensus "$WORK/auth0/notice.log" | tail -n 5 >&2 || true
    die "tor network did not bootstrap"
fi
BOOT=$(awk -v a="$T_READY" -v b="$T_LAUNCH" 'BEGIN { printf "%.1f", a - b }')
echo "tor: bootstrap_s=$BOOT"
# The client's own view: when it logged "Bootstrapped 100%" (it can still fail to find a
# working exit for a while after that, so bootstrap_s above is the figure to compare).
line=$(grep -m 1 'Bootstrapped 100%' "$WORK/client/notice.log" || true)
if [[ -n $line ]] && t100=$(date -d "$(cut -c1-19 <<<"$line")" +%s.%N 2>/dev/null); then
    awk -v a="$t100" -v b="$T_LAUNCH" 'BEGIN { printf "tor: client_bootstrapped100_s=%.1f\n", a - b }'
fi

# --- downloads -----------------------------------------------------------------------------------
BYTES=$((MIB * 1024 * 1024))
best_direct=""
best_tor=""
min() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b + 0 < a + 0) print b; else print a }'; }
for r in $(seq 1 "$ROUNDS"); do
    out=$(direct_get bulk.bin "$WORK/direct.bin") || die "direct download failed"
    read -r td n <<<"$out"
    [[ $n -eq $BYTES ]] || die "direct download got $n of $BYTES bytes"
    best_direct=$(min "$best_direct" "$td")
    rm -f "$WORK/direct.bin" "$WORK/tor.bin"
    out=$(socks_get bulk.bin "$WORK/tor.bin") || die "3-hop download through tor failed"
    read -r tt n <<<"$out"
    [[ $n -eq $BYTES ]] || die "3-hop download got $n of $BYTES bytes"
    got=$(sha256sum "$WORK/tor.bin" | cut -d' ' -f1)
    [[ $got == "$WANT_SHA" ]] || die "sha256 mismatch through tor: $got != $WANT_SHA"
    best_tor=$(min "$best_tor" "$tt")
    log "round $r/$ROUNDS: direct ${td}s, 3-hop ${tt}s (sha256 ok)"
done
echo "tor: sha256_ok=1"
awk -v b="$BYTES" -v d="$best_direct" -v o="$best_tor" 'BEGIN {
    dm = b / d / 1e6; om = b / o / 1e6
    printf "tor: direct_s=%.3f\ntor: 3hop_s=%.3f\n", d, o
    printf "tor: direct_MBps=%.1f\ntor: 3hop_MBps=%.2f\ntor: ratio=%.4f\n", dm, om, om / dm
}'
T_END=$(date +%s.%N)
awk -v a="$T_END" -v b="$T_START" 'BEGIN { printf "tor: wall_s=%.1f\n", a - b }'
