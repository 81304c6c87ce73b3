//! Every campaign in `experiments/campaigns/` loads; the simulations among them run here and
//! pass their checks, and the same campaign and seed give byte-identical reports. (The loopback
//! campaigns run in `.ci/run` through the `onionlab` binary.)
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use onionlab_experiments::campaign::{Campaign, RunOptions, run};

fn campaign_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn is_simulation(c: &Campaign) -> bool {
    !c.is_loopback()
}

#[tokio::test]
async fn every_simulation_campaign_passes_its_checks_with_identical_reports() {
    let files = campaign_files();
    assert!(files.len() >= 6, "{files:?}");
    let mut simulations = 0;
    for file in &files {
        let mut campaign = Campaign::load(file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!campaign.checks.is_empty(), "{} has no checks", file.display());
        if !is_simulation(&campaign) {
            continue;
        }
        simulations += 1;
        let mut pages = Vec::new();
        for _ in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            campaign.output = dir.path().join("out");
            let done = run(&campaign, RunOptions::default(), std::future::pending())
                .await
                .unwrap();
            for c in &done.checks {
                assert!(
                    c.passed,
                    "{}: {} = {:?} fails {} {}",
                    campaign.name, c.measurement, c.measured, c.expected, c.tolerance
                );
            }
            let page = std::fs::read(&done.report).unwrap();
            // --resume keeps the finished results and rebuilds the same page.
            let again = run(&campaign, RunOptions { resume: true }, std::future::pending())
                .await
                .unwrap();
            assert!(again.reused);
            assert_eq!(std::fs::read(&again.report).unwrap(), page);
            pages.push(page);
        }
        assert_eq!(
            pages[0], pages[1],
            "{}: same seed, different report bytes",
            campaign.name
        );
        let text = String::from_utf8(pages.pop().unwrap()).unwrap();
        assert!(text.contains("<svg"), "{}: no plot", campaign.name);
    }
    assert!(simulations >= 5);
}
