//! What the server answers to a command: OK, ERR, EOF, and text result sets.

use crate::error::{ProtocolError, ServerError};
use crate::handshake::caps;
use crate::wire::{put_lenenc_bytes, put_lenenc_int, put_u16, put_u32, Reader, NULL_MARKER};

pub const OK_HEADER: u8 = 0x00;
pub const EOF_HEADER: u8 = 0xfe;
pub const ERR_HEADER: u8 = 0xff;

/// An EOF packet is 0xfe with less than 9 bytes: a longer 0xfe payload is a
/// row or an OK packet in disguise (a length-encoded 8-byte integer).
pub fn is_eof(payload: &[u8]) -> bool {
    payload.first() == Some(&EOF_HEADER) && payload.len() < 9
}

pub fn is_err(payload: &[u8]) -> bool {
    payload.first() == Some(&ERR_HEADER)
}

pub fn is_ok(payload: &[u8]) -> bool {
    payload.first() == Some(&OK_HEADER)
}

/// Decodes an ERR packet.
///
/// The SQLSTATE marker `#` is missing from errors sent before the
/// capabilities are agreed (e.g. "too many connections"), so it is optional.
pub fn decode_err(payload: &[u8]) -> Result<ServerError, ProtocolError> {
    let mut r = Reader::new(payload);
    if r.u8("ERR header")? != ERR_HEADER {
        return Err(r.invalid_at(0, "ERR header", "expected 0xff"));
    }
    let code = r.u16("error code")?;
    let sql_state = if r.peek() == Some(b'#') {
        r.skip(1, "SQLSTATE marker")?;
        // Five ASCII characters by definition; anything else is shown as '?'
        // so that the state stays five characters.
        Some(
            r.bytes(5, "SQLSTATE")?.iter().map(|&b| if b.is_ascii() { char::from(b) } else { '?' }).collect(),
        )
    } else {
        None
    };
    let message = String::from_utf8_lossy(r.rest()).into_owned();
    Ok(ServerError { code, sql_state, message })
}

pub fn encode_err(err: &ServerError) -> Vec<u8> {
    let mut out = vec![ERR_HEADER];
    put_u16(&mut out, err.code);
    if let Some(state) = &err.sql_state {
        out.push(b'#');
        let mut state = state.as_bytes().to_vec();
        state.resize(5, b'0');
        out.extend_from_slice(&state);
    }
    out.extend_from_slice(err.message.as_bytes());
    out
}

/// An OK packet (or the OK-shaped EOF that ends a result set under
/// `CLIENT_DEPRECATE_EOF`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    /// Human-readable info ("Rows matched: 1 …"); session-state tracking
    /// data, when present, is not decoded.
    pub info: Vec<u8>,
}

impl OkPacket {
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let header = r.u8("OK header")?;
        if header != OK_HEADER && header != EOF_HEADER {
            return Err(r.invalid_at(0, "OK header", format!("expected 0x00 or 0xfe, got 0x{header:02x}")));
        }
        let affected_rows = r.lenenc_int("affected rows")?;
        let last_insert_id = r.lenenc_int("last insert id")?;
        // Pre-4.1 servers end here.
        let (status, warnings) =
            if r.is_empty() { (0, 0) } else { (r.u16("status flags")?, r.u16("warnings")?) };
        Ok(OkPacket { affected_rows, last_insert_id, status, warnings, info: r.rest().to_vec() })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![OK_HEADER];
        put_lenenc_int(&mut out, self.affected_rows);
        put_lenenc_int(&mut out, self.last_insert_id);
        put_u16(&mut out, self.status);
        put_u16(&mut out, self.warnings);
        out.extend_from_slice(&self.info);
        out
    }
}

/// Server status flag: more result sets follow this one.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

