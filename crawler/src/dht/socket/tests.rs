//! The socket driver against in-test UDP responders that misbehave on purpose.

use std::net::{IpAddr, Ipv4Addr};

use tokio::sync::mpsc;

use super::*;
use crate::dht::space::{SplitMix64, bep42_id};
use crate::engine::{EngineConfig, Recorder};
use crate::observe::Observation;

const RESPONDER_ID: NodeId = NodeId([0x42; 20]);

/// A UDP responder: `answer` turns each received query into the datagrams sent back.
async fn responder<F>(answer: F) -> SocketAddr
where
    F: Fn(&Message) -> Vec<Vec<u8>> + Send + 'static,
{
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let Ok(query) = krpc::decode(&buf[..n]) else { continue };
            for datagram in answer(&query.message) {
                udp.send_to(&datagram, from).await.unwrap();
            }
        }
    });
    addr
}

fn response(query: &Message, id: NodeId) -> Message {
    Message {
        transaction_id: query.transaction_id.clone(),
        version: Some(b"TT\x00\x01".to_vec()),
        ip: None,
        read_only: false,
        body: Body::Response(Response::new(id)),
    }
}

fn ok(query: &Message) -> Vec<u8> {
    response(query, RESPONDER_ID).encode()
}

fn config(timeout_ms: u64) -> SocketConfig {
    SocketConfig {
        bind: vec!["127.0.0.1:0".parse().unwrap()],
        timeout: Duration::from_millis(timeout_ms),
        ..SocketConfig::default()
    }
}

async fn socket(timeout_ms: u64) -> KrpcSocket {
    KrpcSocket::bind(config(timeout_ms)).await.unwrap()
}

#[tokio::test]
async fn queries_carry_ro_and_v_and_replies_match() {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let to = responder(move |q| {
        seen_tx.send(q.clone()).unwrap();
        vec![ok(q)]
    })
    .await;
    let s = socket(2000).await;
    let reply = s.find_node(to, NodeId([7; 20])).await.unwrap();
    assert_eq!(reply.from, to);
    assert_eq!(reply.response.id, RESPONDER_ID);
    assert_eq!(reply.version.as_deref(), Some(&b"TT\x00\x01"[..]));
    let q = seen_rx.recv().await.unwrap();
    assert!(q.read_only);
    assert_eq!(q.version.as_deref(), Some(DEFAULT_VERSION));
    assert_eq!(q.transaction_id.len(), 2);
    assert_eq!(
        q.body,
        Body::Query(Query::FindNode {
            id: s.node_id(),
            target: NodeId([7; 20])
        })
    );
    assert_eq!((s.stats().sent(), s.stats().responses()), (1, 1));
    assert_eq!(s.pending(), 0);
}

#[tokio::test]
async fn silence_times_out_and_leaves_nothing_pending() {
    let to = responder(|_| vec![]).await;
    let s = socket(100).await;
    let err = s.ping(to).await.unwrap_err();
    assert!(matches!(err, QueryError::Timeout(_)), "{err}");
    assert_eq!(s.pending(), 0);
    assert_eq!(ProbeError::from(err).outcome, Outcome::Timeout);
}

#[tokio::test]
async fn a_foreign_transaction_id_is_counted_not_delivered() {
    let to = responder(|q| {
        let mut wrong = response(q, NodeId([1; 20]));
        wrong.transaction_id = vec![q.transaction_id[0] ^ 0xff, q.transaction_id[1]];
        let mut long = response(q, NodeId([2; 20]));
        long.transaction_id = b"abcd".to_vec();
        vec![wrong.encode(), long.encode(), ok(q)]
    })
    .await;
    let s = socket(2000).await;
    let reply = s.ping(to).await.unwrap();
    assert_eq!(reply.response.id, RESPONDER_ID);
    // The two strays may still be in flight when the right reply is handled: all three are
    // handled in order by one task, so the wrong ones come first.
    assert_eq!(s.stats().unmatched(), 2);
}

