//! Length-prefixed peer wire messages and the streaming decoder.

use thiserror::Error;

/// One peer wire message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// Length 0, no id.
    KeepAlive,
    /// Id 0.
    Choke,
    /// Id 1.
    Unchoke,
    /// Id 2.
    Interested,
    /// Id 3.
    NotInterested,
    /// Id 4: the sender has this piece.
    Have {
        /// Piece index.
        piece: u32,
    },
    /// Id 5: one bit per piece, high bit first; kept as bytes (the piece count is not known here).
    Bitfield(Vec<u8>),
    /// Id 6.
    Request {
        /// Piece index.
        piece: u32,
        /// Byte offset in the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// Id 7: a block.
    Piece {
        /// Piece index.
        piece: u32,
        /// Byte offset in the piece.
        begin: u32,
        /// The block.
        block: Vec<u8>,
    },
    /// Id 8.
    Cancel {
        /// Piece index.
        piece: u32,
        /// Byte offset in the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// Id 9 (BEP 5): the sender's DHT port.
    Port(u16),
    /// Id 20 (BEP 10): an extended message; id 0 is the [`super::ExtHandshake`].
    Extended {
        /// The extended message id.
        id: u8,
        /// The payload after the id byte.
        payload: Vec<u8>,
    },
    /// Any other id, recorded with its raw payload.
    Unknown {
        /// The message id.
        id: u8,
        /// The payload after the id byte.
        payload: Vec<u8>,
    },
}

/// Bounds for [`decode_message_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest length prefix accepted (id byte and payload, not counting the prefix itself).
    pub max_message: u32,
}

impl Default for Limits {
    /// 1 MiB + 13: a `piece` message carrying a 1 MiB block, far above the usual 16 KiB.
    fn default() -> Self {
        Limits {
            max_message: (1 << 20) + 13,
        }
    }
}

/// Why bytes are not a peer wire message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The length prefix is over [`Limits::max_message`].
    #[error("message length {len} is over the limit of {max}")]
    TooLong {
        /// The length prefix.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A known message with a payload of the wrong size.
    #[error("{name} message with a {len}-byte payload, expected {expected}")]
    BadPayload {
        /// The message name.
        name: &'static str,
        /// The payload length (after the id byte).
        len: usize,
        /// The expected size, like `12` or `at least 8`.
        expected: &'static str,
    },
}

/// Decodes one message from the start of `buf` with [`Limits::default`].
pub fn decode_message(buf: &[u8]) -> Result<Option<(Message, usize)>, MessageError> {
    decode_message_with(buf, Limits::default())
}

/// Decodes one message from the start of `buf`: `Ok(None)` while it is incomplete, otherwise the
/// message and the bytes it used (prefix included). The length is checked before the body is
/// needed.
pub fn decode_message_with(buf: &[u8], limits: Limits) -> Result<Option<(Message, usize)>, MessageError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if len > limits.max_message {
        return Err(MessageError::TooLong {
            len,
            max: limits.max_message,
        });
    }
    let total = 4 + len as usize;
    let Some(body) = buf.get(4..total) else {
        return Ok(None);
    };
    let Some((&id, payload)) = body.split_first() else {
        return Ok(Some((Message::KeepAlive, total)));
    };
    let exact = |name: &'static str, n: usize, expected: &'static str| {
        if payload.len() == n {
            Ok(())
        } else {
            Err(MessageError::BadPayload {
                name,
                len: payload.len(),
                expected,
            })
        }
    };
    let msg = match id {
        0 => exact("choke", 0, "0").map(|()| Message::Choke)?,
        1 => exact("unchoke", 0, "0").map(|()| Message::Unchoke)?,
        2 => exact("interested", 0, "0").map(|()| Message::Interested)?,
        3 => exact("not interested", 0, "0").map(|()| Message::NotInterested)?,
        4 => {
            exact("have", 4, "4")?;
            Message::Have {
                piece: be32(payload, 0),
            }
        }
        5 => Message::Bitfield(payload.to_vec()),
        6 | 8 => {
            exact(if id == 6 { "request" } else { "cancel" }, 12, "12")?;
            let (piece, begin, length) = (be32(payload, 0), be32(payload, 4), be32(payload, 8));
            if id == 6 {
                Message::Request { piece, begin, length }
            } else {
                Message::Cancel { piece, begin, length }
            }
        }
        7 => {
            if payload.len() < 8 {
                return Err(MessageError::BadPayload {
                    name: "piece",
                    len: payload.len(),
                    expected: "at least 8",
                });
            }
            Message::Piece {
                piece: be32(payload, 0),
                begin: be32(payload, 4),
                block: payload[8..].to_vec(),
            }
        }
        9 => {
            exact("port", 2, "2")?;
            Message::Port(u16::from_be_bytes([payload[0], payload[1]]))
        }
        20 => match payload.split_first() {
            Some((&ext, rest)) => Message::Extended {
                id: ext,
                payload: rest.to_vec(),
            },
            None => {
                return Err(MessageError::BadPayload {
                    name: "extended",
                    len: 0,
                    expected: "at least 1",
                });
            }
        },
        other => Message::Unknown {
            id: other,
            payload: payload.to_vec(),
        },
    };
    Ok(Some((msg, total)))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Message {
    /// The wire bytes, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the wire bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Message::KeepAlive => {}
            Message::Choke => out.push(0),
            Message::Unchoke => out.push(1),
            Message::Interested => out.push(2),
            Message::NotInterested => out.push(3),
            Message::Have { piece } => {
                out.push(4);
                out.extend_from_slice(&piece.to_be_bytes());
            }
            Message::Bitfield(bits) => {
                out.push(5);
                out.extend_from_slice(bits);
            }
            Message::Request { piece, begin, length } | Message::Cancel { piece, begin, length } => {
                out.push(if matches!(self, Message::Request { .. }) { 6 } else { 8 });
                out.extend_from_slice(&piece.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(&length.to_be_bytes());
            }
            Message::Piece { piece, begin, block } => {
                out.push(7);
                out.extend_from_slice(&piece.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(block);
            }
            Message::Port(port) => {
                out.push(9);
                out.extend_from_slice(&port.to_be_bytes());
            }
            Message::Extended { id, payload } => {
                out.push(20);
                out.push(*id);
                out.extend_from_slice(payload);
            }
            Message::Unknown { id, payload } => {
                out.push(*id);
                out.extend_from_slice(payload);
            }
        }
        let len = u32::try_from(out.len() - start - 4).expect("a peer wire message is under 4 GiB");
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// A buffer for a byte stream: feed it what the socket gave, then take whole messages.
#[derive(Debug, Clone, Default)]
pub struct MessageDecoder {
    buf: Vec<u8>,
    limits: Limits,
}

impl MessageDecoder {
    /// A decoder with [`Limits::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with explicit limits.
    pub fn with_limits(limits: Limits) -> Self {
        MessageDecoder {
            buf: Vec::new(),
            limits,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next whole message, or `Ok(None)` if more bytes are needed. After an error the
    /// stream cannot be resynchronised; the buffer is left as it was.
    pub fn next_message(&mut self) -> Result<Option<Message>, MessageError> {
        match decode_message_with(&self.buf, self.limits)? {
            None => Ok(None),
            Some((msg, used)) => {
                self.buf.drain(..used);
                Ok(Some(msg))
            }
        }
    }
}
