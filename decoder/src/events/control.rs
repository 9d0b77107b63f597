//! The small events: rotation, transaction ends, statement context, LOAD
//! DATA, incidents, heartbeats, group replication and MariaDB bookkeeping.

use crate::cursor::Cursor;
use crate::error::Result;

/// ROTATE_EVENT: the next binlog file and where to start in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotate<'a> {
    /// Position in the next file (4 for a new file).
    pub position: u64,
    /// Name of the next file.
    pub next_file: &'a [u8],
}

impl<'a> Rotate<'a> {
    /// Decodes a ROTATE body.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        Ok(Rotate { position: c.u64("rotate position")?, next_file: c.take_rest() })
    }
}

/// INTVAR_EVENT: LAST_INSERT_ID or INSERT_ID for the next statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntVar {
    /// 1 = LAST_INSERT_ID, 2 = INSERT_ID.
    pub kind: u8,
    /// The value.
    pub value: u64,
}

impl IntVar {
    /// Decodes an INTVAR body.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Self> {
        Ok(IntVar { kind: c.u8("intvar type")?, value: c.u64("intvar value")? })
    }

    /// The variable's SQL name.
    pub fn name(&self) -> &'static str {
        match self.kind {
            1 => "LAST_INSERT_ID",
            2 => "INSERT_ID",
            _ => "INVALID_INT",
        }
    }
}

/// RAND_EVENT: the seeds of RAND() for the next statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rand {
    /// rand_seed1.
    pub seed1: u64,
    /// rand_seed2.
    pub seed2: u64,
}

impl Rand {
    /// Decodes a RAND body.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Self> {
        Ok(Rand { seed1: c.u64("rand seed1")?, seed2: c.u64("rand seed2")? })
    }
}

/// USER_VAR_EVENT: a user variable the next statement reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserVar<'a> {
    /// Variable name (without `@`).
    pub name: &'a [u8],
    /// `None` when the variable is NULL.
    pub value: Option<UserVarValue<'a>>,
}

/// The value of a non-NULL user variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserVarValue<'a> {
    /// Item_result: 0 string, 1 real, 2 int, 4 decimal.
    pub kind: u8,
    /// Collation id of a string value.
    pub charset: u32,
    /// The value bytes as the server stored them.
    pub bytes: &'a [u8],
    /// Flags (bit 0: unsigned), when present.
    pub flags: Option<u8>,
}

impl<'a> UserVar<'a> {
    /// Decodes a USER_VAR body.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        let name_len = c.u32("user var name length")? as usize;
        let name = c.bytes("user var name", name_len)?;
        let is_null = c.u8("user var is_null")?;
        if is_null != 0 {
            return Ok(UserVar { name, value: None });
        }
        let kind = c.u8("user var type")?;
        let charset = c.u32("user var charset")?;
        let len = c.u32("user var value length")? as usize;
        let bytes = c.bytes("user var value", len)?;
        let flags = if c.is_empty() { None } else { Some(c.u8("user var flags")?) };
        Ok(UserVar { name, value: Some(UserVarValue { kind, charset, bytes, flags }) })
    }
}

/// INCIDENT_EVENT: the primary could not log something; replicas stop here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incident<'a> {
    /// Incident number (1 = lost events).
    pub kind: u16,
    /// The server's message.
    pub message: &'a [u8],
}

impl<'a> Incident<'a> {
    /// Decodes an INCIDENT body.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        let kind = c.u16("incident type")?;
        let message = if c.is_empty() { &[][..] } else { c.u8_prefixed("incident message")? };
        Ok(Incident { kind, message })
    }
}

/// BEGIN_LOAD_QUERY_EVENT / APPEND_BLOCK: a block of a LOAD DATA file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadBlock<'a> {
    /// Which LOAD DATA the block belongs to.
    pub file_id: u32,
    /// The file contents.
    pub data: &'a [u8],
}

impl<'a> LoadBlock<'a> {
    /// Decodes a BEGIN_LOAD_QUERY or APPEND_BLOCK body.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        Ok(LoadBlock { file_id: c.u32("load file id")?, data: c.take_rest() })
    }
}

/// XA_PREPARE_LOG_EVENT: the end of an XA PREPARE'd transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XaPrepare<'a> {
    /// XA COMMIT ... ONE PHASE.
    pub one_phase: bool,
    /// The XID's formatID.
    pub format_id: u32,
    /// Global transaction id.
    pub gtrid: &'a [u8],
    /// Branch qualifier.
    pub bqual: &'a [u8],
}

impl<'a> XaPrepare<'a> {
    /// Decodes an XA_PREPARE body.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        let one_phase = c.u8("xa one_phase")? != 0;
        let format_id = c.u32("xa format id")?;
        let gtrid_len = c.u32("xa gtrid length")? as usize;
        let bqual_len = c.u32("xa bqual length")? as usize;
        if gtrid_len > 64 || bqual_len > 64 {
            return Err(c.invalid("xa xid", format!("gtrid {gtrid_len} / bqual {bqual_len} bytes, over 64")));
        }
        let gtrid = c.bytes("xa gtrid", gtrid_len)?;
        let bqual = c.bytes("xa bqual", bqual_len)?;
        Ok(XaPrepare { one_phase, format_id, gtrid, bqual })
    }
}

