//! BitTorrent tracker protocols, sans I/O: the HTTP tracker (BEP 3, compact peers BEP 23, IPv6
//! peers BEP 7, scrape BEP 48) in [`http`] and the UDP tracker (BEP 15) in [`udp`].
//!
//! Nothing here opens a socket or reads a clock: callers hand in bytes and instants, and get
//! bytes, parsed replies and deadlines back.

pub mod http;
pub mod udp;

/// A 20-byte peer id, raw (not necessarily printable).
pub type PeerId = [u8; 20];

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Event {
    /// A regular announce (HTTP: no `event` parameter; UDP: 0).
    #[default]
    None,
    /// The download completed (UDP: 1).
    Completed,
    /// The first announce of a download (UDP: 2).
    Started,
    /// The client leaves the swarm (UDP: 3).
    Stopped,
}

impl Event {
    /// The HTTP `event` parameter value, `None` for [`Event::None`].
    pub fn as_http(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Completed => Some("completed"),
            Event::Started => Some("started"),
            Event::Stopped => Some("stopped"),
        }
    }

    /// The BEP 15 event number.
    pub fn to_udp(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }

    /// The event for a BEP 15 event number, `None` if unknown.
    pub fn from_udp(n: u32) -> Option<Self> {
        Some(match n {
            0 => Event::None,
            1 => Event::Completed,
            2 => Event::Started,
            3 => Event::Stopped,
            _ => return None,
        })
    }
}
