//! Relays under misbehaviour: a bad peer loses its circuit, the relay keeps serving, and a
//! closed circuit is torn down at every hop.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use onionlab_experiments::testbed::{Testbed, TestbedConfig};
use onionlab_link::channel::ChannelConnector;
use onionlab_link::origin::EntryLinks;
use onionlab_link::origin::build;
use onionlab_proto::cell::{Cell, CellCommand, Create2, DestroyReason, HTYPE_ONIONLAB_NTOR};
use onionlab_proto::keys::{OnionPublicKey, fresh_x25519};
use onionlab_proto::ntor::{ClientHandshake, NtorParams};
use onionlab_proto::path::{PathRules, choose_path};
use onionlab_proto::random::ThreadRandom;
use onionlab_relay::stats::RelayStats;
use std::sync::atomic::Ordering;
use std::time::Duration;

async fn testbed() -> Testbed {
    let mut cfg = TestbedConfig::ephemeral();
    cfg.relays = 3;
    cfg.large_file = 1024;
    Testbed::start(cfg, Duration::from_secs(30))
        .await
        .expect("testbed starts")
}

fn open_circuits(tb: &Testbed) -> u64 {
    tb.relays
        .iter()
        .map(|r| r.relay.stats.circuits_open.load(Ordering::Relaxed))
        .sum()
}

