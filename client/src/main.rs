//! `onionlab-client`: the SOCKS5 (and HTTP CONNECT) proxy into the onion network.

use anyhow::Context;
use clap::Parser;
use onionlab_client::{Client, ClientConfig};
use std::path::PathBuf;

/// The onionlab client: a SOCKS5 proxy on loopback that carries every connection through a
/// 3-hop onion circuit. Hostnames are resolved by the exit, never locally; connections with
/// different SOCKS usernames/passwords use different circuits.
///
/// Try: curl --socks5-hostname 127.0.0.1:9050 http://example.org/
/// or, with `http_connect_listen: 127.0.0.1:9080`: curl -p -x http://127.0.0.1:9080 http://example.org/
#[derive(Parser)]
#[command(version, about, long_about)]
struct Args {
    /// YAML configuration (see the README).
    #[arg(short, long, env = "ONIONLAB_CLIENT_CONFIG")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    onionlab_link::logging::init();
    let args = Args::parse();
    let config: ClientConfig = onionlab_link::config::load(&args.config)?;
    let mut handle = Client::start(config).await.context("starting the client")?;
    println!("SOCKS5 proxy on {}", handle.socks_addr);
    if let Some(addr) = handle.http_connect_addr {
        println!("HTTP CONNECT proxy on {addr}");
    }
    tokio::select! {
        _ = handle.wait() => anyhow::bail!("client task stopped"),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
