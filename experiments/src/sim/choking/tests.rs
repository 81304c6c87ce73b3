//! The choking simulation: refused parameters, determinism, the ledger's invariants, a free
//! rider starved of every unearned unchoke, and the papers' qualitative claims at the defaults.

use super::draw::Draw;
use super::swarm::{Client, Observer, RunResult, simulate};
use super::*;

fn value(o: &Outcome, name: &str) -> f64 {
    o.measurement(name).map(|m| m.value).expect("measurement present")
}

/// A small swarm, for tests that run many simulations.
fn small() -> Params {
    Params {
        leechers: 20,
        neighbours: 8,
        free_rider_view: 21,
        pieces: 32,
        runs: 2,
        capacity_classes_kbps: Vec::new(),
        ..Params::default()
    }
}

#[test]
fn bad_parameters_are_refused_naming_the_field() {
    let cases: Vec<(Params, &str)> = vec![
        (
            Params {
                leechers: 1,
                ..Params::default()
            },
            "leechers",
        ),
        (
            Params {
                seeds: 101,
                ..Params::default()
            },
            "seeds",
        ),
        (
            Params {
                pieces: 0,
                ..Params::default()
            },
            "pieces",
        ),
        (
            Params {
                neighbours: 41,
                ..Params::default()
            },
            "neighbours",
        ),
        (
            Params {
                free_rider_view: 0,
                ..Params::default()
            },
            "free_rider_view",
        ),
        (
            Params {
                seed_kbps: f64::NAN,
                ..Params::default()
            },
            "seed_kbps",
        ),
        (
            Params {
                piece_kb: -1.0,
                ..Params::default()
            },
            "piece_kb",
        ),
        (
            Params {
                capacity_sigma: 9.0,
                ..Params::default()
            },
            "capacity_sigma",
        ),
        (
            Params {
                capacity_max_kbps: 1.0,
                ..Params::default()
            },
            "capacity_max_kbps",
        ),
        (
            Params {
                download_factor: 0.0,
                ..Params::default()
            },
            "download_factor",
        ),
        (
            Params {
                initial_share_max: 1.5,
                ..Params::default()
            },
            "initial_share_max",
        ),
        (
            Params {
                upload_slots: 0,
                ..Params::default()
            },
            "upload_slots",
        ),
        (
            Params {
                optimistic_unchokes: 11,
                ..Params::default()
            },
            "optimistic_unchokes",
        ),
        (
            Params {
                rechoke_secs: 0,
                ..Params::default()
            },
            "rechoke_secs",
        ),
        (
            Params {
                optimistic_secs: 25,
                ..Params::default()
            },
            "optimistic_secs",
        ),
        (
            Params {
                propshare_optimistic_share: 1.0,
                ..Params::default()
            },
            "propshare_optimistic_share",
        ),
        (
            Params {
                tyrant_gamma: 1.0,
                ..Params::default()
            },
            "tyrant_gamma",
        ),
        (
            Params {
                tyrant_delta: f64::INFINITY,
                ..Params::default()
            },
            "tyrant_delta",
        ),
        (
            Params {
                tyrant_rounds: 0,
                ..Params::default()
            },
            "tyrant_rounds",
        ),
        (
            Params {
                strategic_kbps: 0.0,
                ..Params::default()
            },
            "strategic_kbps",
        ),
        (
            Params {
                capacity_classes_kbps: vec![64.0, f64::NAN],
                ..Params::default()
            },
            "capacity_classes_kbps",
        ),
        (
            Params {
                sybils: 0,
                ..Params::default()
            },
            "sybils",
        ),
        (
            Params {
                max_secs: 0,
                ..Params::default()
            },
            "max_secs",
        ),
        (
            Params {
                runs: 0,
                ..Params::default()
            },
            "runs",
        ),
    ];
    for (params, field) in cases {
        let e = params.validate().expect_err(field);
        assert_eq!(e.field, field, "{e}");
    }
    Params::default().validate().expect("defaults are valid");
}

#[test]
fn bad_parameters_are_clamped_by_run_never_a_panic() {
    let hostile = Params {
        leechers: 0,
        neighbours: 0,
        free_rider_view: 0,
        pieces: 0,
        rechoke_secs: 0,
        optimistic_secs: 7,
        capacity_median_kbps: f64::NAN,
        capacity_max_kbps: -1.0,
        capacity_classes_kbps: vec![f64::NAN],
        sybils: 0,
        max_secs: 50,
        runs: 1,
        ..Params::default()
    };
    let o = run(&hostile, 1);
    assert!(o.measurements.iter().all(|m| m.value.is_finite()));
}

