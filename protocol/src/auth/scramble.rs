//! Challenge/response scrambles of `mysql_native_password` and `caching_sha2_password`.
//!
//! Both prove knowledge of the password without sending it: the server keeps a hash of a hash
//! and can check the XOR below against a fresh nonce, but an eavesdropper learns no reusable
//! secret (short of brute-forcing the password).

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Length of the scramble (nonce) of the SHA-1 and SHA-256 plugins.
pub const SCRAMBLE_LEN: usize = 20;

/// The 20-byte scramble inside `nonce`.
///
/// Servers send the scramble NUL-terminated in auth-switch requests (21 bytes); the terminator is
/// not part of what the server hashes. Other lengths are used as given.
pub(crate) fn scramble20(nonce: &[u8]) -> &[u8] {
    match nonce {
        [scramble @ .., 0] if scramble.len() == SCRAMBLE_LEN => scramble,
        _ => nonce,
    }
}

/// `mysql_native_password` response:
/// `SHA1(password) XOR SHA1(nonce || SHA1(SHA1(password)))`.
///
/// An empty password gives an empty response (the server's check for a password-less account).
/// `nonce` is the 20-byte scramble; a 21st trailing NUL is ignored.
pub fn native_password(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mask = Sha1::new().chain_update(scramble20(nonce)).chain_update(stage2).finalize();
    xor(&stage1, &mask)
}

/// `caching_sha2_password` fast-path response:
/// `SHA256(password) XOR SHA256(SHA256(SHA256(password)) || nonce)`.
///
/// Note the order differs from [`native_password`]: the double hash comes *before* the nonce.
/// An empty password gives an empty response. A 21st trailing NUL on `nonce` is ignored.
pub fn caching_sha2_password(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mask = Sha256::new().chain_update(stage2).chain_update(scramble20(nonce)).finalize();
    xor(&stage1, &mask)
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testutil::{hex, NONCE_A, NONCE_B, PASSWORDS};

    // Expected values from protocol/tests/data/auth/vectors.py, i.e. hashlib:
    // xor(sha1(pw), sha1(nonce + sha1(sha1(pw))))
    // for PASSWORDS[1..] x (NONCE_A, NONCE_B).
    const NATIVE: [[&str; 2]; 4] = [
        ["b32bb3a583e1340c0a1108d58b1be49781ad8c2f", "5ffd338c8711fc994176ef53da5cc877e14bc82c"],
        ["117c496a9bb825fb081006b9b1d65da9bf455dc5", "e7dbc7133cbab54ef8e62062770548578c6509d0"],
        ["bdeffc3b0bc493039d50a33f04a74433752b362b", "525c00a38710addc8a63fd64be381ec761f93770"],
        ["6541a8abdddf4ef45dc85af50fea8323acc26efa", "131b745241b5235db8c3925a25a8b1c3440de0d4"],
    ];

    // xor(sha256(pw), sha256(sha256(sha256(pw)) + nonce)), same script.
    const CACHING_SHA2: [[&str; 2]; 4] = [
        [
            "746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9",
            "b268f341a515bce38a6f35e19883c3a8bd9f280306c6515b964e7dcf83277ad1",
        ],
        [
            "5088b1baa885895a8dbacc713c10ff7167d6b37d7a712874207e25abb36b4fa1",
            "068baf7e2816f361218d9747b0c64d3de8232345d55299df09aa89fb7ab2677e",
        ],
        [
            "3aff9198b25740dd35b3283315d7b00a577189e857455d5a65ccaea5cfc53b45",
            "1048636dbab616696fe8056290d13b75b3f62b70a0146662077594219d919c17",
        ],
        [
            "4592059f364747ec3f0468a28489bf7241ae6d1460d68826af723918ecacd09f",
            "f7413734eef93364a232a0ddbe008a27abc652755203210cfb99baefde5d95e8",
        ],
    ];

    #[test]
    fn native_password_matches_hashlib() {
        for (password, expected) in PASSWORDS[1..].iter().zip(NATIVE) {
            assert_eq!(native_password(password, &NONCE_A), hex(expected[0]));
            assert_eq!(native_password(password, &NONCE_B), hex(expected[1]));
        }
    }

    #[test]
    fn caching_sha2_password_matches_hashlib() {
        for (password, expected) in PASSWORDS[1..].iter().zip(CACHING_SHA2) {
            assert_eq!(caching_sha2_password(password, &NONCE_A), hex(expected[0]));
            assert_eq!(caching_sha2_password(password, &NONCE_B), hex(expected[1]));
        }
    }

    #[test]
    fn empty_password_gives_empty_response() {
        assert_eq!(PASSWORDS[0], b"");
        assert!(native_password(b"", &NONCE_A).is_empty());
        assert!(caching_sha2_password(b"", &NONCE_A).is_empty());
    }

    #[test]
    fn trailing_nul_of_a_21_byte_scramble_is_ignored() {
        let mut terminated = NONCE_A.to_vec();
        terminated.push(0);
        assert_eq!(native_password(b"secret", &terminated), hex(NATIVE[0][0]));
        assert_eq!(caching_sha2_password(b"secret", &terminated), hex(CACHING_SHA2[0][0]));
        // Only a terminator is stripped: a 20-byte scramble ending in 0 is used whole.
        let mut ends_in_zero = NONCE_A;
        ends_in_zero[19] = 0;
        assert_eq!(scramble20(&ends_in_zero), &ends_in_zero[..]);
    }
}
