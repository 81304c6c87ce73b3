# Sourced by the interop scripts: where the workspace's binaries are.
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
