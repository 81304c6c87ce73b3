//! What a leaf does: sends queries to its ultrapeers and keeps the hits that come back,
//! answers the queries its ultrapeers pass it with QueryHits for matching files (name, size,
//! index, `urn:sha1`), answers Pings with its share counts, and builds the QRP table it sends
//! on every new ultrapeer connection. It never routes: a leaf is the last hop. No sockets here.

use std::net::SocketAddr;
use std::time::Instant;

use onionlab_crawler::gnutella::{Guid, HitResult, Message, Payload, Query, QueryHit};

use super::files::{Library, keywords, sha1_urn};
use super::node::{Counters, Node, NodeState, SearchHit};
use super::routing::{ConnId, Origin, Seen, reply_ttl};
use super::topology::Role;
use onionlab_crawler::gnutella::qrp::RouteTable;

/// Whether a connection goes on after a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// Keep reading.
    Continue,
    /// Close it (a Bye came, or bad input).
    Close,
}

/// The speed leaves advertise in QueryHits, kb/s.
const SPEED: u32 = 1000;

/// The QRP table of a library: every keyword of every name, and every `urn:sha1:`.
pub fn route_table(library: &Library, bits: u8) -> RouteTable {
    let mut words: Vec<String> = library.files.iter().flat_map(|f| keywords(&f.name)).collect();
    words.extend(library.files.iter().map(|f| sha1_urn(&f.sha1)));
    RouteTable::of_words(bits, words.iter().map(String::as_str))
}

/// A leaf's search: a new GUID recorded as ours, the Query sent to every ultrapeer.
pub(crate) fn search(
    node: &Node,
    state: &mut NodeState,
    criteria: &str,
    sha1: Option<[u8; 20]>,
    ttl: u8,
    now: Instant,
) -> (Guid, Vec<(ConnId, Message)>) {
    let guid = state.guid();
    state.queries.observe(guid, Origin::Local, u8::MAX, now);
    state.hits.open(guid, node.config.limits.queries_kept);
    let query = Message {
        guid,
        ttl,
        hops: 0,
        payload: Payload::Query(Query {
            min_speed: 0,
            criteria: criteria.replace('\0', " ").into_bytes(),
            extensions: sha1.map(|h| sha1_urn(&h).into_bytes()).unwrap_or_default(),
        }),
    };
    let sends = state
        .conns_with(Role::Ultrapeer)
        .into_iter()
        .map(|c| (c, query.clone()))
        .collect();
    (guid, sends)
}

/// The QueryHit a library gives a query, if anything matches.
pub(crate) fn answer(node: &Node, query: &Query, guid: Guid, hops: u8) -> Option<Message> {
    let SocketAddr::V4(addr) = node.info.addr else {
        return None;
    };
    let results: Vec<HitResult> = node
        .info
        .library
        .search(&query.criteria, query.sha1().as_ref())
        .into_iter()
        .map(|f| HitResult {
            file_index: f.index,
            file_size: f.size,
            name: f.name.clone().into_bytes(),
            extensions: sha1_urn(&f.sha1).into_bytes(),
        })
        .collect();
    (!results.is_empty()).then(|| Message {
        guid,
        ttl: reply_ttl(hops),
        hops: 0,
        payload: Payload::QueryHit(QueryHit {
            port: addr.port(),
            ip: *addr.ip(),
            speed: SPEED,
            results,
            trailer: Vec::new(),
            servent_id: node.info.guid,
        }),
    })
}

