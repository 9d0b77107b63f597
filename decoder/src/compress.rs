//! MariaDB's per-event zlib compression (`log_bin_compress`).
//!
//! A compressed field starts with one header byte: the top bit is set and the
//! low three bits say how many big-endian bytes of uncompressed length
//! follow; then comes a zlib stream.

use std::io::Read;

use crate::error::{DecodeError, Result};

/// Largest uncompressed size accepted (a MariaDB event cannot exceed
/// max_allowed_packet, itself at most 1 GiB).
pub const MAX_INFLATED: u64 = 1 << 30;

/// Inflates a MariaDB compressed field that starts at absolute `offset`.
pub fn inflate(data: &[u8], offset: u64, what: &'static str) -> Result<Vec<u8>> {
    let fail = |detail: String| DecodeError::Decompress { offset, what, detail };
    let header = *data.first().ok_or_else(|| fail("empty compressed field".into()))?;
    if header & 0x80 == 0 {
        return Err(fail(format!("header byte {header:#04x} lacks the compression flag")));
    }
    let len_bytes = usize::from(header & 0x07);
    if !(1..=4).contains(&len_bytes) || data.len() < 1 + len_bytes {
        return Err(fail(format!("bad length width {len_bytes}")));
    }
    let expected = data[1..1 + len_bytes].iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if expected > MAX_INFLATED {
        return Err(fail(format!("claims {expected} bytes uncompressed, over the 1 GiB cap")));
    }
    let mut out = Vec::with_capacity(expected as usize);
    let mut z = flate2::read::ZlibDecoder::new(&data[1 + len_bytes..]).take(expected + 1);
    z.read_to_end(&mut out).map_err(|e| fail(e.to_string()))?;
    if out.len() as u64 != expected {
        return Err(fail(format!("inflated to {} bytes, header said {expected}", out.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        let body = z.finish().unwrap();
        let mut out = vec![0x82, (data.len() >> 8) as u8, data.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn round_trip() {
        let text = b"INSERT INTO t VALUES (1), (2), (3)".repeat(20);
        assert_eq!(inflate(&deflate(&text), 0, "query").unwrap(), text);
    }

    #[test]
    fn wrong_length_and_garbage_are_errors() {
        let mut z = deflate(b"hello hello hello");
        z[2] = 99;
        assert!(inflate(&z, 7, "query").is_err());
        let err = inflate(&[0x81, 5, 1, 2, 3], 7, "query").unwrap_err();
        assert_eq!(err.offset(), 7);
        assert!(inflate(&[0x01, 5], 0, "query").is_err());
    }
}
