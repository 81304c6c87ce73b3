//! What an ultrapeer decides: whom it admits (ultrapeers and leaves up to their caps, a
//! crawler always, 503 with `X-Try-Ultrapeers` otherwise), what it tells a crawler (`Peers:`
//! its ultrapeer neighbours, `Leaves:` its leaves), and what it does with each descriptor
//! (floods per [`super::routing`], QRP tables from its leaves, replies on reverse paths). Also
//! the admission rule of a leaf, which admits crawlers only. It owns no socket: it turns one
//! received descriptor into descriptors to queue.

use std::time::Instant;

use onionlab_crawler::gnutella::{CrawlerReply, Handshake, Headers, Message, Payload, format_peer_list};

use super::files::{keywords, sha1_urn};
use super::leaf::Handled;
use super::node::{Counters, Node, NodeState};
use super::routing::{ConnId, Origin, Seen, flood_query, forward_reply};
use super::topology::Role;
use onionlab_crawler::gnutella::qrp::QRP_KIND;

/// What to do with an incoming handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// `Crawler:` was sent: answer with the neighbour lists, then close.
    Crawler,
    /// Accept a peer with this role.
    Accept(Role),
    /// Refuse with 503 and this reason.
    Refuse(&'static str),
}

/// The admission rule for a connect block with `headers`, at a node of role `me` that has
/// `ultrapeers` and `leaves` connections, and `already` one from the same listen address.
pub fn admit(
    me: Role,
    headers: &Headers,
    ultrapeers: usize,
    leaves: usize,
    already: bool,
    max_ultrapeers: usize,
    max_leaves: usize,
) -> Admission {
    if headers.crawler().is_some() {
        return Admission::Crawler;
    }
    if me == Role::Leaf {
        return Admission::Refuse("Shielded leaf node");
    }
    if already {
        return Admission::Refuse("Already connected");
    }
    match headers.ultrapeer() {
        Some(false) if leaves < max_leaves => Admission::Accept(Role::Leaf),
        Some(false) => Admission::Refuse("Too many leaves"),
        _ if ultrapeers < max_ultrapeers => Admission::Accept(Role::Ultrapeer),
        _ => Admission::Refuse("Too many ultrapeers"),
    }
}

/// The crawler's answer: `Peers:` the ultrapeer neighbours and, from an ultrapeer, `Leaves:`.
pub(crate) fn crawler_reply(node: &Node, state: &NodeState) -> Handshake {
    Handshake::crawler_reply(&CrawlerReply {
        user_agent: node.config.user_agent.clone(),
        ultrapeer: node.info.role == Role::Ultrapeer,
        peers: state.peers_with(Role::Ultrapeer),
        leaves: state.peers_with(Role::Leaf),
    })
}

/// A 503 refusal with the ultrapeers to try instead.
pub(crate) fn refusal(node: &Node, state: &NodeState, reason: &str) -> Handshake {
    let mut h = Handshake::response(503, reason);
    h.headers.set("User-Agent", &node.config.user_agent);
    h.headers.set(
        "X-Ultrapeer",
        if node.info.role == Role::Ultrapeer {
            "True"
        } else {
            "False"
        },
    );
    let peers = state.peers_with(Role::Ultrapeer);
    if !peers.is_empty() {
        h.headers.set("X-Try-Ultrapeers", &format_peer_list(&peers));
    }
    h
}

