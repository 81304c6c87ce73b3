//! Every campaign in `experiments/campaigns/` loads; the simulations among them run here and
//! pass their checks, and the same campaign and seed give byte-identical reports. (The loopback
//! campaigns run in `.ci/run` through the `onionlab` binary.)
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use onionlab_experiments::campaign::{Campaign, RunError, RunOptions, run};

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

/// `--resume` never hands back another run's results: it refuses a folder left by a different
/// campaign text (or by nothing known), and a run started afresh drops the results an earlier
/// run left, even when it is interrupted before it could write its own.
#[tokio::test]
async fn resume_keeps_only_this_campaigns_results() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = |seed: u64| {
        let text = format!(
            "name: resume\nseed: {seed}\noutput: out\nexperiment:\n  distribution_swarm:\n    \
             file_kib: 64\n    peer_counts: [1]\n    subnet: 123\nchecks:\n  \
             - {{ measurement: unverified_downloads, at_most: 0 }}\n"
        );
        let mut c = Campaign::parse(&text, "resume.yaml").unwrap();
        c.output = dir.path().join("out");
        c
    };
    let resume = RunOptions { resume: true };
    let (first, second) = (campaign(1), campaign(2));

    let nothing = run(&first, resume, std::future::pending()).await.unwrap_err();
    assert!(matches!(nothing, RunError::Unknown { .. }), "{nothing}");
    let done = run(&first, RunOptions::default(), std::future::pending())
        .await
        .unwrap();
    assert!(done.passed() && !done.reused);

    let changed = run(&second, resume, std::future::pending()).await.unwrap_err();
    assert!(matches!(changed, RunError::Changed { .. }), "{changed}");
    let stopped = run(&second, RunOptions::default(), std::future::ready(()))
        .await
        .unwrap_err();
    assert!(matches!(stopped, RunError::Interrupted), "{stopped}");
    assert!(
        !first.output.join("results.json").exists(),
        "the first run's results outlived a new start"
    );
    // `--resume` comes from a new process: let the stopped run's tasks (aborted when it was
    // dropped) close their sockets first.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let resumed = run(&second, resume, std::future::pending())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        resumed.passed() && !resumed.reused,
        "the interrupted run was not run again"
    );
    let page = std::fs::read(&resumed.report).unwrap();
    let kept = run(&second, resume, std::future::pending())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(kept.reused);
    assert_eq!(std::fs::read(&kept.report).unwrap(), page);
}
