//! OnionPerf-style measurements of the testbed: start-up to first byte, circuit build times,
//! and bulk throughput through a 3-hop circuit against a direct download of the same file,
//! measured side by side in one run (`onionlab bench`, `bench/testbed.sh`).

use crate::socks_client::{connect, http_get};
use crate::testbed::{DEMO_HOSTNAME, Testbed, TestbedConfig};
use onionlab_client::pool::IsolationKey;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(300);

/// What one run measured.
#[derive(Debug, Clone)]
pub struct PerfReport {
    /// From the start of `Testbed::start` to the first response byte through the network.
    pub launch_to_first_byte: Duration,
    /// Circuit build times, sorted.
    pub builds: Vec<Duration>,
    /// Bytes of the bulk file.
    pub bulk_bytes: u64,
    /// Best direct download time.
    pub direct: Duration,
    /// Best download time through a 3-hop circuit.
    pub onion: Duration,
}

/// The q-quantile of `sorted` (nearest rank; zero for none).
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-9) / 1e6
}

impl PerfReport {
    /// The report as lines for people.
    pub fn render(&self) -> String {
        let (d, o) = (mbps(self.bulk_bytes, self.direct), mbps(self.bulk_bytes, self.onion));
        format!(
            "launch to first byte through 3 hops: {:.1} ms\n\
             circuit build ({} circuits): p50 {:.2} ms, p99 {:.2} ms\n\
             {} MiB direct:        {:.0} MB/s ({:.3} s)\n\
             {} MiB through 3 hops: {:.0} MB/s ({:.3} s)\n\
             3-hop / direct throughput ratio: {:.3}",
            self.launch_to_first_byte.as_secs_f64() * 1e3,
            self.builds.len(),
            quantile(&self.builds, 0.5).as_secs_f64() * 1e3,
            quantile(&self.builds, 0.99).as_secs_f64() * 1e3,
            self.bulk_bytes >> 20,
            d,
            self.direct.as_secs_f64(),
            self.bulk_bytes >> 20,
            o,
            self.onion.as_secs_f64(),
            o / d,
        )
    }
}

/// Starts a testbed on free ports and measures it: `circuits` fresh builds and `rounds`
/// alternating direct and 3-hop downloads of a `bulk_mib` MiB file (best of each kept).
pub async fn measure(bulk_mib: u64, circuits: usize, rounds: usize) -> anyhow::Result<PerfReport> {
    let launch = Instant::now();
    let mut cfg = TestbedConfig::ephemeral();
    cfg.large_file = bulk_mib << 20;
    let tb = Testbed::start(cfg, Duration::from_secs(30)).await?;
    let port = tb.demo.addr.port();
    let s = connect(tb.client.socks_addr, DEMO_HOSTNAME, port, None).await?;
    let first = http_get(s, DEMO_HOSTNAME, "/", 1 << 20, LIMIT).await?;
    anyhow::ensure!(first.status == 200, "demo site answered {}", first.status);
    let launch_to_first_byte = launch.elapsed();

    for i in 0..circuits {
        tb.client
            .pool
            .get(
                &IsolationKey::new(Some((format!("bench-{i}"), String::new()))),
                None,
                true,
            )
            .await?;
    }
    let mut builds = tb.client.pool.build_times();
    builds.sort();

    let (mut direct, mut onion) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        let r = http_get(
            TcpStream::connect(tb.demo.addr).await?,
            "127.0.0.1",
            "/large.bin",
            usize::MAX,
            LIMIT,
        )
        .await?;
        anyhow::ensure!(r.body.len() as u64 == tb.demo.large, "direct download incomplete");
        direct = direct.min(t.elapsed());
        let t = Instant::now();
        let s = connect(tb.client.socks_addr, DEMO_HOSTNAME, port, None).await?;
        let r = http_get(s, DEMO_HOSTNAME, "/large.bin", usize::MAX, LIMIT).await?;
        anyhow::ensure!(r.body.len() as u64 == tb.demo.large, "3-hop download incomplete");
        onion = onion.min(t.elapsed());
    }
    Ok(PerfReport {
        launch_to_first_byte,
        builds,
        bulk_bytes: tb.demo.large,
        direct,
        onion,
    })
}

