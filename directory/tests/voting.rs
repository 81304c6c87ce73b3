//! Voting between authorities when one of them forges its vote.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use onionlab_directory::{Authority, AuthorityConfig};
use onionlab_link::config::AuthorityEntry;
use onionlab_proto::consensus::Flags;
use onionlab_proto::descriptor::RelayInfo;
use onionlab_proto::exit_policy::ExitPolicy;
use onionlab_proto::keys::{fingerprint, fresh_signing_key};
use onionlab_proto::vote::{Vote, VoteRelay};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves, for any period, a vote that names `claimed` as its author but is signed by another key.
async fn forger(listener: TcpListener, claimed: [u8; 32]) {
    let impostor = fresh_signing_key();
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut req = vec![0u8; 4096];
        let n = s.read(&mut req).await.unwrap_or(0);
        let line = String::from_utf8_lossy(&req[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let period = line
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.strip_prefix("/onionlab/v1/vote/"))
            .and_then(|p| p.parse().ok());
        let (status, body) = match period {
            Some(valid_after) => {
                let info = RelayInfo {
                    nickname: "forged".into(),
                    identity: fresh_signing_key().verifying_key().to_bytes(),
                    onion_key: [9; 32],
                    or_addr: "127.0.0.9:9".parse().expect("address"),
                    bandwidth: 1 << 30,
                    exit_policy: ExitPolicy::default_exit(),
                    family: vec![],
                };
                let relay = VoteRelay {
                    info,
                    published: 1,
                    flags: Flags(0x3f),
                    measured: Some(1 << 30),
                };
                (
                    "200 OK",
                    Vote {
                        authority: claimed,
                        valid_after,
                        relays: vec![relay],
                    }
                    .sign(&impostor),
                )
            }
            None => ("404 Not Found", Vec::new()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(&body).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_vote_is_ignored_and_the_majority_still_signs() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut listeners = Vec::new();
    let mut entries = Vec::new();
    for d in &dirs {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let key = onionlab_link::keystore::identity_key(&onionlab_directory::authority::key_path(d.path())).unwrap();
        entries.push(AuthorityEntry {
            address: l.local_addr().unwrap(),
            identity: fingerprint(&key.verifying_key().to_bytes()),
        });
        listeners.push(l);
    }
    let fake_id = fresh_signing_key().verifying_key().to_bytes();
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    entries.push(AuthorityEntry {
        address: fake.local_addr().unwrap(),
        identity: fingerprint(&fake_id),
    });
    tokio::spawn(forger(fake, fake_id));

    let mut handles = Vec::new();
    for (l, d) in listeners.into_iter().zip(&dirs) {
        let mut cfg = AuthorityConfig::new(l.local_addr().unwrap(), d.path().to_owned());
        cfg.authorities = entries.clone();
        cfg.consensus_interval_secs = 1;
        cfg.vote_delay_ms = 200;
        cfg.signature_delay_ms = 450;
        cfg.measure_bandwidth = false;
        handles.push(Authority::start_on(l, cfg).await.unwrap());
    }
    let mut published = None;
    for _ in 0..200 {
        published = handles[0].authority.published();
        if published.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let p = published.expect("the two honest authorities publish");
    assert_eq!(
        p.signed.signatures.len(),
        2,
        "signed by both honest authorities, a majority of three"
    );
    let json: serde_json::Value = serde_json::from_slice(&p.json).unwrap();
    assert_eq!(
        json["votes_from"].as_array().unwrap().len(),
        2,
        "the forged vote was not counted"
    );
    assert!(
        p.signed.consensus.relays.is_empty(),
        "nothing from the forged vote is listed"
    );
    let trusted: Vec<_> = entries.iter().map(|e| e.identity_bytes().unwrap()).collect();
    assert!(p.signed.verify(&trusted, p.signed.consensus.valid_after).is_ok());
}
