//! Keys across restarts and onion key rotation with its grace period.

mod support;

use onionlab_proto::cell::DestroyReason;
use onionlab_proto::relay_msg::RelayMsg;
use onionlab_relay::onion_keys::{CURRENT_FILE, PREVIOUS_FILE, TIMES_FILE};
use onionlab_relay::stats::RelayStats;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_and_onion_key_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(exit_config(dir.path())).await;
    let (identity, onion) = (first.identity(), first.relay.onion_public());
    first.shutdown(Duration::ZERO).await;
    for file in ["identity_ed25519.key", CURRENT_FILE, TIMES_FILE] {
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let second = start(exit_config(dir.path())).await;
    assert_eq!(second.identity(), identity, "same fingerprint after a restart");
    assert_eq!(
        second.relay.onion_public(),
        onion,
        "an onion key within its lifetime is kept"
    );
    let mut client = RawClient::connect(&second, "127.0.0.1").await;
    client.create(0x8000_0001, &onion).await.expect("the kept key works");
    second.shutdown(Duration::ZERO).await;

    // A relay that was down past its onion key's lifetime rotates before it publishes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut config = exit_config(dir.path());
    config.onion_key_lifetime_secs = 1;
    config.onion_key_grace_secs = 1;
    let third = start(config).await;
    assert_eq!(third.identity(), identity);
    assert_ne!(third.relay.onion_public(), onion, "rotated at start");
    assert_eq!(RelayStats::get(&third.relay.stats.onion_key_rotations), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_key_is_published_and_the_old_one_works_only_within_grace() {
    let dir = tempfile::tempdir().unwrap();
    let (authority, mut uploads) = fake_authority().await;
    let mut config = exit_config(dir.path());
    config.authorities = vec![authority];
    config.onion_key_lifetime_secs = 3;
    config.onion_key_grace_secs = 2;
    let relay = start(config).await;
    let identity = relay.identity();
    let old = relay.relay.onion_public();
    descriptor_where(&mut uploads, "it carries the first key", |d| {
        d.info.onion_key == old.to_bytes()
    })
    .await;

    // The key rotates after its lifetime, and the new one is published at once (the publish
    // interval is an hour).
    let new_desc = descriptor_where(&mut uploads, "it carries a new key", |d| {
        d.info.onion_key != old.to_bytes()
    })
    .await;
    let rotated_at = Instant::now();
    assert_eq!(new_desc.info.identity, identity, "the identity never rotates");
    let new = relay.relay.onion_public();
    assert_eq!(new.to_bytes(), new_desc.info.onion_key);
    assert_eq!(relay.relay.onion_keys.previous_public(), Some(old));
    assert!(dir.path().join(PREVIOUS_FILE).exists());

    // Within the grace period a client with the old consensus still gets through.
    let echo = echo_server().await;
    let mut client = RawClient::connect(&relay, "127.0.0.1").await;
    let mut circ = client
        .create(0x8000_0001, &old)
        .await
        .expect("old key accepted within grace");
    assert!(
        rotated_at.elapsed() < Duration::from_secs(2),
        "checked within the grace period"
    );
    assert!(matches!(client.begin(&mut circ, 1, echo).await, RelayMsg::Connected(_)));
    assert_eq!(RelayStats::get(&relay.relay.stats.handshakes_previous_key), 1);
    client.create(0x8000_0002, &new).await.expect("new key accepted");

    // After the grace period the old key is refused, the new one still works.
    eventually("the previous key is retired", || {
        relay.relay.onion_keys.previous_public().is_none()
    })
    .await;
    assert!(
        rotated_at.elapsed() >= Duration::from_secs(1),
        "kept for the grace period"
    );
    assert_eq!(
        client.create(0x8000_0003, &old).await.err(),
        Some(DestroyReason::Protocol),
        "old key refused after grace"
    );
    assert!(!dir.path().join(PREVIOUS_FILE).exists());
    assert!(RelayStats::get(&relay.relay.stats.onion_key_rotations) >= 1);
}
