#!/usr/bin/env bash
# Interop tier (run by CI after the unit tests): the `onionlab testbed` network against real,
# unmodified clients — curl (SOCKS5 with local and with proxy-side resolution) and headless
# Chromium. Everything runs inside one private network namespace that has only `lo`, so nothing
# reaches outside and DNS fails at once: a page that loads by the name `demo.onionlab.test`
# (which only the exits can resolve) proves the request really went through the onion proxy.
#
# Needs root (apt-get, ip netns). Environment knobs:
#   CARGO_TARGET_DIR     where cargo builds (default: target/)
#   INTEROP_LARGE_MIB    size of /large.bin in MiB (default 16)
#   INTEROP_KEEP=1       keep the logs directory even when every check passes
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SOCKS=127.0.0.1:9050
DEMO=127.0.0.1:8000
DEMO_HOST=demo.onionlab.test:8000
RELAYS=6
LARGE_MIB=${INTEROP_LARGE_MIB:-16}
READY_SECS=30      # bound on the wait for the testbed banner
NS=onionlab-interop-$$
WORK=$(mktemp -d /tmp/onionlab-interop.XXXXXX)
TESTBED_PID=""
NS_CREATED=0
SCRIPT_START=$SECONDS

# Proxy settings from the environment must not change what curl does here.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

