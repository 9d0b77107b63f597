//! The commands the client sends: the few a replica needs.

use crate::error::ProtocolError;
use crate::wire::{put_u16, put_u32, put_u64, put_u8_prefixed, Reader};

/// Command bytes (the first byte of a command payload).
pub mod code {
    pub const QUIT: u8 = 0x01;
    pub const QUERY: u8 = 0x03;
    pub const PING: u8 = 0x0e;
    pub const BINLOG_DUMP: u8 = 0x12;
    pub const REGISTER_SLAVE: u8 = 0x15;
    pub const BINLOG_DUMP_GTID: u8 = 0x1e;
}

/// COM_BINLOG_DUMP flag: send EOF at the end of the binlog instead of
/// waiting for more events.
pub const DUMP_NON_BLOCK: u16 = 0x01;
/// COM_BINLOG_DUMP flag (MariaDB): send ANNOTATE_ROWS events, the statement
/// text behind row events, as a replica with `replicate_annotate_row_events`
/// asks.
pub const DUMP_SEND_ANNOTATE_ROWS: u16 = 0x02;
/// COM_BINLOG_DUMP_GTID flag: the GTID set field is present.
pub const DUMP_THROUGH_GTID: u16 = 0x04;

/// A command, as encoded on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// COM_QUERY: SQL text, run with the text protocol.
    Query(Vec<u8>),
    Ping,
    RegisterSlave(RegisterSlave),
    BinlogDump(BinlogDump),
    BinlogDumpGtid(BinlogDumpGtid),
}

/// COM_REGISTER_SLAVE: makes the connection show up in `SHOW SLAVE HOSTS`
/// (and lets a semi-sync primary count it).
#[derive(Clone, PartialEq, Eq)]
pub struct RegisterSlave {
    pub server_id: u32,
    /// What `SHOW SLAVE HOSTS` shows as Host (report_host).
    pub hostname: Vec<u8>,
    pub user: Vec<u8>,
    pub password: Vec<u8>,
    pub port: u16,
}

impl std::fmt::Debug for RegisterSlave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterSlave")
            .field("server_id", &self.server_id)
            .field("hostname", &String::from_utf8_lossy(&self.hostname))
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("password", &if self.password.is_empty() { "" } else { "<redacted>" })
            .field("port", &self.port)
            .finish()
    }
}

/// COM_BINLOG_DUMP: stream from a file name and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogDump {
    /// 4 = the first event after the magic. Only 32 bits on the wire: a
    /// position past 4 GiB needs COM_BINLOG_DUMP_GTID.
    pub position: u32,
    pub flags: u16,
    pub server_id: u32,
    /// Empty means "the first binlog the server has".
    pub file: Vec<u8>,
}