/// What a load run did.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Circuits used (one per isolation group).
    pub circuits: usize,
    /// Streams opened and checked.
    pub streams: usize,
    /// Streams whose body matched its SHA-256.
    pub verified: usize,
    /// Bytes received through the network.
    pub bytes: u64,
    /// Wall time of the load.
    pub elapsed: Duration,
    /// CREATE2 handshakes per relay (every circuit crosses every relay of a 3-relay network).
    pub circuits_per_relay: Vec<u64>,
    /// Peak resident memory of the whole process (client, relays, authorities, demo site), KiB.
    pub peak_rss_kib: u64,
    /// Peak resident memory of relay 1 when it ran as its own process, KiB.
    pub relay_peak_rss_kib: Option<u64>,
}

impl LoadReport {
    /// The report as lines for people.
    pub fn render(&self) -> String {
        format!(
            "{} streams over {} circuits: {} verified by SHA-256, {:.1} MiB in {:.1} s\n\
             circuits created per relay: {:?}\n\
             peak RSS of the whole testbed process (relays, 3 authorities, client, site): {:.1} MiB\n\
             peak RSS of relay 1 in its own process: {}",
            self.streams,
            self.circuits,
            self.verified,
            self.bytes as f64 / 1048576.0,
            self.elapsed.as_secs_f64(),
            self.circuits_per_relay,
            self.peak_rss_kib as f64 / 1024.0,
            self.relay_peak_rss_kib.map_or(
                "not measured (no onionlab-relay binary beside onionlab)".to_owned(),
                |k| format!("{:.1} MiB", k as f64 / 1024.0)
            ),
        )
    }
}

/// Peak resident set size of this process (VmHWM), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `streams` downloads of `bytes` each over `circuits` circuits (distinct isolation
/// groups) of a 3-relay testbed, `parallel` at a time, checking every body's SHA-256.
/// With `relay_binary`, relay 1 runs as its own `onionlab-relay` process and its memory is
/// reported alone (every circuit crosses it).
pub async fn load(
    circuits: usize,
    streams: usize,
    bytes: u64,
    parallel: usize,
    relay_binary: Option<std::path::PathBuf>,
) -> anyhow::Result<LoadReport> {
    use sha2::{Digest, Sha256};
    let mut cfg = TestbedConfig::ephemeral();
    cfg.relays = 3;
    cfg.large_file = 1024;
    cfg.relay_process = relay_binary;
    let tb = Testbed::start(cfg, Duration::from_secs(30)).await?;
    let expected = crate::demo_site::content_sha256(bytes);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let (socks, port) = (tb.client.socks_addr, tb.demo.addr.port());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..streams {
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            let user = format!("load-{}", i % circuits.max(1));
            let s = connect(socks, DEMO_HOSTNAME, port, Some((&user, "x"))).await.ok()?;
            let r = http_get(
                s,
                DEMO_HOSTNAME,
                &format!("/bytes/{bytes}"),
                bytes as usize + 4096,
                LIMIT,
            )
            .await
            .ok()?;
            Some((
                r.body.len() as u64,
                <[u8; 32]>::from(Sha256::digest(&r.body)) == expected,
            ))
        });
    }
    let (mut verified, mut total) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some((n, ok))) = done {
            total += n;
            verified += usize::from(ok);
        }
    }
    let mut circuits_per_relay: Vec<u64> = tb
        .relays
        .iter()
        .map(|r| {
            r.relay
                .stats
                .circuits_created
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .collect();
    let mut relay_peak_rss_kib = None;
    if let Some(child) = &tb.relay_child {
        relay_peak_rss_kib = child.peak_rss_kib();
        let (_, page) = onionlab_link::dirhttp::get(child.metrics, "/metrics", 1 << 20).await?;
        let created = String::from_utf8_lossy(&page)
            .lines()
            .find_map(|l| {
                l.strip_prefix("onionlab_relay_circuits_created_total ")?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
        circuits_per_relay.insert(0, created);
    }
    Ok(LoadReport {
        circuits,
        streams,
        verified,
        bytes: total,
        elapsed: started.elapsed(),
        circuits_per_relay,
        peak_rss_kib: peak_rss_kib(),
        relay_peak_rss_kib,
    })
}
