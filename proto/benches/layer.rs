//! Benchmarks of the per-cell and per-hop costs of the onion wire: one ntor handshake
//! (client start, relay respond, client finish with [`NtorParams::ONIONLAB`]), sealing a relay
//! body for the last hop of a 3-hop circuit, a relay peeling a cell that is not for it, and
//! encoding plus decoding a full DATA relay cell.
//!
//! Run with `cargo bench -p onionlab-proto --bench layer` (add `-- --quick` for a fast pass).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use onionlab_proto::cell::PAYLOAD_LEN;
use onionlab_proto::keys::{OnionPublicKey, OnionSecret, fresh_x25519};
use onionlab_proto::layer::{ClientLayers, HopKeys, Inbound, Payload, RelayHop};
use onionlab_proto::ntor::{ClientHandshake, KeyMaterial, NtorParams, server_respond};
use onionlab_proto::relay_msg::{MAX_DATA_LEN, RELAY_BODY_LEN, RelayCell, RelayMsg};
use std::hint::black_box;

/// One full handshake with relay `id`/`b`, returning the client's and the relay's key material.
fn handshake(
    id: &[u8; 32],
    b: &OnionSecret,
    b_pub: &OnionPublicKey,
    x: OnionSecret,
    y: OnionSecret,
) -> (KeyMaterial, KeyMaterial) {
    let (client, msg) = ClientHandshake::start(NtorParams::ONIONLAB, id, b_pub, x).expect("32-byte identity");
    let (reply, relay_keys) = server_respond(NtorParams::ONIONLAB, id, b, &msg, y).expect("message is for this relay");
    let client_keys = client.finish(&reply).expect("reply authenticates");
    (client_keys, relay_keys)
}

/// A client circuit of `n` hops and the matching relay hops, first hop first.
fn circuit(n: usize) -> (ClientLayers, Vec<RelayHop>) {
    let mut client = ClientLayers::new();
    let mut relays = Vec::with_capacity(n);
    for i in 0..n {
        let b = fresh_x25519();
        let b_pub = OnionPublicKey::from(&b);
        let (ck, rk) = handshake(&[i as u8; 32], &b, &b_pub, fresh_x25519(), fresh_x25519());
        client.push(HopKeys::from_material(&ck));
        relays.push(RelayHop::new(HopKeys::from_material(&rk)));
    }
    (client, relays)
}

fn bench_ntor(c: &mut Criterion) {
    let mut g = c.benchmark_group("ntor");
    g.throughput(Throughput::Elements(1));
    let id = [7u8; 32];
    let b = fresh_x25519();
    let b_pub = OnionPublicKey::from(&b);
    // Ephemeral keys come from the OS generator in setup, outside the timed part.
    g.bench_function("handshake_onionlab", |bench| {
        bench.iter_batched(
            || (fresh_x25519(), fresh_x25519()),
            |(x, y)| {
                let (ck, rk) = handshake(&id, &b, &b_pub, x, y);
                // Expanding the hop keys is part of what a real handshake does next.
                (HopKeys::from_material(&ck), HopKeys::from_material(&rk))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_layers(c: &mut Criterion) {
    let mut g = c.benchmark_group("layer");

    g.throughput(Throughput::Bytes(RELAY_BODY_LEN as u64));
    let (mut client, _relays) = circuit(3);
    let body = [0x42u8; RELAY_BODY_LEN];
    g.bench_function("client_seal_for_hop2_of_3", |bench| {
        bench.iter(|| client.seal_for(black_box(2), black_box(&body)).expect("hop 2 exists"))
    });

    g.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));
    let (_client, mut relays) = circuit(1);
    let hop = &mut relays[0];
    // Any payload not sealed for this hop fails the trial open (2^-128 chance otherwise),
    // which is exactly the cost a guard or middle pays for a cell it passes on.
    let mut payload: Payload = [0x5au8; PAYLOAD_LEN];
    assert!(matches!(hop.inbound(&mut payload), Inbound::PassOn));
    g.bench_function("relay_inbound_pass_on", |bench| {
        bench.iter(|| matches!(hop.inbound(black_box(&mut payload)), Inbound::PassOn))
    });
    g.finish();
}

fn bench_relay_msg(c: &mut Criterion) {
    let mut g = c.benchmark_group("relay_msg");
    g.throughput(Throughput::Bytes(MAX_DATA_LEN as u64));
    let cell = RelayCell::new(1, RelayMsg::Data(vec![0xab; MAX_DATA_LEN]));
    assert_eq!(RelayCell::decode(&cell.encode().expect("fits")).expect("decodes"), cell);
    g.bench_function("data_full_encode_decode", |bench| {
        bench.iter(|| {
            let body = black_box(&cell).encode().expect("a full DATA cell fits");
            RelayCell::decode(black_box(&body)).expect("decodes")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_ntor, bench_layers, bench_relay_msg);
criterion_main!(benches);
