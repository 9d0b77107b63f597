//! Small appends to a byte buffer as copies of a fixed size. A copy of a
//! length known at compile time is a few vector moves; one of a length known
//! only at run time is a call to `memcpy`, which costs more than the handful
//! of bytes a number, a date or a column label has. JSON lines make tens of
//! these per row, so they are worth it there.

use gapless_decoder::values::DIGIT_PAIRS;

/// Appends the first `len` bytes of `block` (`len` is at most `N`).
#[inline(always)]
pub fn push_block<const N: usize>(out: &mut Vec<u8>, block: &[u8; N], len: usize) {
    let at = out.len();
    out.extend_from_slice(block);
    out.truncate(at + len.min(N));
}

/// Appends `init`, lets `fill` write into those bytes of `out` and keeps
/// the first ones, as many as it returns. Text written this way lands in
/// the output at once: text built in a buffer of its own and then copied
/// is read back right after small writes, which stalls the CPU.
#[inline(always)]
pub fn push_with<const N: usize>(out: &mut Vec<u8>, init: [u8; N], fill: impl FnOnce(&mut [u8; N]) -> usize) {
    let at = out.len();
    out.extend_from_slice(&init);
    let len = match <&mut [u8; N]>::try_from(&mut out[at..]) {
        Ok(block) => fill(block),
        Err(_) => 0,
    };
    out.truncate(at + len.min(N));
}

/// Short bytes kept in a block of 16 or 32 (one or two vector moves to
/// copy), longer ones on the heap.
#[derive(Debug, Clone)]
pub enum Short {
    /// Up to 16 bytes and the length used.
    Block16([u8; 16], usize),
    /// Up to 32 bytes and the length used.
    Block32([u8; 32], usize),
    /// Longer text.
    Long(Vec<u8>),
}

impl Short {
    /// Keeps `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        fn block<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
            let mut block = [0u8; N];
            block.get_mut(..bytes.len())?.copy_from_slice(bytes);
            Some(block)
        }
        if let Some(b) = block::<16>(bytes) {
            Short::Block16(b, bytes.len())
        } else if let Some(b) = block::<32>(bytes) {
            Short::Block32(b, bytes.len())
        } else {
            Short::Long(bytes.to_vec())
        }
    }

    /// Appends the bytes to `out`.
    #[inline]
    pub fn push_to(&self, out: &mut Vec<u8>) {
        match self {
            Short::Block16(block, len) => push_block(out, block, *len),
            Short::Block32(block, len) => push_block(out, block, *len),
            Short::Long(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// Appends the decimal text of `v`, with a minus sign when `negative`.
#[inline]
pub fn push_integer(out: &mut Vec<u8>, v: u64, negative: bool) {
    push_with(out, [b'-'; 24], |block| {
        let digits = v.checked_ilog10().map_or(1, |l| l as usize + 1);
        let len = digits + usize::from(negative);
        let mut i = len;
        let mut v = v;
        while v >= 100 {
            let d = (v % 100) as usize * 2;
            block[i - 2..i].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
            v /= 100;
            i -= 2;
        }
        if v >= 10 {
            let d = v as usize * 2;
            block[i - 2..i].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
        } else {
            block[i - 1] = b'0' + v as u8;
        }
        len
    });
}

/// Appends the decimal text of a signed integer.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    push_integer(out, v.unsigned_abs(), v < 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_like_display() {
        let mut cases: Vec<i64> = vec![0, 1, 9, 10, 99, 100, 101, i64::MIN, i64::MAX, -1, -10, -100];
        for p in 0..19 {
            let t = 10i64.pow(p);
            cases.extend([t - 1, t, t + 1, -t, 1 - t, -t - 1]);
        }
        for v in cases {
            let mut out = Vec::new();
            push_i64(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
        for v in [u64::MAX, u64::MAX - 1, 10_000_000_000_000_000_000, 9_999_999_999_999_999_999] {
            let mut out = Vec::new();
            push_integer(&mut out, v, false);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }

    #[test]
    fn short_keeps_every_length() {
        for n in [0, 1, 15, 16, 17, 31, 32, 33, 100] {
            let bytes: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let mut out = b"x".to_vec();
            Short::new(&bytes).push_to(&mut out);
            assert_eq!(&out[1..], &bytes[..]);
        }
    }
}