#[test]
fn seeded_and_deterministic() {
    assert_eq!(run(&small(), 3), run(&small(), 3));
    assert_ne!(run(&small(), 3).measurements, run(&small(), 4).measurements);
}

/// Every observed user, in both swarms and an all-BitTyrant one.
fn every_run(params: &Params, seed: u64) -> Vec<(Client, Observer, RunResult)> {
    let mut out = Vec::new();
    for i in 0..2 {
        let draw = Draw::new(params, seed, i);
        for swarm in [Client::Standard, Client::PropShare, Client::Tyrant] {
            for observer in [
                Observer::Client(swarm),
                Observer::Client(Client::Tyrant),
                Observer::FreeRider(params.free_rider_view),
                Observer::Sybils(3),
            ] {
                out.push((swarm, observer, simulate(params, &draw, swarm, observer, 100.0)));
            }
        }
    }
    out
}

#[test]
fn bytes_are_conserved_and_capacities_respected() {
    let params = small();
    let file = params.pieces as f64 * params.piece_kb;
    for (swarm, observer, r) in every_run(&params, 9) {
        let l = r.ledger;
        let what = format!("{swarm:?} swarm, {observer:?}: {l:?}");
        assert!(l.sent > 0.0, "{what}");
        assert!(l.unaccounted() <= 1e-9 * l.sent, "{what}");
        assert_eq!(l.over_capacity, 0, "{what}");
        assert!(l.max_received <= l.sent && r.observer_kb <= l.sent, "{what}");
        // Whoever completes received the whole file at least (dropped copies on top).
        if r.time.is_some() {
            assert!(r.observer_kb >= file - 1e-6, "{what}: got {}", r.observer_kb);
        }
    }
}

#[test]
fn a_free_rider_gets_nothing_without_seeds_or_optimistic_unchokes() {
    let starved = Params {
        seeds: 0,
        optimistic_unchokes: 0,
        max_secs: 300,
        ..small()
    };
    let thief = Observer::FreeRider(starved.free_rider_view);
    let got = |params: &Params| {
        let draw = Draw::new(params, 5, 0);
        simulate(params, &draw, Client::Standard, thief, 100.0)
    };
    // The leechers hold pieces it lacks, and tit-for-tat never gives them to a peer that
    // gave nothing: no regular slot, and no idle one either.
    let r = got(&starved);
    assert_eq!((r.observer_kb, r.time), (0.0, None));
    // Either door alone feeds it.
    let optimistic = Params {
        optimistic_unchokes: 1,
        ..starved.clone()
    };
    assert!(got(&optimistic).observer_kb > 0.0);
    let seeded = Params { seeds: 1, ..starved };
    assert!(got(&seeded).observer_kb > 0.0);
}

#[test]
fn a_sybil_of_one_is_the_client_itself() {
    let params = small();
    let draw = Draw::new(&params, 2, 0);
    for swarm in [Client::Standard, Client::PropShare] {
        let one = simulate(&params, &draw, swarm, Observer::Sybils(1), 100.0);
        assert_eq!(one, simulate(&params, &draw, swarm, Observer::Client(swarm), 100.0));
    }
}

#[test]
fn the_papers_qualitative_claims_hold_at_the_defaults() {
    let o = run(&Params::default(), 1);
    // BitThief finishes, and its large view is what makes it work (Locher et al.).
    assert_eq!(value(&o, "freerider_completion_standard"), 1.0);
    let (large, ordinary) = (
        value(&o, "freerider_slowdown_standard"),
        value(&o, "freerider_slowdown_small_view_standard"),
    );
    assert!(ordinary > 1.5 && ordinary > 2.0 * large, "{large} vs {ordinary}");
    // BitTyrant gains against tit-for-tat (Piatek et al.), hardly against PropShare (Levin et al.).
    let (standard, propshare) = (
        value(&o, "tyrant_speedup_standard"),
        value(&o, "tyrant_speedup_propshare"),
    );
    assert!(standard > 1.1, "{standard}");
    assert!((0.85..1.15).contains(&propshare), "{propshare}");
    assert!(propshare < standard);
    // Splitting into Sybils pays less against PropShare than against tit-for-tat.
    let (sybil_standard, sybil_propshare) = (value(&o, "sybil_gain_standard"), value(&o, "sybil_gain_propshare"));
    assert!(
        sybil_propshare < sybil_standard,
        "{sybil_propshare} vs {sybil_standard}"
    );
    let share = value(&o, "unaccounted_share");
    assert!(share < 1e-9, "{share}");
}