#[tokio::test]
async fn garbage_and_oversized_datagrams_do_not_stop_the_receiver() {
    let to = responder(|q| {
        let mut huge = b"d1:t2:".to_vec();
        huge.extend_from_slice(&q.transaction_id);
        huge.extend_from_slice(b"1:v3000:");
        huge.extend(std::iter::repeat_n(b'x', 3000));
        huge.push(b'e');
        vec![b"\xff\x00not bencode".to_vec(), b"i42e".to_vec(), huge, ok(q)]
    })
    .await;
    let s = socket(2000).await;
    assert_eq!(s.ping(to).await.unwrap().response.id, RESPONDER_ID);
    assert_eq!(s.stats().malformed(), 2);
    assert_eq!(s.stats().oversized(), 1);
    // The socket keeps working.
    assert_eq!(s.ping(to).await.unwrap().response.id, RESPONDER_ID);
}

#[tokio::test]
async fn a_malformed_reply_with_our_transaction_id_fails_that_query() {
    let to = responder(|q| {
        let mut bad = b"d1:rd2:id3:abce1:t2:".to_vec();
        bad.extend_from_slice(&q.transaction_id);
        bad.extend_from_slice(b"1:y1:re");
        vec![bad]
    })
    .await;
    let s = socket(2000).await;
    let err = s.ping(to).await.unwrap_err();
    let QueryError::Malformed { raw, .. } = &err else {
        panic!("{err}")
    };
    assert!(raw.starts_with(b"d1:rd2:id3:abc"));
    assert_eq!(ProbeError::from(err).outcome, Outcome::ProtocolError);
}

