//! The lenient, bounded bencode decoder: a borrowed [`Node`] tree with exact byte spans, plus the
//! [`Deviation`]s it accepted on the way.

use std::collections::BTreeMap;
use std::ops::Range;

use super::{DecodeError, Deviation, DeviationKind, Limits, Value};

/// One decoded value, borrowing its bytes from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'a> {
    raw: &'a [u8],
    offset: usize,
    kind: NodeKind<'a>,
}

/// What a [`Node`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind<'a> {
    /// `i…e`.
    Int(i64),
    /// `len:bytes`.
    Bytes(&'a [u8]),
    /// `l…e`.
    List(Vec<Node<'a>>),
    /// `d…e`, entries in wire order, duplicates included.
    Dict(Vec<(&'a [u8], Node<'a>)>),
}

impl<'a> Node<'a> {
    /// The exact bytes this value was decoded from, as received (non-canonical forms included).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Byte offset of this value in the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Byte range of this value in the input.
    pub fn span(&self) -> Range<usize> {
        self.offset..self.offset + self.raw.len()
    }

    /// What the node holds.
    pub fn kind(&self) -> &NodeKind<'a> {
        &self.kind
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            NodeKind::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            NodeKind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The list items, if this is a list.
    pub fn as_list(&self) -> Option<&[Node<'a>]> {
        match &self.kind {
            NodeKind::List(items) => Some(items),
            _ => None,
        }
    }

    /// The dictionary entries in wire order, if this is a dictionary.
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Node<'a>)]> {
        match &self.kind {
            NodeKind::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of `key` in a dictionary: the first occurrence if the key is repeated.
    /// `None` if this is not a dictionary or has no such key.
    pub fn get(&self, key: &[u8]) -> Option<&Node<'a>> {
        self.as_dict()?.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// An owned copy; of repeated dictionary keys the first occurrence is kept.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Int(i) => Value::Int(*i),
            NodeKind::Bytes(b) => Value::Bytes(b.to_vec()),
            NodeKind::List(items) => Value::List(items.iter().map(Node::to_value).collect()),
            NodeKind::Dict(entries) => {
                let mut map = BTreeMap::new();
                for (k, v) in entries {
                    map.entry(k.to_vec()).or_insert_with(|| v.to_value());
                }
                Value::Dict(map)
            }
        }
    }
}

/// The result of a successful decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The top-level value.
    pub root: Node<'a>,
    /// Every non-canonical form accepted, in input order of detection.
    pub deviations: Vec<Deviation>,
    /// Bytes of input the top-level value occupies.
    pub used: usize,
}

/// Decodes one value spanning the whole input with [`Limits::default`]; trailing bytes are
/// recorded as a [`DeviationKind::TrailingBytes`].
pub fn decode(input: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    decode_with(input, Limits::default())
}

/// [`decode`] with explicit limits.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Decoded<'_>, DecodeError> {
    let mut out = decode_prefix_with(input, limits)?;
    if out.used < input.len() {
        out.deviations.push(Deviation {
            offset: out.used,
            kind: DeviationKind::TrailingBytes {
                len: input.len() - out.used,
            },
        });
    }
    Ok(out)
}

/// Decodes one value from the start of the input and reports how many bytes it used, for
/// messages where raw data follows the bencoded part (BEP 9 `data` messages).
pub fn decode_prefix(input: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    decode_prefix_with(input, Limits::default())
}

/// [`decode_prefix`] with explicit limits. The decoder recurses once per nesting level, so keep
/// `max_depth` in the hundreds at most.
pub fn decode_prefix_with(input: &[u8], limits: Limits) -> Result<Decoded<'_>, DecodeError> {
    if input.len() > limits.max_input {
        return Err(DecodeError::TooLarge {
            len: input.len(),
            max: limits.max_input,
        });
    }
    let mut p = Parser {
        input,
        pos: 0,
        limits,
        nodes: 0,
        deviations: Vec::new(),
    };
    let root = p.value(1)?;
    Ok(Decoded {
        used: p.pos,
        root,
        deviations: p.deviations,
    })
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
    nodes: usize,
    deviations: Vec<Deviation>,
}

impl<'a> Parser<'a> {
    fn peek(&self, what: &'static str) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated { offset: self.pos, what })
    }

    fn deviation(&mut self, offset: usize, kind: DeviationKind) {
        self.deviations.push(Deviation { offset, kind });
    }