/// A leaf's handling of one descriptor from `from`.
pub(crate) fn on_message(
    node: &Node,
    state: &mut NodeState,
    from: ConnId,
    msg: Message,
    now: Instant,
) -> (Vec<(ConnId, Message)>, Handled) {
    let c = &node.counters;
    let mut out = Vec::new();
    match &msg.payload {
        Payload::Ping { .. } => {
            let fresh = state.pings.observe(msg.guid, Origin::Conn(from), msg.ttl, now) != Seen::Duplicate;
            if fresh {
                out.push((from, node.info.pong(msg.guid, msg.hops)));
                Counters::bump(&c.pongs_sent);
            }
        }
        Payload::Query(query) => {
            if state.queries.observe(msg.guid, Origin::Conn(from), msg.ttl, now) != Seen::New {
                Counters::bump(&c.queries_duplicate);
                return (out, Handled::Continue);
            }
            Counters::bump(&c.queries_seen);
            if let Some(hit) = answer(node, query, msg.guid, msg.hops) {
                Counters::bump(&c.hits_sent);
                if let Payload::QueryHit(h) = &hit.payload {
                    c.results_sent
                        .fetch_add(h.results.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                out.push((from, hit));
            }
        }
        Payload::QueryHit(hit) => {
            let ours = state.queries.origin(&msg.guid, now) == Some(Origin::Local);
            if ours {
                let responder = SocketAddr::from((hit.ip, hit.port));
                let servent_id = hex::encode(hit.servent_id.0);
                let hits = hit.results.iter().map(|r| SearchHit {
                    responder,
                    servent_id: servent_id.clone(),
                    file_index: r.file_index,
                    file_size: r.file_size,
                    name: String::from_utf8_lossy(&r.name).into_owned(),
                    sha1: r.sha1(),
                    hops: msg.hops,
                });
                let max = node.config.limits.hits_per_query;
                if state.hits.add(&msg.guid, hits, max) {
                    Counters::bump(&c.hits_received);
                }
            }
        }
        Payload::Bye(_) => return (out, Handled::Close),
        // Pongs answer our keepalives; leaves route nothing else.
        _ => {}
    }
    (out, Handled::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnutella::config::OverlayConfig;
    use crate::gnutella::topology::{Behaviour, Plan};
    use std::sync::Arc;

    fn leaf(behaviour: Behaviour) -> (Arc<Plan>, Node) {
        let config = OverlayConfig {
            ultrapeers: 3,
            leaves: 10,
            free_riders: 1,
            poisoners: crate::gnutella::config::PoisonConfig {
                count: 1,
                ..Default::default()
            },
            ..OverlayConfig::default()
        };
        let plan = Arc::new(Plan::new(&config).unwrap());
        let planned = plan
            .nodes
            .iter()
            .find(|n| n.role == Role::Leaf && n.behaviour == behaviour)
            .unwrap();
        let node = Node::new(planned, Vec::new(), Arc::new(config));
        (plan, node)
    }

    fn query(criteria: &str) -> Query {
        Query {
            min_speed: 0,
            criteria: criteria.as_bytes().to_vec(),
            extensions: Vec::new(),
        }
    }

    #[test]
    fn honest_leaves_answer_with_urns_and_free_riders_stay_silent() {
        let (_, honest) = leaf(Behaviour::Honest);
        let file = honest.info.library.files[0].clone();
        let hit = answer(&honest, &query(&file.name), Guid([1; 16]), 2).unwrap();
        assert_eq!((hit.ttl, hit.hops, hit.guid), (3, 0, Guid([1; 16])));
        let Payload::QueryHit(h) = hit.payload else { panic!() };
        assert_eq!(h.servent_id, honest.info.guid);
        assert!(
            h.results
                .iter()
                .any(|r| r.name == file.name.as_bytes() && r.sha1() == Some(file.sha1))
        );
        let by_urn = Query {
            extensions: sha1_urn(&file.sha1).into_bytes(),
            ..query("")
        };
        assert!(answer(&honest, &by_urn, Guid([2; 16]), 0).is_some());
        assert!(route_table(&honest.info.library, 16).matches(&keywords(&file.name), None));

        let (_, free) = leaf(Behaviour::FreeRider);
        assert!(answer(&free, &query(&file.name), Guid([3; 16]), 0).is_none());
        assert_eq!(route_table(&free.info.library, 16).present(), 0);
    }

    #[test]
    fn poisoners_claim_the_popular_titles() {
        let (plan, poisoner) = leaf(Behaviour::Poisoner);
        let top = &plan.catalogue.files()[0];
        let hit = answer(&poisoner, &query(&top.name), Guid([4; 16]), 0).unwrap();
        let Payload::QueryHit(h) = hit.payload else { panic!() };
        assert_eq!(h.results[0].sha1(), Some(top.sha1));
        assert_eq!(h.results[0].file_size, top.size);
    }
}
