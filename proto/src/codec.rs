//! The bounds-checked byte reader and writer every onionlab decoder is built on.
//!
//! Modelled on rustls' `codec`: a [`Reader`] never panics on short input, it returns
//! [`DecodeError::Truncated`]; [`Reader::finish`] rejects trailing bytes so that a
//! document decodes from exactly one encoding.

use thiserror::Error;

/// Why a byte string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the named field was complete.
    #[error("truncated input while reading {0}")]
    Truncated(&'static str),
    /// Bytes were left over after a complete value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A field held a value the format does not allow.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A length or count exceeded the format's limit.
    #[error("{field} too long: {len} > {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The length announced.
        len: usize,
        /// The most allowed.
        max: usize,
    },
}

impl DecodeError {
    /// Shorthand for [`DecodeError::Invalid`].
    pub fn invalid(field: &'static str, reason: &'static str) -> Self {
        DecodeError::Invalid { field, reason }
    }
}

/// A cursor over a byte slice whose every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated(what));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A u16-length-prefixed byte string of at most `max` bytes.
    pub fn bytes_u16(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16(what)?);
        if len > max {
            return Err(DecodeError::TooLong { field: what, len, max });
        }
        self.take(len, what)
    }

    /// A u8-length-prefixed UTF-8 string of at most `max` bytes.
    pub fn string_u8(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        let len = usize::from(self.u8(what)?);
        if len > max {
            return Err(DecodeError::TooLong { field: what, len, max });
        }
        let raw = self.take(len, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::invalid(what, "not UTF-8"))
    }

    /// Everything not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Succeeds only if every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Appending encoders for `Vec<u8>`, the writing half of [`Reader`].
pub trait Writer {
    /// Appends one byte.
    fn put_u8(&mut self, v: u8);
    /// Appends a big-endian u16.
    fn put_u16(&mut self, v: u16);
    /// Appends a big-endian u32.
    fn put_u32(&mut self, v: u32);
    /// Appends a big-endian u64.
    fn put_u64(&mut self, v: u64);
    /// Appends raw bytes.
    fn put(&mut self, v: &[u8]);
    /// Appends a u16 length then the bytes. The caller keeps `v` under 64 KiB.
    fn put_bytes_u16(&mut self, v: &[u8]);
    /// Appends a u8 length then the string. The caller keeps `v` under 256 bytes.
    fn put_string_u8(&mut self, v: &str);
}

impl Writer for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
    fn put_bytes_u16(&mut self, v: &[u8]) {
        debug_assert!(v.len() <= usize::from(u16::MAX));
        self.put_u16(u16::try_from(v.len()).unwrap_or(u16::MAX));
        self.put(&v[..v.len().min(usize::from(u16::MAX))]);
    }
    fn put_string_u8(&mut self, v: &str) {
        let bytes = &v.as_bytes()[..v.len().min(255)];
        self.put_u8(bytes.len() as u8);
        self.put(bytes);
    }
}

/// Encodes a socket address as `family(1) addr(4|16) port(2)`.
pub fn put_socket_addr(w: &mut Vec<u8>, addr: &std::net::SocketAddr) {
    match addr {
        std::net::SocketAddr::V4(a) => {
            w.put_u8(4);
            w.put(&a.ip().octets());
        }
        std::net::SocketAddr::V6(a) => {
            w.put_u8(6);
            w.put(&a.ip().octets());
        }
    }
    w.put_u16(addr.port());
}

/// Decodes what [`put_socket_addr`] wrote.
pub fn read_socket_addr(r: &mut Reader<'_>) -> Result<std::net::SocketAddr, DecodeError> {
    let ip: std::net::IpAddr = match r.u8("address family")? {
        4 => std::net::Ipv4Addr::from(r.array::<4>("IPv4 address")?).into(),
        6 => std::net::Ipv6Addr::from(r.array::<16>("IPv6 address")?).into(),
        _ => return Err(DecodeError::invalid("address family", "not 4 or 6")),
    };
    Ok(std::net::SocketAddr::new(ip, r.u16("port")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_and_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("x"), Ok(0x0102));
        assert_eq!(r.u16("y"), Err(DecodeError::Truncated("y")));
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(r.u8("z"), Ok(3));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn length_prefix_limit_is_enforced() {
        let mut r = Reader::new(&[0, 5, 1, 2, 3, 4, 5]);
        assert!(matches!(r.bytes_u16(4, "blob"), Err(DecodeError::TooLong { .. })));
    }
}
