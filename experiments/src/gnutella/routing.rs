//! Descriptor routing, as pure decisions: the bounded, expiring GUID tables that suppress
//! duplicates and remember reverse paths, and the rules for what a servent does with a Query,
//! a QueryHit, a Ping or a Pong (RFC draft 0.6 section 2.3, the Ultrapeers proposal). Time is
//! passed in; nothing here touches a socket or a clock.
//!
//! Rules (the receiver's view; `ttl`/`hops` are as received):
//! - A Query whose GUID is new is recorded with the connection it came from. An ultrapeer
//!   forwards it to its other ultrapeers with `ttl - 1`, `hops + 1` when `ttl - 1 >= 1`, and to
//!   those of its leaves (not the sender) whose QRP table matches, with TTL 1 whatever is left:
//!   a leaf is the query's last hop. A duplicate is dropped, except that a copy with a higher
//!   TTL than every earlier one takes over the reverse path and is flooded again among
//!   ultrapeers (gtk-gnutella's "duplicate with higher TTL" rule): so the ultrapeers a query
//!   reaches are exactly those within its TTL, however the copies race.
//! - A QueryHit goes back on the reverse path of its query's GUID, with `ttl - 1`, `hops + 1`
//!   when `ttl > 1`; one without a path, or out of TTL, is dropped.
//! - Pings and Pongs work the same way with their own table; a TTL-1 Ping is a keepalive
//!   answered with a Pong and never forwarded.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use onionlab_crawler::gnutella::Guid;

/// A connection, numbered by its node.
pub type ConnId = u64;

/// Where a descriptor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// This node sent it.
    Local,
    /// It arrived on this connection.
    Conn(ConnId),
}

/// What a GUID table made of a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A GUID not seen before (or forgotten): recorded.
    New,
    /// Seen before, but this copy has more TTL than any earlier one: its origin is now the
    /// reverse path.
    HigherTtl,
    /// Seen before with at least this TTL: drop.
    Duplicate,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    origin: Origin,
    best_ttl: u8,
    at: Instant,
}

/// A bounded table of GUIDs: at most `capacity` entries, each kept at most `ttl`; the oldest
/// go first.
#[derive(Debug, Clone)]
pub struct GuidTable {
    entries: HashMap<Guid, Entry>,
    order: VecDeque<(Guid, Instant)>,
    capacity: usize,
    ttl: Duration,
}

impl GuidTable {
    /// An empty table.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        GuidTable {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// Records a descriptor that arrived from `origin` with `ttl`.
    pub fn observe(&mut self, guid: Guid, origin: Origin, ttl: u8, now: Instant) -> Seen {
        self.expire(now);
        if let Some(e) = self.entries.get_mut(&guid) {
            if ttl > e.best_ttl {
                e.best_ttl = ttl;
                e.origin = origin;
                return Seen::HigherTtl;
            }
            return Seen::Duplicate;
        }
        while self.entries.len() >= self.capacity {
            let Some((old, _)) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&old);
        }
        self.entries.insert(
            guid,
            Entry {
                origin,
                best_ttl: ttl,
                at: now,
            },
        );
        self.order.push_back((guid, now));
        Seen::New
    }

    /// The reverse path of `guid`, if still known.
    pub fn origin(&mut self, guid: &Guid, now: Instant) -> Option<Origin> {
        self.expire(now);
        self.entries.get(guid).map(|e| e.origin)
    }

    /// Forgets every path through `conn` (it closed).
    pub fn forget_conn(&mut self, conn: ConnId) {
        self.entries.retain(|_, e| e.origin != Origin::Conn(conn));
        let entries = &self.entries;
        self.order.retain(|(g, at)| entries.get(g).is_some_and(|e| e.at == *at));
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(guid, at)) = self.order.front() {
            if now.saturating_duration_since(at) < self.ttl {
                break;
            }
            self.order.pop_front();
            self.entries.remove(&guid);
        }
    }
}

/// Where an ultrapeer sends a Query it received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryFlood {
    /// Whether this GUID is new here (count it, answer it).
    pub new: bool,
    /// Ultrapeer connections to forward to, with `ttl`/`hops` below.
    pub ultrapeers: Vec<ConnId>,
    /// TTL and hops of the copies to ultrapeers.
    pub ttl: u8,
    /// Hops of every copy.
    pub hops: u8,
    /// Leaf connections to forward to (with TTL 1).
    pub leaves: Vec<ConnId>,
}

