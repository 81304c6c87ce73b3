//! Experiment 8 on a small testbed: Sybil relays against real circuits, with the per-IP cap off
//! and on. Checks what the scores rest on (who is listed, the weights, the paths), not timing
//! or statistics.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;

use onionlab_experiments::lab::onion_sybil::{Cap, Params, run_one};
use onionlab_experiments::testbed::SYBIL_IP;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sybil_relays_are_scored_on_real_circuits() {
    let params = Params {
        fractions: vec![0.3],
        honest_relays: 4,
        sybil_relays: 4,
        per_ip_cap: vec![Cap::Off, Cap::On],
        max_relays_per_ip: 2,
        clients: 4,
        circuits_per_client: 6,
        parallel: 2,
        ..Params::default()
    };
    let mut runs = Vec::new();
    for cap in [Cap::Off, Cap::On] {
        let run = run_one(&params, 0.3, cap).await.unwrap();
        let listed = run.sybils_listed();
        assert_eq!(run.sybils.len(), 4);
        match cap {
            Cap::Off => assert_eq!(listed, 4, "no cap: every Sybil listed"),
            Cap::On => assert_eq!(listed, 2, "at most max_relays_per_ip on one address"),
        }
        assert_eq!(run.consensus.relays.len(), 4 + listed, "every honest relay listed");

        // The weights are the advertised bandwidths, and the adversary's share follows from them.
        let mut sybil_weight = 0u64;
        for r in &run.consensus.relays {
            if run.sybils.contains(&r.info.identity) {
                assert_eq!(r.info.or_addr.ip(), IpAddr::V4(SYBIL_IP));
                sybil_weight += r.info.bandwidth;
            } else {
                assert_ne!(r.info.or_addr.ip(), IpAddr::V4(SYBIL_IP));
                assert_eq!(r.info.bandwidth, params.honest_bandwidth);
            }
        }
        let total = sybil_weight + 4 * params.honest_bandwidth;
        let share = sybil_weight as f64 / total as f64;
        assert!((run.consensus_share() - share).abs() < 1e-12);
        if cap == Cap::Off {
            assert!((share - 0.3).abs() < 1e-6, "{share}");
        } else {
            assert!(share < 0.3 * 0.75, "the cap left {share}");
        }
        // Every relay may be an entry, so the predicted entry share is the consensus share.
        assert!((run.prediction().entry_share() - share).abs() < 1e-9);

        for guards in [false, true] {
            let clients = run.clients(guards);
            assert_eq!(clients.len(), params.clients);
            let mut entries = BTreeSet::new();
            for client in clients {
                assert!(client.same_consensus, "each client scored on the run's consensus");
                assert_eq!(client.failed, 0);
                assert_eq!(client.paths.len(), params.circuits_per_client);
                for path in &client.paths {
                    let distinct: BTreeSet<_> = path.iter().collect();
                    assert_eq!(distinct.len(), 3, "three distinct relays");
                    assert!(path.iter().all(|id| run.consensus.relay(id).is_some()));
                    entries.insert(path[0]);
                }
                if guards {
                    assert!(
                        client.paths.iter().all(|p| p[0] == client.paths[0][0]),
                        "a client with guards enters through its first guard"
                    );
                }
            }
            if !guards {
                // 24 circuits with a fresh entry each over 6 or 8 relays: never a single entry.
                assert!(entries.len() > 1, "fresh entries per circuit");
            }
            let (built, bad) = run.circuits(guards);
            assert_eq!(built, params.clients * params.circuits_per_client);
            assert!(bad <= built);
        }
        runs.push(run);
    }

    let outcome = onionlab_experiments::lab::onion_sybil::outcome(&params, &runs);
    for name in [
        "both_ends_c0.3",
        "both_ends_guards_c0.3",
        "both_ends_z_c0.3",
        "attacker_weight_c0.3_cap",
        "sybils_listed_c0.3_cap",
        "clients_compromised_guards_c0.3",
        "paths_distinct_and_listed",
    ] {
        assert!(outcome.measurement(name).is_some(), "{name}");
    }
    assert!(outcome.measurements.iter().all(|m| m.value.is_finite()));
    assert_eq!(outcome.measurement("paths_distinct_and_listed").unwrap().value, 1.0);
    assert_eq!(outcome.measurement("sybils_listed_c0.3_cap").unwrap().value, 2.0);
    assert!(
        outcome
            .figures
            .iter()
            .all(|f| f.series.iter().any(|s| !s.points.is_empty()))
    );
}