/// COM_BINLOG_DUMP_GTID (MySQL): stream everything not in a GTID set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogDumpGtid {
    pub flags: u16,
    pub server_id: u32,
    pub file: Vec<u8>,
    pub position: u64,
    /// The GTID set in MySQL's binary encoding (the body of a
    /// PREVIOUS_GTIDS event: `n_sids`, then per UUID its intervals; the
    /// tagged format of 8.3+ included). Sent when `DUMP_THROUGH_GTID` is
    /// set, which [`Command::encode`] does when this is non-empty.
    pub gtid_set: Vec<u8>,
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Command::Quit => vec![code::QUIT],
            Command::Ping => vec![code::PING],
            Command::Query(sql) => {
                let mut out = Vec::with_capacity(1 + sql.len());
                out.push(code::QUERY);
                out.extend_from_slice(sql);
                out
            }
            Command::RegisterSlave(r) => {
                let mut out = vec![code::REGISTER_SLAVE];
                put_u32(&mut out, r.server_id);
                put_u8_prefixed(&mut out, &r.hostname);
                put_u8_prefixed(&mut out, &r.user);
                put_u8_prefixed(&mut out, &r.password);
                put_u16(&mut out, r.port);
                put_u32(&mut out, 0); // replication rank, unused
                put_u32(&mut out, 0); // master id: the server fills it in
                out
            }
            Command::BinlogDump(d) => {
                let mut out = vec![code::BINLOG_DUMP];
                put_u32(&mut out, d.position);
                put_u16(&mut out, d.flags);
                put_u32(&mut out, d.server_id);
                out.extend_from_slice(&d.file);
                out
            }
            Command::BinlogDumpGtid(d) => {
                let mut out = vec![code::BINLOG_DUMP_GTID];
                let flags = if d.gtid_set.is_empty() { d.flags } else { d.flags | DUMP_THROUGH_GTID };
                put_u16(&mut out, flags);
                put_u32(&mut out, d.server_id);
                put_u32(&mut out, d.file.len() as u32);
                out.extend_from_slice(&d.file);
                put_u64(&mut out, d.position);
                if flags & DUMP_THROUGH_GTID != 0 {
                    put_u32(&mut out, d.gtid_set.len() as u32);
                    out.extend_from_slice(&d.gtid_set);
                }
                out
            }
        }
    }

    /// Decodes a command (the server's side; for round-trip tests, the
    /// fuzzer and scripted servers).
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let command = match r.u8("command")? {
            code::QUIT => Command::Quit,
            code::PING => Command::Ping,
            code::QUERY => Command::Query(r.rest().to_vec()),
            code::REGISTER_SLAVE => {
                let server_id = r.u32("server id")?;
                let hostname = r.u8_prefixed("host name")?.to_vec();
                let user = r.u8_prefixed("user")?.to_vec();
                let password = r.u8_prefixed("password")?.to_vec();
                let port = r.u16("port")?;
                r.u32("replication rank")?;
                r.u32("master id")?;
                Command::RegisterSlave(RegisterSlave { server_id, hostname, user, password, port })
            }
            code::BINLOG_DUMP => Command::BinlogDump(BinlogDump {
                position: r.u32("binlog position")?,
                flags: r.u16("flags")?,
                server_id: r.u32("server id")?,
                file: r.rest().to_vec(),
            }),
            code::BINLOG_DUMP_GTID => {
                let flags = r.u16("flags")?;
                let server_id = r.u32("server id")?;
                let len = r.u32("file name length")?;
                let file = r.bytes(len as usize, "file name")?.to_vec();
                let position = r.u64("binlog position")?;
                let gtid_set = if flags & DUMP_THROUGH_GTID != 0 {
                    let len = r.u32("GTID set length")?;
                    r.bytes(len as usize, "GTID set")?.to_vec()
                } else {
                    Vec::new()
                };
                Command::BinlogDumpGtid(BinlogDumpGtid { flags, server_id, file, position, gtid_set })
            }
            other => {
                return Err(r.invalid_at(
                    0,
                    "command",
                    format!("0x{other:02x} is not a command gapless sends"),
                ))
            }
        };
        r.finish("command")?;
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Command> {
        vec![
            Command::Quit,
            Command::Ping,
            Command::Query(b"SELECT @@server_id".to_vec()),
            Command::Query(Vec::new()),
            Command::RegisterSlave(RegisterSlave {
                server_id: 4000,
                hostname: b"sidecar-1".to_vec(),
                user: b"repl".to_vec(),
                password: b"secret".to_vec(),
                port: 3306,
            }),
            Command::BinlogDump(BinlogDump {
                position: 4,
                flags: 0,
                server_id: 4000,
                file: b"mysql-bin.000001".to_vec(),
            }),
            Command::BinlogDump(BinlogDump {
                position: 4,
                flags: DUMP_NON_BLOCK,
                server_id: 1,
                file: Vec::new(),
            }),
            Command::BinlogDumpGtid(BinlogDumpGtid {
                flags: DUMP_THROUGH_GTID,
                server_id: 9,
                file: Vec::new(),
                position: 4,
                gtid_set: vec![1, 0, 0, 0, 0, 0, 0, 0, 0xab],
            }),
            Command::BinlogDumpGtid(BinlogDumpGtid {
                flags: 0,
                server_id: 9,
                file: b"binlog.000002".to_vec(),
                position: 5_000_000_000,
                gtid_set: Vec::new(),
            }),
        ]
    }

    #[test]
    fn every_command_round_trips() {
        for c in all() {
            let bytes = c.encode();
            assert_eq!(Command::decode(&bytes).unwrap(), c, "{c:?}");
        }
    }

    #[test]
    fn wire_layout_of_binlog_dump() {
        let c = Command::BinlogDump(BinlogDump {
            position: 0x0102_0304,
            flags: 1,
            server_id: 7,
            file: b"f".to_vec(),
        });
        assert_eq!(c.encode(), [0x12, 4, 3, 2, 1, 1, 0, 7, 0, 0, 0, b'f']);
    }

    #[test]
    fn truncated_commands_fail_with_the_field() {
        for c in all() {
            let bytes = c.encode();
            for cut in 1..bytes.len() {
                if let Ok(d) = Command::decode(&bytes[..cut]) {
                    // Only commands whose last field runs to the end may be cut.
                    assert!(
                        matches!(d, Command::Query(_) | Command::BinlogDump(_)),
                        "{c:?} cut at {cut} decoded as {d:?}"
                    );
                }
            }
        }
        let err = Command::decode(&[0x99]).unwrap_err();
        assert!(err.to_string().contains("0x99"), "{err}");
    }

    #[test]
    fn register_slave_debug_hides_the_password() {
        let text = format!("{:?}", all()[4]);
        assert!(!text.contains("secret") && text.contains("<redacted>"), "{text}");
    }
}
