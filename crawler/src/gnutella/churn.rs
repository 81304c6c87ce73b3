//! Peer churn from successive snapshots: each snapshot becomes per-address up/down probes for
//! [`crate::analysis::sessions`], which turns them into sessions and lifetimes. Pure; this module
//! owns only the translation, never a session rule of its own.
//!
//! What counts as a probe of an address in snapshot i (at its probe time, or at the snapshot's
//! start when it was not contacted):
//!
//! - contacted: up if it answered with a Gnutella status line (`200` or a refusal), down if not
//!   (an address on the engine's deny-list was never asked: no probe);
//! - not contacted but named by a servent that answered in this snapshot (a leaf in `Leaves:`,
//!   say): up, since its neighbour held a connection to it;
//! - up before and absent from this snapshot, when this one is complete
//!   ([`StopReason::Exhausted`]): down (nobody holds a connection to it any more);
//! - up in snapshot i > 0 and not up in snapshot i − 1, when that one was complete: also down at
//!   snapshot i − 1's start, so that its arrival is seen (the sessions module's note on
//!   snapshot crawls).
//!
//! Times are seconds since the first snapshot's start; the window runs to the end of the last.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::snapshot::{NodeStatus, Snapshot, StopReason};
use crate::analysis::sessions::{Lifetime, Probe, Session, Window, WindowError, create_based_lengths, sessions};
use crate::observe::{Micros, Outcome};

/// Sessions and lifetimes of the addresses of a series of snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Churn {
    /// The measurement window, in seconds since the first snapshot's start.
    pub window: Window,
    /// The probes derived from the snapshots.
    pub probes: Vec<Probe<SocketAddr>>,
    /// Every session ([`sessions`]).
    pub sessions: Vec<Session<SocketAddr>>,
    /// The create-based lifetime sample ([`create_based_lengths`]).
    pub lifetimes: Vec<Lifetime>,
}

/// The probes of `snapshots` (in time order), as the module docs describe.
pub fn snapshot_probes(snapshots: &[Snapshot]) -> Vec<Probe<SocketAddr>> {
    let Some(t0) = snapshots.first().map(|s| s.started_at) else {
        return Vec::new();
    };
    let secs = |at: Micros| (at - t0) as f64 / 1e6;
    let mut probes = Vec::new();
    // Addresses whose last probe was up.
    let mut up: BTreeSet<SocketAddr> = BTreeSet::new();
    let mut previous: Option<&Snapshot> = None;
    for snap in snapshots {
        let start = secs(snap.started_at);
        let reporters = snap.reached();
        let mut now_up = BTreeSet::new();
        for (addr, node) in &snap.nodes {
            let probe = match &node.status {
                // A denied address was never asked: that says nothing of it.
                NodeStatus::Failed {
                    outcome: Outcome::Denied,
                } => None,
                NodeStatus::Answered | NodeStatus::Refused { .. } | NodeStatus::Failed { .. } => {
                    node.probed_at.map(|at| (secs(at), node.status.is_up()))
                }
                NodeStatus::NotContacted | NodeStatus::Unfinished => node
                    .reported_by
                    .iter()
                    .any(|r| reporters.contains(r))
                    .then_some((start, true)),
            };
            let Some((at, is_up)) = probe else { continue };
            if is_up
                && !up.contains(addr)
                && let Some(prev) = previous.filter(|p| p.stop == StopReason::Exhausted)
            {
                probes.push(Probe {
                    peer: *addr,
                    at: secs(prev.started_at),
                    up: false,
                });
            }
            probes.push(Probe {
                peer: *addr,
                at,
                up: is_up,
            });
            if is_up {
                now_up.insert(*addr);
            }
        }
        if snap.stop == StopReason::Exhausted {
            for gone in up.iter().filter(|a| !snap.nodes.contains_key(a)) {
                probes.push(Probe {
                    peer: *gone,
                    at: start,
                    up: false,
                });
            }
            up = now_up;
        } else {
            // Absence proves nothing: who was up stays up unless probed down.
            for (addr, node) in &snap.nodes {
                if matches!(node.status, NodeStatus::Failed { .. }) {
                    up.remove(addr);
                }
            }
            up.extend(now_up);
        }
        previous = Some(snap);
    }
    probes
}

