//! The owned bencode [`Value`] and its canonical encoder.

use std::collections::BTreeMap;

/// An owned bencode value. Dictionaries are sorted maps, so every `Value` has exactly one
/// encoding: [`Value::encode`] writes keys in byte order with no leading zeros anywhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A byte string (not necessarily UTF-8).
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A dictionary with byte-string keys.
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
    /// A byte string value.
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        Value::Bytes(b.into())
    }

    /// A dictionary from `(key, value)` pairs; a later duplicate key replaces an earlier one.
    pub fn dict<K: Into<Vec<u8>>>(entries: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Dict(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(map) => {
                out.push(b'd');
                for (k, v) in map {
                    encode_bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}
