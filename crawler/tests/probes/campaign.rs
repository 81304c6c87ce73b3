//! Whole campaigns from YAML against loopback counterparts: a simulated DHT with planted Sybils,
//! an HTTP and a UDP tracker, an honest seeder (known only by its info-hash: the metadata comes
//! over BEP 9) and a peer that never answers. The output folder must hold the store, the
//! summary and the exports; a run stopped early resumes for the time it had left.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use onionlab_crawler::campaign::{Campaign, CampaignRun, RunError};
use onionlab_crawler::dht::sim::{SimConfig, SimNetwork, SybilConfig, SybilPlacement};
use onionlab_crawler::dht::space::SplitMix64;
use onionlab_crawler::infohash::InfoHash;
use onionlab_crawler::observe::ProbeKind;
use onionlab_crawler::store::{CrawlEnd, CrawlStatus, Store};
use onionlab_crawler::tracker::http::{AnnounceResponse, Peer, PeerAddr};

use crate::support::*;

struct Lab {
    _net: SimNetwork,
    http: HttpTracker,
    _peers: Vec<PeerHandle>,
    yaml: String,
    sybils: usize,
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("IPv4 expected"),
    }
}

/// The counterparts, and a campaign over them running `duration` with `rounds` every 700 ms.
async fn lab(duration: &str) -> Lab {
    let target = InfoHash(SplitMix64::new(99).node_id().0);
    let sybils = 20;
    let net = SimNetwork::start(SimConfig {
        nodes: 300,
        seed: 5,
        base_ip: Ipv4Addr::new(127, 50, 0, 0),
        sybils: Some(SybilConfig {
            count: sybils,
            placement: SybilPlacement::OneIp,
            target,
            shared_bits: 20,
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let t = torrent(4 * 16384, 16384, 31);
    let seeder = spawn_peer(ip(55, 0, 1), PeerSpec::honest(&t)).await;
    let silent = spawn_peer(ip(55, 0, 2), PeerSpec::honest(&t).behaving(Behaviour::Silent)).await;
    let http = spawn_http_tracker(
        ip(55, 1, 1),
        HttpTrackerSpec {
            status: 200,
            announce: AnnounceResponse {
                interval: 1800,
                complete: Some(1),
                incomplete: Some(1),
                peers: [seeder.addr, silent.addr]
                    .map(|a| Peer {
                        addr: PeerAddr::Ip(a),
                        peer_id: None,
                    })
                    .to_vec(),
                ..AnnounceResponse::default()
            }
            .encode(),
            scrape: Vec::new(),
            chunked: false,
        },
    )
    .await;
    let udp = spawn_udp_tracker(
        ip(55, 1, 2),
        UdpTrackerSpec {
            seeders: 1,
            leechers: 1,
            peers: vec![v4(seeder.addr)],
            ..UdpTrackerSpec::default()
        },
    )
    .await;
    let yaml = format!(
        "name: lab\n\
         description: the loopback lab\n\
         duration: {duration}\n\
         output: out\n\
         engine: {{ per_ip_interval: 0s, timeout: 400ms, attempts: 2, backoff: 50ms, concurrency: 64 }}\n\
         targets:\n  \
           dht_bootstrap: [{boot}]\n  \
           info_hashes: [{hash}]\n  \
           trackers: [{http}, {udp}]\n\
         probes:\n  \
           - dht_crawl: {{ every: 700ms, max_duration: 2s, get_peers: true, bind: [127.55.9.1:0] }}\n  \
           - tracker: {{ every: 700ms }}\n  \
           - swarm: {{ every: 700ms, sample_pieces: 1, linger: 100ms }}\n\
         analyses: [sessions, sybil, poisoning, size]\n\
         sybil: {{ max_ids_per_subnet: 0 }}\n",
        boot = net.bootstrap(),
        hash = t.metainfo.info_hash.to_hex(),
        http = &http.url,
        udp = udp.url,
    );
    Lab {
        _net: net,
        http,
        _peers: vec![seeder, silent],
        yaml,
        sybils,
    }
}

fn load(dir: &Path, yaml: &str) -> Campaign {
    let file = dir.join("lab.yaml");
    std::fs::write(&file, yaml).unwrap();
    Campaign::load(&file).unwrap()
}

fn kinds(store: &Store, id: onionlab_crawler::store::CrawlId) -> Vec<ProbeKind> {
    let mut k: Vec<ProbeKind> = store.visits(id).unwrap().iter().map(|v| v.probe).collect();
    k.sort();
    k.dedup();
    k
}

/// A 3-second campaign runs every probe, stores every row, and leaves the summary and exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_leaves_store_summary_and_exports() {
    bounded(async {
        let lab = lab("3s").await;
        let dir = tempfile::tempdir().unwrap();
        let campaign = load(dir.path(), &lab.yaml);
        let run = CampaignRun::prepare(campaign, false).unwrap();
        let progress = run.progress();
        let out = run.run(std::future::pending()).await.unwrap();
        assert_eq!(out.end, CrawlEnd::Finished);
        let rounds = progress.rounds();
        assert_eq!(rounds.len(), 3);
        for (probe, n) in &rounds {
            assert!(*n >= 2, "{probe} ran {n} rounds in 3 s at one per 700 ms");
        }

        let folder = dir.path().join("out");
        let store = Store::open(folder.join("crawl.sqlite")).unwrap();
        let crawl = store.crawl(out.crawl).unwrap();
        assert_eq!(crawl.status, CrawlStatus::Finished);
        assert!(
            crawl.config.contains("name: lab"),
            "the campaign text is kept with the run"
        );
        let k = kinds(&store, out.crawl);
        for want in [
            ProbeKind::DhtFindNode,
            ProbeKind::HttpAnnounce,
            ProbeKind::HttpScrape,
            ProbeKind::UdpAnnounce,
            ProbeKind::PeerHandshake,
            ProbeKind::PeerMetadata,
            ProbeKind::PeerPiece,
        ] {
            assert!(k.contains(&want), "no {want:?} visit: {k:?}");
        }
        let checks = store.piece_checks(out.crawl).unwrap();
        assert!(!checks.is_empty() && checks.iter().all(|c| c.ok), "{checks:?}");
        assert!(!store.sessions(out.crawl).unwrap().is_empty());

        // The planted Sybils share one IP: flagged, and nobody else.
        let sybil = out.summary.sybil.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(sybil.flagged.len(), lab.sybils, "{}", out.summary);

        let text = std::fs::read_to_string(folder.join("summary.txt")).unwrap();
        assert!(text.starts_with("campaign lab\nthe loopback lab\n"), "{text}");
        assert!(text.contains("sessions (create-based method"), "{text}");
        assert!(text.contains("flagged ids:          20"), "{text}");
        assert!(text.contains("poisoning signals"), "{text}");
        for (sub, ext) in [("parquet", "parquet"), ("csv", "csv")] {
            for table in ["visits", "sightings", "peers", "sessions"] {
                let f = folder.join(sub).join(format!("{table}.{ext}"));
                assert!(f.is_file(), "{} missing", f.display());
            }
        }
        // The tracker heard one `started` and, at the end, one `stopped`: the campaign's tracker
        // probe is the only announcer (the swarm monitor takes its peers from it).
        let requests = lab.http.requests.lock().unwrap().clone();
        let announces: Vec<_> = requests.iter().filter(|r| r.starts_with("/announce")).collect();
        assert_eq!(
            announces.iter().filter(|r| r.contains("event=started")).count(),
            1,
            "{announces:?}"
        );
        assert_eq!(
            announces.iter().filter(|r| r.contains("event=stopped")).count(),
            1,
            "{announces:?}"
        );
        assert!(announces.len() >= 3, "{announces:?}");
    })
    .await;
}

/// Stopped after half a second, the run is `interrupted` and says so; a second run without
/// --resume refuses to start over it; the resumed run appends to the same crawl for the time
/// left and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_campaign_resumes_for_the_time_left() {
    bounded(async {
        let lab = lab("2s").await;
        let dir = tempfile::tempdir().unwrap();
        let campaign = load(dir.path(), &lab.yaml);

        let run = CampaignRun::prepare(campaign.clone(), false).unwrap();
        let first = run.run(tokio::time::sleep(Duration::from_millis(500))).await.unwrap();
        assert_eq!(first.end, CrawlEnd::Interrupted);
        let summary = std::fs::read_to_string(dir.path().join("out/summary.txt")).unwrap();
        assert!(summary.contains("stopped early"), "{summary}");

        match CampaignRun::prepare(campaign.clone(), false) {
            Err(RunError::Unfinished { crawl, .. }) => assert_eq!(crawl, first.crawl),
            other => panic!("expected Unfinished, got {other:?}"),
        }
        let resumed = CampaignRun::prepare(campaign.clone(), true).unwrap();
        assert_eq!(resumed.crawl().id, first.crawl);
        let left = resumed.progress().budget();
        assert!(
            left < Duration::from_millis(1600) && left > Duration::from_millis(1000),
            "{left:?}"
        );
        let visits_before = first.summary.rows.visits;
        let second = resumed.run(std::future::pending()).await.unwrap();
        assert_eq!(second.end, CrawlEnd::Finished);
        assert_eq!(second.crawl, first.crawl);
        assert!(second.summary.rows.visits > visits_before);
        let store = Store::open(dir.path().join("out/crawl.sqlite")).unwrap();
        let crawl = store.crawl(first.crawl).unwrap();
        assert_eq!(crawl.status, CrawlStatus::Finished);
        assert_eq!(crawl.notes.matches("campaign ran").count(), 2, "{}", crawl.notes);
        assert!(crawl.notes.contains("resumed at"));

        match CampaignRun::prepare(campaign, true) {
            Err(RunError::NothingToResume { .. }) => {}
            other => panic!("expected NothingToResume, got {other:?}"),
        }
    })
    .await;
}
