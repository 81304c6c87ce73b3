# Sourced by the interop scripts: where the workspace's binaries are, and the helpers the
# namespace-based scripts share (they define NS, PIDS and log before sourcing this).
#
# `workspace_bin NAME` prints the path of target/debug/NAME as `cargo test --workspace` (the
# README's test command, which CI runs first) builds it. Building it with `cargo build -p` instead
# would resolve features for that package alone and so compile many dependencies a second time;
# after the test command this is a no-op.
workspace_bin() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  (cd "$root" && cargo test --workspace --no-run -q >&2)
  local bin=${CARGO_TARGET_DIR:-$root/target}/debug/$1
  [[ $bin = /* ]] || bin=$root/$bin
  echo "$bin"
}

# Starts `ip netns exec NS ARGS...` in the background (ip execs, so $! is the daemon itself),
# logging to FILE; its PID joins PIDS, which the caller's cleanup stops.
start() { # FILE ARGS...
  local out=$1
  shift
  ip netns exec "$NS" "$@" >"$out" 2>&1 &
  PIDS+=("$!")
}

# Polls COMMAND every 0.2 s for at most SECS seconds.
wait_for() { # SECS DESCRIPTION COMMAND...
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "gave up after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}