/// TRANSACTION_CONTEXT_EVENT (group replication certification data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionContext<'a> {
    /// The server uuid that wrote the event.
    pub server_uuid: &'a [u8],
    /// The transaction's thread id.
    pub thread_id: u32,
    /// True when GTIDs were assigned by the server.
    pub gtid_specified: bool,
    /// The encoded snapshot version (a GTID set).
    pub snapshot_version: &'a [u8],
    /// Hashes of the rows written.
    pub write_set: Vec<&'a [u8]>,
    /// Hashes of the rows read.
    pub read_set: Vec<&'a [u8]>,
}

impl<'a> TransactionContext<'a> {
    /// Decodes a TRANSACTION_CONTEXT body.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        let uuid_len = usize::from(c.u8("server uuid length")?);
        let thread_id = c.u32("thread id")?;
        let gtid_specified = c.u8("gtid specified")? != 0;
        let snapshot_len = c.u32("snapshot version length")? as usize;
        let write_count = c.u32("write set count")?;
        let read_count = c.u32("read set count")?;
        let server_uuid = c.bytes("server uuid", uuid_len)?;
        let snapshot_version = c.bytes("snapshot version", snapshot_len)?;
        let mut items = |count: u32, what: &'static str| -> Result<Vec<&'a [u8]>> {
            // Each item takes at least 2 bytes, which caps the count.
            let mut out = Vec::with_capacity((count as usize).min(c.remaining() / 2));
            for _ in 0..count {
                let len = usize::from(c.u16(what)?);
                out.push(c.bytes(what, len)?);
            }
            Ok(out)
        };
        let write_set = items(write_count, "write set item")?;
        let read_set = items(read_count, "read set item")?;
        Ok(TransactionContext {
            server_uuid,
            thread_id,
            gtid_specified,
            snapshot_version,
            write_set,
            read_set,
        })
    }
}

/// VIEW_CHANGE_EVENT (group replication membership change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewChange<'a> {
    /// The view identifier (40 bytes, NUL-padded).
    pub view_id: &'a [u8],
    /// Sequence number of the view.
    pub seq_number: u64,
    /// Certification info entries (key, value).
    pub certification_info: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> ViewChange<'a> {
    /// Decodes a VIEW_CHANGE body.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        let raw_id = c.bytes("view id", 40)?;
        let end = raw_id.iter().position(|&b| b == 0).unwrap_or(raw_id.len());
        let seq_number = c.u64("view seq number")?;
        let count = c.u32("certification info count")?;
        let mut certification_info = Vec::with_capacity((count as usize).min(c.remaining() / 6));
        for _ in 0..count {
            let klen = usize::from(c.u16("certification key length")?);
            let key = c.bytes("certification key", klen)?;
            let vlen = c.u32("certification value length")? as usize;
            let value = c.bytes("certification value", vlen)?;
            certification_info.push((key, value));
        }
        Ok(ViewChange { view_id: &raw_id[..end], seq_number, certification_info })
    }
}

/// MariaDB START_ENCRYPTION_EVENT: every later event of the file is
/// encrypted with the key named here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartEncryption<'a> {
    /// Encryption scheme (1 = AES).
    pub scheme: u8,
    /// Key version in the key management plugin.
    pub key_version: u32,
    /// The 12-byte nonce.
    pub nonce: &'a [u8],
}

impl<'a> StartEncryption<'a> {
    /// Decodes a START_ENCRYPTION body.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        Ok(StartEncryption {
            scheme: c.u8("encryption scheme")?,
            key_version: c.u32("encryption key version")?,
            nonce: c.bytes("encryption nonce", 12)?,
        })
    }
}

/// MariaDB BINLOG_CHECKPOINT_EVENT: the oldest binlog still needed for
/// crash recovery.
pub fn parse_binlog_checkpoint<'a>(c: &mut Cursor<'a>) -> Result<&'a [u8]> {
    let len = c.u32("checkpoint file name length")? as usize;
    c.bytes("checkpoint file name", len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_var_string_and_null() {
        let mut body = Vec::new();
        body.extend_from_slice(&1u32.to_le_bytes());
        body.push(b'a');
        body.push(0);
        body.push(0);
        body.extend_from_slice(&33u32.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(b"hi");
        let v = UserVar::parse(&mut Cursor::new(&body, 0)).unwrap();
        assert_eq!(v.name, b"a");
        assert_eq!(v.value.unwrap().bytes, b"hi");
        assert_eq!(v.value.unwrap().flags, None);
        let null = [1, 0, 0, 0, b'b', 1];
        assert_eq!(UserVar::parse(&mut Cursor::new(&null, 0)).unwrap().value, None);
    }

    #[test]
    fn every_truncation_of_xa_prepare_fails_cleanly() {
        let mut body = vec![0u8];
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&3u32.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(b"abcd");
        let full = XaPrepare::parse(&mut Cursor::new(&body, 0)).unwrap();
        assert_eq!((full.gtrid, full.bqual), (&b"abc"[..], &b"d"[..]));
        for cut in 0..body.len() {
            assert!(XaPrepare::parse(&mut Cursor::new(&body[..cut], 0)).is_err());
        }
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let mut body = vec![0u8; 40];
        body.extend_from_slice(&1u64.to_le_bytes());
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(ViewChange::parse(&mut Cursor::new(&body, 0)).is_err());
    }
}
