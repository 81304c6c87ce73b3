//! The global options: --db and --resume give a recorder backed by the store; --resume alone
//! is refused where a crawl id is needed.

use clap::Parser;
use onionlab_crawler::observe::{Observation, ProbeKind, Visit};
use onionlab_crawler::store::{CrawlEnd, CrawlStatus, Store};

use super::Args;

fn parse(extra: &[&str]) -> Args {
    let argv = ["onionlab-crawl"].iter().chain(extra).chain(&["info", "x.torrent"]);
    Args::try_parse_from(argv).unwrap()
}

#[tokio::test]
async fn db_and_resume_give_a_recorder_backed_by_the_store() {
    let (_, none) = parse(&[]).common.recorder("dht", "").unwrap();
    assert!(none.is_none());

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.sqlite");
    let db = db.to_str().unwrap();
    let (rec, recording) = parse(&["--db", db]).common.recorder("dht", "--timeout 5s").unwrap();
    let recording = recording.unwrap();
    let crawl = recording.crawl().id;
    let addr = "10.0.0.1:6881".parse().unwrap();
    rec.record(Observation::Visit(Visit::start(
        ProbeKind::DhtPing,
        "10.0.0.1:6881",
        Some(addr),
    )))
    .await;
    recording.finish(CrawlEnd::Interrupted).await.unwrap();

    let id = crawl.to_string();
    let err = parse(&["--db", db, "--resume", &id])
        .common
        .recorder("tracker", "")
        .unwrap_err();
    assert!(err.to_string().contains("\"dht\""), "{err}");
    let (_, recording) = parse(&["--db", db, "--resume", &id])
        .common
        .recorder("dht", "")
        .unwrap();
    let recording = recording.unwrap();
    assert_eq!(
        (recording.crawl().id, recording.crawl().status),
        (crawl, CrawlStatus::Running)
    );
    assert_eq!(recording.store().visits(crawl).unwrap().len(), 1);
    recording.finish(CrawlEnd::Finished).await.unwrap();
    assert_eq!(
        Store::open(db).unwrap().crawl(crawl).unwrap().status,
        CrawlStatus::Finished
    );

    // --resume ID needs --db; a bare --resume (the campaign runner's) needs an id here.
    let err = parse(&["--resume", "1"]).common.recorder("dht", "").unwrap_err();
    assert!(err.to_string().contains("give --db"), "{err}");
    let bare = Args::try_parse_from(["onionlab-crawl", "--db", db, "info", "x.torrent", "--resume"]).unwrap();
    let err = bare.common.recorder("dht", "").unwrap_err();
    assert!(err.to_string().contains("needs the crawl id"), "{err}");
}
