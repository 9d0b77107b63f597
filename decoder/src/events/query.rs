//! QUERY_EVENT (and MariaDB's QUERY_COMPRESSED_EVENT): a statement with the
//! session state it ran under.
//!
//! ```text
//! post-header: thread_id u32 | exec_time u32 | db_len u8 | error_code u16 | status_vars_len u16
//! body:        status_vars [status_vars_len] | db [db_len] NUL | query (to the end)
//! ```

use std::borrow::Cow;

use crate::compress;
use crate::cursor::Cursor;
use crate::error::Result;

/// A decoded QUERY event.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryEvent<'a> {
    /// The connection that ran the statement.
    pub thread_id: u32,
    /// Seconds the statement took.
    pub exec_time: u32,
    /// The server error the statement ended with (usually 0).
    pub error_code: u16,
    /// The session state the statement needs to run the same way again.
    pub status: StatusVars<'a>,
    /// The default database (may be empty).
    pub schema: &'a [u8],
    /// The statement text (inflated for MariaDB compressed events).
    pub query: Cow<'a, [u8]>,
}

/// The status variables of a QUERY event that a replay needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusVars<'a> {
    /// The raw status block, for re-emitting as is.
    pub raw: &'a [u8],
    /// `OPTION_*` bits (foreign key checks, unique checks, autocommit...).
    pub flags2: Option<u32>,
    /// `sql_mode` bits.
    pub sql_mode: Option<u64>,
    /// Catalog name (always "std").
    pub catalog: Option<&'a [u8]>,
    /// (auto_increment_increment, auto_increment_offset).
    pub auto_increment: Option<(u16, u16)>,
    /// (character_set_client, collation_connection, collation_server) ids.
    pub charset: Option<(u16, u16, u16)>,
    /// `time_zone` as text.
    pub time_zone: Option<&'a [u8]>,
    /// `lc_time_names` id.
    pub lc_time_names: Option<u16>,
    /// `collation_database` id.
    pub charset_database: Option<u16>,
    /// Tables of a multi-table update.
    pub table_map_for_update: Option<u64>,
    /// The definer for SP/trigger/view statements (user, host).
    pub invoker: Option<(&'a [u8], &'a [u8])>,
    /// Databases the statement changed (None when over the limit).
    pub updated_db_names: Vec<&'a [u8]>,
    /// Microseconds part of the start time.
    pub microseconds: Option<u32>,
    /// explicit_defaults_for_timestamp.
    pub explicit_defaults_for_timestamp: Option<u8>,
    /// XID of a DDL logged with one (MySQL 8.0).
    pub ddl_xid: Option<u64>,
    /// default_collation_for_utf8mb4.
    pub default_collation_for_utf8mb4: Option<u16>,
    /// sql_require_primary_key.
    pub sql_require_primary_key: Option<u8>,
    /// default_table_encryption.
    pub default_table_encryption: Option<u8>,
    /// MariaDB: the XID of the transaction this statement ends.
    pub mariadb_xid: Option<u64>,
    /// MariaDB: extra GTID flags.
    pub mariadb_gtid_flags3: Option<u8>,
    /// A status code this decoder does not know; the rest of the block
    /// could not be read past it (its layout is unknown) and is in `raw`.
    pub unknown_code: Option<u8>,
}

impl<'a> QueryEvent<'a> {
    /// Decodes the body (after the common header, checksum removed).
    /// `post_header_len` comes from the FDE (13 for 5.0+; 11 without
    /// status variables); `compressed` for MariaDB QUERY_COMPRESSED.
    pub fn parse(c: &mut Cursor<'a>, post_header_len: u8, compressed: bool) -> Result<Self> {
        Ok(Self::parse_with_extra(c, post_header_len, compressed)?.0)
    }

    /// Like [`QueryEvent::parse`], and also returns the post-header bytes
    /// beyond the standard 13 (EXECUTE_LOAD_QUERY keeps its fields there).
    pub fn parse_with_extra(
        c: &mut Cursor<'a>,
        post_header_len: u8,
        compressed: bool,
    ) -> Result<(Self, &'a [u8])> {
        let thread_id = c.u32("query thread id")?;
        let exec_time = c.u32("query exec time")?;
        let db_len = c.u8("query db length")?;
        let error_code = c.u16("query error code")?;
        let mut status_len = 0usize;
        if post_header_len >= 13 {
            status_len = usize::from(c.u16("query status vars length")?);
        }
        let extra = c.bytes("query post-header", usize::from(post_header_len.saturating_sub(13)))?;
        let mut status_cur = c.sub("query status vars", status_len)?;
        let status = StatusVars::parse(&mut status_cur)?;
        let schema = c.bytes("query db name", usize::from(db_len))?;
        c.skip("query db name terminator", 1)?;
        let text_offset = c.offset();
        let text = c.take_rest();
        let query = if compressed {
            Cow::Owned(compress::inflate(text, text_offset, "QUERY_COMPRESSED text")?)
        } else {
            Cow::Borrowed(text)
        };
        Ok((QueryEvent { thread_id, exec_time, error_code, status, schema, query }, extra))
    }

