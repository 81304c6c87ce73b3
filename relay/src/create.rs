//! CREATE2 on an inbound link: admission, the ntor handshake, and the start of the circuit.
//!
//! A CREATE2 is refused with a DESTROY whose reason says why: PROTOCOL for a malformed cell,
//! a circuit id in use or a handshake for another relay or onion key; HIBERNATING while the
//! accounting limit is reached or the relay is shutting down; RESOURCELIMIT when the peer's
//! address holds too many circuits or too many handshakes are pending ([`crate::limits`]).
//! Admitted handshakes run on their own tasks, at most `max_pending_creates` at a time, so a
//! burst of CREATE2s neither stalls the link reader nor queues without bound. The handshake
//! accepts the current onion key or, during its grace period, the previous one
//! ([`crate::onion_keys`]).

use crate::circuit::{self, Inbox, LinkEnd, Side};
use crate::limits::AddressSlot;
use crate::links::Link;
use crate::relay::Relay;
use crate::stats::RelayStats;
use onionlab_proto::cell::{Cell, Create2, Created2, DestroyReason, HTYPE_ONIONLAB_NTOR};
use onionlab_proto::codec::Reader;
use onionlab_proto::layer::{HopKeys, RelayHop};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// Handles a CREATE2 that `peer` sent on `link`.
pub async fn on_create2(cell: Cell, link: &Link, relay: &Arc<Relay>, peer: IpAddr) {
    let circ_id = cell.circ_id;
    let create = Create2::read(&mut Reader::new(&cell.payload))
        .ok()
        .filter(|c| c.htype == HTYPE_ONIONLAB_NTOR && circ_id != 0 && !link.circuits.contains(circ_id));
    let admitted = match create {
        None => {
            RelayStats::bump(&relay.stats.handshake_failures);
            Err(DestroyReason::Protocol)
        }
        Some(create) => admit(relay, peer).map(|(slot, permit)| (create, slot, permit)),
    };
    let (create, slot, permit) = match admitted {
        Ok(a) => a,
        Err(reason) => {
            let _ = link.sender.send(reason.to_cell(circ_id)).await;
            return;
        }
    };
    let inbox = Inbox::default();
    link.circuits.insert(circ_id, inbox.reference(Side::Prev));
    tokio::spawn(handshake(
        relay.clone(),
        LinkEnd {
            link: link.clone(),
            circ_id,
        },
        create.hdata,
        inbox,
        slot,
        permit,
    ));
}

/// Checks the relay's state and limits; on success the circuit holds an address slot and a
/// pending-handshake permit.
fn admit(relay: &Relay, peer: IpAddr) -> Result<(AddressSlot, OwnedSemaphorePermit), DestroyReason> {
    let stats = &relay.stats;
    if relay.refusing_new_work() {
        RelayStats::bump(&stats.creates_refused_hibernating);
        return Err(DestroyReason::Hibernating);
    }
    let max = relay.settings().config.max_circuits_per_client;
    let Some(slot) = relay.limits.claim_address(peer, max) else {
        RelayStats::bump(&stats.creates_refused_per_address);
        return Err(DestroyReason::ResourceLimit);
    };
    let Ok(permit) = relay.pending_creates.clone().try_acquire_owned() else {
        RelayStats::bump(&stats.creates_refused_busy);
        return Err(DestroyReason::ResourceLimit);
    };
    Ok((slot, permit))
}

async fn handshake(
    relay: Arc<Relay>,
    prev: LinkEnd,
    hdata: Vec<u8>,
    inbox: Inbox,
    slot: AddressSlot,
    permit: OwnedSemaphorePermit,
) {
    let answer = relay.onion_keys.respond(&relay.identity, &hdata);
    drop(permit);
    let created = answer.ok().and_then(|(reply, keys, previous_key)| {
        let cell = (Created2 { hdata: reply }).to_cell(prev.circ_id).ok()?;
        Some((cell, keys, previous_key))
    });
    let Some((created, keys, previous_key)) = created else {
        RelayStats::bump(&relay.stats.handshake_failures);
        prev.link
            .destroy(
                prev.circ_id,
                DestroyReason::Protocol,
                crate::circuit::DESTROY_SEND_TIMEOUT,
            )
            .await;
        return;
    };
    if prev.link.sender.send(created).await.is_err() {
        prev.link.circuits.remove(prev.circ_id);
        return;
    }
    RelayStats::bump(&relay.stats.circuits_created);
    if previous_key {
        RelayStats::bump(&relay.stats.handshakes_previous_key);
    }
    circuit::run(relay, prev, RelayHop::new(HopKeys::from_material(&keys)), inbox, slot).await;
}
