//! DoS limits against hostile clients built from raw cells: each limit refuses or destroys
//! only the offender's circuits, a well-behaved client from another address keeps working,
//! and the metrics count it without naming anyone.

mod support;

use onionlab_link::channel::{Channel, ChannelAcceptor};
use onionlab_proto::cell::{Cell, CellCommand, Create2, DestroyReason, HTYPE_ONIONLAB_NTOR};
use onionlab_proto::keys::{fresh_signing_key, fresh_x25519};
use onionlab_proto::ntor::{ClientHandshake, NtorParams};
use onionlab_proto::relay_msg::{Extend2, RelayMsg};
use onionlab_relay::RelayHandle;
use onionlab_relay::stats::RelayStats;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::net::TcpSocket;

/// The well-behaved client: another address, a circuit and a stream that echoes.
async fn good_client_works(relay: &RelayHandle) {
    let echo = echo_server().await;
    let mut client = RawClient::connect(relay, "127.0.0.2").await;
    let mut circ = client
        .create(0x8000_0001, &relay.relay.onion_public())
        .await
        .expect("the good client gets a circuit");
    assert!(matches!(client.begin(&mut circ, 1, echo).await, RelayMsg::Connected(_)));
    client.send_msg(&mut circ, 1, RelayMsg::Data(b"hello".to_vec())).await;
    assert_eq!(
        client.recv_msg(&mut circ).await.expect("circuit open").msg,
        RelayMsg::Data(b"hello".to_vec())
    );
}

fn metrics_name_nobody(relay: &RelayHandle) {
    let page = relay.relay.stats.render();
    assert!(!page.contains("127.0.0"), "no addresses in metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuits_per_client_address_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = exit_config(dir.path());
    config.max_circuits_per_client = 3;
    let relay = start(config).await;
    let onion = relay.relay.onion_public();
    let mut hostile = RawClient::connect(&relay, "127.0.0.1").await;
    let mut circuits = Vec::new();
    for i in 1..=3 {
        circuits.push(hostile.create(0x8000_0000 + i, &onion).await.expect("within the limit"));
    }
    assert_eq!(
        hostile.create(0x8000_0004, &onion).await.err(),
        Some(DestroyReason::ResourceLimit)
    );
    // A second link from the same address does not get around it.
    let mut again = RawClient::connect(&relay, "127.0.0.1").await;
    assert_eq!(
        again.create(0x8000_0001, &onion).await.err(),
        Some(DestroyReason::ResourceLimit)
    );
    assert_eq!(RelayStats::get(&relay.relay.stats.creates_refused_per_address), 2);

    good_client_works(&relay).await;

    // Closing a circuit gives its slot back.
    hostile.send(DestroyReason::Finished.to_cell(circuits[0].circ_id)).await;
    eventually("the slot is free", || {
        relay.relay.limits.circuits_from("127.0.0.1".parse().unwrap()) == 2
    })
    .await;
    hostile.create(0x8000_0005, &onion).await.expect("a freed slot");
    metrics_name_nobody(&relay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_creates_beyond_the_pending_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = exit_config(dir.path());
    config.max_pending_creates = 1;
    let relay = start(config).await;
    let onion = relay.relay.onion_public();
    let mut hostile = RawClient::connect(&relay, "127.0.0.1").await;
    // Prepared first, so that they leave in one burst.
    let burst = 300u32;
    let cells: Vec<Cell> = (0..burst)
        .map(|i| {
            let (_, msg) =
                ClientHandshake::start(NtorParams::ONIONLAB, &relay.identity(), &onion, fresh_x25519()).unwrap();
            Create2 {
                htype: HTYPE_ONIONLAB_NTOR,
                hdata: msg,
            }
            .to_cell(0x8000_0000 + i)
            .unwrap()
        })
        .collect();
    for cell in cells {
        hostile.send(cell).await;
    }
    let (mut created, mut refused) = (0, 0);
    for _ in 0..burst {
        let answer = hostile.next().await.expect("every CREATE2 is answered");
        match answer.command {
            CellCommand::Created2 => created += 1,
            CellCommand::Destroy => {
                assert_eq!(DestroyReason::from_u8(answer.payload[0]), DestroyReason::ResourceLimit);
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused > 0 && created > 0, "{created} created, {refused} refused");
    assert_eq!(RelayStats::get(&relay.relay.stats.creates_refused_busy), refused);
    good_client_works(&relay).await;
    metrics_name_nobody(&relay);
}

/// A relay that takes a link and then never reads from it, with a tiny receive buffer so
/// that what is sent to it piles up in the sender's queue rather than in the kernel.
async fn stalled_next_relay() -> (SocketAddr, [u8; 32], tokio::task::JoinHandle<Channel>) {
    let key = Arc::new(fresh_signing_key());
    let identity = key.verifying_key().to_bytes();
    let listener = (|| {
        let socket = TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 9], 0)))?;
        socket.listen(4)
    })()
    .expect("a listener with a small receive buffer");
    let addr = listener.local_addr().expect("address");
    let acceptor = ChannelAcceptor::new(onionlab_link::tls::server_config().expect("TLS"), key);
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("the relay connects");
        acceptor.accept(tcp).await.expect("link handshake")
    });
    (addr, identity, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_cells_over_the_ceiling_destroy_the_biggest_hoarder() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = exit_config(dir.path());
    config.max_queued_cells = 1500;
    let relay = start(config).await;
    let onion = relay.relay.onion_public();
    let mut hostile = RawClient::connect(&relay, "127.0.0.1").await;
    let mut idle = hostile.create(0x8000_0001, &onion).await.unwrap();
    let mut hoarder = hostile.create(0x8000_0002, &onion).await.unwrap();

    // Extend the hoarder to a relay that never reads, then push cells through it.
    let (next_addr, next_id, next) = stalled_next_relay().await;
    let extend = RelayMsg::Extend2(Extend2 {
        addr: next_addr,
        identity: next_id,
        create: Create2 {
            htype: HTYPE_ONIONLAB_NTOR,
            hdata: vec![1; 96],
        },
    });
    hostile.send_msg(&mut hoarder, 0, extend).await;
    let (mut next_reader, _next_sender) = next.await.unwrap().split();
    let create = next_reader.next().await.unwrap().expect("the relay extends");
    assert_eq!(create.command, CellCommand::Create2);
    // From here on nothing is read: the relay's queue towards the stalled relay fills, then the
    // hoarder's inbox. Paced so that the ceiling, not the inbox bound, is what stops it.
    let stats = &relay.relay.stats;
    let mut sent = 0;
    while RelayStats::get(&stats.circuits_killed_memory) == 0 {
        for _ in 0..200 {
            hostile
                .send(Cell::with_body(hoarder.circ_id, CellCommand::Relay, &[]).unwrap())
                .await;
        }
        sent += 200;
        assert!(sent < 100_000, "the ceiling never triggered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        hostile.recv_msg(&mut hoarder).await.err(),
        Some(DestroyReason::ResourceLimit)
    );
    assert_eq!(RelayStats::get(&stats.circuits_killed_memory), 1, "only the hoarder");
    assert_eq!(
        RelayStats::get(&stats.protocol_violations),
        0,
        "the ceiling acted first"
    );

    // The hostile client's other circuit and everyone else carry on.
    let echo = echo_server().await;
    assert!(matches!(
        hostile.begin(&mut idle, 1, echo).await,
        RelayMsg::Connected(_)
    ));
    good_client_works(&relay).await;
    eventually("queued cells back under the ceiling", || {
        RelayStats::get(&stats.queued_cells) <= 1500
    })
    .await;
    metrics_name_nobody(&relay);
}
