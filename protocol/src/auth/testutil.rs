//! Fixtures shared by the auth tests: passwords, nonces and the RSA test key pair.

use std::io::Write;
use std::process::{Command, Stdio};

use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use sha1::Sha1;

/// Passwords of vectors.py: empty, ASCII, with space and symbols, non-ASCII UTF-8, long.
pub(crate) const PASSWORDS: [&[u8]; 5] =
    [b"", b"secret", b"p@ss w0rd!", "pässwörd-密码".as_bytes(), &[b'x'; 100]];

/// `bytes(range(1, 21))` in vectors.py.
pub(crate) const NONCE_A: [u8; 20] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
/// `3d4b2a1f6e7c0958a1b2c3d4e5f60718293a4b5c` in vectors.py.
pub(crate) const NONCE_B: [u8; 20] = [
    0x3d, 0x4b, 0x2a, 0x1f, 0x6e, 0x7c, 0x09, 0x58, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29,
    0x3a, 0x4b, 0x5c,
];

pub(crate) const PRIVATE_PEM: &[u8] = include_bytes!("../../tests/data/auth/rsa_private.pem");
pub(crate) const PUBLIC_SPKI_PEM: &[u8] = include_bytes!("../../tests/data/auth/rsa_public_spki.pem");
pub(crate) const PUBLIC_PKCS1_PEM: &[u8] = include_bytes!("../../tests/data/auth/rsa_public_pkcs1.pem");

pub(crate) fn hex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ASCII hex");
            assert_eq!(pair.len(), 2, "odd hex length");
            u8::from_str_radix(pair, 16).expect("hex digit")
        })
        .collect()
}

/// Decrypts with the test private key and undoes the nonce mask: `password || 0x00`.
pub(crate) fn decrypt_password(ciphertext: &[u8], nonce: &[u8]) -> Vec<u8> {
    let pem = std::str::from_utf8(PRIVATE_PEM).expect("PEM is text");
    let key = RsaPrivateKey::from_pkcs8_pem(pem).expect("test private key parses");
    let masked = key.decrypt(Oaep::new::<Sha1>(), ciphertext).expect("OAEP-SHA1 decrypts");
    masked.iter().zip(nonce.iter().cycle()).map(|(c, n)| c ^ n).collect()
}

/// Decrypts with the `openssl` binary, an implementation independent of the rsa crate.
/// Fails (never skips) when openssl is missing.
pub(crate) fn openssl_decrypt(ciphertext: &[u8]) -> Vec<u8> {
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/auth/rsa_private.pem");
    let mut child = Command::new("openssl")
        .args(["pkeyutl", "-decrypt", "-inkey", key])
        .args(["-pkeyopt", "rsa_padding_mode:oaep"])
        .args(["-pkeyopt", "rsa_oaep_md:sha1", "-pkeyopt", "rsa_mgf1_md:sha1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs the openssl binary on PATH: {e}"));
    child.stdin.take().expect("piped stdin").write_all(ciphertext).expect("write to openssl");
    let output = child.wait_with_output().expect("openssl runs");
    assert!(output.status.success(), "openssl failed: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}
