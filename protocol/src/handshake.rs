//! Connection phase: the server's greeting, the client's answer, the TLS
//! switch request and the auth-switch messages.
//!
//! MariaDB speaks the same handshake (v10) with two twists: its version
//! string starts with `5.5.5-` (so old clients that parse the version don't
//! take 10.x for 1.0), and when a server does not set the `CLIENT_MYSQL`
//! bit (bit 0, `CLIENT_LONG_PASSWORD` in MySQL) it puts 32 more capability
//! bits in the last 4 bytes of the greeting's reserved area.

use crate::error::ProtocolError;
use crate::wire::{put_lenenc_bytes, put_nul_terminated, put_u32, Reader};

/// Capability flags (the lower 32 bits both servers share).
pub mod caps {
    pub const LONG_PASSWORD: u32 = 1;
    pub const FOUND_ROWS: u32 = 1 << 1;
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const COMPRESS: u32 = 1 << 5;
    pub const LOCAL_FILES: u32 = 1 << 7;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const INTERACTIVE: u32 = 1 << 10;
    pub const SSL: u32 = 1 << 11;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
    pub const SESSION_TRACK: u32 = 1 << 23;
    pub const DEPRECATE_EOF: u32 = 1 << 24;

    /// What the gapless client asks for (of what the server offers; `SSL`
    /// is added when TLS is used). Scripted servers in the tests offer it.
    pub const CLIENT: u32 = LONG_PASSWORD
        | LONG_FLAG
        | PROTOCOL_41
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_RESULTS
        | PLUGIN_AUTH
        | PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CONNECT_ATTRS
        | DEPRECATE_EOF;
}

/// The only handshake protocol version in use since MySQL 3.21.
pub const PROTOCOL_VERSION: u8 = 10;

/// The server's greeting (Protocol::HandshakeV10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitialHandshake {
    /// As sent, including MariaDB's `5.5.5-` prefix.
    pub server_version: Vec<u8>,
    pub connection_id: u32,
    /// The lower 32 capability bits.
    pub capabilities: u32,
    /// MariaDB's extended capabilities (0 from MySQL).
    pub mariadb_capabilities: u32,
    pub charset: u8,
    pub status: u16,
    /// The scramble the password is hashed with (20 bytes from current
    /// servers), without the trailing NUL.
    pub nonce: Vec<u8>,
    /// The server's default auth plugin, when `PLUGIN_AUTH` is set.
    pub auth_plugin: Option<Vec<u8>>,
}

impl InitialHandshake {
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let version = r.u8("protocol version")?;
        if version != PROTOCOL_VERSION {
            return Err(r.invalid_at(0, "protocol version", format!("{version}, only 10 is spoken")));
        }
        let server_version = r.nul_terminated("server version")?.to_vec();
        let connection_id = r.u32("connection id")?;
        let mut nonce = r.bytes(8, "scramble (part 1)")?.to_vec();
        r.skip(1, "filler")?;
        let mut capabilities = u32::from(r.u16("capabilities")?);
        // Pre-4.1 servers stop after the capabilities; nothing current does,
        // and gapless cannot log in to them, so the rest is mandatory.
        let charset = r.u8("character set")?;
        let status = r.u16("status flags")?;
        capabilities |= u32::from(r.u16("capabilities (upper)")?) << 16;
        let nonce_len = r.u8("scramble length")?;
        r.skip(6, "reserved")?;
        let ext = r.u32("MariaDB capabilities")?;
        let mariadb_capabilities = if capabilities & caps::LONG_PASSWORD == 0 { ext } else { 0 };
        if capabilities & caps::SECURE_CONNECTION != 0 {
            // Part 2 is max(13, len - 8) bytes, the last being a NUL.
            let len = usize::from(nonce_len).saturating_sub(8).max(13);
            let part2 = r.bytes(len, "scramble (part 2)")?;
            nonce.extend_from_slice(part2.strip_suffix(&[0]).unwrap_or(part2));
        }
        // Some MySQL versions leave out the final NUL of the plugin name.
        let auth_plugin = (capabilities & caps::PLUGIN_AUTH != 0).then(|| r.nul_terminated_or_eof().to_vec());
        Ok(InitialHandshake {
            server_version,
            connection_id,
            capabilities,
            mariadb_capabilities,
            charset,
            status,
            nonce,
            auth_plugin,
        })
    }

    /// The greeting as a server sends it (tests, fuzzing, scripted servers).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROTOCOL_VERSION];
        put_nul_terminated(&mut out, &self.server_version);
        put_u32(&mut out, self.connection_id);
        let (part1, part2) = self.nonce.split_at(self.nonce.len().min(8));
        out.extend_from_slice(part1);
        out.resize(out.len() + 8 - part1.len(), 0);
        out.push(0);
        out.extend_from_slice(&(self.capabilities as u16).to_le_bytes());
        out.push(self.charset);
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&((self.capabilities >> 16) as u16).to_le_bytes());
        let plugin_data = self.nonce.len() + 1;
        let with_length = self.capabilities & (caps::PLUGIN_AUTH | caps::SECURE_CONNECTION) != 0;
        out.push(if with_length { plugin_data.min(255) as u8 } else { 0 });
        out.extend_from_slice(&[0; 6]);
        put_u32(&mut out, self.mariadb_capabilities);
        // A scramble too long for the length byte cannot be sent whole; the
        // terminating NUL is left out so the decoder does not misread it.
        if self.capabilities & caps::SECURE_CONNECTION != 0 {
            out.extend_from_slice(part2);
            if plugin_data <= 255 {
                out.resize(out.len() + 12usize.saturating_sub(part2.len()), 0);
                out.push(0);
            }
        }
        if let Some(plugin) = &self.auth_plugin {
            put_nul_terminated(&mut out, plugin);
        }
        out
    }

    /// True for MariaDB servers (their version carries "MariaDB").
    pub fn is_mariadb(&self) -> bool {
        self.server_version.windows(7).any(|w| w == b"MariaDB")
    }

    /// The version as the server reports it in `SELECT VERSION()`: without
    /// MariaDB's `5.5.5-` compatibility prefix.
    pub fn display_version(&self) -> String {
        let v = String::from_utf8_lossy(&self.server_version);
        match v.strip_prefix("5.5.5-") {
            Some(rest) if self.is_mariadb() => rest.to_string(),
            _ => v.into_owned(),
        }
    }
}

