//! A bounded reader over a byte slice that knows its absolute offset.
//!
//! All field reads in the decoder go through [`Cursor`]: nom's `complete`
//! parsers do the byte work (integers whose width is only known at run
//! time, the bulk of row values, are read with one 8-byte load where the
//! slice has 8 bytes left), and the cursor turns failures into a
//! [`DecodeError`] that names the field and the absolute offset. No read can
//! run past the slice it was given, and no length from the input is used to
//! allocate: slices are borrowed, never copied.

use nom::number::complete::{be_u16, be_u24, be_u32, le_u16, le_u24, le_u32, le_u64, u8 as nom_u8};

use crate::error::{DecodeError, Result};

/// A cursor over `buf`, whose first byte sits at absolute offset `base`.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

type NomErr<'a> = nom::Err<nom::error::Error<&'a [u8]>>;

impl<'a> Cursor<'a> {
    /// A cursor over `buf`, whose first byte is at absolute offset `base`.
    pub fn new(buf: &'a [u8], base: u64) -> Self {
        Cursor { buf, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    #[inline]
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when everything was read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Consumes and returns every unread byte.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.rest();
        self.pos = self.buf.len();
        rest
    }

    /// An error of kind "invalid" at the current offset.
    pub fn invalid(&self, what: &'static str, detail: impl Into<String>) -> DecodeError {
        DecodeError::Invalid { offset: self.offset(), what, detail: detail.into() }
    }

    fn truncated(&self, what: &'static str, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            offset: self.offset(),
            what,
            needed: needed as u64,
            available: self.remaining() as u64,
        }
    }

    /// Runs a nom parser over the unread bytes; on success advances past
    /// what it consumed. `needed` is only used for the error message.
    #[inline]
    pub fn parse<O>(
        &mut self,
        what: &'static str,
        needed: usize,
        mut parser: impl FnMut(&'a [u8]) -> Result<(&'a [u8], O), NomErr<'a>>,
    ) -> Result<O> {
        match parser(self.rest()) {
            Ok((rest, out)) => {
                self.pos = self.buf.len() - rest.len();
                Ok(out)
            }
            Err(_) => Err(self.truncated(what, needed)),
        }
    }

