#!/usr/bin/env bash
# Browser check of the experiment report, twice:
# - `onionlab report` rebuilds report.html from the synthetic fixture
#   (experiments/tests/fixtures/report/results.json), then headless Chromium loads it from
#   disk. Checks: the rebuild is byte-identical, the DOM Chromium builds holds every measured
#   number, one <svg> per figure, the escaped <script> title as text and no <script> or <img>
#   element; the screenshot is written.
# - `onionlab run` runs experiment 1's simulation (distribution-time.yaml) as a student would,
#   and Chromium loads its report: one <svg> per figure, every number cell of the page in the
#   DOM, the published d_cs/d_P2P ratio beside the measured one. Chromium runs in a network namespace with only `lo`
# (it calls update servers otherwise), so the page provably loads nothing from outside.
#
# Needs root (apt-get, unshare). Environment knobs:
#   CARGO_TARGET_DIR       where cargo builds (default: target/)
#   REPORT_SCREENSHOT=PNG  also copy the screenshot there
#   REPORT_KEEP=1          keep the work folder even when every check passes
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FIXTURE=experiments/tests/fixtures/report/results.json
FIGURES=3   # figures in the fixture
WORK=$(mktemp -d /tmp/onionlab-report.XXXXXX)
FAILED=0

log() { printf '[report %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; FAILED=1; }
cleanup() {
  if [[ $FAILED -eq 0 && ${REPORT_KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else log "work folder kept: $WORK"; fi
}
trap cleanup EXIT

if ! command -v chromium >/dev/null; then
  log "installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >"$WORK/apt.log" 2>&1 \
    || { tail -n 20 "$WORK/apt.log"; fail "chromium install"; exit 1; }
fi

log "building onionlab"
source "$ROOT/interop/lib.sh"
ONIONLAB=$(workspace_bin onionlab)

mkdir -p "$WORK/run"
cp "$FIXTURE" "$WORK/run/results.json"
if "$ONIONLAB" report "$WORK/run" >"$WORK/report.out" 2>&1; then
  pass "onionlab report wrote $(cat "$WORK/report.out")"
else
  cat "$WORK/report.out"; fail "onionlab report"; exit 1
fi
cp "$WORK/run/report.html" "$WORK/first.html"
"$ONIONLAB" report "$WORK/run" >/dev/null
if cmp -s "$WORK/first.html" "$WORK/run/report.html"; then pass "rebuild is byte-identical"; else fail "rebuild differs"; fi

# Headless Chromium, offline: only `lo` in its network namespace.
browse() { # PAGE OUTPUT-FLAG...: run chromium on PAGE with these flags
  local profile page=$1
  shift
  profile=$(mktemp -d "$WORK/profile.XXXXXX")
  timeout 90 unshare -n sh -c 'ip link set lo up; exec "$@"' sh chromium --headless --no-sandbox --disable-gpu \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars "$@" "file://$page"
}
browse "$WORK/run/report.html" --dump-dom >"$WORK/dom.html" 2>"$WORK/chromium-dom.log" || true
browse "$WORK/run/report.html" --screenshot="$WORK/report.png" --window-size=1200,3300 >/dev/null \
  2>"$WORK/chromium-shot.log" || true

if [[ -s $WORK/dom.html ]] && grep -q '</html>' "$WORK/dom.html"; then
  pass "chromium built the DOM ($(wc -c <"$WORK/dom.html") bytes)"
else
  tail -n 20 "$WORK/chromium-dom.log"; fail "chromium --dump-dom gave no page"; exit 1
fi

svgs=$(grep -o '<svg ' "$WORK/dom.html" | wc -l)
figures=$(grep -o '<figure ' "$WORK/dom.html" | wc -l)
if [[ $svgs -eq $FIGURES && $figures -eq $FIGURES ]]; then
  pass "$svgs inline <svg> for $figures figures"
else
  fail "expected $FIGURES figures with an <svg> each, found $figures figures and $svgs <svg>"
fi
texts=$(grep -o '<text ' "$WORK/dom.html" | wc -l)
if [[ $texts -ge $((FIGURES * 10)) ]]; then pass "$texts SVG <text> labels"; else fail "only $texts SVG <text> labels"; fi

expect() { # TEXT WHAT: the DOM must hold TEXT
  if grep -qF -- "$1" "$WORK/dom.html"; then pass "$2"; else fail "$2 (no '$1' in the DOM)"; fi
}
expect '<td class="num">5.12 hops</td>' "measured 5.12 hops shown"
expect '<td class="num">50 s</td>' "measured 50 s shown"
expect '<td class="num">+2.4 %</td>' "relative difference +2.4 % shown"
expect '<td class="num">-16.7 %</td>' "relative difference -16.7 % shown"
expect 'not measured' "missing measurement shown"
expect '<td class="pass">PASS</td>' "a passing check"
expect '<td class="fail">FAIL</td>' "a failing check"
expect '<code>20261122</code>' "seed shown"
expect '<tr><td>measured mean</td><td class="num">4096</td><td class="num">6.18</td></tr>' "numbers behind the figures"
expect 'Session lengths (synthetic) &lt;script&gt;alert(1)&lt;/script&gt;' "markup in a title stays text"
if grep -qi '<script' "$WORK/dom.html"; then fail "a <script> element is in the DOM"; else pass "no <script> element"; fi
if grep -qi '<img' "$WORK/dom.html"; then fail "an <img> element is in the DOM"; else pass "no <img> element"; fi

if [[ -s $WORK/report.png ]]; then
  pass "screenshot $(wc -c <"$WORK/report.png") bytes"
  [[ -n ${REPORT_SCREENSHOT:-} ]] && cp "$WORK/report.png" "$REPORT_SCREENSHOT"
else
  tail -n 20 "$WORK/chromium-shot.log"; fail "no screenshot"
fi

# A real experiment's report, from the binary's own run.
log "running experiment 1's simulation"
mkdir -p "$WORK/exp"
cp experiments/campaigns/distribution-time.yaml "$WORK/exp/"
if "$ONIONLAB" run "$WORK/exp/distribution-time.yaml" >"$WORK/exp.out" 2>&1; then
  pass "onionlab run distribution-time.yaml: its checks passed"
else
  cat "$WORK/exp.out"; fail "onionlab run distribution-time.yaml"
fi
PAGE=$WORK/exp/results/distribution-time/report.html
browse "$PAGE" --dump-dom >"$WORK/exp-dom.html" 2>"$WORK/chromium-exp.log" || true
if [[ -s $WORK/exp-dom.html ]] && grep -q '</html>' "$WORK/exp-dom.html"; then
  pass "chromium built the experiment's DOM ($(wc -c <"$WORK/exp-dom.html") bytes)"
else
  tail -n 20 "$WORK/chromium-exp.log"; fail "chromium --dump-dom gave no page for the experiment"
fi
want=$(grep -o '<figure ' "$PAGE" | wc -l)
svgs=$(grep -o '<svg ' "$WORK/exp-dom.html" | wc -l)
if [[ $want -ge 1 && $svgs -eq $want ]]; then
  pass "experiment report: $svgs inline <svg> for $want figures"
else
  fail "experiment report: $want figures in the page, $svgs <svg> in the DOM"
fi
grep -o '<td class="num">[^<]*</td>' "$PAGE" | sort -u >"$WORK/exp-cells.txt"
cells=$(wc -l <"$WORK/exp-cells.txt")
missing=$(grep -cvxFf <(grep -o '<td class="num">[^<]*</td>' "$WORK/exp-dom.html" | sort -u) "$WORK/exp-cells.txt" || true)
if [[ $cells -ge 20 && $missing -eq 0 ]]; then
  pass "experiment report: all $cells distinct number cells in the DOM"
else
  fail "experiment report: $missing of $cells number cells missing from the DOM"
fi
if grep -q 'cs_over_p2p_n100' "$WORK/exp-dom.html" && grep -qF '11.36' "$WORK/exp-dom.html"; then
  pass "experiment report: the published ratio 11.36 shown beside the measured one"
else
  fail "experiment report: no cs_over_p2p_n100 check with its published 11.36"
fi

if [[ $FAILED -eq 0 ]]; then log "all report checks passed"; else log "report checks FAILED"; fi
exit "$FAILED"
