//! The measurements, figures and table of [`super`], from the observed user's download
//! times: medians over swarms of paired time ratios, each beside its published value where the
//! papers give one. Never: running anything.

use super::super::{measurement, median};
use super::swarm::Client;
use super::{Params, SWARMS, Times, swarm_key};
use crate::outcome::{Figure, Outcome, Series, SeriesStyle, Table};

const PIATEK: &str = "Piatek, Isdal, Anderson, Krishnamurthy and Venkataramani, \"Do incentives build \
                      robustness in BitTorrent?\", NSDI 2007: BitTyrant gives a median 70% performance gain \
                      (download time ratio 1.7) for a 1 Mbit/s client on live swarms";
const LEVIN: &str = "Levin, LaCurts, Spring and Bhattacharjee, \"BitTorrent is an Auction\", SIGCOMM 2008: \
                     a proportional-share client is strategy-proof in their model, so a strategic client \
                     gains nothing (ratio 1)";
const LEVIN_SYBIL: &str = "Levin et al., SIGCOMM 2008, as in lecture 18 of CS 3700 (2013), \"PropShare \
                           resiliency to Sybils\": download stays proportional to upload however it is split \
                           (ratio 1)";
const LOCHER: &str = "Locher, Moor, Schmid and Wattenhofer, \"Free riding in BitTorrent is cheap\", \
                      HotNets 2006: BitThief downloads entire files without uploading";

/// A download time for ratios: a run that did not finish counts as `max_secs`.
fn secs(t: Option<u32>, max_secs: u32) -> f64 {
    f64::from(t.unwrap_or(max_secs))
}

/// Median over swarms of `num[i] / den[i]`.
fn median_ratio(num: &[Option<u32>], den: &[Option<u32>], max_secs: u32) -> f64 {
    let ratios: Vec<f64> = num
        .iter()
        .zip(den)
        .map(|(&a, &b)| secs(a, max_secs) / secs(b, max_secs))
        .collect();
    median(&ratios)
}

fn completed(times: &[Option<u32>]) -> f64 {
    times.iter().filter(|t| t.is_some()).count() as f64 / times.len().max(1) as f64
}

/// A CDF of download times over the swarms, as a share of all of them (a run that did not
/// finish never reaches the curve).
fn cdf(name: String, times: &[Option<u32>]) -> Series {
    let mut done: Vec<f64> = times.iter().flatten().map(|&t| f64::from(t)).collect();
    done.sort_by(f64::total_cmp);
    let n = times.len().max(1) as f64;
    Series {
        name,
        style: SeriesStyle::Step,
        points: done.iter().enumerate().map(|(i, &t)| (t, (i + 1) as f64 / n)).collect(),
    }
}