/// The first 32 bytes of a handshake response, sent alone to ask for TLS;
/// the full response follows over the encrypted channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SslRequest {
    pub capabilities: u32,
    pub max_packet: u32,
    pub charset: u8,
}

impl SslRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        put_u32(&mut out, self.capabilities | caps::SSL);
        put_u32(&mut out, self.max_packet);
        out.push(self.charset);
        out.extend_from_slice(&[0; 23]);
        out
    }
}

/// The client's answer to the greeting (Protocol::HandshakeResponse41).
#[derive(Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub max_packet: u32,
    pub charset: u8,
    pub user: Vec<u8>,
    /// The auth plugin's answer to the scramble (never the password itself,
    /// except for cleartext plugins over TLS).
    pub auth_response: Vec<u8>,
    pub database: Option<Vec<u8>>,
    pub auth_plugin: Option<Vec<u8>>,
    /// Connection attributes (`_client_name`, `program_name`, …), shown by
    /// `performance_schema.session_connect_attrs`.
    pub attributes: Vec<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for HandshakeResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeResponse")
            .field("capabilities", &format_args!("{:#x}", self.capabilities))
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("auth_response", &format_args!("<{} bytes>", self.auth_response.len()))
            .field("database", &self.database.as_deref().map(String::from_utf8_lossy))
            .field("auth_plugin", &self.auth_plugin.as_deref().map(String::from_utf8_lossy))
            .finish_non_exhaustive()
    }
}