log() { printf '[interop %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
show_tail() { # FILE [LINES]: indented tail of a log, for failure reports
  local f=$1 n=${2:-20}
  [[ -s $f ]] || { echo "    ($f is empty)"; return 0; }
  echo "    --- last $n lines of $f ---"
  tail -n "$n" "$f" | sed 's/^/    | /'
}

# True while PID exists and is not a zombie (a zombie still answers `kill -0`).
alive() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

# SIGINT (what Ctrl-C sends) to the testbed; SIGKILL if it is still there after 10 s.
# Returns 0 when it exited by itself after the SIGINT.
stop_testbed() {
  [[ -n $TESTBED_PID ]] || return 0
  local pid=$TESTBED_PID watchdog rc=0
  TESTBED_PID=""
  alive "$pid" && kill -INT "$pid" 2>/dev/null
  ( sleep 10; kill -KILL "$pid" 2>/dev/null && echo "killed" >"$WORK/testbed.killed" ) &
  watchdog=$!
  wait "$pid" 2>/dev/null || rc=$?
  kill "$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  [[ ! -e $WORK/testbed.killed ]] || return 1
  return "$rc"
}

cleanup() {
  local rc=$?
  set +e
  stop_testbed
  if ((NS_CREATED)); then
    # Whatever is still inside the private namespace was started by this script
    # (e.g. a Chromium helper process that outlived its parent).
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
# 1. Real peers.
if command -v curl >/dev/null && command -v chromium >/dev/null && command -v ip >/dev/null; then
  log "curl, chromium and ip already installed"
else
  log "installing curl, chromium, iproute2"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl chromium iproute2
fi
log "$(curl --version | head -n 1 | cut -d' ' -f1-2); $(chromium --version 2>/dev/null | grep -i chromium | head -n 1)"

# 2. The binary.
log "building onionlab"
source "$ROOT/interop/lib.sh"
BIN=$(workspace_bin onionlab)
[[ -x $BIN ]] || { log "no binary at $BIN"; exit 1; }

# 3. A private network namespace with only loopback, and the testbed inside it.
ip netns add "$NS"
NS_CREATED=1
inns() { ip netns exec "$NS" "$@"; }
inns ip link set lo up
log "netns $NS: interfaces $(inns ip -o link show | awk -F': ' '{printf "%s ", $2}')"

log "starting: onionlab testbed --large-mib $LARGE_MIB (relays $RELAYS, SOCKS $SOCKS, demo $DEMO)"
start=$(now)
# Not through the `inns` function: `$!` must be the testbed itself (`ip netns exec` execs it),
# not a subshell, or the SIGINT below would never reach it.
ip netns exec "$NS" "$BIN" testbed --relays "$RELAYS" --socks "$SOCKS" --demo "$DEMO" --large-mib "$LARGE_MIB" \
  >"$WORK/testbed.log" 2>&1 &
TESTBED_PID=$!
deadline=$((SECONDS + READY_SECS))
until grep -q '^onionlab testbed ready in' "$WORK/testbed.log"; do
  if ! alive "$TESTBED_PID"; then
    log "FAIL startup: the testbed exited before printing its banner"
    show_tail "$WORK/testbed.log" 40
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    log "FAIL startup: no banner within ${READY_SECS} s"
    show_tail "$WORK/testbed.log" 40
    exit 1
  fi
  sleep 0.2
done
log "testbed up (pid $TESTBED_PID) after $(since "$start") s: $(grep -m1 '^onionlab testbed ready in' "$WORK/testbed.log")"

# ---------------------------------------------------------------------------------------------
# 4a. The index page by name through the proxy equals the direct fetch.
check_a() {
  local t rc=0
  inns curl -sS --max-time 20 -o "$WORK/index.direct" "http://$DEMO/" 2>"$WORK/a.direct.err" || rc=$?
  if ((rc)); then fail a "direct fetch of http://$DEMO/ failed (curl exit $rc: $(head -c 200 "$WORK/a.direct.err"))"; return; fi
  t=$(now)
  inns curl -sS --max-time 60 --socks5-hostname "$SOCKS" -o "$WORK/index.proxy" \
    "http://$DEMO_HOST/" 2>"$WORK/a.proxy.err" || rc=$?
  if ((rc)); then fail a "curl --socks5-hostname http://$DEMO_HOST/ failed (curl exit $rc: $(head -c 200 "$WORK/a.proxy.err"))"; return; fi
  if ! grep -q 'Welcome to the onionlab demo site' "$WORK/index.proxy"; then
    fail a "page through the proxy lacks the welcome text ($(wc -c <"$WORK/index.proxy") bytes)"
  elif ! cmp -s "$WORK/index.direct" "$WORK/index.proxy"; then
    fail a "page through the proxy ($(wc -c <"$WORK/index.proxy") B) differs from the direct fetch ($(wc -c <"$WORK/index.direct") B)"
  else
    pass a "http://$DEMO_HOST/ via --socks5-hostname = direct fetch ($(wc -c <"$WORK/index.proxy") B, $(since "$t") s)"
  fi
}

# 4b. /large.bin through the proxy, resolved locally (IP target) and by the exit (name target),
# and once more read slowly.
check_b() {
  local expected rc=0 mode url out w code size speed secs got want
  want=$((LARGE_MIB * 1024 * 1024))
  expected=$(inns curl -sS --max-time 20 "http://$DEMO/large.bin.sha256" 2>"$WORK/b.sha.err") || rc=$?
  expected=${expected%% *}
  if ((rc)) || [[ ! $expected =~ ^[0-9a-f]{64}$ ]]; then
    fail b "could not read the digest from http://$DEMO/large.bin.sha256 (curl exit $rc, got '${expected:0:80}')"
    return
  fi
  # Reference: the same file fetched directly (no proxy).
  w=$(inns curl -sS --max-time 60 -o /dev/null -w '%{speed_download} %{time_total}' \
    "http://$DEMO/large.bin" 2>/dev/null) || w="0 0"
  log "reference: direct fetch of http://$DEMO/large.bin: $(awk -v v="${w% *}" -v t="${w#* }" \
    'BEGIN { printf "%.2f s, %.1f MB/s", t, v / 1e6 }')"
  # `slow` reads at 8 MB/s: a slow application must hold the exit back (SENDME credit only
  # for data written out), never lose the end of the stream.
  for mode in socks5 socks5-hostname slow; do
    local proxy_opt=(--socks5 "$SOCKS")
    case $mode in
      socks5) url="http://$DEMO/large.bin" ;;
      socks5-hostname) url="http://$DEMO_HOST/large.bin"; proxy_opt=(--socks5-hostname "$SOCKS") ;;
      slow) url="http://$DEMO_HOST/large.bin"; proxy_opt=(--socks5-hostname "$SOCKS" --limit-rate 8M) ;;
    esac
    out=$WORK/large.$mode
    rc=0
    w=$(inns curl -sS --max-time 180 "${proxy_opt[@]}" -o "$out" \
      -w '%{http_code} %{size_download} %{speed_download} %{time_total}' "$url" 2>"$WORK/b.$mode.err") || rc=$?
    if ((rc)); then
      fail "b/$mode" "curl ${proxy_opt[*]} $url failed (curl exit $rc: $(head -c 200 "$WORK/b.$mode.err"))"
      continue
    fi
    read -r code size speed secs <<<"$w"
    got=$(sha256sum "$out" | cut -d' ' -f1)
    rm -f "$out"
    local summary
    summary=$(awk -v s="$size" -v v="$speed" -v t="$secs" \
      'BEGIN { printf "%.1f MiB in %.2f s, %.2f MB/s (%.0f B/s)", s / 1048576, t, v / 1e6, v }')
    if [[ $code != 200 ]]; then
      fail "b/$mode" "HTTP $code for $url"
    elif ((size != want)); then
      fail "b/$mode" "got $size bytes, want $want ($url)"
    elif [[ $got != "$expected" ]]; then
      fail "b/$mode" "sha256 $got != served digest $expected ($url)"
    else
      pass "b/$mode" "$url sha256 ok; $summary"
    fi
  done
}