    /// Reads one byte.
    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        self.parse(what, 1, nom_u8)
    }

    /// Reads a little-endian u16.
    #[inline]
    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        self.parse(what, 2, le_u16)
    }

    /// Reads a little-endian 24-bit integer.
    #[inline]
    pub fn u24(&mut self, what: &'static str) -> Result<u32> {
        self.parse(what, 3, le_u24)
    }

    /// Reads a little-endian u32.
    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        self.parse(what, 4, le_u32)
    }

    /// Reads a little-endian u64.
    #[inline]
    pub fn u64(&mut self, what: &'static str) -> Result<u64> {
        self.parse(what, 8, le_u64)
    }

    /// Reads a big-endian u16.
    #[inline]
    pub fn u16_be(&mut self, what: &'static str) -> Result<u16> {
        self.parse(what, 2, be_u16)
    }

    /// Reads a big-endian 24-bit integer.
    #[inline]
    pub fn u24_be(&mut self, what: &'static str) -> Result<u32> {
        self.parse(what, 3, be_u24)
    }

    /// Reads a big-endian u32.
    #[inline]
    pub fn u32_be(&mut self, what: &'static str) -> Result<u32> {
        self.parse(what, 4, be_u32)
    }

    /// Reads an unsigned little-endian integer of `n` bytes (0..=8).
    #[inline]
    pub fn uint_n(&mut self, what: &'static str, n: usize) -> Result<u64> {
        // With eight bytes to read from, one load and a mask instead of a
        // loop over the bytes (row values are read this way).
        if let Some(word) = self.word() {
            if n <= 8 {
                self.pos += n;
                return Ok(u64::from_le_bytes(word) & u64::MAX.checked_shr(64 - 8 * n as u32).unwrap_or(0));
            }
        }
        let bytes = self.bytes(what, n)?;
        Ok(le_uint(bytes))
    }

    /// Reads an unsigned big-endian integer of `n` bytes (0..=8).
    #[inline]
    pub fn uint_n_be(&mut self, what: &'static str, n: usize) -> Result<u64> {
        if let Some(word) = self.word() {
            if n <= 8 {
                self.pos += n;
                return Ok(u64::from_be_bytes(word).checked_shr(64 - 8 * n as u32).unwrap_or(0));
            }
        }
        let bytes = self.bytes(what, n)?;
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// The next eight bytes, when there are that many.
    #[inline(always)]
    fn word(&self) -> Option<[u8; 8]> {
        self.buf.get(self.pos..self.pos + 8).and_then(|w| w.try_into().ok())
    }

    /// Borrows the next `n` bytes.
    #[inline]
    pub fn bytes(&mut self, what: &'static str, n: usize) -> Result<&'a [u8]> {
        // The hot path of row decoding: one bounds check, no parser call.
        if n > self.remaining() {
            return Err(self.truncated(what, n));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Borrows the next `n` bytes as a sub-cursor (keeps absolute offsets).
    pub fn sub(&mut self, what: &'static str, n: usize) -> Result<Cursor<'a>> {
        let base = self.offset();
        Ok(Cursor::new(self.bytes(what, n)?, base))
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, what: &'static str, n: usize) -> Result<()> {
        self.bytes(what, n).map(|_| ())
    }

    /// Reads a MySQL length-encoded integer (`net_field_length`).
    pub fn lenenc(&mut self, what: &'static str) -> Result<u64> {
        let first = self.u8(what)?;
        match first {
            0..=250 => Ok(u64::from(first)),
            251 => Err(DecodeError::Invalid {
                offset: self.offset() - 1,
                what,
                detail: "0xfb (NULL) where a length was expected".into(),
            }),
            252 => self.uint_n(what, 2),
            253 => self.uint_n(what, 3),
            // 0xfe: 8 bytes; 0xff never appears as a length.
            254 => self.uint_n(what, 8),
            255 => Err(DecodeError::Invalid {
                offset: self.offset() - 1,
                what,
                detail: "0xff is not a valid length prefix".into(),
            }),
        }
    }

    /// Reads a length-encoded integer that is used as a length within this
    /// buffer: it must not exceed what is left.
    pub fn lenenc_len(&mut self, what: &'static str) -> Result<usize> {
        let at = self.offset();
        let n = self.lenenc(what)?;
        if n > self.remaining() as u64 {
            return Err(DecodeError::Truncated {
                offset: at,
                what,
                needed: n,
                available: self.remaining() as u64,
            });
        }
        Ok(n as usize)
    }

    /// Reads a length-encoded string (length then bytes).
    pub fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let n = self.lenenc_len(what)?;
        self.bytes(what, n)
    }

    /// Reads a 1-byte length then that many bytes.
    pub fn u8_prefixed(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let n = self.u8(what)?;
        self.bytes(what, usize::from(n))
    }

    /// Reads bytes up to a NUL, consuming the NUL.
    pub fn nul_terminated(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let rest = self.rest();
        match rest.iter().position(|&b| b == 0) {
            Some(end) => {
                let s = &rest[..end];
                self.pos += end + 1;
                Ok(s)
            }
            None => Err(self.invalid(what, "missing NUL terminator")),
        }
    }

    /// Fails unless everything was consumed.
    pub fn expect_end(&self, what: &'static str) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.invalid(what, format!("{} unexpected trailing bytes", self.remaining())))
        }
    }
}

/// Little-endian unsigned integer from up to 8 bytes.
#[inline]
pub fn le_uint(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_integers_near_and_far_from_the_end() {
        let bytes: Vec<u8> = (1..=20u8).map(|b| b.wrapping_mul(37)).collect();
        for n in 0..=8usize {
            for at in 0..=bytes.len() - n {
                let le = bytes[at..at + n].iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b));
                let be = bytes[at..at + n].iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
                let mut c = Cursor::new(&bytes, 0);
                c.bytes("skip", at).unwrap();
                assert_eq!(c.uint_n("x", n).unwrap(), le, "le {n} at {at}");
                assert_eq!(c.offset(), (at + n) as u64);
                let mut c = Cursor::new(&bytes, 0);
                c.bytes("skip", at).unwrap();
                assert_eq!(c.uint_n_be("x", n).unwrap(), be, "be {n} at {at}");
                assert_eq!(c.remaining(), bytes.len() - at - n);
            }
            let mut c = Cursor::new(&bytes[..n.saturating_sub(1)], 0);
            if n > 0 {
                assert!(c.uint_n("x", n).is_err() && c.uint_n_be("x", n).is_err());
            }
        }
    }

    #[test]
    fn lenenc_forms() {
        let mut c = Cursor::new(&[0xfa, 0xfc, 0x01, 0x02, 0xfd, 1, 2, 3, 0xfe, 1, 0, 0, 0, 0, 0, 0, 0], 0);
        assert_eq!(c.lenenc("x").unwrap(), 250);
        assert_eq!(c.lenenc("x").unwrap(), 0x0201);
        assert_eq!(c.lenenc("x").unwrap(), 0x030201);
        assert_eq!(c.lenenc("x").unwrap(), 1);
        assert!(c.is_empty());
    }

    #[test]
    fn truncation_names_field_and_absolute_offset() {
        let mut c = Cursor::new(&[1, 2, 3], 100);
        c.u8("a").unwrap();
        let err = c.u32("table id").unwrap_err();
        assert_eq!(err, DecodeError::Truncated { offset: 101, what: "table id", needed: 4, available: 2 });
    }

    #[test]
    fn lenenc_len_cannot_exceed_buffer() {
        let mut c = Cursor::new(&[0xfc, 0xff, 0xff, 0], 10);
        let err = c.lenenc_len("column count").unwrap_err();
        assert_eq!(err.offset(), 10);
    }

    #[test]
    fn big_endian_reads() {
        let mut c = Cursor::new(&[0x80, 0, 0, 1, 0x01, 0x02], 0);
        assert_eq!(c.u32_be("a").unwrap(), 0x8000_0001);
        assert_eq!(c.uint_n_be("b", 2).unwrap(), 0x0102);
    }
}