#[tokio::test]
async fn krpc_errors_become_remote_errors_with_raw_bytes() {
    let to = responder(|q| {
        let e = Message {
            transaction_id: q.transaction_id.clone(),
            version: None,
            ip: None,
            read_only: false,
            body: Body::Error(krpc::RemoteError {
                code: 204,
                message: b"Method Unknown".to_vec(),
            }),
        };
        vec![e.encode()]
    })
    .await;
    let s = socket(2000).await;
    let (rec, mut rx) = Recorder::channel(16);
    let engine = Engine::new(EngineConfig::default(), rec);
    let err = s
        .probe(
            &engine,
            to,
            &Request::SampleInfohashes {
                target: NodeId([0; 20]),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.outcome, Outcome::RemoteError);
    assert!(err.message.contains("204"), "{}", err.message);
    let Some(Observation::Visit(v)) = rx.recv().await else {
        panic!()
    };
    assert_eq!(v.probe, ProbeKind::DhtSampleInfohashes);
    assert_eq!(v.outcome, Outcome::RemoteError);
    assert!(v.raw.unwrap().starts_with(b"d1:eli204e"));
    assert_eq!(s.stats().errors(), 1);
}

#[tokio::test]
async fn replies_from_another_address_are_not_accepted() {
    let s = socket(300).await;
    let local = s.local_addrs()[0];
    // The node queried stays silent; another address sends the right reply, right `t` included.
    let impostor = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = responder(move |q| {
        impostor.send_to(&ok(q), local).unwrap();
        vec![]
    })
    .await;
    let err = s.ping(to).await.unwrap_err();
    assert!(matches!(err, QueryError::Timeout(_)), "{err}");
    assert_eq!(s.stats().unmatched(), 1);
}

#[tokio::test]
async fn unreachable_ports_and_incoming_queries_leave_the_socket_working() {
    // Nothing listens there: on Linux the ICMP port unreachable may surface on a later receive.
    let closed = {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.local_addr().unwrap()
    };
    let to = responder(|q| vec![ok(q)]).await;
    let s = socket(200).await;
    for _ in 0..3 {
        assert!(s.ping(closed).await.is_err());
    }
    // Someone queries us: counted and ignored.
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let q = Message {
        transaction_id: b"zz".to_vec(),
        version: None,
        ip: None,
        read_only: false,
        body: Body::Query(Query::Ping { id: NodeId([3; 20]) }),
    };
    other.send_to(&q.encode(), s.local_addrs()[0]).await.unwrap();
    assert_eq!(s.ping(to).await.unwrap().response.id, RESPONDER_ID);
    assert_eq!(s.stats().queries_ignored(), 1);
}

#[tokio::test]
async fn the_engine_records_id_client_deviations_raw_and_bep42() {
    let mut rng = SplitMix64::new(3);
    let compliant = bep42_id(IpAddr::V4(Ipv4Addr::LOCALHOST), &mut rng);
    let to = responder(move |q| {
        // Keys out of order: a recorded deviation.
        let mut unsorted = b"d1:t2:".to_vec();
        unsorted.extend_from_slice(&q.transaction_id);
        unsorted.extend_from_slice(b"1:rd2:id20:");
        unsorted.extend_from_slice(&[0x42; 20]);
        unsorted.extend_from_slice(b"e1:y1:re");
        match &q.body {
            Body::Query(Query::Ping { .. }) => vec![unsorted],
            _ => vec![response(q, compliant).encode()],
        }
    })
    .await;
    let s = socket(2000).await;
    let (rec, mut rx) = Recorder::channel(16);
    let engine = Engine::new(EngineConfig::default(), rec);
    let reply = s.probe(&engine, to, &Request::Ping).await.unwrap();
    assert!(!reply.deviations.is_empty());
    let Some(Observation::Visit(v)) = rx.recv().await else {
        panic!()
    };
    assert_eq!(v.probe, ProbeKind::DhtPing);
    assert_eq!(v.outcome, Outcome::Ok);
    assert_eq!(v.remote_id, Some([0x42; 20]));
    assert_eq!(v.deviations, u32::try_from(reply.deviations.len()).unwrap());
    assert_eq!(v.raw.as_deref(), Some(reply.raw.as_slice()));
    assert_eq!(v.error.as_deref(), Some(BEP42_INVALID_EXEMPT));

    let ih = InfoHash([5; 20]);
    s.probe(&engine, to, &Request::GetPeers { info_hash: ih })
        .await
        .unwrap();
    let Some(Observation::Visit(v)) = rx.recv().await else {
        panic!()
    };
    assert_eq!(v.probe, ProbeKind::DhtGetPeers);
    assert_eq!(v.info_hash, Some(ih));
    assert_eq!(v.client.as_deref(), Some(&b"TT\x00\x01"[..]));
    assert_eq!(v.error, None, "a BEP 42 id has no note");
}

#[test]
fn bep42_notes() {
    let public = IpAddr::V4(Ipv4Addr::new(124, 31, 75, 21));
    let mut rng = SplitMix64::new(9);
    assert_eq!(bep42_note(public, &bep42_id(public, &mut rng)), None);
    assert_eq!(bep42_note(public, &NodeId([0; 20])), Some(BEP42_INVALID));
    let lo = IpAddr::V4(Ipv4Addr::new(127, 3, 2, 1));
    assert_eq!(bep42_note(lo, &bep42_id(lo, &mut rng)), None);
    assert_eq!(bep42_note(lo, &NodeId([0; 20])), Some(BEP42_INVALID_EXEMPT));
}

#[test]
fn requests_name_their_probe() {
    let ih = InfoHash([1; 20]);
    let announce = Request::AnnouncePeer {
        info_hash: ih,
        port: 6881,
        token: b"tok".to_vec(),
        implied_port: true,
    };
    assert_eq!(announce.probe_kind(), ProbeKind::DhtAnnounce);
    assert_eq!(announce.info_hash(), Some(ih));
    let Query::AnnouncePeer { implied_port, .. } = announce.to_query(NodeId([0; 20])) else {
        panic!()
    };
    assert_eq!(implied_port, Some(true));
    assert_eq!(Request::Ping.info_hash(), None);
}