/// One column of a result set (Protocol::ColumnDefinition41), with the
/// fields a client needs; catalog and the original names are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnDefinition {
    pub schema: Vec<u8>,
    pub table: Vec<u8>,
    pub name: Vec<u8>,
    pub charset: u16,
    pub length: u32,
    pub column_type: u8,
    pub flags: u16,
    pub decimals: u8,
}

impl ColumnDefinition {
    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        r.lenenc_bytes("catalog")?;
        let schema = r.lenenc_bytes("schema")?.to_vec();
        let table = r.lenenc_bytes("table")?.to_vec();
        r.lenenc_bytes("original table")?;
        let name = r.lenenc_bytes("column name")?.to_vec();
        r.lenenc_bytes("original column name")?;
        let fixed = r.lenenc_int("length of fixed fields")?;
        if fixed < 12 {
            return Err(r.invalid_at(
                r.offset() - 1,
                "length of fixed fields",
                format!("{fixed}, expected 12"),
            ));
        }
        let charset = r.u16("character set")?;
        let length = r.u32("column length")?;
        let column_type = r.u8("column type")?;
        let flags = r.u16("column flags")?;
        let decimals = r.u8("decimals")?;
        Ok(ColumnDefinition { schema, table, name, charset, length, column_type, flags, decimals })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_lenenc_bytes(&mut out, b"def");
        put_lenenc_bytes(&mut out, &self.schema);
        put_lenenc_bytes(&mut out, &self.table);
        put_lenenc_bytes(&mut out, &self.table);
        put_lenenc_bytes(&mut out, &self.name);
        put_lenenc_bytes(&mut out, &self.name);
        out.push(0x0c);
        put_u16(&mut out, self.charset);
        put_u32(&mut out, self.length);
        out.push(self.column_type);
        put_u16(&mut out, self.flags);
        out.push(self.decimals);
        out.extend_from_slice(&[0, 0]);
        out
    }
}

/// A row of a text result set: every value as the server prints it.
pub type TextRow = Vec<Option<Vec<u8>>>;

pub fn decode_text_row(payload: &[u8], columns: usize) -> Result<TextRow, ProtocolError> {
    let mut r = Reader::new(payload);
    let row = (0..columns)
        .map(|_| Ok(r.lenenc_bytes_or_null("column value")?.map(<[u8]>::to_vec)))
        .collect::<Result<TextRow, ProtocolError>>()?;
    r.finish("text row")?;
    Ok(row)
}

pub fn encode_text_row(row: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in row {
        match value {
            Some(v) => put_lenenc_bytes(&mut out, v),
            None => out.push(NULL_MARKER),
        }
    }
    out
}

/// The whole answer to a COM_QUERY: either an OK (statements without rows)
/// or a result set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResult {
    Ok(OkPacket),
    Rows(ResultSet),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    pub columns: Vec<ColumnDefinition>,
    pub rows: Vec<TextRow>,
}

impl ResultSet {
    /// Index of the column named `name` (ASCII case-insensitive, like the
    /// server's own column names).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// Reads the answer to COM_QUERY one payload at a time.
///
/// Feed every payload the server sends after the query to [`push`]; it says
/// when the answer is complete. An ERR at any point ends it with the server's
/// error. Only the first result set is kept; later ones (multi-statement
/// queries) are read and dropped so the connection stays in step.
///
/// [`push`]: QueryResponse::push
#[derive(Debug)]
pub struct QueryResponse {
    deprecate_eof: bool,
    state: State,
    first: Option<QueryResult>,
    /// Results still to come, when they are counted ([`Self::counted`])
    /// rather than announced by the server's more-results flag.
    left: Option<u64>,
}

#[derive(Debug)]
enum State {
    Start,
    Columns {
        left: u64,
        set: ResultSet,
    },
    /// Waiting for the EOF after the column definitions (no DEPRECATE_EOF).
    ColumnsEof {
        set: ResultSet,
    },
    Rows {
        set: ResultSet,
    },
}

/// What [`QueryResponse::push`] says after each payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    NeedMore,
    Done(QueryResult),
}

