//! Denial-of-service limits that keep one client from taking the relay from everybody else.
//!
//! - **Circuits per address**: a CREATE2 from a link peer whose address already holds
//!   `max_circuits_per_client` circuits is refused with DESTROY(RESOURCELIMIT). The count is
//!   held by an [`AddressSlot`] that the circuit owns and gives back when it ends.
//! - **Pending handshakes**: at most `max_pending_creates` CREATE2s wait for or run the ntor
//!   computation (see [`crate::create`]); more are refused the same way.
//! - **Queued cells**: every [`SWEEP_INTERVAL`] the cells waiting in circuit inboxes and link
//!   send queues are added up; above `max_queued_cells`, the circuits with the most queued
//!   cells are destroyed until the total is back under the ceiling (Tor's out-of-memory
//!   handler). A circuit's score adds the queue of the link towards its client, so circuits
//!   feeding a peer that stopped reading go first; only circuits with cells of their own
//!   queued are chosen, since destroying them is what frees memory.
//!
//! Only counts are kept: addresses stay in this table, never in logs or metrics.

use crate::circuit::CircEvent;
use crate::relay::Relay;
use crate::stats::RelayStats;
use onionlab_link::channel::ChannelSender;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// How often queued cells are added up.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Entries that remove themselves when their [`Registered`] guard drops.
struct Registry<T> {
    entries: Mutex<HashMap<u64, T>>,
    next: AtomicU64,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            entries: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }
}

/// Keeps an entry registered while held.
pub struct Registered<T> {
    registry: Arc<Registry<T>>,
    id: u64,
}

impl<T> Drop for Registered<T> {
    fn drop(&mut self) {
        lock(&self.registry.entries).remove(&self.id);
    }
}

fn register<T>(registry: &Arc<Registry<T>>, value: T) -> Registered<T> {
    let id = registry.next.fetch_add(1, Ordering::Relaxed);
    lock(&registry.entries).insert(id, value);
    Registered {
        registry: registry.clone(),
        id,
    }
}

/// What the sweep needs of a live circuit.
pub struct TrackedCircuit {
    inbox: mpsc::Sender<CircEvent>,
    towards_client: ChannelSender,
    kill: Arc<Notify>,
}

fn queued_in(inbox: &mpsc::Sender<CircEvent>) -> usize {
    inbox.max_capacity() - inbox.capacity()
}

/// One of an address's circuit slots; given back when dropped.
pub struct AddressSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The relay's DoS bookkeeping.
#[derive(Default)]
pub struct CircuitLimits {
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    circuits: Arc<Registry<TrackedCircuit>>,
    links: Arc<Registry<ChannelSender>>,
}

impl CircuitLimits {
    /// Claims a circuit slot for `ip`, unless it already holds `max`.
    pub fn claim_address(&self, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut counts = lock(&self.per_address);
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            counts: self.per_address.clone(),
            ip,
        })
    }

    /// Circuits open from `ip`.
    pub fn circuits_from(&self, ip: IpAddr) -> usize {
        lock(&self.per_address).get(&ip).copied().unwrap_or(0)
    }

    /// Counts a circuit's inbox and the link towards its client in the queued-cell total,
    /// and lets the sweep destroy it through `kill`.
    pub fn track_circuit(
        &self,
        inbox: mpsc::Sender<CircEvent>,
        towards_client: ChannelSender,
        kill: Arc<Notify>,
    ) -> Registered<TrackedCircuit> {
        register(
            &self.circuits,
            TrackedCircuit {
                inbox,
                towards_client,
                kill,
            },
        )
    }

    /// Counts a link's send queue in the queued-cell total.
    pub fn track_link(&self, sender: ChannelSender) -> Registered<ChannelSender> {
        register(&self.links, sender)
    }

    /// Adds up queued cells and picks the circuits to destroy to get under `ceiling`.
    /// Returns the total and the victims' kill switches.
    pub fn sweep(&self, ceiling: usize) -> (usize, Vec<Arc<Notify>>) {
        let link_cells: usize = lock(&self.links.entries).values().map(ChannelSender::queued).sum();
        let circuits = lock(&self.circuits.entries);
        let loads: Vec<CircuitLoad> = circuits
            .iter()
            .map(|(id, c)| CircuitLoad {
                id: *id,
                own: queued_in(&c.inbox),
                link: c.towards_client.queued(),
            })
            .collect();
        let total = link_cells + loads.iter().map(|l| l.own).sum::<usize>();
        let victims = choose_victims(loads, total, ceiling)
            .into_iter()
            .filter_map(|id| circuits.get(&id).map(|c| c.kill.clone()))
            .collect();
        (total, victims)
    }
}

/// Cells a circuit holds in its inbox, and the send queue of the link towards its client.
#[derive(Debug, Clone, Copy)]
struct CircuitLoad {
    id: u64,
    own: usize,
    link: usize,
}

/// The circuits to destroy so that `total` falls to `ceiling`: most queued first (own plus
/// link), only circuits with cells of their own, counting what each frees (its own cells).
fn choose_victims(mut loads: Vec<CircuitLoad>, mut total: usize, ceiling: usize) -> Vec<u64> {
    if total <= ceiling {
        return Vec::new();
    }
    loads.retain(|l| l.own > 0);
    loads.sort_by_key(|l| std::cmp::Reverse((l.own + l.link, l.own)));
    let mut victims = Vec::new();
    for l in loads {
        if total <= ceiling {
            break;
        }
        total -= l.own;
        victims.push(l.id);
    }
    victims
}

/// Enforces `max_queued_cells` until the relay stops.
pub async fn memory_loop(relay: Arc<Relay>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ceiling = relay.settings().config.max_queued_cells;
        let (total, victims) = relay.limits.sweep(ceiling);
        RelayStats::set(&relay.stats.queued_cells, total as u64);
        if !victims.is_empty() {
            tracing::debug!(
                queued = total,
                ceiling,
                destroyed = victims.len(),
                "queued cells over the ceiling"
            );
        }
        for kill in victims {
            RelayStats::bump(&relay.stats.circuits_killed_memory);
            kill.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(id: u64, own: usize, link: usize) -> CircuitLoad {
        CircuitLoad { id, own, link }
    }

    #[test]
    fn address_slots_are_counted_and_given_back() {
        let limits = CircuitLimits::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let s1 = limits.claim_address(a, 2).unwrap();
        let _s2 = limits.claim_address(a, 2).unwrap();
        assert!(limits.claim_address(a, 2).is_none(), "a third circuit from one address");
        assert!(limits.claim_address(b, 2).is_some(), "another address is not affected");
        drop(s1);
        assert_eq!(limits.circuits_from(a), 1);
        assert!(limits.claim_address(a, 2).is_some());
    }

    #[test]
    fn victims_are_the_biggest_queues_until_under_the_ceiling() {
        let loads = vec![load(1, 10, 0), load(2, 500, 0), load(3, 300, 0), load(4, 1, 0)];
        assert_eq!(choose_victims(loads.clone(), 811, 1000), Vec::<u64>::new());
        assert_eq!(choose_victims(loads.clone(), 811, 400), vec![2]);
        assert_eq!(choose_victims(loads.clone(), 811, 5), vec![2, 3, 1]);
        // Link queues count in the total but only circuits with their own cells can free them;
        // those feeding a stuck link go first.
        let loads = vec![load(1, 50, 0), load(2, 40, 1000), load(3, 0, 1000)];
        assert_eq!(choose_victims(loads, 1090, 1050), vec![2]);
    }
}
