//! Log setup shared by the daemons: `tracing` to stderr, filtered by `RUST_LOG`.
//!
//! The default level is `info`, and `fast_socks5` is held at `warn` whatever the user asks
//! below that, because its debug output names SOCKS destinations and credentials. Our own
//! code never logs destinations or credentials at `info` or above.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber (once; later calls do nothing).
pub fn init() {
    init_with_default("info");
}

/// Like [`init`], with `default` as the level when `RUST_LOG` is unset (a command that runs
/// whole testbeds in-process, such as `onionlab run`, keeps their info lines out of the way).
pub fn init_with_default(default: &str) {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_owned());
    let filter = EnvFilter::try_new(format!("{base},fast_socks5=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info,fast_socks5=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