# 4c. The site sees an exit's address, not the client's.
check_c() {
  local url body rc label
  for url in "http://$DEMO_HOST/ip" "http://$DEMO/ip"; do
    rc=0
    if [[ $url == *"$DEMO_HOST"* ]]; then label=c/name; else label=c/ip; fi
    body=$(inns curl -sS --max-time 60 --socks5-hostname "$SOCKS" "$url" 2>"$WORK/c.err") || rc=$?
    body=${body//[$'\r\n ']/}
    if ((rc)); then
      fail "$label" "curl --socks5-hostname $url failed (curl exit $rc: $(head -c 200 "$WORK/c.err"))"
    elif [[ $body =~ ^127\.0\.([0-9]+)\.1$ ]] && ((BASH_REMATCH[1] >= 1 && BASH_REMATCH[1] <= RELAYS)); then
      pass "$label" "$url through the proxy: the site saw $body (an exit)"
    else
      fail "$label" "$url through the proxy: the site saw '${body:0:80}', want 127.0.i.1 with 1 <= i <= $RELAYS"
    fi
  done
}

# 4d. Headless Chromium through the proxy.
chromium_dump() { # URL OUT ERRLOG -> chromium's exit status (124: timeout)
  local profile
  profile=$(mktemp -d "$WORK/chromium-profile.XXXXXX")
  inns timeout --kill-after=10 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --proxy-server="socks5://$SOCKS" --proxy-bypass-list='<-loopback>' \
    --dump-dom "$1" >"$2" 2>"$3"
}
check_d() {
  local label url want out err rc t
  while IFS='|' read -r label url want; do
    out=$WORK/${label//\//_}.dom
    err=$WORK/${label//\//_}.chromium.log
    rc=0
    t=$(now)
    chromium_dump "$url" "$out" "$err" || rc=$?
    if grep -qE "$want" "$out"; then
      pass "$label" "chromium --dump-dom $url contains '$want' ($(since "$t") s, exit $rc)"
    else
      fail "$label" "chromium --dump-dom $url: '$want' not in the DOM ($(wc -c <"$out") bytes; exit $rc$( ((rc == 124)) && echo ': timed out after 60 s'); $(since "$t") s)"
      show_tail "$out" 10
      show_tail "$err" 25
    fi
  done <<EOF
d/name|http://$DEMO_HOST/|Welcome to the onionlab demo site
d/about|http://$DEMO/about.html|How the request got here
d/ip|http://$DEMO/ip|127\.0\.[1-9][0-9]*\.1
EOF
}

# 4e. An unresolvable name fails fast with a SOCKS error instead of hanging.
check_e() {
  local rc=0 t el msg url=http://no-such-host.invalid/
  t=$(now)
  inns curl -sS --max-time 30 --socks5-hostname "$SOCKS" -o /dev/null "$url" 2>"$WORK/e.err" || rc=$?
  el=$(since "$t")
  msg=$(tr '\n' ' ' <"$WORK/e.err" | head -c 200)
  if ((rc == 0)); then
    fail e "curl --socks5-hostname $url succeeded; want a SOCKS error"
  elif ((rc == 28)); then
    fail e "curl --socks5-hostname $url hung: timed out after $el s ($msg)"
  elif ! grep -qi socks "$WORK/e.err"; then
    fail e "curl exit $rc after $el s, but not a SOCKS error: $msg"
  elif awk -v e="$el" 'BEGIN { exit !(e < 30) }'; then
    pass e "$url refused in $el s: curl exit $rc, $msg"
  else
    fail e "$url took $el s (curl exit $rc)"
  fi
}

for c in a b c d e; do
  t=$(now)
  "check_$c"
  log "check $c took $(since "$t") s"
done

# 4f. The testbed is still running after all that, and stops cleanly on SIGINT.
if ! alive "$TESTBED_PID"; then
  fail f "the testbed died during the checks"
  show_tail "$WORK/testbed.log" 40
  TESTBED_PID=""
else
  t=$(now)
  rc=0
  stop_testbed || rc=$?
  if ((rc == 0)) && grep -q '^stopping' "$WORK/testbed.log"; then
    pass f "testbed survived the checks and exited cleanly on SIGINT in $(since "$t") s"
  else
    fail f "testbed did not exit cleanly on SIGINT (status $rc$([[ -e $WORK/testbed.killed ]] && echo ', SIGKILLed after 10 s'))"
    show_tail "$WORK/testbed.log" 20
  fi
fi
if grep -qE ' (ERROR|WARN) ' "$WORK/testbed.log"; then
  log "note: the testbed logged $(grep -cE ' (ERROR|WARN) ' "$WORK/testbed.log") WARN/ERROR lines, e.g.:"
  grep -E ' (ERROR|WARN) ' "$WORK/testbed.log" | head -n 5 | sed 's/^/    | /'
fi

# 5. Summary.
echo
echo "== onionlab interop summary ($((SECONDS - SCRIPT_START)) s) =="
printf '  %s\n' "${RESULTS[@]}"
if ((FAILS)); then
  echo "== $FAILS check(s) FAILED =="
  exit 1
fi
echo "== all ${#RESULTS[@]} checks passed =="
