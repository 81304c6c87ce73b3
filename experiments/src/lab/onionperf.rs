//! Experiment 10, OnionPerf-style timings on the onion testbed: like Tor's OnionPerf (tgen
//! downloads of 50 KiB, 1 MiB and 5 MiB through a tor client, reported as time to first byte
//! and time to last byte), a client downloads files of each size from the demo site through
//! real 3-hop circuits of a testbed started for the occasion, and the same files directly, side
//! by side, so the cost of the three hops shows against a baseline measured in the same run.
//!
//! Each transfer is a new SOCKS stream (the hostname travels to the exit unresolved, as for
//! OnionPerf's streams); by default streams share the client's circuits as tor does within its
//! circuit lifetime, and with `fresh_circuits` every transfer asks for a circuit of its own, so
//! its time to first byte includes the circuit build. Every body is checked for its length.
//! Public-network OnionPerf numbers are seconds (Tor Metrics); on loopback the hops cost
//! milliseconds, so the published comparison here is the ordering OnionPerf shows (first byte
//! before 50 KiB before 1 MiB before 5 MiB) and the ratio to the direct download.

use std::time::{Duration, Instant};

use serde::Deserialize;
use thiserror::Error;
use tokio::net::TcpStream;

use crate::campaign::Progress;
use crate::outcome::{Figure, Measurement, Outcome, Series, SeriesStyle, Table};
use crate::sim::{ParamsError, measurement, require};
use crate::socks_client::{SocksClientError, connect, http_get};
use crate::testbed::{DEMO_HOSTNAME, Testbed, TestbedConfig, TestbedError};

/// The experiment's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Relays of the testbed.
    pub relays: usize,
    /// Transfer sizes in bytes.
    pub sizes: Vec<u64>,
    /// Transfers of each size, through the onion network and directly.
    pub transfers: usize,
    /// A new circuit for every transfer (its build counts into the time to first byte).
    pub fresh_circuits: bool,
}

impl Default for Params {
    /// OnionPerf's sizes (50 KiB, 1 MiB, 5 MiB), 10 transfers each, on a 6-relay testbed,
    /// circuits shared between streams.
    fn default() -> Self {
        Params {
            relays: 6,
            sizes: vec![50 << 10, 1 << 20, 5 << 20],
            transfers: 10,
            fresh_circuits: false,
        }
    }
}

/// The largest transfer (the demo site's `/bytes/N` limit is above it).
const MAX_SIZE: u64 = 64 << 20;
/// How long one transfer may take, and the testbed to come up.
const LIMIT: Duration = Duration::from_secs(60);

impl Params {
    /// Checks the parameters, naming the field at fault.
    pub fn validate(&self) -> Result<(), ParamsError> {
        require((3..=50).contains(&self.relays), "relays", "must be in 3..=50")?;
        require(
            !self.sizes.is_empty() && self.sizes.iter().all(|&s| (1..=MAX_SIZE).contains(&s)),
            "sizes",
            format!("must list sizes from 1 byte to {MAX_SIZE}"),
        )?;
        require((1..=1000).contains(&self.transfers), "transfers", "must be in 1..=1000")
    }
}

/// Why the experiment could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OnionPerfError {
    /// Bad parameters.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The testbed did not start.
    #[error(transparent)]
    Testbed(#[from] TestbedError),
    /// A transfer failed.
    #[error("{path} {how}: {error}")]
    Transfer {
        /// What was fetched.
        path: String,
        /// Through the network or directly.
        how: &'static str,
        /// Why it failed.
        error: String,
    },
}

/// One transfer: time to first and to last byte, from the start of the connection.
#[derive(Debug, Clone, Copy)]
struct Timing {
    first: Duration,
    last: Duration,
}

/// How a transfer goes.
enum Route {
    /// To the demo site's address.
    Direct,
    /// Through the SOCKS proxy; a username of its own isolates the stream on a new circuit
    /// (the client isolates streams by SOCKS credentials, like tor's `IsolateSOCKSAuth`).
    Onion { isolation: Option<String> },
}