    fn node(&self, start: usize, kind: NodeKind<'a>) -> Node<'a> {
        Node {
            raw: &self.input[start..self.pos],
            offset: start,
            kind,
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, DecodeError> {
        let start = self.pos;
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(DecodeError::TooManyNodes {
                offset: start,
                max: self.limits.max_nodes,
            });
        }
        match self.peek("a value")? {
            b'i' => {
                let i = self.int()?;
                Ok(self.node(start, NodeKind::Int(i)))
            }
            b'0'..=b'9' => {
                let b = self.bytes()?;
                Ok(self.node(start, NodeKind::Bytes(b)))
            }
            b'l' | b'd' if depth > self.limits.max_depth => Err(DecodeError::TooDeep {
                offset: start,
                max: self.limits.max_depth,
            }),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek("a list")? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(self.node(start, NodeKind::List(items)))
            }
            b'd' => {
                self.pos += 1;
                let entries = self.dict_entries(depth)?;
                Ok(self.node(start, NodeKind::Dict(entries)))
            }
            byte => Err(DecodeError::UnexpectedByte { offset: start, byte }),
        }
    }

    fn dict_entries(&mut self, depth: usize) -> Result<Vec<(&'a [u8], Node<'a>)>, DecodeError> {
        let mut entries: Vec<(&'a [u8], Node<'a>)> = Vec::new();
        let mut key_offsets: Vec<usize> = Vec::new();
        // Offsets of the keys seen so far, built only once the keys stop increasing: until then
        // a new key greater than the last one cannot repeat an earlier one.
        let mut seen: Option<BTreeMap<&'a [u8], usize>> = None;
        let mut max_key: Option<&'a [u8]> = None;
        loop {
            let key_at = self.pos;
            match self.peek("a dictionary")? {
                b'e' => break,
                b'0'..=b'9' => {}
                _ => return Err(DecodeError::NonStringKey { offset: key_at }),
            }
            let key = self.bytes()?;
            if max_key.is_some_and(|m| key <= m) {
                let seen = seen.get_or_insert_with(|| {
                    let mut map = BTreeMap::new();
                    for ((k, _), &at) in entries.iter().zip(&key_offsets) {
                        map.entry(*k).or_insert(at);
                    }
                    map
                });
                match seen.get(key) {
                    Some(&first) => self.deviation(key_at, DeviationKind::DuplicateKey { first }),
                    None => {
                        self.deviation(key_at, DeviationKind::UnsortedKey);
                        seen.insert(key, key_at);
                    }
                }
            } else {
                max_key = Some(key);
                if let Some(seen) = seen.as_mut() {
                    seen.insert(key, key_at);
                }
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            key_offsets.push(key_at);
        }
        self.pos += 1;
        Ok(entries)
    }

    /// `i<digits>e` at `self.pos`.
    fn int(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        self.pos += 1;
        let rest = &self.input[self.pos..];
        let Some(len) = rest.iter().position(|&b| b == b'e') else {
            return Err(DecodeError::Truncated {
                offset: self.input.len(),
                what: "an integer",
            });
        };
        let text = &rest[..len];
        let (negative, digits) = match text.split_first() {
            Some((b'-', d)) => (true, d),
            _ => (false, text),
        };
        let bad = |reason| DecodeError::InvalidNumber { offset: start, reason };
        if digits.is_empty() {
            return Err(bad("no digits"));
        }
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad("not a decimal integer"));
        }
        let mut value: i64 = 0;
        for &d in digits {
            let d = i64::from(d - b'0');
            value = value
                .checked_mul(10)
                .and_then(|v| if negative { v.checked_sub(d) } else { v.checked_add(d) })
                .ok_or_else(|| bad("outside the 64-bit range"))?;
        }
        if negative && value == 0 {
            self.deviation(start, DeviationKind::NegativeZero);
        } else if digits.len() > 1 && digits[0] == b'0' {
            self.deviation(start, DeviationKind::IntLeadingZero);
        }
        self.pos += len + 1;
        Ok(value)
    }

    /// `<len>:<bytes>` at `self.pos`.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let rest = &self.input[self.pos..];
        let Some(colon) = rest.iter().position(|&b| b == b':') else {
            return Err(DecodeError::Truncated {
                offset: self.input.len(),
                what: "a string length",
            });
        };
        let digits = &rest[..colon];
        let bad = |reason| DecodeError::InvalidNumber { offset: start, reason };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad("string length is not a decimal number"));
        }
        let mut len: usize = 0;
        for &d in digits {
            len = len
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(d - b'0')))
                .ok_or_else(|| bad("string length out of range"))?;
        }
        if digits.len() > 1 && digits[0] == b'0' {
            self.deviation(start, DeviationKind::LengthLeadingZero);
        }
        let body = colon + 1;
        if rest.len() - body < len {
            return Err(DecodeError::Truncated {
                offset: self.input.len(),
                what: "a byte string",
            });
        }
        self.pos += body + len;
        Ok(&rest[body..body + len])
    }
}