/// An ultrapeer's handling of one descriptor from `from`.
pub(crate) fn on_message(
    node: &Node,
    state: &mut NodeState,
    from: ConnId,
    msg: Message,
    now: Instant,
) -> (Vec<(ConnId, Message)>, Handled) {
    let c = &node.counters;
    let mut out = Vec::new();
    match msg.payload {
        Payload::Ping { .. } => {
            let seen = state.pings.observe(msg.guid, Origin::Conn(from), msg.ttl, now);
            if seen == Seen::Duplicate {
                return (out, Handled::Continue);
            }
            out.push((from, node.info.pong(msg.guid, msg.hops)));
            Counters::bump(&c.pongs_sent);
            if seen == Seen::New && msg.ttl > 1 {
                let copy = Message {
                    ttl: msg.ttl - 1,
                    hops: msg.hops.saturating_add(1),
                    ..msg
                };
                for to in state.conns_with(Role::Ultrapeer).into_iter().filter(|&to| to != from) {
                    out.push((to, copy.clone()));
                }
            }
        }
        Payload::Pong(_) => {
            if let (Some(Origin::Conn(to)), Some((ttl, hops))) =
                (state.pings.origin(&msg.guid, now), forward_reply(msg.ttl, msg.hops))
            {
                out.push((to, Message { ttl, hops, ..msg }));
            }
        }
        Payload::Query(ref query) => {
            let seen = state.queries.observe(msg.guid, Origin::Conn(from), msg.ttl, now);
            match seen {
                Seen::Duplicate => Counters::bump(&c.queries_duplicate),
                Seen::New => Counters::bump(&c.queries_seen),
                Seen::HigherTtl => {}
            }
            if !node.info.forwards_queries || seen == Seen::Duplicate {
                return (out, Handled::Continue);
            }
            let words = keywords(&String::from_utf8_lossy(&query.criteria));
            let urn = query.sha1().map(|h| sha1_urn(&h));
            let leaves: Vec<(ConnId, bool)> = state
                .conns
                .iter()
                .filter(|(_, p)| p.role == Role::Leaf)
                .map(|(id, p)| (*id, p.qrp.table().is_some_and(|t| t.matches(&words, urn.as_deref()))))
                .collect();
            let flood = flood_query(
                seen,
                Origin::Conn(from),
                msg.ttl,
                msg.hops,
                &state.conns_with(Role::Ultrapeer),
                &leaves,
            );
            let up_copy = Message {
                ttl: flood.ttl,
                hops: flood.hops,
                ..msg.clone()
            };
            let leaf_copy = Message {
                ttl: 1,
                hops: flood.hops,
                ..msg
            };
            for to in flood.ultrapeers {
                out.push((to, up_copy.clone()));
            }
            for to in flood.leaves {
                out.push((to, leaf_copy.clone()));
            }
            c.queries_forwarded
                .fetch_add(out.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Payload::QueryHit(_) => {
            if let (Some(Origin::Conn(to)), Some((ttl, hops))) =
                (state.queries.origin(&msg.guid, now), forward_reply(msg.ttl, msg.hops))
            {
                Counters::bump(&c.hits_routed);
                out.push((to, Message { ttl, hops, ..msg }));
            }
        }
        Payload::Bye(_) => return (out, Handled::Close),
        Payload::Unknown {
            kind: QRP_KIND,
            ref payload,
        } => {
            if let Some(peer) = state.conns.get_mut(&from).filter(|p| p.role == Role::Leaf)
                && let Err(e) = peer.qrp.apply(payload)
            {
                tracing::debug!(node = node.info.index, "dropping a leaf over its QRP table: {e}");
                Counters::bump(&c.bad_input);
                return (out, Handled::Close);
            }
        }
        // Push (every node here is reachable), vendor messages: nothing to do.
        _ => {}
    }
    (out, Handled::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.set(n, v);
        }
        h
    }

    #[test]
    fn admission_follows_roles_and_caps() {
        let leaf = headers(&[("X-Ultrapeer", "False")]);
        let up = headers(&[("X-Ultrapeer", "True")]);
        let crawler = headers(&[("Crawler", "0.1")]);
        let up_admits = |h: &Headers, ups, leaves, already| admit(Role::Ultrapeer, h, ups, leaves, already, 2, 3);
        assert_eq!(up_admits(&crawler, 9, 9, true), Admission::Crawler);
        assert_eq!(up_admits(&leaf, 0, 2, false), Admission::Accept(Role::Leaf));
        assert_eq!(up_admits(&leaf, 0, 3, false), Admission::Refuse("Too many leaves"));
        assert_eq!(up_admits(&up, 1, 0, false), Admission::Accept(Role::Ultrapeer));
        assert_eq!(up_admits(&up, 2, 0, false), Admission::Refuse("Too many ultrapeers"));
        assert_eq!(up_admits(&up, 0, 0, true), Admission::Refuse("Already connected"));
        assert_eq!(
            admit(Role::Leaf, &up, 0, 0, false, 2, 3),
            Admission::Refuse("Shielded leaf node")
        );
        assert_eq!(admit(Role::Leaf, &crawler, 0, 0, false, 2, 3), Admission::Crawler);
    }
}