impl QueryResponse {
    /// `capabilities`: the flags agreed at the handshake.
    pub fn new(capabilities: u32) -> Self {
        QueryResponse {
            deprecate_eof: capabilities & caps::DEPRECATE_EOF != 0,
            state: State::Start,
            first: None,
            left: None,
        }
    }

    /// Reads the answers to a multi-statement query of `statements`
    /// statements, one result each, whatever the more-results flag says
    /// (an ERR still ends it). MariaDB 10.11 leaves that flag off in the OK
    /// of a `BINLOG` statement of row events, yet runs and answers the
    /// statements after it: following the flag would stop early and leave
    /// their answers unread.
    pub fn counted(capabilities: u32, statements: u64) -> Self {
        QueryResponse { left: Some(statements.max(1)), ..QueryResponse::new(capabilities) }
    }

    pub fn push(&mut self, payload: &[u8]) -> Result<Progress, QueryError> {
        if is_err(payload) {
            return Err(QueryError::Server(decode_err(payload)?));
        }
        let state = std::mem::replace(&mut self.state, State::Start);
        let (next, finished) = match state {
            State::Start => match payload.first() {
                Some(&OK_HEADER) => {
                    let ok = OkPacket::decode(payload)?;
                    let more = ok.status & SERVER_MORE_RESULTS_EXISTS != 0;
                    (State::Start, Some((QueryResult::Ok(ok), more)))
                }
                Some(0xfb) => {
                    return Err(QueryError::Protocol(ProtocolError::Unexpected {
                        what: "LOCAL INFILE request (gapless never sends LOAD DATA LOCAL)",
                        first: 0xfb,
                        len: payload.len(),
                    }))
                }
                _ => {
                    let mut r = Reader::new(payload);
                    let left = r.lenenc_int("column count")?;
                    r.finish("column count")?;
                    if left == 0 {
                        return Err(unexpected("result set without columns", payload));
                    }
                    (State::Columns { left, set: ResultSet::default() }, None)
                }
            },
            State::Columns { left, mut set } => {
                set.columns.push(ColumnDefinition::decode(payload)?);
                match (left - 1, self.deprecate_eof) {
                    (0, true) => (State::Rows { set }, None),
                    (0, false) => (State::ColumnsEof { set }, None),
                    (left, _) => (State::Columns { left, set }, None),
                }
            }
            State::ColumnsEof { set } => {
                if !is_eof(payload) {
                    return Err(unexpected(
                        "packet instead of the EOF after the column definitions",
                        payload,
                    ));
                }
                (State::Rows { set }, None)
            }
            State::Rows { mut set } => {
                if payload.first() == Some(&EOF_HEADER) && payload.len() < 0xff_ffff {
                    let status = if self.deprecate_eof {
                        OkPacket::decode(payload)?.status
                    } else if payload.len() >= 5 {
                        u16::from_le_bytes([payload[3], payload[4]])
                    } else {
                        0
                    };
                    let more = status & SERVER_MORE_RESULTS_EXISTS != 0;
                    (State::Start, Some((QueryResult::Rows(set), more)))
                } else {
                    let row = decode_text_row(payload, set.columns.len())?;
                    set.rows.push(row);
                    (State::Rows { set }, None)
                }
            }
        };
        self.state = next;
        match finished {
            None => Ok(Progress::NeedMore),
            Some((result, more)) => {
                self.first.get_or_insert(result);
                let more = match self.left.as_mut() {
                    Some(left) => {
                        *left -= 1;
                        *left > 0
                    }
                    None => more,
                };
                if more {
                    Ok(Progress::NeedMore)
                } else {
                    Ok(Progress::Done(self.first.take().expect("set just above")))
                }
            }
        }
    }
}

fn unexpected(what: &'static str, payload: &[u8]) -> QueryError {
    QueryError::Protocol(ProtocolError::Unexpected {
        what,
        first: payload.first().copied().unwrap_or(0),
        len: payload.len(),
    })
}

