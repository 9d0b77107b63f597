//! MariaDB's `client_ed25519`: an Ed25519 signature of the server's nonce.
//!
//! MariaDB uses the password itself as the Ed25519 seed, whatever its length: RFC 8032 hashes the
//! seed with SHA-512 anyway, so `az = SHA512(password)`, the secret scalar is `az[0..32]` clamped
//! and `az[32..64]` is the nonce prefix. The server stores only the public key, so a stolen
//! `mysql.user` table does not let anyone log in.
//!
//! `ed25519_dalek`'s safe API insists on a 32-byte seed, hence the `hazmat` expanded-key API. The
//! danger it warns about (a scalar and prefix not derived together from one hash) does not apply:
//! both come from the same SHA-512 output, exactly as in RFC 8032.

use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};

/// The expanded key `SHA512(password)` (scalar clamped by `from_bytes`).
fn expanded_key(password: &[u8]) -> ExpandedSecretKey {
    let mut az = [0u8; 64];
    az.copy_from_slice(&Sha512::digest(password));
    ExpandedSecretKey::from_bytes(&az)
}

/// The Ed25519 public key of `password`, as MariaDB stores it (base64-encoded) for an
/// `IDENTIFIED VIA ed25519` account; `PASSWORD('…')` on such an account returns it.
pub fn ed25519_public_key(password: &[u8]) -> [u8; 32] {
    VerifyingKey::from(&expanded_key(password)).to_bytes()
}

/// The `client_ed25519` response: the standard Ed25519 signature (`R || S`) of `nonce` under the
/// key whose seed is `password`.
///
/// MariaDB sends a 32-byte nonce with no terminator; it is signed as given.
pub fn ed25519_signature(password: &[u8], nonce: &[u8]) -> [u8; 64] {
    let key = expanded_key(password);
    let public = VerifyingKey::from(&key);
    raw_sign::<Sha512>(&key, nonce, &public).to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testutil::{hex, PASSWORDS};
    use ed25519_dalek::{Signature, Verifier};

    /// `bytes(range(32))` and `sha256(b"mariadb nonce")`, as in vectors.py.
    fn nonces() -> [Vec<u8>; 2] {
        [(0u8..32).collect(), hex("084248c4aa42902c762354dc424ea15e5896915061bdbd73752ce4edf8d8acae")]
    }

    /// (public key, signature of nonce 0, signature of nonce 1) for each of PASSWORDS, from the
    /// pure-Python RFC 8032 code in vectors.py (itself checked against `cryptography`, which also
    /// verified each signature).
    const VECTORS: [[&str; 3]; 5] = [
        [
            "e0b1fe74117e1b95b608a4f221df314774b20ea66842350d515371c7c6966c6e",
            "1e7e2c09c0c0e5f755a202872d95c85c4b14d23a888e9c40a0e9323e1ed28dd4\
             aee4a8197c2d2ca26942bf6496d61c60c63661959ab57706eb0bfda05749ad0f",
            "fa920b512950a008a576eb77a18da7e02f672c47c7c7f28c41c150fa5d5489a8\
             e584ca28807f5f8bc2504e334d6f8397b734c82fbaef22fd56ddcc070e396d0b",
        ],
        [
            "648814444520e4f56043a2ec9215e63be7992d2d270bc6dee873e36164786096",
            "546c3e9311d19ee389d1ae5d945821bfe459423910136f16b3bd2ae89fd7d63b\
             449e689f4be812891a85b8f999076446d92adb83d0707215aaa60b5a23220907",
            "b195f199a77de86406ed80e3f15427920ac6a302526b50fa7932dbc0b2e1e453\
             d876d8a0647aa62bda59f9526138447a07d37b2acb1290174a9174f3998a4d07",
        ],
        [
            "a8d0d190f214acc59f825641a312223618d5e0b436209715201dd851803d78f8",
            "81db937694c77a5d0e1fccadddbfec8e46c82d5eb24b7c87b581345804c9fd3f\
             e7718e39a0fc1dc2c04227114385043d2ff695b943d8ca0dac558f91e36d250d",
            "de624210cea09816d67579a6aa57cc35d217963d81be4258641d59aa4e5de0a8\
             de979469804515406420a17dded58c9d63940a9eef92eae14b55fee879bf1009",
        ],
        [
            "7a209c490b761b188df492da424b571796c397723961d2cf98d96793097c1398",
            "a9782460c562f81c63fb4374ca2356e7ab42119f0316fea0a854ed6727bf1703\
             db3a92761e0baa358a585bffeb8d9ab27213bbb17833914aae21ea00a879fd0c",
            "12ad88c5ba1b1ee530ee3c7f067a5a50eacc215c72a890cb6709800174da1213\
             991d2c57d45122b1a47a6b20033b7f0beafa9eb073703346fd17449eebd52a01",
        ],
        [
            "51d8689aa11d3ad1f210da71f7b69e9de2fbcabf0462f56f94d5a8004244c998",
            "31fc1442c219db61910de2dd89d897eaa6af88ac31abd398d6a2da389b1ace9e\
             ea389f51e0f024c8ee3f10d81cabc099620b02ca4edd55bae87b1abc9211b203",
            "46a9009ea5292ace39a73e74e17c937bf161dffa5064fc44052b136ba9d1abef\
             3c954c624f968fe2931865ac2c98892299c54e8dc6daa5f7ce73d42d41527104",
        ],
    ];

    #[test]
    fn public_keys_and_signatures_match_independent_python() {
        let nonces = nonces();
        for (password, [public, sig0, sig1]) in PASSWORDS.iter().zip(VECTORS) {
            assert_eq!(ed25519_public_key(password).to_vec(), hex(public));
            assert_eq!(ed25519_signature(password, &nonces[0]).to_vec(), hex(sig0));
            assert_eq!(ed25519_signature(password, &nonces[1]).to_vec(), hex(sig1));
        }
    }

    /// MariaDB's documentation: `SELECT ed25519_password("secret")` returns
    /// `ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY`, which is this key in base64
    /// (python3 -c "import base64; print(base64.b64decode('ZIgU…YJY=').hex())").
    #[test]
    fn public_key_of_secret_matches_mariadb_documentation() {
        assert_eq!(
            ed25519_public_key(b"secret").to_vec(),
            hex("648814444520e4f56043a2ec9215e63be7992d2d270bc6dee873e36164786096")
        );
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        for password in PASSWORDS {
            let public = VerifyingKey::from_bytes(&ed25519_public_key(password)).expect("valid point");
            for nonce in nonces() {
                let signature = Signature::from_bytes(&ed25519_signature(password, &nonce));
                public.verify(&nonce, &signature).expect("signature verifies");
                assert!(public.verify(b"another nonce", &signature).is_err());
            }
        }
    }
}
