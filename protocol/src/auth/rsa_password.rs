//! Sending the password RSA-encrypted when the connection is not TLS.
//!
//! `sha256_password` and `caching_sha2_password` (full authentication) need the password itself.
//! Without TLS, MySQL encrypts it to the server's RSA key: `(password || 0x00) XOR nonce`, the
//! nonce repeated cyclically so the ciphertext is bound to this connection's scramble, then
//! RSA-OAEP with SHA-1 and MGF1-SHA1 (OpenSSL's `RSA_PKCS1_OAEP_PADDING`), which MySQL uses for
//! both plugins since 8.0.5.

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::rand_core::{self, CryptoRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPublicKey};
use sha1::Sha1;

use super::error::{AuthError, PublicKeyError};
use super::scramble::scramble20;

/// OAEP draws one SHA-1 output's worth of random seed.
const OAEP_SEED_LEN: usize = 20;
/// OAEP overhead: a zero byte, the seed, the label hash and a 0x01 separator.
const OAEP_OVERHEAD: usize = 2 * OAEP_SEED_LEN + 2;

const SPKI_LABEL: &[u8] = b"-----BEGIN PUBLIC KEY-----";
const PKCS1_LABEL: &[u8] = b"-----BEGIN RSA PUBLIC KEY-----";

/// Encrypts the password for `sha256_password` / `caching_sha2_password` without TLS:
/// `RSA-OAEP-SHA1(public_key, (password || 0x00) XOR nonce)`, the nonce repeated cyclically.
///
/// `nonce` is the 20-byte scramble (a 21st trailing NUL is ignored). `public_key_pem` may be
/// SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`, what servers send) or PKCS#1
/// (`BEGIN RSA PUBLIC KEY`); surrounding whitespace and NULs are tolerated.
pub fn rsa_encrypt_password(
    password: &[u8],
    nonce: &[u8],
    public_key_pem: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let key = parse_public_key(public_key_pem)?;
    let plaintext = mask_password(password, nonce)?;
    let mut seed = [0u8; OAEP_SEED_LEN];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut seed)
        .map_err(|_| AuthError::Random("the system random number generator failed"))?;
    encrypt_with_seed(&key, &plaintext, seed)
}

/// Parses either PEM form MySQL deployments use, chosen by its label.
pub(crate) fn parse_public_key(pem: &[u8]) -> Result<RsaPublicKey, PublicKeyError> {
    let pem = pem.trim_ascii_start().trim_ascii_end();
    let pem = pem.strip_suffix(b"\0").unwrap_or(pem).trim_ascii_end();
    let text = std::str::from_utf8(pem).map_err(|_| PublicKeyError::NotPem)?;
    if pem.starts_with(SPKI_LABEL) {
        RsaPublicKey::from_public_key_pem(text).map_err(PublicKeyError::Spki)
    } else if pem.starts_with(PKCS1_LABEL) {
        RsaPublicKey::from_pkcs1_pem(text).map_err(PublicKeyError::Pkcs1)
    } else {
        Err(PublicKeyError::NotPem)
    }
}

/// `(password || 0x00) XOR nonce`, the nonce repeated cyclically (MySQL's `xor_string` over
/// `strlen + 1` bytes, so the terminator is masked too).
fn mask_password(password: &[u8], nonce: &[u8]) -> Result<Vec<u8>, AuthError> {
    let nonce = scramble20(nonce);
    if nonce.is_empty() {
        return Err(AuthError::EmptyNonce);
    }
    Ok(password.iter().chain(&[0]).zip(nonce.iter().cycle()).map(|(p, n)| p ^ n).collect())
}

