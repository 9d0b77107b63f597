//! Authentication plugin names as they appear on the wire.

use std::fmt;

/// A client authentication plugin, named by the server in the handshake or an auth switch.
///
/// Unknown names are kept so the error can say what the server wanted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthPlugin {
    /// SHA-1 challenge/response; the default before MySQL 8.0 and on MariaDB.
    MysqlNativePassword,
    /// SHA-256 challenge/response with a server-side cache; the MySQL 8.0+ default.
    CachingSha2Password,
    /// Password sent over TLS or RSA-encrypted, no challenge/response.
    Sha256Password,
    /// MariaDB's Ed25519 signature of the server's nonce.
    ClientEd25519,
    /// Password in clear text; used by PAM/LDAP back ends, only acceptable over TLS.
    MysqlClearPassword,
    /// Anything else, with the name the server sent.
    Other(String),
}

impl AuthPlugin {
    /// Parses a plugin name. A trailing NUL is ignored, since names are NUL-terminated on the
    /// wire and callers may pass the terminator along.
    pub fn from_name(name: &[u8]) -> Self {
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        match name {
            b"mysql_native_password" => Self::MysqlNativePassword,
            b"caching_sha2_password" => Self::CachingSha2Password,
            b"sha256_password" => Self::Sha256Password,
            b"client_ed25519" => Self::ClientEd25519,
            b"mysql_clear_password" => Self::MysqlClearPassword,
            other => Self::Other(String::from_utf8_lossy(other).into_owned()),
        }
    }

    /// The wire name (the unknown name for [`AuthPlugin::Other`]).
    pub fn name(&self) -> &str {
        match self {
            Self::MysqlNativePassword => "mysql_native_password",
            Self::CachingSha2Password => "caching_sha2_password",
            Self::Sha256Password => "sha256_password",
            Self::ClientEd25519 => "client_ed25519",
            Self::MysqlClearPassword => "mysql_clear_password",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for AuthPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for plugin in [
            AuthPlugin::MysqlNativePassword,
            AuthPlugin::CachingSha2Password,
            AuthPlugin::Sha256Password,
            AuthPlugin::ClientEd25519,
            AuthPlugin::MysqlClearPassword,
            AuthPlugin::Other("auth_gssapi_client".into()),
        ] {
            assert_eq!(AuthPlugin::from_name(plugin.name().as_bytes()), plugin);
            assert_eq!(plugin.to_string(), plugin.name());
        }
    }

    #[test]
    fn trailing_nul_is_ignored_and_unknown_names_are_kept() {
        assert_eq!(AuthPlugin::from_name(b"client_ed25519\0"), AuthPlugin::ClientEd25519);
        assert_eq!(AuthPlugin::from_name(b"dialog"), AuthPlugin::Other("dialog".into()));
        assert_eq!(AuthPlugin::from_name(b"\xffx"), AuthPlugin::Other("\u{fffd}x".into()));
    }
}
