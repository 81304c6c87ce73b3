//! Writes small, valid seed inputs for every fuzz target into `seeds/<target>/`, so that the
//! fuzzer starts from real encodings instead of discovering the formats byte by byte.
//!
//! Run from `proto/fuzz` with `cargo run --example gen_seeds` (stable is enough). Keys are
//! fresh each run, so re-running rewrites the descriptor and consensus seeds with new bytes.

use onionlab_proto::cell::{CellCommand, Create2, Created2, DestroyReason, HTYPE_ONIONLAB_NTOR, Cell};
use onionlab_proto::consensus::{Consensus, ConsensusRelay, Flags, SignedConsensus};
use onionlab_proto::descriptor::{RelayDescriptor, RelayInfo};
use onionlab_proto::exit_policy::ExitPolicy;
use onionlab_proto::keys::{OnionPublicKey, SigningKey, fresh_signing_key, fresh_x25519, link_auth_cell};
use onionlab_proto::relay_msg::{
    EndReason, Extend2, RelayCell, RelayMsg, ResolvedAnswer, Target, TargetHost, MAX_DATA_LEN,
};
use std::error::Error;
use std::fs;
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) -> Result<(), Box<dyn Error>> {
    let dir = Path::new("seeds").join(target);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn descriptor(key: &SigningKey, port: u16, policy: ExitPolicy) -> RelayDescriptor {
    RelayDescriptor {
        info: RelayInfo {
            nickname: format!("seed{port}"),
            identity: key.verifying_key().to_bytes(),
            onion_key: OnionPublicKey::from(&fresh_x25519()).to_bytes(),
            or_addr: format!("127.0.1.1:{port}").parse().expect("literal address"),
            bandwidth: 1_000_000,
            exit_policy: policy,
            family: vec![[9u8; 32]],
        },
        published: 1_700_000_000,
        contact: "ops@example.org".into(),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    // cell: one of each command.
    let create = Create2 { htype: HTYPE_ONIONLAB_NTOR, hdata: vec![0x11; 96] };
    write("cell", "create2", &create.to_cell(0x8000_0001)?.encode())?;
    write("cell", "created2", &Created2 { hdata: vec![0x22; 64] }.to_cell(0x8000_0001)?.encode())?;
    write("cell", "destroy", &DestroyReason::Finished.to_cell(7).encode())?;
    write("cell", "relay", &Cell::with_body(7, CellCommand::Relay, &[0x33; 509])?.encode())?;
    write("cell", "padding", &Cell::with_body(0, CellCommand::Padding, &[])?.encode())?;
    write("cell", "link_auth", &link_auth_cell(&fresh_signing_key(), &[0x44; 32]).encode())?;

    // relay_msg: one body per message type.
    let id = fresh_signing_key().verifying_key().to_bytes();
    let msgs: Vec<(&str, RelayCell)> = vec![
        ("begin_name", RelayCell::new(1, RelayMsg::Begin { target: Target { host: TargetHost::parse("example.org")?, port: 443 }, flags: 0 })),
        ("begin_v6", RelayCell::new(2, RelayMsg::Begin { target: Target { host: TargetHost::parse("[2001:db8::1]")?, port: 80 }, flags: 1 })),
        ("data", RelayCell::new(1, RelayMsg::Data(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n".to_vec()))),
        ("data_full", RelayCell::new(1, RelayMsg::Data(vec![0x55; MAX_DATA_LEN]))),
        ("end", RelayCell::new(1, RelayMsg::End(EndReason::Done))),
        ("connected_v4", RelayCell::new(1, RelayMsg::Connected(Some(("93.184.216.34".parse()?, 300))))),
        ("connected_v6", RelayCell::new(1, RelayMsg::Connected(Some(("2001:db8::2".parse()?, 300))))),
        ("sendme", RelayCell::new(0, RelayMsg::Sendme)),
        ("extend2", RelayCell::new(0, RelayMsg::Extend2(Extend2 { addr: "127.0.1.2:9002".parse()?, identity: id, create: create.clone() }))),
        ("extend2_v6", RelayCell::new(0, RelayMsg::Extend2(Extend2 { addr: "[::1]:9003".parse()?, identity: id, create }))),
        ("extended2", RelayCell::new(0, RelayMsg::Extended2(Created2 { hdata: vec![0x66; 64] }))),
        ("truncate", RelayCell::new(0, RelayMsg::Truncate)),
        ("truncated", RelayCell::new(0, RelayMsg::Truncated(8))),
        ("drop", RelayCell::new(0, RelayMsg::Drop)),
        ("resolve", RelayCell::new(3, RelayMsg::Resolve("example.org".into()))),
        ("resolved", RelayCell::new(3, RelayMsg::Resolved(vec![
            ResolvedAnswer::Addr("93.184.216.34".parse()?, 60),
            ResolvedAnswer::Addr("2001:db8::3".parse()?, 60),
            ResolvedAnswer::Hostname("example.org".into(), 60),
            ResolvedAnswer::TransientError,
            ResolvedAnswer::NonTransientError,
        ]))),
    ];
    for (name, cell) in msgs {
        write("relay_msg", name, &cell.encode()?)?;
    }

    // descriptor: an exit and a non-exit.
    let testbed = ExitPolicy::parse_lines(["accept 127.0.0.0/8:*", "reject private:*", "reject *:25", "accept [::]/0:80-443", "accept *:*"])?;
    let k1 = fresh_signing_key();
    write("descriptor", "exit", &descriptor(&k1, 9001, testbed.clone()).sign(&k1)?.raw)?;
    let k2 = fresh_signing_key();
    write("descriptor", "middle", &descriptor(&k2, 9002, ExitPolicy::reject_all()).sign(&k2)?.raw)?;

    // consensus: three relays, two authority signatures; and an empty unsigned one.
    let relays = [(9001, testbed), (9002, ExitPolicy::reject_all()), (9003, ExitPolicy::default_exit())]
        .into_iter()
        .map(|(port, policy)| {
            let k = fresh_signing_key();
            let mut flags = Flags::RUNNING;
            flags.insert(Flags::VALID);
            ConsensusRelay { info: descriptor(&k, port, policy).info, flags }
        })
        .collect();
    let mut sc = SignedConsensus::new(Consensus { valid_after: 1000, fresh_until: 2000, valid_until: 4000, relays });
    sc.add_signature(&fresh_signing_key());
    sc.add_signature(&fresh_signing_key());
    write("consensus", "three_relays", &sc.encode())?;
    let empty = SignedConsensus::new(Consensus { valid_after: 0, fresh_until: 0, valid_until: 0, relays: Vec::new() });
    write("consensus", "empty", &empty.encode())?;

    // exit_policy: the syntax's corners.
    for (i, rule) in [
        "accept *:*",
        "reject private:*",
        "accept 127.0.0.0/8:*",
        "reject *:25",
        "accept 93.184.216.34:80-443",
        "accept [::1]/128:80",
        "reject [2001:db8::]/32:1-1024",
        "accept [::ffff:10.0.0.1]:22",
    ]
    .iter()
    .enumerate()
    {
        write("exit_policy", &format!("rule{i}"), rule.as_bytes())?;
    }
    Ok(())
}