/// RSA-OAEP-SHA1 with a given seed, so the padding is testable against an independent
/// implementation; [`rsa_encrypt_password`] passes fresh random bytes.
fn encrypt_with_seed(
    key: &RsaPublicKey,
    plaintext: &[u8],
    seed: [u8; OAEP_SEED_LEN],
) -> Result<Vec<u8>, AuthError> {
    let max = key.size().saturating_sub(OAEP_OVERHEAD);
    if plaintext.len() > max {
        return Err(AuthError::PasswordTooLong { key_bits: key.n().bits(), max: max.saturating_sub(1) });
    }
    let mut rng = SeedRng { seed: &seed, overdrawn: false };
    let ciphertext = key.encrypt(&mut rng, Oaep::new::<Sha1>(), plaintext).map_err(AuthError::Rsa)?;
    if rng.overdrawn {
        // The rsa crate drew more than one seed: its padding no longer matches what we
        // tested, and the extra bytes were not random. Never send such a ciphertext.
        return Err(AuthError::Random("RSA-OAEP asked for more random bytes than one seed"));
    }
    Ok(ciphertext)
}

/// Hands the rsa crate the seed drawn beforehand, so a failing system RNG is an error rather
/// than a panic inside `fill_bytes`. Asking for more than the seed zero-fills and records it.
struct SeedRng<'a> {
    seed: &'a [u8],
    overdrawn: bool,
}