/// Why a query failed: the server said no, or its answer made no sense.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum QueryError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_with_and_without_sqlstate() {
        let e = ServerError {
            code: 1236,
            sql_state: Some("HY000".into()),
            message: "Could not find first log file name in binary log index file".into(),
        };
        let bytes = encode_err(&e);
        assert_eq!(decode_err(&bytes).unwrap(), e);
        assert_eq!(
            e.to_string(),
            "ERROR 1236 (HY000): Could not find first log file name in binary log index file"
        );
        let early = b"\xff\x10\x04Too many connections";
        let e = decode_err(early).unwrap();
        assert_eq!((e.code, e.sql_state.as_deref()), (1040, None));
        assert_eq!(e.to_string(), "ERROR 1040: Too many connections");
        assert!(decode_err(b"\xff\x10").is_err());
    }

    #[test]
    fn ok_round_trip() {
        let ok = OkPacket {
            affected_rows: 300,
            last_insert_id: 1 << 40,
            status: 2,
            warnings: 1,
            info: b"x".to_vec(),
        };
        assert_eq!(OkPacket::decode(&ok.encode()).unwrap(), ok);
        assert!(OkPacket::decode(b"\x01").is_err());
    }

    fn columns(names: &[&str]) -> Vec<ColumnDefinition> {
        names
            .iter()
            .map(|n| ColumnDefinition {
                name: n.as_bytes().to_vec(),
                column_type: 253,
                charset: 33,
                ..Default::default()
            })
            .collect()
    }

    /// The packets of a two-column, two-row result set, with or without
    /// CLIENT_DEPRECATE_EOF.
    fn result_set_packets(deprecate_eof: bool, more: bool) -> Vec<Vec<u8>> {
        let status = if more { SERVER_MORE_RESULTS_EXISTS | 2 } else { 2 };
        let mut p = vec![vec![2]];
        p.extend(columns(&["Variable_name", "Value"]).iter().map(ColumnDefinition::encode));
        if !deprecate_eof {
            p.push(vec![0xfe, 0, 0, 2, 0]);
        }
        p.push(encode_text_row(&[Some(b"server_id".to_vec()), Some(b"1".to_vec())]));
        p.push(encode_text_row(&[Some(b"gtid_slave_pos".to_vec()), None]));
        if deprecate_eof {
            let mut ok = OkPacket { status, ..Default::default() }.encode();
            ok[0] = 0xfe;
            p.push(ok);
        } else {
            p.push(vec![0xfe, 0, 0, status as u8, (status >> 8) as u8]);
        }
        p
    }

    fn run(caps: u32, packets: &[Vec<u8>]) -> Result<QueryResult, QueryError> {
        let mut q = QueryResponse::new(caps);
        for (i, p) in packets.iter().enumerate() {
            match q.push(p)? {
                Progress::Done(r) => {
                    assert_eq!(i, packets.len() - 1, "done before the last packet");
                    return Ok(r);
                }
                Progress::NeedMore => {}
            }
        }
        panic!("not done after {} packets", packets.len());
    }

    #[test]
    fn result_sets_with_and_without_deprecate_eof() {
        for (caps, deprecate) in [(0, false), (caps::DEPRECATE_EOF, true)] {
            let QueryResult::Rows(set) = run(caps, &result_set_packets(deprecate, false)).unwrap() else {
                panic!("rows expected");
            };
            assert_eq!(set.columns.len(), 2);
            assert_eq!(set.column("VALUE"), Some(1));
            assert_eq!(
                set.rows,
                vec![
                    vec![Some(b"server_id".to_vec()), Some(b"1".to_vec())],
                    vec![Some(b"gtid_slave_pos".to_vec()), None],
                ]
            );
        }
    }

    #[test]
    fn multiple_results_keep_the_first() {
        let mut packets = result_set_packets(false, true);
        packets.push(OkPacket { affected_rows: 9, ..Default::default() }.encode());
        let QueryResult::Rows(set) = run(0, &packets).unwrap() else { panic!("rows expected") };
        assert_eq!(set.rows.len(), 2);
    }

    /// MariaDB's answer to `BEGIN; BINLOG '…'; COMMIT`: the BINLOG
    /// statement's OK lacks the more-results flag, and the COMMIT's OK
    /// follows it anyway.
    #[test]
    fn counted_answers_go_past_a_missing_more_results_flag() {
        let more = OkPacket { status: SERVER_MORE_RESULTS_EXISTS | 2, ..Default::default() }.encode();
        let last = OkPacket { status: 2, ..Default::default() }.encode();
        let binlog = OkPacket { status: 2, affected_rows: 7, ..Default::default() }.encode();
        let packets = [more.clone(), binlog.clone(), last.clone()];
        // Following the flag stops after the BINLOG statement's answer.
        let mut flagged = QueryResponse::new(0);
        assert_eq!(flagged.push(&packets[0]), Ok(Progress::NeedMore));
        assert!(matches!(flagged.push(&packets[1]), Ok(Progress::Done(_))));
        // Counting reads all three, and keeps the first.
        let mut counted = QueryResponse::counted(0, 3);
        assert_eq!(counted.push(&packets[0]), Ok(Progress::NeedMore));
        assert_eq!(counted.push(&packets[1]), Ok(Progress::NeedMore));
        let Ok(Progress::Done(QueryResult::Ok(first))) = counted.push(&packets[2]) else {
            panic!("done expected")
        };
        assert_eq!(first.status, SERVER_MORE_RESULTS_EXISTS | 2);
        // An ERR ends a counted answer early, with the server's error.
        let e =
            ServerError { code: 1062, sql_state: Some("23000".into()), message: "Duplicate entry".into() };
        let mut counted = QueryResponse::counted(0, 3);
        assert_eq!(counted.push(&more), Ok(Progress::NeedMore));
        assert_eq!(counted.push(&encode_err(&e)), Err(QueryError::Server(e)));
        // A result set counts as one answer, whatever its flag.
        let mut counted = QueryResponse::counted(0, 2);
        let set = result_set_packets(false, false);
        let got: Vec<_> = set.iter().chain([&binlog]).map(|p| counted.push(p)).collect();
        assert!(got[..set.len()].iter().all(|g| *g == Ok(Progress::NeedMore)));
        assert!(matches!(got.last(), Some(Ok(Progress::Done(QueryResult::Rows(_))))));
    }

    #[test]
    fn ok_and_err_answers() {
        let ok = OkPacket { affected_rows: 3, ..Default::default() };
        assert_eq!(run(0, &[ok.encode()]).unwrap(), QueryResult::Ok(ok));
        let e = ServerError { code: 1064, sql_state: Some("42000".into()), message: "syntax".into() };
        let mut packets = result_set_packets(false, false);
        packets.insert(3, encode_err(&e));
        let mut q = QueryResponse::new(0);
        let got = packets[..4].iter().map(|p| q.push(p)).last().unwrap();
        assert_eq!(got, Err(QueryError::Server(e)));
    }

    #[test]
    fn malformed_answers() {
        // A row with the wrong number of values.
        let mut packets = result_set_packets(true, false);
        packets[3] = encode_text_row(&[Some(b"only one".to_vec())]);
        assert!(matches!(run(caps::DEPRECATE_EOF, &packets), Err(QueryError::Protocol(_))));
        // A row where the EOF after the column definitions should be.
        let mut packets = result_set_packets(false, false);
        packets.remove(3);
        assert!(matches!(run(0, &packets), Err(QueryError::Protocol(ProtocolError::Unexpected { .. }))));
        // LOCAL INFILE is refused.
        assert!(QueryResponse::new(0).push(b"\xfb/etc/passwd").is_err());
    }
}