async fn fetch(tb: &Testbed, size: u64, route: Route) -> Result<Timing, OnionPerfError> {
    let path = format!("/bytes/{size}");
    let how = match route {
        Route::Direct => "directly",
        Route::Onion { .. } => "through 3 hops",
    };
    let failed = |error: String| OnionPerfError::Transfer {
        path: path.clone(),
        how,
        error,
    };
    let start = Instant::now();
    let (stream, host) = match &route {
        Route::Onion { isolation } => {
            let creds = isolation.as_deref().map(|user| (user, "onionperf"));
            let s = connect(tb.client.socks_addr, DEMO_HOSTNAME, tb.demo.addr.port(), creds)
                .await
                .map_err(|e: SocksClientError| failed(e.to_string()))?;
            (s, DEMO_HOSTNAME)
        }
        Route::Direct => (
            TcpStream::connect(tb.demo.addr)
                .await
                .map_err(|e| failed(e.to_string()))?,
            "127.0.0.1",
        ),
    };
    let connected = start.elapsed();
    let got = http_get(stream, host, &path, size as usize + 4096, LIMIT)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let last = start.elapsed();
    if got.status != 200 || got.body.len() as u64 != size {
        return Err(failed(format!("status {}, {} bytes", got.status, got.body.len())));
    }
    Ok(Timing {
        first: connected + got.first_byte,
        last,
    })
}

/// Run the experiment.
pub async fn run(params: &Params, seed: u64, progress: &Progress) -> Result<Outcome, OnionPerfError> {
    params.validate()?;
    progress.stage(&format!("starting a {}-relay onion testbed", params.relays));
    let tb = Testbed::start(
        TestbedConfig {
            relays: params.relays,
            large_file: 1 << 20,
            ..TestbedConfig::ephemeral()
        },
        LIMIT,
    )
    .await?;
    let mut results = Vec::new();
    let mut n = 0u64;
    progress.counted(
        "transfers (3 hops and direct)",
        (params.sizes.len() * params.transfers) as u64,
    );
    for &size in &params.sizes {
        let (mut onion, mut direct) = (Vec::new(), Vec::new());
        for _ in 0..params.transfers {
            // Streams alternate, so both see the machine in the same state.
            direct.push(fetch(&tb, size, Route::Direct).await?);
            n += 1;
            let isolation = params.fresh_circuits.then(|| format!("onionperf-{seed}-{n}"));
            onion.push(fetch(&tb, size, Route::Onion { isolation }).await?);
            progress.step();
        }
        results.push((size, onion, direct));
    }
    let mut builds = tb.client.pool.build_times();
    builds.sort();
    drop(tb);
    Ok(outcome(params, &results, &builds))
}

/// A size as a count of its largest whole unit: 50 KiB, 5 MiB, 1000 B.
fn size_unit(bytes: u64) -> (u64, &'static str) {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => (b >> 20, "MiB"),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => (b >> 10, "KiB"),
        b => (b, "B"),
    }
}

fn size_key(bytes: u64) -> String {
    let (n, unit) = size_unit(bytes);
    format!("{n}{}", unit.to_lowercase())
}

fn size_label(bytes: u64) -> String {
    let (n, unit) = size_unit(bytes);
    format!("{n} {unit}")
}

/// The q-quantile of `values`, in seconds (the nearest rank, as `onionlab bench` takes it).
fn quantile(values: impl Iterator<Item = Duration>, q: f64) -> f64 {
    let mut sorted: Vec<Duration> = values.collect();
    sorted.sort();
    crate::perf::quantile(&sorted, q).as_secs_f64()
}

