//! Fixed-size link cells: 4-byte circuit id, 1-byte command, 509-byte payload (514 bytes).
//!
//! Every cell on every link has this size in both directions, so an observer of a link
//! learns only how many cells pass, never what kind or how long their contents are. Unused
//! payload bytes are random ([`crate::random::fill`]), never zeros.
//!
//! Also here: the bodies of the cells that are not RELAY cells (CREATE2, CREATED2, DESTROY,
//! and the link-authentication cell a relay sends first on every link).

use crate::codec::{DecodeError, Reader, Writer};
use crate::random;

/// Bytes in a cell on the wire.
pub const CELL_LEN: usize = 514;
/// Bytes of payload in a cell.
pub const PAYLOAD_LEN: usize = 509;

/// Identifies a circuit on one link. Chosen by the side that sends CREATE2, which sets the
/// top bit if it also opened the link (so the two sides never pick the same id).
pub type CircId = u32;

/// What a cell is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CellCommand {
    /// Link keepalive, dropped on receipt.
    Padding = 0,
    /// Onion-encrypted relay cell, see [`crate::relay_msg`] and [`crate::layer`].
    Relay = 3,
    /// Tear down a circuit, with a reason.
    Destroy = 4,
    /// Create a circuit: the client half of a handshake.
    Create2 = 10,
    /// The relay half of a handshake.
    Created2 = 11,
    /// First cell of a link: the responder proves its identity (see [`crate::keys::link_auth_message`]).
    LinkAuth = 130,
}

impl CellCommand {
    /// Decodes a command byte.
    pub fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => Self::Padding,
            3 => Self::Relay,
            4 => Self::Destroy,
            10 => Self::Create2,
            11 => Self::Created2,
            130 => Self::LinkAuth,
            _ => return Err(DecodeError::invalid("cell command", "unknown command")),
        })
    }
}

/// One link cell.
#[derive(Clone, PartialEq, Eq)]
pub struct Cell {
    /// The circuit on this link (0 for link-level cells).
    pub circ_id: CircId,
    /// What the cell is for.
    pub command: CellCommand,
    /// Exactly [`PAYLOAD_LEN`] bytes.
    pub payload: [u8; PAYLOAD_LEN],
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Payloads are ciphertext or key material: never worth printing.
        f.debug_struct("Cell")
            .field("circ_id", &self.circ_id)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl Cell {
    /// A cell whose payload is `body` followed by random padding. Fails if `body` is too long.
    pub fn with_body(circ_id: CircId, command: CellCommand, body: &[u8]) -> Result<Self, DecodeError> {
        if body.len() > PAYLOAD_LEN {
            return Err(DecodeError::TooLong {
                field: "cell body",
                len: body.len(),
                max: PAYLOAD_LEN,
            });
        }
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..body.len()].copy_from_slice(body);
        random::fill(&mut payload[body.len()..]);
        Ok(Cell {
            circ_id,
            command,
            payload,
        })
    }

    /// The 514 wire bytes.
    pub fn encode(&self) -> [u8; CELL_LEN] {
        let mut out = [0u8; CELL_LEN];
        out[..4].copy_from_slice(&self.circ_id.to_be_bytes());
        out[4] = self.command as u8;
        out[5..].copy_from_slice(&self.payload);
        out
    }

    /// Parses 514 wire bytes. Fails on a wrong length or an unknown command.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() != CELL_LEN {
            return Err(DecodeError::invalid("cell", "not 514 bytes"));
        }
        let mut r = Reader::new(bytes);
        let circ_id = r.u32("circuit id")?;
        let command = CellCommand::from_u8(r.u8("command")?)?;
        let payload = r.array::<PAYLOAD_LEN>("payload")?;
        Ok(Cell {
            circ_id,
            command,
            payload,
        })
    }
}

/// Handshake type of onionlab's ntor instance (Ed25519 identity, own PROTOID).
pub const HTYPE_ONIONLAB_NTOR: u16 = 0x0003;

/// CREATE2 body: `HTYPE(2) HLEN(2) HDATA`. Also the handshake part of EXTEND2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create2 {
    /// Handshake type.
    pub htype: u16,
    /// Client handshake message.
    pub hdata: Vec<u8>,
}

/// Largest handshake message that fits a CREATE2 cell.
pub const MAX_HDATA: usize = PAYLOAD_LEN - 4;

impl Create2 {
    /// Appends the body.
    pub fn encode_into(&self, w: &mut Vec<u8>) {
        w.put_u16(self.htype);
        w.put_bytes_u16(&self.hdata);
    }

    /// Reads a body (trailing padding is allowed).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let htype = r.u16("htype")?;
        let hdata = r.bytes_u16(MAX_HDATA, "hdata")?.to_vec();
        Ok(Create2 { htype, hdata })
    }

    /// A CREATE2 cell carrying this body.
    pub fn to_cell(&self, circ_id: CircId) -> Result<Cell, DecodeError> {
        let mut body = Vec::with_capacity(4 + self.hdata.len());
        self.encode_into(&mut body);
        Cell::with_body(circ_id, CellCommand::Create2, &body)
    }
}