pub(super) fn outcome(params: &Params, seed: u64, classes: &[f64], times: &[Times], unaccounted: f64) -> Outcome {
    let max = params.max_secs;
    let at = classes
        .iter()
        .position(|&c| c == params.strategic_kbps)
        .unwrap_or_default();
    let k = params.sybils;
    let mut measurements = Vec::new();
    let mut figures = Vec::new();
    let mut rows = Vec::new();
    let mut speedups = Vec::new();
    for (&swarm, t) in SWARMS.iter().zip(times) {
        let key = swarm_key(swarm);
        let own_name = if swarm == Client::PropShare {
            "PropShare"
        } else {
            "standard"
        };
        let (own, tyrant) = &t.classes[at];
        let own_median = median(&own.iter().map(|&x| secs(x, max)).collect::<Vec<_>>());
        let tyrant_published = match swarm {
            Client::PropShare => (1.0, LEVIN),
            _ => (1.7, PIATEK),
        };
        measurements.extend([
            measurement(
                format!("compliant_time_{key}"),
                format!("download time of the {own_name} client in the {key} swarm, median over swarms"),
                own_median,
                "s",
                None,
            ),
            measurement(
                format!("tyrant_speedup_{key}"),
                format!("BitTyrant's speed-up over the {own_name} client in the {key} swarm (time ratio), median"),
                median_ratio(own, tyrant, max),
                "",
                Some(tyrant_published),
            ),
            measurement(
                format!("freerider_completion_{key}"),
                format!("share of swarms in which BitThief (large view, no upload) completed, {key} swarm"),
                completed(&t.free_rider),
                "",
                (swarm == Client::Standard).then_some((1.0, LOCHER)),
            ),
            measurement(
                format!("freerider_slowdown_{key}"),
                format!("BitThief's download time over the {own_name} client's, {key} swarm, median"),
                median_ratio(&t.free_rider, own, max),
                "",
                None,
            ),
            measurement(
                format!("sybil_gain_{key}"),
                format!("{k} Sybil identities' speed-up over one identity of the same capacity, {key} swarm, median"),
                median_ratio(own, &t.sybils, max),
                "",
                (swarm == Client::PropShare).then_some((1.0, LEVIN_SYBIL)),
            ),
        ]);
        let mut series = vec![
            (format!("{own_name} client"), own),
            ("BitTyrant".to_string(), tyrant),
            (format!("BitThief ({} links)", params.free_rider_view), &t.free_rider),
            (format!("{k} Sybils"), &t.sybils),
        ];
        if !t.free_rider_small_view.is_empty() {
            measurements.push(measurement(
                format!("freerider_slowdown_small_view_{key}"),
                format!(
                    "BitThief's download time over the {own_name} client's with an ordinary view ({} links), \
                     {key} swarm, median",
                    params.neighbours
                ),
                median_ratio(&t.free_rider_small_view, own, max),
                "",
                None,
            ));
            series.push((
                format!("BitThief ({} links)", params.neighbours),
                &t.free_rider_small_view,
            ));
        }
        for (name, ts) in &series {
            let ratio = median_ratio(own, ts, max);
            rows.push(vec![
                key.to_string(),
                name.clone(),
                format!("{:.0}", median(&ts.iter().map(|&x| secs(x, max)).collect::<Vec<_>>())),
                format!("{:.2}", completed(ts)),
                format!("{ratio:.2}"),
            ]);
        }
        figures.push(Figure {
            id: format!("download-times-{key}"),
            title: format!(
                "{} swarm: the observed user's download time by client ({} KB/s upload)",
                if swarm == Client::PropShare {
                    "PropShare"
                } else {
                    "Standard"
                },
                params.strategic_kbps
            ),
            x_label: "download time (s)".to_string(),
            y_label: "share of swarms done".to_string(),
            x_log: false,
            y_log: false,
            series: series.into_iter().map(|(name, ts)| cdf(name, ts)).collect(),
        });
        speedups.push(Series {
            name: format!("BitTyrant vs {own_name}, {key} swarm"),
            style: SeriesStyle::Line,
            points: classes
                .iter()
                .zip(&t.classes)
                .map(|(&c, (own, tyrant))| (c, median_ratio(own, tyrant, max)))
                .collect(),
        });
    }
    if let [standard, propshare] = times {
        measurements.push(measurement(
            "propshare_swarm_speedup",
            "the observed user's speed-up in an all-PropShare swarm over an all-standard one (same \
             capacities and links), median",
            median_ratio(&standard.classes[at].0, &propshare.classes[at].0, max),
            "",
            None,
        ));
    }
    measurements.push(measurement(
        "unaccounted_share",
        "largest share of what a run sent that was neither delivered, dropped nor under way (bytes \
         conserved: 0 up to rounding)",
        unaccounted,
        "",
        None,
    ));
    let (lo, hi) = (
        classes.first().copied().unwrap_or(1.0),
        classes.last().copied().unwrap_or(1.0),
    );
    speedups.push(Series {
        name: "no gain".to_string(),
        style: SeriesStyle::Reference,
        points: vec![(lo, 1.0), (hi, 1.0)],
    });
    speedups.push(Series {
        name: "Piatek et al.: median 1.7 at 1 Mbit/s (live swarms)".to_string(),
        style: SeriesStyle::Points,
        points: vec![(128.0, 1.7)],
    });
    figures.push(Figure {
        id: "speedup-by-capacity".to_string(),
        title: "BitTyrant's median speed-up by the observed user's upload capacity".to_string(),
        x_label: "upload capacity (KB/s)".to_string(),
        y_label: "download time ratio (own client / BitTyrant)".to_string(),
        x_log: true,
        y_log: false,
        series: speedups,
    });
    Outcome {
        experiment: "tit-for-tat-strategies".to_string(),
        title: "Tit-for-tat, free riders, BitTyrant, PropShare and Sybils".to_string(),
        summary: format!(
            "{runs} swarms (seed {seed}) of {l} leechers in steady state (each starts with a share of the \
             {p} pieces of {kb} KB drawn from [0, {share}), and is replaced by an empty newcomer when done) and \
             {s} seed(s) of {seed_kbps} KB/s, on a random graph of mean degree {n}. Upload capacities are \
             lognormal (median {med} KB/s, σ {sigma}, clipped to [{cmin}, {cmax}]), download {df}× upload. \
             Rounds of 1 s, rechoke every {rc} s, optimistic unchokes every {oc} s. One observed user of \
             {kbps} KB/s joins empty; each comparison reruns the same swarm with only its client changed: \
             the swarm's own client, BitTyrant (γ {g}, δ {d}, r {r}), BitThief (view {view}, uploads \
             nothing) or {k} Sybil identities. The standard choker gives its {slots} regular slots only to \
             peers that uploaded to it; PropShare keeps {ps} of its upload for optimistic unchokes. A run \
             stops at {max} s. After Locher et al. (HotNets 2006), Piatek et al. (NSDI 2007) and Levin et \
             al. (SIGCOMM 2008).",
            runs = params.runs,
            l = params.leechers,
            p = params.pieces,
            kb = params.piece_kb,
            share = params.initial_share_max,
            s = params.seeds,
            seed_kbps = params.seed_kbps,
            n = params.neighbours,
            med = params.capacity_median_kbps,
            sigma = params.capacity_sigma,
            cmin = params.capacity_min_kbps,
            cmax = params.capacity_max_kbps,
            df = params.download_factor,
            rc = params.rechoke_secs,
            oc = params.optimistic_secs,
            kbps = params.strategic_kbps,
            g = params.tyrant_gamma,
            d = params.tyrant_delta,
            r = params.tyrant_rounds,
            view = params.free_rider_view,
            slots = params.upload_slots,
            ps = params.propshare_optimistic_share,
        ),
        measurements,
        figures,
        tables: vec![Table {
            id: "clients".to_string(),
            title: format!(
                "The observed user ({} KB/s) by swarm and client: median time, share done, median speed-up \
                 over the swarm's own client",
                params.strategic_kbps
            ),
            columns: ["swarm", "client", "median time (s)", "share done", "speed-up"]
                .map(String::from)
                .to_vec(),
            rows,
        }],
    }
}