/// The flooding rule of the module doc for a Query that `seen` says about, arriving from
/// `from` with `ttl`/`hops`, at an ultrapeer with these ultrapeer connections and these leaf
/// connections (each with whether its QRP table matches the query).
pub fn flood_query(
    seen: Seen,
    from: Origin,
    ttl: u8,
    hops: u8,
    ultrapeers: &[ConnId],
    leaves: &[(ConnId, bool)],
) -> QueryFlood {
    if seen == Seen::Duplicate {
        return QueryFlood::default();
    }
    let not_from = |c: &ConnId| Origin::Conn(*c) != from;
    let forward_ttl = ttl.saturating_sub(1);
    QueryFlood {
        new: seen == Seen::New,
        ultrapeers: if forward_ttl >= 1 {
            ultrapeers.iter().copied().filter(not_from).collect()
        } else {
            Vec::new()
        },
        ttl: forward_ttl,
        hops: hops.saturating_add(1),
        leaves: if seen == Seen::New {
            leaves
                .iter()
                .filter(|(c, hit)| *hit && not_from(c))
                .map(|(c, _)| *c)
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// The TTL and hops a reply (QueryHit, Pong) is forwarded with, or `None` when it is out of TTL.
pub fn forward_reply(ttl: u8, hops: u8) -> Option<(u8, u8)> {
    (ttl > 1).then(|| (ttl - 1, hops.saturating_add(1)))
}

/// The TTL a node gives a reply to a request that arrived with `hops`: just enough to walk the
/// reverse path back (each of the `hops` forwarders spends one).
pub fn reply_ttl(request_hops: u8) -> u8 {
    request_hops.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(n: u8) -> Guid {
        Guid([n; 16])
    }

    #[test]
    fn guid_table_suppresses_duplicates_prefers_higher_ttl_and_stays_bounded() {
        let t0 = Instant::now();
        let mut t = GuidTable::new(3, Duration::from_secs(10));
        assert_eq!(t.observe(g(1), Origin::Conn(1), 3, t0), Seen::New);
        assert_eq!(t.observe(g(1), Origin::Conn(2), 3, t0), Seen::Duplicate);
        assert_eq!(t.observe(g(1), Origin::Conn(2), 2, t0), Seen::Duplicate);
        assert_eq!(t.observe(g(1), Origin::Conn(3), 5, t0), Seen::HigherTtl);
        assert_eq!(t.origin(&g(1), t0), Some(Origin::Conn(3)));
        for n in 2..=4 {
            t.observe(g(n), Origin::Local, 1, t0);
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.origin(&g(1), t0), None, "the oldest went first");
        t.forget_conn(7);
        assert_eq!(t.len(), 3);
        assert_eq!(t.origin(&g(4), t0 + Duration::from_secs(11)), None, "expired");
        assert!(t.is_empty());
        t.observe(g(5), Origin::Conn(7), 1, t0);
        t.observe(g(6), Origin::Conn(8), 1, t0);
        t.forget_conn(7);
        assert_eq!(
            (t.origin(&g(5), t0), t.origin(&g(6), t0)),
            (None, Some(Origin::Conn(8)))
        );
    }

    #[test]
    fn floods_follow_ttl_and_qrp_and_skip_the_sender() {
        let ups = [1, 2, 3];
        let leaves = [(10, true), (11, false), (12, true)];
        let f = flood_query(Seen::New, Origin::Conn(2), 3, 0, &ups, &leaves);
        assert_eq!(
            (f.new, f.ultrapeers, f.ttl, f.hops, f.leaves),
            (true, vec![1, 3], 2, 1, vec![10, 12])
        );
        let last = flood_query(Seen::New, Origin::Conn(12), 1, 4, &ups, &leaves);
        assert!(last.ultrapeers.is_empty());
        assert_eq!(last.leaves, vec![10], "leaves are the last hop, and not the sender");
        let better = flood_query(Seen::HigherTtl, Origin::Conn(1), 4, 0, &ups, &leaves);
        assert_eq!(
            (better.new, better.ultrapeers, better.leaves),
            (false, vec![2, 3], vec![])
        );
        assert_eq!(
            flood_query(Seen::Duplicate, Origin::Local, 7, 0, &ups, &leaves),
            QueryFlood::default()
        );
    }

    #[test]
    fn replies_have_just_enough_ttl_for_the_reverse_path() {
        // The asker's query reached the responder after 3 forwarders: hops 3 on arrival.
        let mut ttl = reply_ttl(3);
        let mut hops = 0;
        let mut forwards = 0;
        while let Some((t, h)) = forward_reply(ttl, hops) {
            (ttl, hops) = (t, h);
            forwards += 1;
        }
        assert_eq!(forwards, 3);
        assert_eq!(forward_reply(0, 0), None);
    }
}