    /// The statement as text (lossy for invalid UTF-8).
    pub fn query_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.query)
    }
}

impl<'a> StatusVars<'a> {
    /// Decodes a status variable block.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        let mut s = StatusVars { raw: c.rest(), ..Default::default() };
        while !c.is_empty() {
            let code = c.u8("status var code")?;
            match code {
                0 => s.flags2 = Some(c.u32("Q_FLAGS2")?),
                1 => s.sql_mode = Some(c.u64("Q_SQL_MODE")?),
                2 => {
                    // Old catalog: length, bytes, NUL.
                    s.catalog = Some(c.u8_prefixed("Q_CATALOG")?);
                    c.skip("Q_CATALOG terminator", 1)?;
                }
                3 => s.auto_increment = Some((c.u16("Q_AUTO_INCREMENT")?, c.u16("Q_AUTO_INCREMENT")?)),
                4 => s.charset = Some((c.u16("Q_CHARSET")?, c.u16("Q_CHARSET")?, c.u16("Q_CHARSET")?)),
                5 => s.time_zone = Some(c.u8_prefixed("Q_TIME_ZONE")?),
                6 => s.catalog = Some(c.u8_prefixed("Q_CATALOG_NZ")?),
                7 => s.lc_time_names = Some(c.u16("Q_LC_TIME_NAMES")?),
                8 => s.charset_database = Some(c.u16("Q_CHARSET_DATABASE")?),
                9 => s.table_map_for_update = Some(c.u64("Q_TABLE_MAP_FOR_UPDATE")?),
                10 => c.skip("Q_MASTER_DATA_WRITTEN", 4)?,
                11 => {
                    let user = c.u8_prefixed("Q_INVOKER user")?;
                    let host = c.u8_prefixed("Q_INVOKER host")?;
                    s.invoker = Some((user, host));
                }
                12 => {
                    let count = c.u8("Q_UPDATED_DB_NAMES count")?;
                    // 254 (OVER_MAX_DBS_IN_EVENT_MTS) means "too many to list".
                    if count != 254 {
                        for _ in 0..count {
                            s.updated_db_names.push(c.nul_terminated("Q_UPDATED_DB_NAMES")?);
                        }
                    }
                }
                13 => s.microseconds = Some(c.u24("Q_MICROSECONDS")?),
                14 | 15 => {
                    // Q_COMMIT_TS / Q_COMMIT_TS2 were reserved but never
                    // written; their layout is unknown.
                    s.unknown_code = Some(code);
                    break;
                }
                16 => s.explicit_defaults_for_timestamp = Some(c.u8("Q_EXPLICIT_DEFAULTS_FOR_TIMESTAMP")?),
                17 => s.ddl_xid = Some(c.u64("Q_DDL_LOGGED_WITH_XID")?),
                18 => s.default_collation_for_utf8mb4 = Some(c.u16("Q_DEFAULT_COLLATION_FOR_UTF8MB4")?),
                19 => s.sql_require_primary_key = Some(c.u8("Q_SQL_REQUIRE_PRIMARY_KEY")?),
                20 => s.default_table_encryption = Some(c.u8("Q_DEFAULT_TABLE_ENCRYPTION")?),
                128 => c.skip("Q_HRNOW", 3)?,
                129 => s.mariadb_xid = Some(c.u64("Q_XID")?),
                130 => s.mariadb_gtid_flags3 = Some(c.u8("Q_GTID_FLAGS3")?),
                _ => {
                    // Like the server: stop at a code we cannot size.
                    s.unknown_code = Some(code);
                    break;
                }
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_vars_and_query() {
        let mut body = Vec::new();
        body.extend_from_slice(&7u32.to_le_bytes()); // thread
        body.extend_from_slice(&0u32.to_le_bytes()); // exec time
        body.push(4); // db len
        body.extend_from_slice(&0u16.to_le_bytes()); // error
        let status: &[u8] = &[0, 0, 0, 0, 0, 5, 6, b'+', b'0', b'0', b':', b'0', b'0'];
        body.extend_from_slice(&(status.len() as u16).to_le_bytes());
        body.extend_from_slice(status);
        body.extend_from_slice(b"shop\0BEGIN");
        let q = QueryEvent::parse(&mut Cursor::new(&body, 19), 13, false).unwrap();
        assert_eq!(q.thread_id, 7);
        assert_eq!(q.schema, b"shop");
        assert_eq!(&*q.query, b"BEGIN");
        assert_eq!(q.status.flags2, Some(0));
        assert_eq!(q.status.time_zone, Some(&b"+00:00"[..]));
    }

    #[test]
    fn truncated_status_block_names_offset() {
        let mut body = vec![0u8; 8];
        body.push(0);
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&[3, 0]); // 3 bytes of status
        body.extend_from_slice(&[1, 0, 0]); // Q_SQL_MODE needs 8
        body.push(0);
        let err = QueryEvent::parse(&mut Cursor::new(&body, 100), 13, false).unwrap_err();
        assert_eq!(err.offset(), 114);
    }
}