fn outcome(params: &Params, results: &[(u64, Vec<Timing>, Vec<Timing>)], builds: &[Duration]) -> Outcome {
    let mut measurements: Vec<Measurement> = Vec::new();
    let mut rows = Vec::new();
    let all_onion = || results.iter().flat_map(|(_, o, _)| o.iter());
    let ttfb = quantile(all_onion().map(|t| t.first), 0.5);
    measurements.push(measurement(
        "ttfb_median_s",
        "time to first byte through 3 hops, median over all transfers",
        ttfb,
        "s",
        None,
    ));
    // The first milestone after the first byte (of the same transfers), then size after size.
    let mut previous = results
        .first()
        .map_or(0.0, |(_, onion, _)| quantile(onion.iter().map(|t| t.first), 0.5));
    for (size, onion, direct) in results {
        let (key, label) = (size_key(*size), size_label(*size));
        let median = quantile(onion.iter().map(|t| t.last), 0.5);
        let direct_median = quantile(direct.iter().map(|t| t.last), 0.5);
        measurements.push(measurement(
            format!("time_{key}_median_s"),
            format!("time to {label} through 3 hops, median"),
            median,
            "s",
            None,
        ));
        measurements.push(measurement(
            format!("time_{key}_vs_previous"),
            format!("median time to {label} / the previous milestone's (the first byte of these transfers, or the next smaller size)"),
            if previous > 0.0 { median / previous } else { 0.0 },
            "",
            Some((1.0, "OnionPerf's ordering: each milestone comes later (at least 1)")),
        ));
        measurements.push(measurement(
            format!("onion_to_direct_{key}"),
            format!("median time to {label}: 3 hops / direct"),
            if direct_median > 0.0 {
                median / direct_median
            } else {
                0.0
            },
            "",
            None,
        ));
        previous = median;
        rows.push(vec![
            label,
            onion.len().to_string(),
            format!("{:.1}", quantile(onion.iter().map(|t| t.first), 0.5) * 1e3),
            format!("{:.1}", median * 1e3),
            format!("{:.1}", quantile(onion.iter().map(|t| t.last), 0.9) * 1e3),
            format!("{:.1}", quantile(direct.iter().map(|t| t.first), 0.5) * 1e3),
            format!("{:.1}", direct_median * 1e3),
        ]);
    }
    measurements.push(measurement(
        "circuits_built",
        "circuits the client built during the run (preemptive ones included)",
        builds.len() as f64,
        "",
        None,
    ));
    measurements.push(measurement(
        "circuit_build_median_s",
        "circuit build time, median",
        quantile(builds.iter().copied(), 0.5),
        "s",
        None,
    ));
    let cdf = |name: String, style: SeriesStyle, times: Vec<Duration>| {
        let mut s: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        Series {
            name,
            style,
            points: s.iter().enumerate().map(|(i, &x)| (x, (i + 1) as f64 / n)).collect(),
        }
    };
    let mut series = vec![cdf(
        "first byte, 3 hops".into(),
        SeriesStyle::Step,
        all_onion().map(|t| t.first).collect(),
    )];
    for (size, onion, direct) in results {
        let label = size_label(*size);
        series.push(cdf(
            format!("{label}, 3 hops"),
            SeriesStyle::Step,
            onion.iter().map(|t| t.last).collect(),
        ));
        series.push(cdf(
            format!("{label}, direct"),
            SeriesStyle::Reference,
            direct.iter().map(|t| t.last).collect(),
        ));
    }
    Outcome {
        experiment: "onionperf".into(),
        title: "OnionPerf-style timings on the onion testbed".into(),
        summary: format!(
            "A {}-relay onion testbed on loopback (3 voting authorities); {} transfers of each of {} from the demo site through 3-hop circuits ({}), alternating with the same transfers made directly. Times run from the start of the connection (the SOCKS handshake included) to the first and the last byte; every body's length is checked.",
            params.relays,
            params.transfers,
            results
                .iter()
                .map(|(s, _, _)| size_label(*s))
                .collect::<Vec<_>>()
                .join(", "),
            if params.fresh_circuits {
                "a fresh circuit for every transfer"
            } else {
                "streams sharing the client's circuits, as tor's do"
            },
        ),
        measurements,
        figures: vec![Figure {
            id: "transfer-times".into(),
            title: "Time to first byte and to each size (CDF)".into(),
            x_label: "time since the connection started (ms)".into(),
            y_label: "fraction of transfers".into(),
            x_log: true,
            y_log: false,
            series,
        }],
        tables: vec![Table {
            id: "timings".into(),
            title: "Median and 90th-percentile times (ms)".into(),
            columns: [
                "size",
                "transfers",
                "first byte, 3 hops",
                "last byte, 3 hops (median)",
                "last byte, 3 hops (p90)",
                "first byte, direct",
                "last byte, direct",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_name_their_field() {
        let field = |p: Params| p.validate().map_err(|e| e.field);
        assert_eq!(
            field(Params {
                relays: 2,
                ..Params::default()
            }),
            Err("relays")
        );
        assert_eq!(
            field(Params {
                sizes: vec![],
                ..Params::default()
            }),
            Err("sizes")
        );
        assert_eq!(
            field(Params {
                sizes: vec![0],
                ..Params::default()
            }),
            Err("sizes")
        );
        assert_eq!(
            field(Params {
                transfers: 0,
                ..Params::default()
            }),
            Err("transfers")
        );
        assert_eq!(field(Params::default()), Ok(()));
    }

    #[test]
    fn sizes_are_named_as_onionperf_names_them() {
        assert_eq!(size_key(50 << 10), "50kib");
        assert_eq!(size_key(5 << 20), "5mib");
        assert_eq!(size_key(1000), "1000b");
        assert_eq!(size_label(1 << 20), "1 MiB");
        assert_eq!(size_label(1000), "1000 B");
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
        assert_eq!(quantile(ms(&[30, 10, 20]).into_iter(), 0.5), 0.02);
        assert_eq!(quantile(ms(&[]).into_iter(), 0.5), 0.0);
        assert_eq!(quantile(ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).into_iter(), 0.9), 0.009);
    }
}
