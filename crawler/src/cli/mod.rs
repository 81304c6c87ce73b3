//! The command line: global options shared by every probe, and one module per subcommand group.

mod dht;
mod info;

use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use onionlab_crawler::engine::{Engine, EngineConfig, Recorder};

/// onionlab-crawl: measure BitTorrent trackers, peers and the Mainline DHT, byte for byte.
///
/// Every probe goes through one engine: at most --concurrency attempts at once, at most one
/// attempt per --per-ip-interval to any one IP address, a --timeout per attempt, and retries with
/// doubling backoff for attempts that got no answer.
#[derive(Parser)]
#[command(name = "onionlab-crawl", version, about, long_about)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Options of every subcommand.
#[derive(ClapArgs)]
pub(crate) struct Common {
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Attempts in flight at once.
    #[arg(long, global = true, default_value_t = 256)]
    concurrency: usize,
    /// Minimum time between two attempts to one IP address (politeness), e.g. 1s, 250ms.
    #[arg(long, global = true, default_value = "1s", value_parser = parse_duration)]
    per_ip_interval: Duration,
    /// Deadline of one attempt, e.g. 5s.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Attempts in all for a probe that gets no answer (1 = no retry).
    #[arg(long, global = true, default_value_t = 2)]
    attempts: u32,
}

impl Common {
    fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            concurrency: self.concurrency,
            per_ip_interval: self.per_ip_interval,
            timeout: self.timeout,
            attempts: self.attempts,
            ..EngineConfig::default()
        }
    }

    /// An engine under these options, recording to `recorder`.
    fn engine(&self, recorder: Recorder) -> Engine {
        Engine::new(self.engine_config(), recorder)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Show a .torrent file: name, size, pieces, info-hash, magnet link, non-canonical forms.
    Info(info::InfoArgs),
    /// Mainline DHT: KRPC probes, a crawl, a loopback simulator and its benchmark.
    Dht(dht::DhtArgs),
}

/// Run the chosen subcommand.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Info(a) => info::run(a),
        Command::Dht(a) => dht::run(a, &args.common).await,
    }
}

/// `tracing` to stderr: warnings, plus the crawler's own info lines; `-v` debug, `-vv` trace.
pub(crate) fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,onionlab_crawler=info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Durations written as `500ms`, `2s`, `1.5s`, `3m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len()));
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 2s or 3m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is not a usable duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1 fortnight").is_err());
        assert!(parse_duration("").is_err());
    }
}
