//! The v4 event header and the event type code.
//!
//! ```text
//!  0        4      5          9            13         17      19
//!  +--------+------+----------+------------+----------+-------+
//!  |  when  | type | server_id| event_size | log_pos  | flags |
//!  +--------+------+----------+------------+----------+-------+
//! ```
//!
//! `event_size` covers the header, the body and the trailing checksum.
//! `log_pos` is the end position of the event in the *primary's* binlog;
//! MariaDB 11.4+ writes 0 inside transactions, so positions are taken from the
//! file offset instead and `log_pos` is only reported.

use crate::cursor::Cursor;
use crate::error::Result;

/// Size of a v4 event header.
pub const HEADER_LEN: usize = 19;

/// The four bytes every binlog file starts with.
pub const BINLOG_MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// Header flag: the binlog was not closed cleanly (set in the FDE while the
/// server writes the file).
pub const LOG_EVENT_BINLOG_IN_USE_F: u16 = 0x1;

/// The 19-byte header in front of every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader {
    /// Seconds since the epoch when the statement started.
    pub timestamp: u32,
    /// What kind of event follows.
    pub event_type: EventType,
    /// The server that wrote the event first.
    pub server_id: u32,
    /// Length of header + body + checksum.
    pub event_size: u32,
    /// End position in the originating binlog (0 in some MariaDB events).
    pub log_pos: u32,
    /// `LOG_EVENT_*` flags.
    pub flags: u16,
}

impl EventHeader {
    /// Parses a header; `c` must hold at least [`HEADER_LEN`] bytes.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Self> {
        Ok(EventHeader {
            timestamp: c.u32("event header timestamp")?,
            event_type: EventType(c.u8("event header type")?),
            server_id: c.u32("event header server_id")?,
            event_size: c.u32("event header event_size")?,
            log_pos: c.u32("event header log_pos")?,
            flags: c.u16("event header flags")?,
        })
    }
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident($repr:ty) { $($(#[$vmeta:meta])* $variant:ident = $value:expr => $text:expr,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $repr);

        #[allow(missing_docs)]
        impl $name {
            $($(#[$vmeta])* pub const $variant: $name = $name($value);)*

            /// The server's name for this code, or `None` for a code this
            /// decoder does not know (it is still carried, never dropped).
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}(0x{:02x})", stringify!($name), self.0),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "unknown type {}", self.0),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    /// An event type code. Unknown codes are kept as they are.
    EventType(u8) {
        UNKNOWN = 0 => "Unknown",
        START_V3 = 1 => "Start_v3",
        QUERY = 2 => "Query",
        STOP = 3 => "Stop",
        ROTATE = 4 => "Rotate",
        INTVAR = 5 => "Intvar",
        LOAD = 6 => "Load",
        SLAVE = 7 => "Slave",
        CREATE_FILE = 8 => "Create_file",
        APPEND_BLOCK = 9 => "Append_block",
        EXEC_LOAD = 10 => "Exec_load",
        DELETE_FILE = 11 => "Delete_file",
        NEW_LOAD = 12 => "New_load",
        RAND = 13 => "Rand",
        USER_VAR = 14 => "User_var",
        FORMAT_DESCRIPTION = 15 => "Format_desc",
        XID = 16 => "Xid",
        BEGIN_LOAD_QUERY = 17 => "Begin_load_query",
        EXECUTE_LOAD_QUERY = 18 => "Execute_load_query",
        TABLE_MAP = 19 => "Table_map",
        PRE_GA_WRITE_ROWS = 20 => "Write_rows_v0",
        PRE_GA_UPDATE_ROWS = 21 => "Update_rows_v0",
        PRE_GA_DELETE_ROWS = 22 => "Delete_rows_v0",
        WRITE_ROWS_V1 = 23 => "Write_rows_v1",
        UPDATE_ROWS_V1 = 24 => "Update_rows_v1",
        DELETE_ROWS_V1 = 25 => "Delete_rows_v1",
        INCIDENT = 26 => "Incident",
        HEARTBEAT = 27 => "Heartbeat",
        IGNORABLE = 28 => "Ignorable",
        ROWS_QUERY = 29 => "Rows_query",
        WRITE_ROWS_V2 = 30 => "Write_rows",
        UPDATE_ROWS_V2 = 31 => "Update_rows",
        DELETE_ROWS_V2 = 32 => "Delete_rows",
        GTID = 33 => "Gtid",
        ANONYMOUS_GTID = 34 => "Anonymous_Gtid",
        PREVIOUS_GTIDS = 35 => "Previous_gtids",
        TRANSACTION_CONTEXT = 36 => "Transaction_context",
        VIEW_CHANGE = 37 => "View_change",
        XA_PREPARE = 38 => "XA_prepare",
        PARTIAL_UPDATE_ROWS = 39 => "Update_rows_partial",
        TRANSACTION_PAYLOAD = 40 => "Transaction_payload",
        HEARTBEAT_V2 = 41 => "Heartbeat_v2",
        GTID_TAGGED = 42 => "Gtid_tagged_log_event",
        MARIA_ANNOTATE_ROWS = 160 => "Annotate_rows",
        MARIA_BINLOG_CHECKPOINT = 161 => "Binlog_checkpoint",
        MARIA_GTID = 162 => "Gtid",
        MARIA_GTID_LIST = 163 => "Gtid_list",
        MARIA_START_ENCRYPTION = 164 => "Start_encryption",
        MARIA_QUERY_COMPRESSED = 165 => "Query_compressed",
        MARIA_WRITE_ROWS_COMPRESSED_V1 = 166 => "Write_rows_compressed_v1",
        MARIA_UPDATE_ROWS_COMPRESSED_V1 = 167 => "Update_rows_compressed_v1",
        MARIA_DELETE_ROWS_COMPRESSED_V1 = 168 => "Delete_rows_compressed_v1",
        MARIA_WRITE_ROWS_COMPRESSED = 169 => "Write_rows_compressed",
        MARIA_UPDATE_ROWS_COMPRESSED = 170 => "Update_rows_compressed",
        MARIA_DELETE_ROWS_COMPRESSED = 171 => "Delete_rows_compressed",
        MARIA_PARTIAL_ROW_DATA = 172 => "Partial_row_data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_in_order() {
        let bytes = [0x01, 0, 0, 0, 0x0f, 0x02, 0, 0, 0, 0x78, 0, 0, 0, 0x7c, 0, 0, 0, 0x01, 0];
        let h = EventHeader::parse(&mut Cursor::new(&bytes, 4)).unwrap();
        assert_eq!(h.timestamp, 1);
        assert_eq!(h.event_type, EventType::FORMAT_DESCRIPTION);
        assert_eq!(h.server_id, 2);
        assert_eq!(h.event_size, 0x78);
        assert_eq!(h.log_pos, 0x7c);
        assert_eq!(h.flags, LOG_EVENT_BINLOG_IN_USE_F);
    }

    #[test]
    fn unknown_codes_are_kept() {
        assert_eq!(format!("{:?}", EventType(100)), "EventType(0x64)");
        assert_eq!(EventType(100).name(), None);
        assert_eq!(EventType::XID.name(), Some("Xid"));
    }
}
