//! The `onionlab-relay` binary: SIGHUP reloads the configuration file, SIGTERM drains and exits.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Kills the relay process if the test fails before it has exited.
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_drains_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, mut uploads) = fake_authority().await;
    let config_path = dir.path().join("relay.yaml");
    let write_config = |contact: &str| {
        let yaml = format!(
            "nickname: sigrelay\nor_listen: 127.0.0.1:0\ndata_dir: {}\ncontact: {contact}\nshutdown_grace_secs: 10\n\
             authorities:\n  - address: {}\n    identity: {}\n",
            dir.path().join("data").display(),
            authority.address,
            authority.identity
        );
        std::fs::write(&config_path, yaml).unwrap();
    };
    write_config("before");
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_onionlab-relay"))
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut guard = KillOnDrop(Some(pid));
    let stdout = child.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let banner = tokio::time::timeout(WAIT, banner).await.unwrap().unwrap().unwrap();
    assert!(banner.contains("listening on 127.0.0.1:"), "{banner}");
    descriptor_where(&mut uploads, "the first contact", |d| d.contact == "before").await;

    write_config("after");
    signal(pid, "HUP");
    descriptor_where(&mut uploads, "the reloaded contact", |d| d.contact == "after").await;

    let stopping = Instant::now();
    signal(pid, "TERM");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    guard.0 = None;
    assert!(status.success(), "{status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "an idle relay drains quickly"
    );
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    for expected in ["configuration reloaded", "shutting down", "relay stopped"] {
        assert!(log.contains(expected), "no {expected:?} in:\n{log}");
    }
}
