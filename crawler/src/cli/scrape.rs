//! `onionlab-crawl scrape`: seeders, completed downloads and leechers per info-hash.

use clap::Args;
use onionlab_crawler::engine::Engine;
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::probe::tracker::TrackerClient;

use super::announce::TrackerOpts;
use super::torrent::parse_info_hash;

/// Arguments of `scrape`.
#[derive(Args)]
pub(crate) struct ScrapeArgs {
    /// The tracker's announce URL (http://.../announce is turned into .../scrape, BEP 48; or
    /// udp://host:port).
    url: String,
    /// Info-hashes, 40 hex or 32 base32 characters each (UDP: 74 per request, more are split).
    #[arg(required = true, value_parser = parse_info_hash)]
    hashes: Vec<InfoHash>,
    #[command(flatten)]
    tracker: TrackerOpts,
}

pub(crate) async fn run(args: ScrapeArgs, engine: Engine) -> anyhow::Result<()> {
    let client = TrackerClient::new(engine, args.tracker.config());
    let scrape = client.scrape(&args.url, &args.hashes).await?;
    for hash in &args.hashes {
        match scrape.get(hash) {
            Some(f) => println!(
                "{} seeders {} completed {} leechers {}",
                hash.to_hex(),
                f.complete,
                f.downloaded,
                f.incomplete
            ),
            None => println!("{} not listed by the tracker", hash.to_hex()),
        }
    }
    Ok(())
}
