//! `onionlab-dirauth`: runs a directory authority from a YAML configuration.

use anyhow::Context;
use clap::Parser;
use onionlab_directory::{Authority, AuthorityConfig};
use std::path::PathBuf;

/// An onionlab directory authority: collects signed relay descriptors, tests that each relay
/// answers on its OR port with the identity it claims, and serves a signed consensus over
/// HTTP (binary at /onionlab/v1/consensus, JSON at /onionlab/v1/consensus.json).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Args {
    /// YAML configuration (see the README for every field).
    #[arg(short, long, env = "ONIONLAB_DIRAUTH_CONFIG")]
    config: PathBuf,
    /// Print the authority's identity fingerprint (creating the key if needed) and exit.
    #[arg(long)]
    print_fingerprint: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onionlab_link::logging::init();
    let args = Args::parse();
    let config: AuthorityConfig = onionlab_link::config::load(&args.config)?;
    if args.print_fingerprint {
        let key = onionlab_link::keystore::identity_key(&onionlab_directory::authority::key_path(&config.data_dir))?;
        println!("{}", onionlab_proto::keys::fingerprint(&key.verifying_key().to_bytes()));
        return Ok(());
    }
    let mut handle = Authority::start(config).await.context("starting the authority")?;
    println!(
        "authority {} serving on http://{}",
        onionlab_proto::keys::fingerprint(&handle.identity),
        handle.http_addr
    );
    tokio::select! {
        _ = handle.wait() => anyhow::bail!("authority task stopped"),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