/// CREATED2 body: `HLEN(2) HDATA`. Also the body of EXTENDED2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created2 {
    /// Server handshake message.
    pub hdata: Vec<u8>,
}

impl Created2 {
    /// Appends the body.
    pub fn encode_into(&self, w: &mut Vec<u8>) {
        w.put_bytes_u16(&self.hdata);
    }

    /// Reads a body (trailing padding is allowed).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Created2 {
            hdata: r.bytes_u16(MAX_HDATA, "hdata")?.to_vec(),
        })
    }

    /// A CREATED2 cell carrying this body.
    pub fn to_cell(&self, circ_id: CircId) -> Result<Cell, DecodeError> {
        let mut body = Vec::with_capacity(2 + self.hdata.len());
        self.encode_into(&mut body);
        Cell::with_body(circ_id, CellCommand::Created2, &body)
    }
}

/// Why a circuit was destroyed (Tor's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyReason {
    /// No reason given.
    None,
    /// The other side broke the protocol.
    Protocol,
    /// Something went wrong inside the relay.
    Internal,
    /// Sent in answer to a client's request.
    Requested,
    /// The relay is hibernating.
    Hibernating,
    /// Out of memory, sockets or circuit ids.
    ResourceLimit,
    /// Could not connect to the next relay.
    ConnectFailed,
    /// The next relay had a different identity.
    OrIdentity,
    /// A link this circuit used closed.
    ChannelClosed,
    /// The circuit expired.
    Finished,
    /// The circuit took too long to build.
    Timeout,
    /// The circuit was destroyed without client TRUNCATE.
    Destroyed,
    /// A number this implementation does not know.
    Other(u8),
}

impl DestroyReason {
    /// The wire byte.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Protocol => 1,
            Self::Internal => 2,
            Self::Requested => 3,
            Self::Hibernating => 4,
            Self::ResourceLimit => 5,
            Self::ConnectFailed => 6,
            Self::OrIdentity => 7,
            Self::ChannelClosed => 8,
            Self::Finished => 9,
            Self::Timeout => 10,
            Self::Destroyed => 11,
            Self::Other(v) => v,
        }
    }

    /// From the wire byte; unknown numbers are kept.
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::None,
            1 => Self::Protocol,
            2 => Self::Internal,
            3 => Self::Requested,
            4 => Self::Hibernating,
            5 => Self::ResourceLimit,
            6 => Self::ConnectFailed,
            7 => Self::OrIdentity,
            8 => Self::ChannelClosed,
            9 => Self::Finished,
            10 => Self::Timeout,
            11 => Self::Destroyed,
            v => Self::Other(v),
        }
    }

    /// A DESTROY cell with this reason.
    pub fn to_cell(self, circ_id: CircId) -> Cell {
        let mut payload = [0u8; PAYLOAD_LEN];
        random::fill(&mut payload[1..]);
        payload[0] = self.to_u8();
        Cell {
            circ_id,
            command: CellCommand::Destroy,
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn padding_is_random_not_zero() {
        let c = Cell::with_body(7, CellCommand::Create2, &[1, 2, 3]).unwrap();
        assert_ne!(&c.payload[3..], &[0u8; PAYLOAD_LEN - 3][..]);
    }

    #[test]
    fn create2_round_trip() {
        let c = Create2 {
            htype: HTYPE_ONIONLAB_NTOR,
            hdata: vec![9; 96],
        };
        let cell = c.to_cell(0x8000_0001).unwrap();
        let wire = cell.encode();
        assert_eq!(wire.len(), CELL_LEN);
        let back = Cell::decode(&wire).unwrap();
        assert_eq!(back.command, CellCommand::Create2);
        assert_eq!(Create2::read(&mut Reader::new(&back.payload)).unwrap(), c);
    }

    #[test]
    fn hostile_lengths_are_refused() {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..4].copy_from_slice(&[0, 3, 0xff, 0xff]);
        assert!(Create2::read(&mut Reader::new(&payload)).is_err());
        assert!(Cell::decode(&[0u8; 513]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Cell::decode(&bytes);
            let _ = Create2::read(&mut Reader::new(&bytes));
            let _ = Created2::read(&mut Reader::new(&bytes));
        }

        #[test]
        fn cell_round_trip(circ_id in any::<u32>(), cmd in prop::sample::select(vec![0u8, 3, 4, 10, 11, 130]),
                           payload in proptest::collection::vec(any::<u8>(), PAYLOAD_LEN)) {
            let mut p = [0u8; PAYLOAD_LEN];
            p.copy_from_slice(&payload);
            let cell = Cell { circ_id, command: CellCommand::from_u8(cmd).unwrap(), payload: p };
            prop_assert_eq!(Cell::decode(&cell.encode()).unwrap(), cell);
        }

        #[test]
        fn created2_round_trip(hdata in proptest::collection::vec(any::<u8>(), 0..MAX_HDATA)) {
            let c = Created2 { hdata };
            let cell = c.to_cell(1).unwrap();
            prop_assert_eq!(Created2::read(&mut Reader::new(&cell.payload)).unwrap(), c);
        }

        #[test]
        fn destroy_reason_round_trip(v in any::<u8>()) {
            prop_assert_eq!(DestroyReason::from_u8(v).to_u8(), v);
        }
    }
}
