//! Experiment 10 on a small testbed: every transfer completes with the right length (the
//! experiment fails otherwise), the outcome has a row and the milestones of every size, and
//! `fresh_circuits` really gives each transfer a circuit of its own while the default shares
//! them. Bounded in time; no timing is asserted.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use onionlab_experiments::campaign::Progress;
use onionlab_experiments::lab::onionperf::{Params, run};

async fn circuits(fresh_circuits: bool) -> (f64, onionlab_experiments::outcome::Outcome) {
    let params = Params {
        relays: 3,
        sizes: vec![1000, 50 << 10],
        transfers: 4,
        fresh_circuits,
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), run(&params, 1, &Progress::hidden()))
        .await
        .expect("finished in time")
        .unwrap();
    let built = outcome.measurement("circuits_built").unwrap().value;
    (built, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_complete_and_fresh_circuits_are_fresh() {
    let (shared, outcome) = circuits(false).await;
    for name in [
        "ttfb_median_s",
        "time_1000b_median_s",
        "time_50kib_median_s",
        "time_50kib_vs_previous",
    ] {
        let m = outcome.measurement(name).unwrap_or_else(|| panic!("{name}"));
        assert!(m.value.is_finite() && m.value > 0.0, "{name} = {}", m.value);
    }
    assert_eq!(outcome.tables[0].rows.len(), 2);
    // 1 + 2 sizes x (3 hops, direct) series in the CDF.
    assert_eq!(outcome.figures[0].series.len(), 5);
    let (fresh, _) = circuits(true).await;
    // 8 transfers: each on its own circuit, beyond the preemptive ones; shared streams need
    // far fewer.
    assert!(fresh >= 8.0, "{fresh} circuits for 8 isolated transfers");
    assert!(shared < fresh, "shared {shared}, fresh {fresh}");
}
