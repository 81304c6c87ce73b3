//! The summary over synthetic rows whose truth is known: sessions with retries that must not
//! split them, planted Sybils behind one IP, a tracker handing out only dead peers.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use super::*;
use crate::observe::{Observation, Sighting, SourceKind};
use crate::store::{CrawlEnd, Recording};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn visit(probe: ProbeKind, to: SocketAddr, at: Micros, attempt: u32, outcome: Outcome) -> Visit {
    Visit {
        probe,
        target: to.to_string(),
        addr: Some(to),
        info_hash: None,
        at,
        rtt_us: 100,
        attempt,
        outcome,
        error: None,
        remote_id: None,
        client: None,
        deviations: 0,
        raw: None,
    }
}

const S: Micros = 1_000_000;
const SWARM: InfoHash = InfoHash([0x42; 20]);

/// Rows of a 100-second crawl starting at `t0`.
fn rows(t0: Micros) -> (Vec<Observation>, BTreeSet<NodeId>) {
    let mut rows = Vec::new();
    let a = addr("127.5.0.1:6881");
    let b = addr("127.5.0.2:6881");
    for k in 0..=10 {
        let at = t0 + k * 10 * S;
        // A: up from the start until 40 s (left-censored), then gone.
        let up_a = k <= 4;
        // B: up from 20 s to 60 s. At 30 s its first attempt times out and the retry answers.
        let up_b = (2..=5).contains(&k);
        for (who, up) in [(a, up_a), (b, up_b)] {
            let mut v = visit(
                ProbeKind::PeerHandshake,
                who,
                at,
                2,
                if up { Outcome::Ok } else { Outcome::Timeout },
            );
            v.info_hash = Some(SWARM);
            if who == b && k == 3 {
                let mut first = v.clone();
                first.attempt = 1;
                first.outcome = Outcome::Timeout;
                rows.push(Observation::Visit(first));
            }
            rows.push(Observation::Visit(v));
        }
    }
    // DHT: 30 honest nodes, one id each; 12 Sybil ids on one IP.
    let mut rng = SplitMix64::new(7);
    let mut sybils = BTreeSet::new();
    for i in 0..42u16 {
        let (to, id) = if i < 30 {
            (addr(&format!("127.6.{i}.1:6881")), rng.node_id())
        } else {
            let id = rng.node_id();
            sybils.insert(id);
            (SocketAddr::new("127.7.0.1".parse().unwrap(), 7000 + i), id)
        };
        let mut v = visit(ProbeKind::DhtFindNode, to, t0 + S, 1, Outcome::Ok);
        v.remote_id = Some(id.0);
        rows.push(Observation::Visit(v));
    }
    // A tracker naming 20 peers that never answer, and another naming A and B.
    for i in 0..20u8 {
        let dead = addr(&format!("127.8.0.{i}:6881"));
        rows.push(sighting("http://bad/announce", dead, t0));
        let mut v = visit(ProbeKind::PeerHandshake, dead, t0 + 2 * S, 2, Outcome::Timeout);
        v.info_hash = Some(SWARM);
        rows.push(Observation::Visit(v));
    }
    rows.push(sighting("http://good/announce", a, t0));
    rows.push(sighting("http://good/announce", b, t0));
    (rows, sybils)
}

fn sighting(tracker: &str, peer: SocketAddr, at: Micros) -> Observation {
    Observation::Sighting(Sighting {
        at,
        source_kind: SourceKind::Tracker,
        source: tracker.into(),
        source_id: None,
        info_hash: Some(SWARM),
        addr: peer,
        id: None,
    })
}

async fn recorded_store(dir: &tempfile::TempDir) -> (Store, CrawlId, BTreeSet<NodeId>) {
    let path = dir.path().join("s.sqlite");
    let (recorder, recording) = Recording::begin(&path, "campaign t", "").unwrap();
    let id = recording.crawl().id;
    let (rows, sybils) = rows(recording.crawl().started_at);
    for r in rows {
        recorder.record(r).await;
    }
    recording.finish(CrawlEnd::Finished).await.unwrap();
    (Store::open(&path).unwrap(), id, sybils)
}

fn all() -> SummaryRequest {
    SummaryRequest {
        analyses: vec![
            AnalysisKind::Sessions,
            AnalysisKind::Size,
            AnalysisKind::Sybil,
            AnalysisKind::Poisoning,
        ],
        attempts: 2,
        sybil: SybilConfig::default(),
    }
}

