//! Client authentication plugins: the scrambles and the exchange that follows the handshake.
//!
//! Everything here is sans-IO and pure: scramble functions map `(password, nonce)` to bytes, and
//! [`AuthExchange`] maps the server's plugin data (auth switch, AuthMoreData) to the next packet
//! payload. The connection code frames packets and handles OK/ERR itself.
//!
//! | plugin | response | password on the wire |
//! |---|---|---|
//! | `mysql_native_password` | [`native_password`] (SHA-1) | never |
//! | `caching_sha2_password` | [`caching_sha2_password`] (SHA-256), full auth on cache miss | TLS or RSA |
//! | `sha256_password` | the password | TLS or RSA ([`rsa_encrypt_password`]) |
//! | `client_ed25519` (MariaDB) | [`ed25519_signature`] | never |
//! | `mysql_clear_password` | the password | TLS only |

mod ed25519;
mod error;
mod exchange;
mod plugin;
mod rsa_password;
mod scramble;
#[cfg(test)]
mod testutil;

pub use ed25519::{ed25519_public_key, ed25519_signature};
pub use error::{AuthError, PublicKeyError};
pub use exchange::AuthExchange;
pub use plugin::AuthPlugin;
pub use rsa_password::rsa_encrypt_password;
pub use scramble::{caching_sha2_password, native_password, SCRAMBLE_LEN};