impl HandshakeResponse {
    /// Encodes with the flags in `capabilities`; `CONNECT_WITH_DB`,
    /// `PLUGIN_AUTH` and `CONNECT_ATTRS` are set or cleared here to match the
    /// optional fields present.
    pub fn encode(&self) -> Vec<u8> {
        let mut capabilities = self.capabilities;
        for (present, flag) in [
            (self.database.is_some(), caps::CONNECT_WITH_DB),
            (self.auth_plugin.is_some(), caps::PLUGIN_AUTH),
            (!self.attributes.is_empty(), caps::CONNECT_ATTRS),
        ] {
            if present {
                capabilities |= flag;
            } else {
                capabilities &= !flag;
            }
        }
        let mut out =
            SslRequest { capabilities, max_packet: self.max_packet, charset: self.charset }.encode();
        // SslRequest always sets SSL; restore what the caller asked for.
        out[..4].copy_from_slice(&capabilities.to_le_bytes());
        put_nul_terminated(&mut out, &self.user);
        if capabilities & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_bytes(&mut out, &self.auth_response);
        } else {
            let len = self.auth_response.len().min(255);
            out.push(len as u8);
            out.extend_from_slice(&self.auth_response[..len]);
        }
        if let Some(db) = &self.database {
            put_nul_terminated(&mut out, db);
        }
        if let Some(plugin) = &self.auth_plugin {
            put_nul_terminated(&mut out, plugin);
        }
        if !self.attributes.is_empty() {
            let mut attrs = Vec::new();
            for (k, v) in &self.attributes {
                put_lenenc_bytes(&mut attrs, k);
                put_lenenc_bytes(&mut attrs, v);
            }
            put_lenenc_bytes(&mut out, &attrs);
        }
        out
    }

    /// Decodes a response (what a server or a proxy reads; here for
    /// round-trip tests and the fuzzer).
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let capabilities = r.u32("capabilities")?;
        if capabilities & caps::PROTOCOL_41 == 0 {
            return Err(r.invalid_at(0, "capabilities", "pre-4.1 handshake responses are not supported"));
        }
        let max_packet = r.u32("max packet size")?;
        let charset = r.u8("character set")?;
        r.skip(23, "filler")?;
        let user = r.nul_terminated("user")?.to_vec();
        let auth_response = if capabilities & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes("auth response")?
        } else {
            r.u8_prefixed("auth response")?
        }
        .to_vec();
        let database = if capabilities & caps::CONNECT_WITH_DB != 0 {
            Some(r.nul_terminated("database")?.to_vec())
        } else {
            None
        };
        let auth_plugin = if capabilities & caps::PLUGIN_AUTH != 0 {
            Some(r.nul_terminated("auth plugin")?.to_vec())
        } else {
            None
        };
        let mut attributes = Vec::new();
        if capabilities & caps::CONNECT_ATTRS != 0 {
            let mut a = Reader::new(r.lenenc_bytes("connection attributes")?);
            while !a.is_empty() {
                let k = a.lenenc_bytes("attribute name")?.to_vec();
                let v = a.lenenc_bytes("attribute value")?.to_vec();
                attributes.push((k, v));
            }
        }
        r.finish("handshake response")?;
        Ok(HandshakeResponse {
            capabilities,
            max_packet,
            charset,
            user,
            auth_response,
            database,
            auth_plugin,
            attributes,
        })
    }
}

/// The server asks the client to answer with another auth plugin (0xfe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitchRequest {
    pub plugin: Vec<u8>,
    /// The plugin's data: for the scramble-based plugins a new nonce,
    /// usually NUL-terminated.
    pub data: Vec<u8>,
}

impl AuthSwitchRequest {
    pub const HEADER: u8 = 0xfe;

    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("auth switch header")? != Self::HEADER {
            return Err(r.invalid_at(0, "auth switch header", "expected 0xfe"));
        }
        if r.is_empty() {
            return Err(r.invalid_at(
                0,
                "auth switch request",
                "the server asks for the pre-4.1 password hash (mysql_old_password), which is insecure and not supported",
            ));
        }
        let plugin = r.nul_terminated("auth plugin name")?.to_vec();
        Ok(AuthSwitchRequest { plugin, data: r.rest().to_vec() })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![Self::HEADER];
        put_nul_terminated(&mut out, &self.plugin);
        out.extend_from_slice(&self.data);
        out
    }
}

/// First byte of an AuthMoreData packet: extra plugin data from the server
/// (caching_sha2_password's fast/full auth status, an RSA public key).
pub const AUTH_MORE_DATA: u8 = 0x01;

#[cfg(test)]
mod tests {
    use super::*;

    /// A greeting laid out the way MariaDB 10.11 sends it (the client tests
    /// in tests/ read real ones); scramble made readable.
    const MARIADB_GREETING: &[u8] = &[
        0x0a, b'5', b'.', b'5', b'.', b'5', b'-', b'1', b'0', b'.', b'1', b'1', b'.', b'6', b'-', b'M', b'a',
        b'r', b'i', b'a', b'D', b'B', 0, 0x05, 0, 0, 0, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', 0,
        0xfe, 0xff, 0x2d, 0x02, 0, 0xff, 0x81, 0x15, 0, 0, 0, 0, 0, 0, 0x1d, 0, 0, 0, b'i', b'j', b'k', b'l',
        b'm', b'n', b'o', b'p', b'q', b'r', b's', b't', 0, b'm', b'y', b's', b'q', b'l', b'_', b'n', b'a',
        b't', b'i', b'v', b'e', b'_', b'p', b'a', b's', b's', b'w', b'o', b'r', b'd', 0,
    ];