#[tokio::test]
async fn sessions_come_from_final_attempts_and_land_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, _) = recorded_store(&dir).await;
    let summary = summarize(&store, id, &all()).unwrap();
    let s = summary.sessions.as_ref().unwrap();
    // A, B, each of the 42 DHT nodes (one probe: a censored session of length 0): no dead peer.
    assert_eq!(s.sessions, 44, "{summary}");
    let rows = store.sessions(id).unwrap();
    let b: Vec<_> = rows.iter().filter(|r| r.addr == addr("127.5.0.2:6881")).collect();
    assert_eq!(b.len(), 1, "the timed-out first attempt must not split B's session");
    let t0 = summary.crawl.started_at;
    assert_eq!((b[0].started_at - t0, b[0].ended_at - t0), (20 * S, 60 * S));
    assert!(!b[0].left_censored && !b[0].right_censored);
    let a: Vec<_> = rows.iter().filter(|r| r.addr == addr("127.5.0.1:6881")).collect();
    assert_eq!(a.len(), 1);
    assert!(a[0].left_censored);
    assert_eq!(
        a[0].ended_at - t0,
        50 * S,
        "a session ends at the first probe that saw it down"
    );
    // The create-based sample keeps sessions that start in the first half after the start: B.
    assert_eq!(s.create_based.0, 1);
    assert_eq!(s.create_based.1, Some(40.0));
}

#[tokio::test]
async fn sybils_and_a_poisoning_tracker_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, sybils) = recorded_store(&dir).await;
    let summary = summarize(&store, id, &all()).unwrap();
    let sybil = summary.sybil.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(sybil.ids(), sybils);
    let size = summary.size.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(size.distinct_ids, 42);
    let poisoning = summary.poisoning.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(
        poisoning.flagged_sources(),
        BTreeSet::from(["tracker:http://bad/announce".to_owned()])
    );
    let text = summary.to_string();
    assert!(text.contains("flagged ids:          12"), "{text}");
    assert!(text.contains("tracker:http://bad/announce"), "{text}");
}

#[tokio::test]
async fn the_same_rows_give_the_same_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id, _) = recorded_store(&dir).await;
    let one = summarize(&store, id, &all()).unwrap().to_string();
    let two = summarize(&store, id, &all()).unwrap().to_string();
    assert_eq!(one, two);
    let only_size = SummaryRequest {
        analyses: vec![AnalysisKind::Size],
        attempts: 2,
        sybil: SybilConfig::default(),
    };
    let s = summarize(&store, id, &only_size).unwrap();
    assert!(s.sessions.is_none() && s.sybil.is_none() && s.poisoning.is_none());
    assert!(s.size.is_some());
}

#[tokio::test]
async fn a_relay_census_counts_relays_and_flags_a_crowded_subnet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let (recorder, recording) = Recording::begin(&path, "campaign census", "").unwrap();
    let id = recording.crawl().id;
    let t0 = recording.crawl().started_at;
    let mut rng = SplitMix64::new(11);
    // 5 honest relays on their own /24s and 6 Sybils on 3 addresses of one /24 (2 each, under
    // the per-IP threshold of 2), listed by two authorities; one more relay only left out.
    let honest: Vec<_> = (1..=5u8)
        .map(|i| (addr(&format!("127.9.{i}.1:9001")), rng.node_id()))
        .collect();
    let sybils: Vec<_> = (0..6u16)
        .map(|j| (addr(&format!("127.9.200.{}:{}", 1 + j % 3, 9001 + j)), rng.node_id()))
        .collect();
    let left_out = (addr("127.9.201.1:9001"), rng.node_id());
    for authority in [addr("127.9.254.1:7000"), addr("127.9.254.2:7000")] {
        recorder
            .record(Observation::Visit(visit(
                ProbeKind::OnionConsensus,
                authority,
                t0 + S,
                1,
                Outcome::Ok,
            )))
            .await;
        let listed = honest.iter().chain(&sybils).map(|r| (SourceKind::OnionListed, r));
        for (source_kind, (relay, fp)) in listed.chain([(SourceKind::OnionExcluded, &left_out)]) {
            recorder
                .record(Observation::Sighting(Sighting {
                    at: t0 + S,
                    source_kind,
                    source: authority.to_string(),
                    source_id: None,
                    info_hash: None,
                    addr: *relay,
                    id: Some(fp.0),
                }))
                .await;
        }
    }
    recording.finish(CrawlEnd::Finished).await.unwrap();
    let store = Store::open(&path).unwrap();
    let request = SummaryRequest {
        analyses: vec![AnalysisKind::Sybil],
        attempts: 1,
        sybil: SybilConfig {
            max_ids_per_subnet: 2,
            ..SybilConfig::default()
        },
    };
    let summary = summarize(&store, id, &request).unwrap();
    let relays = summary.relays.as_ref().unwrap();
    assert_eq!((relays.authorities, relays.listed, relays.only_excluded), (2, 11, 1));
    let flagged = relays.sybil.as_ref().unwrap().as_ref().unwrap().ids();
    assert_eq!(flagged, sybils.iter().map(|(_, fp)| *fp).collect::<BTreeSet<_>>());
    let text = summary.to_string();
    assert!(text.contains("onion relays (census of 2 authorities)"), "{text}");
}
