//! Campaign files: the documented example parses, mistakes are named with their place, hostile
//! YAML is refused within limits.

use super::*;

const EXAMPLE: &str = "
name: dht-census
description: Census of the lab DHT.
duration: 10m
output: results/dht-census
engine:
  concurrency: 64
  per_ip_interval: 250ms
  timeout: 2s
  deny: [127.66.0.0/16]
targets:
  dht_bootstrap: [127.0.0.1:6881, 127.0.0.2:6881]
  info_hashes: [e1cfed94e5eee342e41da5e7ef5f6650fb6957ce]
  trackers: [http://127.0.0.1:6969/announce]
probes:
  - dht_crawl: { every: 30s, max_duration: 20s, get_peers: true }
  - tracker: { every: 60 }
  - swarm: { sample_pieces: 1 }
analyses: [sessions, sybil, poisoning, size]
";

#[test]
fn the_documented_example_parses() {
    let c = Campaign::parse(EXAMPLE, "example.yaml").unwrap();
    assert_eq!(c.name, "dht-census");
    assert_eq!(c.duration, Duration::from_secs(600));
    let e = c.engine.to_config();
    assert_eq!(
        (e.concurrency, e.per_ip_interval, e.timeout),
        (64, Duration::from_millis(250), Duration::from_secs(2))
    );
    assert_eq!(e.attempts, EngineConfig::default().attempts);
    assert!(c.engine.deny_list().denies("127.66.1.1".parse().unwrap()).is_some());
    assert!(c.engine.deny_list().denies("224.0.0.1".parse().unwrap()).is_some());
    assert_eq!(c.targets.dht_bootstrap.len(), 2);
    assert_eq!(c.probes.len(), 3);
    assert_eq!(
        c.probes[0],
        ProbeSpec::DhtCrawl(DhtCrawlSpec {
            every: Some(Duration::from_secs(30)),
            max_duration: Duration::from_secs(20),
            max_nodes: 1_000_000,
            get_peers: true,
            sample_infohashes: false,
            bind: Vec::new(),
        })
    );
    assert_eq!(
        c.probes[1],
        ProbeSpec::Tracker(TrackerSpec {
            every: Some(Duration::from_secs(60)),
            scrape: true
        })
    );
    assert_eq!(c.probes[2].every(), None);
    assert_eq!(c.analyses.len(), 4);
    assert_eq!(c.export, [ExportFormat::Parquet, ExportFormat::Csv]);
    let swarms = c.swarms().unwrap();
    assert_eq!(swarms.len(), 1);
    assert_eq!(swarms[0].trackers, ["http://127.0.0.1:6969/announce"]);
}

#[test]
fn a_gnutella_crawl_parses_with_its_defaults() {
    let yaml = "name: g\nduration: 1m\noutput: o\ntargets: { gnutella_bootstrap: [127.0.0.1:6346] }\nprobes:\n  - gnutella_crawl: { every: 5s, contact_leaves: true }\n";
    let c = Campaign::parse(yaml, "g.yaml").unwrap();
    assert_eq!(
        c.targets.gnutella_bootstrap,
        ["127.0.0.1:6346".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        c.probes[0],
        ProbeSpec::GnutellaCrawl(GnutellaCrawlSpec {
            every: Some(Duration::from_secs(5)),
            max_duration: Duration::from_secs(60),
            contact_leaves: true,
            max_contacts: 1_000_000,
            recrawl_interval: None,
        })
    );
    assert_eq!(c.probes[0].name(), "gnutella_crawl");
}

#[test]
fn an_onion_census_parses_and_needs_authorities() {
    let yaml = "name: o\nduration: 1m\noutput: o\ntargets: { onion_authorities: [127.0.254.1:7000] }\nprobes:\n  - onion_consensus: { every: 2s }\n";
    let c = Campaign::parse(yaml, "o.yaml").unwrap();
    assert_eq!(
        c.targets.onion_authorities,
        ["127.0.254.1:7000".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        c.probes[0],
        ProbeSpec::OnionConsensus(OnionConsensusSpec {
            every: Some(Duration::from_secs(2))
        })
    );
    assert_eq!(c.probes[0].name(), "onion_consensus");
    let err = error_of("name: o\nduration: 1m\noutput: o\nprobes:\n  - onion_consensus: {}\n");
    assert!(
        err.contains("probes[0].onion_consensus") && err.contains("onion_authorities"),
        "{err}"
    );
    let err = error_of(
        "name: o\nduration: 1m\noutput: o\ntargets: { onion_authorities: [nowhere] }\nprobes:\n  - onion_consensus: {}\n",
    );
    assert!(err.contains("line 4"), "{err}");
}

#[test]
fn the_module_doc_example_parses() {
    let doc = include_str!("../config.rs");
    let yaml: String = doc
        .lines()
        .skip_while(|l| !l.starts_with("//! ```yaml"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| format!("{}\n", l.strip_prefix("//! ").unwrap_or("")))
        .collect();
    assert!(yaml.contains("probes:"));
    Campaign::parse(&yaml, "doc").unwrap();
}

fn error_of(yaml: &str) -> String {
    Campaign::parse(yaml, "c.yaml").unwrap_err().to_string()
}

#[test]
fn unknown_fields_and_bad_types_name_line_and_column() {
    let err = error_of("name: x\nduration: 1m\noutput: o\nprobes: []\nspeed: 3\n");
    assert!(
        err.contains("c.yaml") && err.contains("unknown field") && err.contains("line 5"),
        "{err}"
    );
    let err = error_of("name: x\nduration: soon\noutput: o\nprobes: []\n");
    assert!(err.contains("line 2") && err.contains("duration"), "{err}");
    let err = error_of("name: x\nduration: 1m\noutput: o\nprobes:\n  - dht_crawl: { max_duraton: 3s }\n");
    assert!(err.contains("line 5") && err.contains("max_duraton"), "{err}");
    let err = error_of("name: x\nduration: 1m\noutput: o\nprobes:\n  - ping_everyone: {}\n");
    assert!(err.contains("line 5") && err.contains("ping_everyone"), "{err}");
    let err = error_of("name: x\nduration: 1m\noutput: o\nprobes: []\nengine: { concurrency: -4 }\n");
    assert!(err.contains("line 5"), "{err}");
}

#[test]
fn inconsistent_fields_are_named() {
    let base = "name: x\nduration: 1m\noutput: o\n";
    let err = error_of(&format!("{base}probes: []\n"));
    assert!(err.contains("probes") && err.contains("at least one"), "{err}");
    let err = error_of(&format!("{base}probes:\n  - dht_crawl: {{}}\n"));
    assert!(
        err.contains("probes[0].dht_crawl") && err.contains("dht_bootstrap"),
        "{err}"
    );
    let err = error_of(&format!(
        "{base}targets: {{ dht_bootstrap: [127.0.0.1:1] }}\nprobes:\n  - swarm: {{}}\n"
    ));
    assert!(err.contains("probes[0].swarm") && err.contains("torrents"), "{err}");
    let err = error_of(&format!(
        "{base}targets: {{ info_hashes: [abc] }}\nprobes:\n  - tracker: {{}}\n"
    ));
    assert!(err.contains("targets.info_hashes[0]"), "{err}");
    let err = error_of(&format!(
        "{base}targets: {{ info_hashes: [e1cfed94e5eee342e41da5e7ef5f6650fb6957ce], trackers: [ftp://x] }}\nprobes:\n  - tracker: {{}}\n"
    ));
    assert!(err.contains("targets.trackers[0]"), "{err}");
    let err = error_of(&format!(
        "{base}targets: {{ dht_bootstrap: [127.0.0.1:1] }}\nprobes:\n  - dht_crawl: {{ every: 0s }}\n"
    ));
    assert!(err.contains("probes[0].dht_crawl.every"), "{err}");
    let err = error_of(&format!(
        "{base}engine: {{ deny: [10.0.0.0/40] }}\nprobes:\n  - tracker: {{}}\n"
    ));
    assert!(err.contains("engine.deny[0]") && err.contains("prefix"), "{err}");
    let err = error_of(&format!("{base}probes:\n  - gnutella_crawl: {{}}\n"));
    assert!(
        err.contains("probes[0].gnutella_crawl") && err.contains("gnutella_bootstrap"),
        "{err}"
    );
    let err = error_of(&format!(
        "{base}targets: {{ gnutella_bootstrap: [127.0.0.1:6346] }}\nprobes:\n  - gnutella_crawl: {{ max_duration: 0s }}\n"
    ));
    assert!(err.contains("probes[0].gnutella_crawl.max_duration"), "{err}");
    let err = "name: ' '\nduration: 1m\noutput: o\nprobes: []\n";
    assert!(error_of(err).contains("name"));
}

/// A billion-laughs alias bomb: each of 12 levels repeats the one before nine times.
fn alias_bomb() -> String {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    bomb
}

#[test]
fn hostile_yaml_is_refused_within_limits() {
    // Read as "anything at all", so that only the parser's limits can refuse them: the bomb
    // (9^12 nodes once expanded) and 10,000 nested sequences.
    let bomb = alias_bomb();
    let deep = format!("name: {}x{}\n", "[".repeat(10_000), "]".repeat(10_000));
    for (text, limit) in [(&bomb, "budget breached"), (&deep, "recursion limit exceeded")] {
        let err = parse_yaml::<serde::de::IgnoredAny>(text, "hostile.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(limit), "{err}");
        assert!(Campaign::parse(text, "hostile.yaml").is_err());
    }
    let huge = format!("name: x\ndescription: '{}'\n", "a".repeat(MAX_CAMPAIGN_LEN as usize));
    assert!(matches!(
        Campaign::parse(&huge, "huge.yaml"),
        Err(CampaignError::TooLarge(_))
    ));
}

#[test]
fn load_makes_paths_relative_to_the_file_and_reads_torrents() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/multi.torrent");
    std::fs::copy(fixture, dir.path().join("multi.torrent")).unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "name: swarm\nduration: 1m\noutput: out\ntargets:\n  torrents: [multi.torrent]\n  trackers: [udp://127.0.0.1:6969]\nprobes:\n  - swarm: {}\n",
    )
    .unwrap();
    let c = Campaign::load(&path).unwrap();
    assert_eq!(c.output, dir.path().join("out"));
    let swarms = c.swarms().unwrap();
    assert_eq!(swarms.len(), 1);
    assert_eq!(swarms[0].info_hash.to_hex(), "e1cfed94e5eee342e41da5e7ef5f6650fb6957ce");
    assert_eq!(swarms[0].info.as_ref().map(|i| i.pieces.len()), Some(2));
    assert_eq!(
        swarms[0].trackers,
        ["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"]
    );
    assert!(matches!(
        Campaign::load(&dir.path().join("missing.yaml")),
        Err(CampaignError::Read { .. })
    ));
}

#[test]
fn the_shipped_campaigns_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            Campaign::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 1, "no campaign in {}", dir.display());
}