/// Sessions and create-based lifetimes over `snapshots` (in time order); an error when they span
/// no time (fewer than one snapshot, or all at one instant).
pub fn churn(snapshots: &[Snapshot]) -> Result<Churn, WindowError> {
    let (start, end) = match (snapshots.first(), snapshots.last()) {
        (Some(first), Some(last)) => {
            let end = last.started_at + i64::try_from(last.duration.as_micros()).unwrap_or(i64::MAX);
            (0.0, (end - first.started_at) as f64 / 1e6)
        }
        _ => (0.0, 0.0),
    };
    let window = Window::new(start, end)?;
    let probes = snapshot_probes(snapshots);
    let sessions = sessions(&probes, window);
    let lifetimes = create_based_lengths(&sessions, window);
    Ok(Churn {
        window,
        probes,
        sessions,
        lifetimes,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::gnutella::snapshot::{NodeInfo, Role};

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn node(status: NodeStatus, probed_at: Option<Micros>, reported_by: &[&str]) -> NodeInfo {
        NodeInfo {
            role: Role::Ultrapeer,
            status,
            user_agent: None,
            listen_addr: None,
            reported_by: reported_by.iter().map(|r| a(r)).collect(),
            probed_at,
            rtt: None,
            error: None,
        }
    }

    fn snap(at_secs: i64, nodes: Vec<(&str, NodeInfo)>) -> Snapshot {
        Snapshot {
            started_at: at_secs * 1_000_000,
            duration: Duration::from_secs(10),
            nodes: nodes.into_iter().map(|(s, n)| (a(s), n)).collect::<BTreeMap<_, _>>(),
            edges: BTreeSet::new(),
            unreachable: BTreeSet::new(),
            contacted: 0,
            stop: StopReason::Exhausted,
        }
    }

    #[test]
    fn up_down_arrival_and_departure() {
        let u = "10.0.0.1:1";
        let leaf = "10.0.1.1:1";
        let late = "10.0.0.2:1";
        let s0 = snap(
            100,
            vec![
                (u, node(NodeStatus::Answered, Some(101_000_000), &[])),
                (leaf, node(NodeStatus::NotContacted, None, &[u])),
            ],
        );
        let s1 = snap(
            200,
            vec![
                (u, node(NodeStatus::Answered, Some(201_000_000), &[])),
                (late, node(NodeStatus::Answered, Some(202_000_000), &[u])),
            ],
        );
        let s2 = snap(
            300,
            vec![
                (
                    u,
                    node(
                        NodeStatus::Failed {
                            outcome: Outcome::Timeout,
                        },
                        Some(301_000_000),
                        &[],
                    ),
                ),
                (late, node(NodeStatus::Answered, Some(302_000_000), &[])),
            ],
        );
        let c = churn(&[s0, s1, s2]).unwrap();
        assert_eq!((c.window.start(), c.window.end()), (0.0, 210.0));
        let of = |p: &str| -> Vec<(f64, bool)> {
            c.probes
                .iter()
                .filter(|x| x.peer == a(p))
                .map(|x| (x.at, x.up))
                .collect()
        };
        assert_eq!(of(u), vec![(1.0, true), (101.0, true), (201.0, false)]);
        // The leaf was listed in snapshot 0 and gone from the complete snapshot 1.
        assert_eq!(of(leaf), vec![(0.0, true), (100.0, false)]);
        // Arrived between snapshots 0 and 1.
        assert_eq!(of(late), vec![(0.0, false), (102.0, true), (202.0, true)]);
        let s = |p: &str| c.sessions.iter().find(|x| x.peer == a(p)).unwrap().clone();
        assert_eq!(
            (s(u).length(), s(u).left_censored, s(u).right_censored),
            (200.0, true, false)
        );
        assert_eq!(
            (s(late).start, s(late).left_censored, s(late).right_censored),
            (102.0, false, true)
        );
        // Only the late arrival starts in the first half without left-censoring.
        assert_eq!(
            c.lifetimes,
            vec![Lifetime {
                length: 100.0,
                censored: true
            }]
        );
    }

    #[test]
    fn incomplete_snapshots_say_nothing_about_absence() {
        let u = "10.0.0.1:1";
        let s0 = snap(0, vec![(u, node(NodeStatus::Answered, Some(1_000_000), &[]))]);
        let mut s1 = snap(
            100,
            vec![(
                "10.0.0.2:1",
                node(
                    NodeStatus::Failed {
                        outcome: Outcome::Denied,
                    },
                    Some(101_000_000),
                    &[],
                ),
            )],
        );
        s1.stop = StopReason::MaxDuration;
        assert_eq!(snapshot_probes(&[s0, s1]).len(), 1);
        assert!(churn(&[]).is_err());
    }
}
