//! `onionlab-relay`: runs a relay from a YAML configuration. SIGHUP reloads the configuration;
//! SIGTERM or Ctrl-C shut down gracefully, and a second one exits at once.

use anyhow::Context;
use clap::{Parser, Subcommand};
use onionlab_relay::onion_keys::OnionKeys;
use onionlab_relay::relay::unix_now;
use onionlab_relay::{Relay, RelayConfig};
use std::path::PathBuf;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// An onionlab relay: accepts TLS links, builds circuits with the ntor handshake, forwards
/// onion-encrypted cells, and (as an exit) connects streams to destinations its exit policy
/// allows. It publishes a signed descriptor to the directory authorities in its config.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Args {
    /// YAML configuration (see relay/contrib/relay.yaml).
    #[arg(short, long, env = "ONIONLAB_RELAY_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create the keys if missing and print the identity fingerprint.
    Keygen,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onionlab_link::logging::init();
    let args = Args::parse();
    let config: RelayConfig = onionlab_link::config::load(&args.config)?;
    if let Some(Command::Keygen) = args.command {
        let key = onionlab_link::keystore::identity_key(&config.data_dir.join("identity_ed25519.key"))?;
        OnionKeys::load(&config.data_dir, unix_now(), config.onion_key_grace_secs)?;
        println!("{}", onionlab_proto::keys::fingerprint(&key.verifying_key().to_bytes()));
        return Ok(());
    }
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut handle = Relay::start(config).await.context("starting the relay")?;
    println!(
        "relay {} listening on {}",
        onionlab_proto::keys::fingerprint(&handle.identity()),
        handle.or_addr
    );
    loop {
        tokio::select! {
            _ = handle.wait() => anyhow::bail!("relay task stopped"),
            _ = hangup.recv() => match onionlab_link::config::load::<RelayConfig>(&args.config) {
                Ok(new) => {
                    if let Err(e) = handle.reload(new) {
                        tracing::error!("reload refused, keeping the running configuration: {e}");
                    }
                }
                Err(e) => tracing::error!("reload failed, keeping the running configuration: {e}"),
            },
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let grace = Duration::from_secs(handle.relay.settings().config.shutdown_grace_secs);
    tokio::select! {
        _ = handle.shutdown(grace) => Ok(()),
        _ = terminate.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
