//! The authority's HTTP API as relays and clients use it, with bad input.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use onionlab_directory::{Authority, AuthorityConfig};
use onionlab_link::dirhttp;
use onionlab_proto::consensus::SignedConsensus;
use onionlab_proto::descriptor::{RelayDescriptor, RelayInfo};
use onionlab_proto::exit_policy::ExitPolicy;
use onionlab_proto::keys::{OnionPublicKey, SigningKey, fresh_signing_key, fresh_x25519};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn descriptor(key: &SigningKey, published: u64) -> Vec<u8> {
    RelayDescriptor {
        info: RelayInfo {
            nickname: "unreachable".into(),
            identity: key.verifying_key().to_bytes(),
            onion_key: OnionPublicKey::from(&fresh_x25519()).to_bytes(),
            // Nothing listens here: the reachability test must fail.
            or_addr: "127.0.253.1:9".parse().expect("address"),
            bandwidth: 1 << 20,
            exit_policy: ExitPolicy::default_exit(),
            family: vec![],
        },
        published,
        contact: String::new(),
    }
    .sign(key)
    .expect("own key signs")
    .raw
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

#[tokio::test]
async fn uploads_are_checked_and_unreachable_relays_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuthorityConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_owned());
    cfg.consensus_interval_secs = 1;
    cfg.vote_delay_ms = 100;
    cfg.signature_delay_ms = 200;
    let auth = Authority::start(cfg).await.unwrap();
    let addr = auth.http_addr;
    let key_mode = std::fs::metadata(dir.path().join("authority_identity.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    let post = |body: Vec<u8>| dirhttp::post(addr, "/onionlab/v1/descriptor", body, 4096);
    let (status, reason) = post(vec![1, 2, 3]).await.unwrap();
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&reason).contains("malformed"), "{reason:?}");

    let (status, _) = post(vec![0; 9000]).await.unwrap();
    assert_eq!(status, 413);

    let key = fresh_signing_key();
    let mut forged = descriptor(&key, now());
    let n = forged.len();
    forged[n - 1] ^= 1;
    let (status, reason) = post(forged).await.unwrap();
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&reason).contains("signature"), "{reason:?}");

    let (status, reason) = post(descriptor(&key, now() - 24 * 3600)).await.unwrap();
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&reason).contains("stale"), "{reason:?}");

    let (status, _) = post(descriptor(&key, now())).await.unwrap();
    assert_eq!(status, 200);

    // The relay is not listed until its OR port answers; the JSON view says why.
    let mut why = String::new();
    for _ in 0..100 {
        let (status, json) = dirhttp::get(addr, "/onionlab/v1/consensus.json", 1 << 20)
            .await
            .unwrap();
        // 503 until the first period's consensus is out.
        let v: serde_json::Value = if status == 200 {
            serde_json::from_slice(&json).unwrap()
        } else {
            serde_json::Value::Null
        };
        why = v["excluded"][0]["reason"].as_str().unwrap_or_default().to_owned();
        if why.contains("unreachable") {
            assert_eq!(v["relays"].as_array().unwrap().len(), 0);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(why.contains("unreachable"), "{why}");

    // The binary consensus verifies against this authority's key only.
    let (status, body) = dirhttp::get(addr, "/onionlab/v1/consensus", 1 << 20).await.unwrap();
    assert_eq!(status, 200);
    let sc = SignedConsensus::decode(&body).unwrap();
    assert!(sc.verify(&[auth.identity], now()).is_ok());
    assert!(
        sc.verify(&[fresh_signing_key().verifying_key().to_bytes()], now())
            .is_err()
    );

    let (status, _) = dirhttp::get(addr, "/nope", 1024).await.unwrap();
    assert_eq!(status, 404);
}
