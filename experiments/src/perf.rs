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

fn quantile(sorted: &[Duration], q: f64) -> Duration {
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
