//! The protocol's basic data types: fixed-width little-endian integers,
//! length-encoded integers and strings, NUL-terminated strings.
//!
//! [`Reader`] reads them from a payload and remembers the offset, so every
//! decoding error says where in the packet it happened; the `put_*`
//! functions write them.

use crate::error::ProtocolError;

/// The first byte of a length-encoded integer that stands for SQL NULL in a
/// text result row.
pub const NULL_MARKER: u8 = 0xfb;

/// A cursor over one packet payload.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Offset of the next byte from the start of the payload.
    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// The next byte, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let Some(out) = self.buf.get(self.pos..self.pos.saturating_add(n)) else {
            return Err(ProtocolError::Truncated { what, offset: self.pos, needed: n - self.remaining() });
        };
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtocolError> {
        let bytes = self.bytes(N, what)?;
        Ok(bytes.try_into().expect("bytes() returned N bytes"))
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, ProtocolError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u24(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        let [a, b, c] = self.array(what)?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length-encoded integer; `None` for the NULL marker `0xfb`.
    pub fn lenenc_int_or_null(&mut self, what: &'static str) -> Result<Option<u64>, ProtocolError> {
        let at = self.pos;
        Ok(Some(match self.u8(what)? {
            b @ 0..=0xfa => u64::from(b),
            NULL_MARKER => return Ok(None),
            0xfc => u64::from(self.u16(what)?),
            0xfd => u64::from(self.u24(what)?),
            0xfe => self.u64(what)?,
            0xff => return Err(self.invalid_at(at, what, "0xff does not start a length-encoded integer")),
        }))
    }

    /// A length-encoded integer where NULL is not allowed.
    pub fn lenenc_int(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        let at = self.pos;
        self.lenenc_int_or_null(what)?.ok_or_else(|| self.invalid_at(at, what, "unexpected NULL marker"))
    }

    /// A length-encoded string, or `None` for the NULL marker.
    pub fn lenenc_bytes_or_null(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, ProtocolError> {
        match self.lenenc_int_or_null(what)? {
            None => Ok(None),
            Some(len) => {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                self.bytes(len, what).map(Some)
            }
        }
    }

    /// A length-encoded string.
    pub fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let at = self.pos;
        self.lenenc_bytes_or_null(what)?.ok_or_else(|| self.invalid_at(at, what, "unexpected NULL marker"))
    }

    /// A string with a one-byte length in front.
    pub fn u8_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let len = self.u8(what)?;
        self.bytes(usize::from(len), what)
    }

    /// A NUL-terminated string, without its NUL.
    pub fn nul_terminated(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let rest = &self.buf[self.pos..];
        let Some(len) = rest.iter().position(|&b| b == 0) else {
            return Err(ProtocolError::Truncated { what, offset: self.buf.len(), needed: 1 });
        };
        self.pos += len + 1;
        Ok(&rest[..len])
    }

    /// A string running to the first NUL or to the end of the payload,
    /// whichever comes first (some servers leave out the final NUL).
    pub fn nul_terminated_or_eof(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        match rest.iter().position(|&b| b == 0) {
            Some(len) => {
                self.pos += len + 1;
                &rest[..len]
            }
            None => {
                self.pos = self.buf.len();
                rest
            }
        }
    }

    /// Everything left in the payload.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), ProtocolError> {
        self.bytes(n, what).map(drop)
    }

    /// An error for the field that starts at `offset`.
    pub fn invalid_at(&self, offset: usize, what: &'static str, detail: impl Into<String>) -> ProtocolError {
        ProtocolError::Invalid { what, offset, detail: detail.into() }
    }

    /// Fails unless the whole payload was consumed: trailing bytes mean the
    /// message was not what we took it for.
    pub fn finish(&self, what: &'static str) -> Result<(), ProtocolError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.invalid_at(self.pos, what, format!("{} unexpected trailing bytes", self.remaining())))
        }
    }
}

pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_u24(out: &mut Vec<u8>, v: u32) {
    debug_assert!(v < 1 << 24);
    out.extend_from_slice(&v.to_le_bytes()[..3]);
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Writes the shortest length-encoded form of `v`.
pub fn put_lenenc_int(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0xfa => out.push(v as u8),
        0xfb..=0xffff => {
            out.push(0xfc);
            put_u16(out, v as u16);
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            put_u24(out, v as u32);
        }
        _ => {
            out.push(0xfe);
            put_u64(out, v);
        }
    }
}

pub fn put_lenenc_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_lenenc_int(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub fn put_nul_terminated(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(!bytes.contains(&0), "a NUL-terminated string cannot hold NUL");
    out.extend_from_slice(bytes);
    out.push(0);
}

/// Writes a string with a one-byte length; the caller keeps it under 256
/// bytes (longer ones are cut, which the encoder of each message checks).
pub fn put_u8_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len().min(255);
    out.push(len as u8);
    out.extend_from_slice(&bytes[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_int_round_trips_at_every_width_boundary() {
        for v in [0, 1, 250, 251, 252, 0xffff, 0x1_0000, 0xff_ffff, 0x100_0000, u64::MAX] {
            let mut out = Vec::new();
            put_lenenc_int(&mut out, v);
            let expected_len = match v {
                0..=250 => 1,
                251..=0xffff => 3,
                0x1_0000..=0xff_ffff => 4,
                _ => 9,
            };
            assert_eq!(out.len(), expected_len, "width of {v}");
            let mut r = Reader::new(&out);
            assert_eq!(r.lenenc_int("n").unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn lenenc_null_and_0xff() {
        assert_eq!(Reader::new(&[0xfb]).lenenc_int_or_null("n").unwrap(), None);
        assert!(matches!(
            Reader::new(&[0xfb]).lenenc_int("n"),
            Err(ProtocolError::Invalid { offset: 0, .. })
        ));
        assert!(matches!(Reader::new(&[0xff]).lenenc_int("n"), Err(ProtocolError::Invalid { .. })));
    }

    #[test]
    fn truncation_names_offset_and_shortfall() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.u8("a").unwrap();
        assert_eq!(r.u32("b"), Err(ProtocolError::Truncated { what: "b", offset: 1, needed: 2 }));
        let mut r = Reader::new(&[0xfc, 0x10, 0x00, b'x']);
        assert_eq!(r.lenenc_bytes("s"), Err(ProtocolError::Truncated { what: "s", offset: 3, needed: 15 }));
        let huge = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(Reader::new(&huge).lenenc_bytes("s"), Err(ProtocolError::Truncated { .. })));
    }

    #[test]
    fn nul_terminated_strings() {
        let mut r = Reader::new(b"abc\0def");
        assert_eq!(r.nul_terminated("s").unwrap(), b"abc");
        assert!(r.clone().nul_terminated("s").is_err());
        assert_eq!(r.nul_terminated_or_eof(), b"def");
        assert!(r.is_empty());
        let mut out = Vec::new();
        put_nul_terminated(&mut out, b"xy");
        assert_eq!(out, b"xy\0");
    }

    #[test]
    fn fixed_width_integers() {
        let mut out = Vec::new();
        put_u16(&mut out, 0x0102);
        put_u24(&mut out, 0x030405);
        put_u32(&mut out, 0x06070809);
        put_u64(&mut out, 0x0a0b0c0d0e0f1011);
        let mut r = Reader::new(&out);
        assert_eq!(r.u16("a").unwrap(), 0x0102);
        assert_eq!(r.u24("b").unwrap(), 0x030405);
        assert_eq!(r.u32("c").unwrap(), 0x06070809);
        assert_eq!(r.u64("d").unwrap(), 0x0a0b0c0d0e0f1011);
        r.finish("all").unwrap();
    }
}