impl RngCore for SeedRng<'_> {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match self.seed.split_at_checked(dest.len()) {
            Some((taken, rest)) => {
                dest.copy_from_slice(taken);
                self.seed = rest;
            }
            None => {
                dest.fill(0);
                self.overdrawn = true;
            }
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Only ever filled from the system CSPRNG (or a fixed seed in tests).
impl CryptoRng for SeedRng<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testutil::{
        decrypt_password, hex, openssl_decrypt, NONCE_A, PRIVATE_PEM, PUBLIC_PKCS1_PEM, PUBLIC_SPKI_PEM,
    };

    /// vectors.py: RFC 8017 OAEP written out in Python with only n and e of
    /// rsa_public_spki.pem, seed `bytes(range(0xa0, 0xb4))`, message
    /// `(b"secret" + b"\0") XOR NONCE_A`.
    const OAEP_KAT: &str = "\
        38c0942fdfc9e34da2749c3cf94a1ad6b9e0185f14dd4f860103b309b18ba01da683f3009347649659e16d39d374bc54\
        20ba295cf1d0b2cbe5a59d7451544b141baade2644cc1514c4ce87d2fba860aa2422c5f7830e13a7fd748ec393104f45\
        6ffff482da780dc68df39a1543aead4fa067ebc01369f880f6bb61f8a9b2eb8a82c05ca8279d47c3f5c5447a8bd34992\
        533aebdb2fbcd889a795152b5c95f863ee395a3ee531a6ad2fd42fc2eae3c54674d96c0e0e0a973e5d79b4d08d20725e\
        9d18f6fcc079c8860dced33bf5c1d14a3b3812efc1504210fac0758d0263e94559c3edfe5b6c99c900bf4249b1cd3b05\
        4a82661c9191b7a5bd7c776c2e4b641f";

    #[test]
    fn oaep_with_fixed_seed_matches_independent_python() {
        let key = parse_public_key(PUBLIC_SPKI_PEM).expect("test key parses");
        let seed: [u8; OAEP_SEED_LEN] = std::array::from_fn(|i| 0xa0 + i as u8);
        let plaintext = mask_password(b"secret", &NONCE_A).expect("nonce is not empty");
        assert_eq!(encrypt_with_seed(&key, &plaintext, seed).expect("encrypts"), hex(OAEP_KAT));
    }

    #[test]
    fn both_pem_forms_encrypt_to_the_private_key() {
        for pem in [PUBLIC_SPKI_PEM, PUBLIC_PKCS1_PEM] {
            for password in [&b"secret"[..], b"", "pässwörd-密码".as_bytes(), &[b'x'; 100]] {
                let ciphertext = rsa_encrypt_password(password, &NONCE_A, pem).expect("encrypts");
                assert_eq!(ciphertext.len(), 256);
                let mut expected = password.to_vec();
                expected.push(0);
                assert_eq!(decrypt_password(&ciphertext, &NONCE_A), expected);
            }
        }
    }

    #[test]
    fn openssl_decrypts_the_ciphertext() {
        let ciphertext = rsa_encrypt_password(b"p@ss w0rd!", &NONCE_A, PUBLIC_SPKI_PEM).expect("encrypts");
        let masked = openssl_decrypt(&ciphertext);
        let unmasked: Vec<u8> = masked.iter().zip(NONCE_A.iter().cycle()).map(|(c, n)| c ^ n).collect();
        assert_eq!(unmasked, b"p@ss w0rd!\0");
    }

    #[test]
    fn nonce_repeats_for_passwords_longer_than_the_scramble() {
        let masked = mask_password(&[0u8; 45], &NONCE_A).expect("nonce is not empty");
        assert_eq!(masked.len(), 46);
        assert_eq!(&masked[..20], &NONCE_A);
        assert_eq!(&masked[20..40], &NONCE_A);
        assert_eq!(&masked[40..], &NONCE_A[..6]);
    }

    #[test]
    fn server_framing_of_the_pem_is_tolerated() {
        let mut framed = b"\n".to_vec();
        framed.extend_from_slice(PUBLIC_SPKI_PEM);
        framed.push(0);
        assert!(parse_public_key(&framed).is_ok());
    }

    #[test]
    fn bad_keys_are_reported_by_form() {
        let err = rsa_encrypt_password(b"pw", &NONCE_A, b"hello").unwrap_err();
        assert!(matches!(err, AuthError::BadPublicKey(PublicKeyError::NotPem)), "{err}");
        let err = rsa_encrypt_password(b"pw", &NONCE_A, PRIVATE_PEM).unwrap_err();
        assert!(matches!(err, AuthError::BadPublicKey(PublicKeyError::NotPem)), "{err}");

        let truncated = &PUBLIC_SPKI_PEM[..PUBLIC_SPKI_PEM.len() / 2];
        let err = rsa_encrypt_password(b"pw", &NONCE_A, truncated).unwrap_err();
        assert!(matches!(err, AuthError::BadPublicKey(PublicKeyError::Spki(_))), "{err}");
        assert!(err.to_string().contains("BEGIN PUBLIC KEY"), "{err}");

        let truncated = &PUBLIC_PKCS1_PEM[..PUBLIC_PKCS1_PEM.len() / 2];
        let err = rsa_encrypt_password(b"pw", &NONCE_A, truncated).unwrap_err();
        assert!(matches!(err, AuthError::BadPublicKey(PublicKeyError::Pkcs1(_))), "{err}");
    }

    #[test]
    fn too_long_password_and_empty_nonce_are_errors() {
        // 256-byte key: 214 bytes fit, the NUL included.
        assert!(rsa_encrypt_password(&[b'x'; 213], &NONCE_A, PUBLIC_SPKI_PEM).is_ok());
        let err = rsa_encrypt_password(&[b'x'; 214], &NONCE_A, PUBLIC_SPKI_PEM).unwrap_err();
        assert!(matches!(err, AuthError::PasswordTooLong { key_bits: 2048, max: 213 }), "{err}");
        let err = rsa_encrypt_password(b"pw", b"", PUBLIC_SPKI_PEM).unwrap_err();
        assert!(matches!(err, AuthError::EmptyNonce), "{err}");
    }

    #[test]
    fn seed_rng_refuses_to_stretch_the_seed() {
        let mut rng = SeedRng { seed: &[1, 2, 3], overdrawn: false };
        let mut two = [0u8; 2];
        rng.fill_bytes(&mut two);
        assert_eq!((two, rng.overdrawn), ([1, 2], false));
        rng.fill_bytes(&mut two);
        assert_eq!((two, rng.overdrawn), ([0, 0], true));
    }
}
