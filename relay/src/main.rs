//! `onionlab-relay`: runs a relay from a YAML configuration.

use anyhow::Context;
use clap::{Parser, Subcommand};
use onionlab_relay::{Relay, RelayConfig};
use std::path::PathBuf;

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
        onionlab_link::keystore::onion_key(&config.data_dir.join("onion_x25519.key"))?;
        println!("{}", onionlab_proto::keys::fingerprint(&key.verifying_key().to_bytes()));
        return Ok(());
    }
    let mut handle = Relay::start(config).await.context("starting the relay")?;
    println!(
        "relay {} listening on {}",
        onionlab_proto::keys::fingerprint(&handle.identity()),
        handle.or_addr
    );
    tokio::select! {
        _ = handle.wait() => anyhow::bail!("relay task stopped"),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