/// Waits (bounded) until `f` holds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_peer_loses_its_circuit_not_the_relay() {
    let tb = testbed().await;
    let relay = &tb.relays[0];
    let connector = ChannelConnector::new(onionlab_link::tls::client_config().unwrap());
    let (mut rx, tx) = connector
        .connect(relay.or_addr, &relay.identity())
        .await
        .unwrap()
        .split();

    // A CREATE2 with a handshake for another relay: DESTROY(protocol) on that circuit only.
    let bogus = Create2 {
        htype: HTYPE_ONIONLAB_NTOR,
        hdata: vec![7; 96],
    };
    tx.send(bogus.to_cell(0x8000_0001).unwrap()).await.unwrap();
    let answer = rx.next().await.unwrap().unwrap();
    assert_eq!((answer.circ_id, answer.command), (0x8000_0001, CellCommand::Destroy));
    assert_eq!(DestroyReason::from_u8(answer.payload[0]), DestroyReason::Protocol);
    assert_eq!(RelayStats::get(&relay.relay.stats.handshake_failures), 1);

    // The same link still creates circuits.
    let onion = OnionPublicKey::from(relay.relay.onion_public().to_bytes());
    let (hs, msg) = ClientHandshake::start(NtorParams::ONIONLAB, &relay.identity(), &onion, fresh_x25519()).unwrap();
    tx.send(
        Create2 {
            htype: HTYPE_ONIONLAB_NTOR,
            hdata: msg,
        }
        .to_cell(0x8000_0002)
        .unwrap(),
    )
    .await
    .unwrap();
    let created = rx.next().await.unwrap().unwrap();
    assert_eq!(created.command, CellCommand::Created2);
    let reply =
        onionlab_proto::cell::Created2::read(&mut onionlab_proto::codec::Reader::new(&created.payload)).unwrap();
    hs.finish(&reply.hdata).unwrap();

    // Garbage where a sealed relay cell belongs: it cannot open at the last hop, so the
    // circuit is destroyed as a protocol violation.
    tx.send(Cell::with_body(0x8000_0002, CellCommand::Relay, &[0xAA; 100]).unwrap())
        .await
        .unwrap();
    let destroyed = rx.next().await.unwrap().unwrap();
    assert_eq!(
        (destroyed.circ_id, destroyed.command),
        (0x8000_0002, CellCommand::Destroy)
    );
    assert_eq!(RelayStats::get(&relay.relay.stats.protocol_violations), 1);

    // And the relay still carries real traffic end to end.
    let s = onionlab_experiments::socks_client::connect(tb.client.socks_addr, "127.0.0.1", tb.demo.addr.port(), None)
        .await
        .unwrap();
    let page = onionlab_experiments::socks_client::http_get(s, "127.0.0.1", "/", 1 << 20, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(page.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_propagates_along_the_circuit() {
    let tb = testbed().await;
    let consensus = tb.client.pool.consensus(Duration::from_secs(10)).await.unwrap();
    let rules = PathRules {
        enforce_distinct_subnets: false,
    };
    let guard = consensus.relays[0].clone();
    let path = choose_path(&consensus, &guard, None, rules, &mut ThreadRandom).unwrap();
    let links = EntryLinks::new(ChannelConnector::new(onionlab_link::tls::client_config().unwrap()));
    // Let the client's own first circuit settle so that only ours changes the counts.
    eventually("the client's first circuit", || tb.client.pool.build_times().len() == 1).await;
    eventually("its three hops", || open_circuits(&tb) == 3).await;
    let before = open_circuits(&tb);
    let circuit = build(&links, path, Duration::from_secs(10)).await.unwrap();
    eventually("three hops hold the new circuit", || open_circuits(&tb) == before + 3).await;
    // Letting go of an idle circuit sends DESTROY to the guard, which passes it on.
    drop(circuit);
    eventually("every hop tore the circuit down", || open_circuits(&tb) == before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_cell_closes_the_link_promptly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tb = testbed().await;
    let relay = &tb.relays[0];
    // A TLS link that proves the relay, then 514 bytes with an unknown command (99).
    let tcp = tokio::net::TcpStream::connect(relay.or_addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(onionlab_link::tls::client_config().unwrap());
    let mut tls = connector.connect(onionlab_link::tls::server_name(), tcp).await.unwrap();
    let mut auth = [0u8; onionlab_proto::cell::CELL_LEN];
    tls.read_exact(&mut auth).await.unwrap();
    let mut bad = [0u8; onionlab_proto::cell::CELL_LEN];
    bad[4] = 99;
    tls.write_all(&bad).await.unwrap();
    tls.flush().await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the relay must close a link that sends a malformed cell"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_middle_relay_mid_download_fails_fast_and_browsing_recovers() {
    use onionlab_experiments::socks_client::{connect, http_get};
    use onionlab_experiments::testbed::DEMO_HOSTNAME;
    let mut cfg = TestbedConfig::ephemeral();
    cfg.relays = 5;
    cfg.large_file = 1024;
    let mut tb = Testbed::start(cfg, Duration::from_secs(30))
        .await
        .expect("testbed starts");
    let (socks, port) = (tb.client.socks_addr, tb.demo.addr.port());
    const SIZE: u64 = 8 << 20;
    // 20 downloads on one circuit (one isolation group).
    let downloads: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move {
                let s = connect(socks, DEMO_HOSTNAME, port, Some(("faults", "x"))).await;
                let r = match s {
                    Ok(s) => http_get(
                        s,
                        DEMO_HOSTNAME,
                        &format!("/bytes/{SIZE}"),
                        16 << 20,
                        Duration::from_secs(60),
                    )
                    .await
                    .map(|r| r.body.len() as u64),
                    Err(e) => Err(e),
                };
                (r, std::time::Instant::now())
            })
        })
        .collect();
    // Once the streams are open, kill the circuit's middle relay.
    let middle = eventually_async(|| async {
        let circuits = tb.client.circuits().await;
        circuits.iter().find(|c| c.streams >= 20).map(|c| c.path[1].clone())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let victim = tb
        .relays
        .iter()
        .position(|r| onionlab_proto::keys::fingerprint(&r.identity()) == middle)
        .unwrap();
    let killed_at = std::time::Instant::now();
    drop(tb.relays.remove(victim));
    let (mut completed, mut failed) = (0, 0);
    for d in downloads {
        let (result, at) = tokio::time::timeout(Duration::from_secs(15), d)
            .await
            .expect("no download hangs")
            .unwrap();
        match result {
            Ok(n) if n == SIZE => completed += 1,
            _ => {
                failed += 1;
                assert!(
                    at.saturating_duration_since(killed_at) < Duration::from_secs(10),
                    "a failing download must fail within 10 s"
                );
            }
        }
    }
    assert_eq!(completed + failed, 20);
    // New requests get through on fresh circuits that avoid the dead relay.
    let mut ok = false;
    for _ in 0..3 {
        if let Ok(s) = connect(socks, DEMO_HOSTNAME, port, Some(("after", "x"))).await
            && http_get(s, DEMO_HOSTNAME, "/", 1 << 20, Duration::from_secs(30))
                .await
                .is_ok_and(|r| r.status == 200)
        {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "browsing recovers after the middle relay died ({completed} downloads had completed, {failed} failed)"
    );
}

async fn eventually_async<T, F: std::future::Future<Output = Option<T>>>(mut f: impl FnMut() -> F) -> T {
    for _ in 0..400 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out");
}