    #[test]
    fn mariadb_greeting() {
        let h = InitialHandshake::decode(MARIADB_GREETING).unwrap();
        assert!(h.is_mariadb());
        assert_eq!(h.display_version(), "10.11.6-MariaDB");
        assert_eq!(h.connection_id, 5);
        assert_eq!(h.nonce, b"abcdefghijklmnopqrst");
        assert_eq!(h.auth_plugin.as_deref(), Some(&b"mysql_native_password"[..]));
        assert_eq!(h.capabilities & caps::LONG_PASSWORD, 0, "MariaDB clears CLIENT_MYSQL");
        assert_eq!(h.mariadb_capabilities, 0x1d);
        assert_ne!(h.capabilities & caps::SSL, 0);
        assert_eq!(h.charset, 0x2d);
        assert_eq!(InitialHandshake::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn mysql_greeting_round_trip_and_missing_final_nul() {
        let h = InitialHandshake {
            server_version: b"8.4.3".to_vec(),
            connection_id: 77,
            capabilities: 0xdfff_f7ff,
            mariadb_capabilities: 0,
            charset: 255,
            status: 2,
            nonce: (1..=20).collect(),
            auth_plugin: Some(b"caching_sha2_password".to_vec()),
        };
        let bytes = h.encode();
        assert_eq!(InitialHandshake::decode(&bytes).unwrap(), h);
        assert!(!h.is_mariadb());
        assert_eq!(h.display_version(), "8.4.3");
        // MySQL 5.5.7–5.5.9 sent the plugin name without its NUL.
        assert_eq!(InitialHandshake::decode(&bytes[..bytes.len() - 1]).unwrap(), h);
    }

    #[test]
    fn greeting_errors_name_the_field() {
        let mut bad = MARIADB_GREETING.to_vec();
        bad[0] = 9;
        let err = InitialHandshake::decode(&bad).unwrap_err();
        assert!(err.to_string().contains("protocol version"), "{err}");
        for cut in [1, 10, 30, 45] {
            assert!(
                matches!(
                    InitialHandshake::decode(&MARIADB_GREETING[..cut]),
                    Err(ProtocolError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
    }

    fn response() -> HandshakeResponse {
        HandshakeResponse {
            capabilities: caps::PROTOCOL_41
                | caps::SECURE_CONNECTION
                | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
                | caps::LONG_FLAG,
            max_packet: 1 << 30,
            charset: 45,
            user: b"repl".to_vec(),
            auth_response: vec![0xaa; 20],
            database: None,
            auth_plugin: Some(b"mysql_native_password".to_vec()),
            attributes: vec![(b"_client_name".to_vec(), b"gapless".to_vec())],
        }
    }

    #[test]
    fn handshake_response_round_trips() {
        let mut r = response();
        let decoded = HandshakeResponse::decode(&r.encode()).unwrap();
        assert_eq!(
            decoded.capabilities & (caps::PLUGIN_AUTH | caps::CONNECT_ATTRS),
            caps::PLUGIN_AUTH | caps::CONNECT_ATTRS
        );
        r.capabilities = decoded.capabilities;
        assert_eq!(decoded, r);

        // One-byte auth length, a database, no plugin, no attributes.
        let mut r = response();
        r.capabilities &= !caps::PLUGIN_AUTH_LENENC_CLIENT_DATA;
        r.database = Some(b"shop".to_vec());
        r.auth_plugin = None;
        r.attributes.clear();
        let bytes = r.encode();
        let decoded = HandshakeResponse::decode(&bytes).unwrap();
        assert_eq!(decoded.capabilities & (caps::CONNECT_WITH_DB | caps::PLUGIN_AUTH), caps::CONNECT_WITH_DB);
        r.capabilities = decoded.capabilities;
        assert_eq!(decoded, r);
        assert!(HandshakeResponse::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn debug_hides_the_auth_response() {
        let text = format!("{:?}", response());
        assert!(text.contains("<20 bytes>") && !text.contains("170"), "{text}");
    }

    #[test]
    fn ssl_request_is_the_response_prefix() {
        let r = SslRequest { capabilities: caps::PROTOCOL_41, max_packet: 1 << 24, charset: 45 }.encode();
        assert_eq!(r.len(), 32);
        assert_eq!(u32::from_le_bytes(r[..4].try_into().unwrap()), caps::PROTOCOL_41 | caps::SSL);
    }

    #[test]
    fn auth_switch() {
        let req = AuthSwitchRequest { plugin: b"client_ed25519".to_vec(), data: vec![9; 32] };
        assert_eq!(AuthSwitchRequest::decode(&req.encode()).unwrap(), req);
        let err = AuthSwitchRequest::decode(&[0xfe]).unwrap_err();
        assert!(err.to_string().contains("mysql_old_password"), "{err}");
        assert!(AuthSwitchRequest::decode(b"\xfeno-nul").is_err());
    }
}
