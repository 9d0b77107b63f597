//! `--mode binlog`: a transaction as `BINLOG '…'` statements, the server
//! applying the original row events byte for byte (as `mysqlbinlog` output
//! piped into a client does).
//!
//! A transaction of row events becomes: its GTID, `BEGIN`, one `BINLOG`
//! statement holding the FORMAT_DESCRIPTION in force (which says how the
//! events are written), then its table maps and row events, in order, in
//! statements of at most 4 MiB of events, and `COMMIT` (an XA
//! transaction: `XA START`, …, `XA END` and `XA PREPARE`). Statements
//! (DDL, statement-based DML) are not events the `BINLOG` statement takes:
//! such a transaction is rendered as SQL, as in `--mode sql`. The target
//! login needs `BINLOG REPLAY` (MariaDB) or `SUPER`.

use base64::Engine as _;
use gapless_decoder::events::gtid::FL_PREPARED_XA;
use gapless_decoder::{Decoder, EventData};

use crate::render::sql::{is_savepoint, starts_with_word, xa_prepare, xid_text, XA_ATTACHED, XA_DETACHED};
use crate::stream::Received;

/// The statements of one transaction, made one at a time as they are
/// sent (a large transaction is never held whole as base64). In a
/// multi-statement query their answers must be counted:
/// MariaDB 10.11 leaves the "more results" flag off in the OK of a
/// `BINLOG` statement of row events, yet runs the statements after it, so
/// a client that follows the flag falls out of step, and misses an error.
pub struct Statements<'a> {
    gtid: &'a str,
    format: &'a [u8],
    /// What comes after the format's `BINLOG` statement.
    pieces: Vec<Piece<'a>>,
    /// What starts the transaction: `BEGIN`, or `XA START` of an XA one.
    begin: Vec<String>,
    /// What ends it: `COMMIT`, or `XA END` and `XA PREPARE`.
    end: Vec<String>,
    /// An XA transaction's XID.
    xa: Option<String>,
}

/// A statement of a transaction.
enum Piece<'a> {
    /// The events of a `BINLOG` statement.
    Events(Vec<&'a [u8]>),
    /// A savepoint statement, as SQL.
    Sql(String),
}

/// Plans the statements of a unit's events (each with its binlog
/// position), or gives `None` when it holds events that only SQL can
/// carry (then it is rendered as SQL).
pub fn statements<'a>(
    format: Option<&'a Received>,
    unit: &[(u64, &'a [u8])],
    gtid: &'a str,
    max_statement: usize,
) -> Option<Statements<'a>> {
    let format = format?;
    let mut decoder = Decoder::new();
    decoder.decode(format.offset, &format.bytes).ok()?;
    // Row events in `BINLOG` statements of at most CHUNK_BYTES, and short
    // enough for the target's max_allowed_packet (a large transaction
    // would pass it in one); each statement starts with the transaction's
    // table maps seen so far. One event is never cut: a longer statement is
    // left for the caller to refuse.
    // Savepoints (ORMs nest transactions with them) go as SQL between
    // the `BINLOG` statements.
    let chunk_bytes = CHUNK_BYTES.min(events_within(max_statement));
    let mut pieces = Vec::new();
    let mut chunk: Vec<&[u8]> = Vec::new();
    let mut maps: Vec<&[u8]> = Vec::new();
    let mut size = 0;
    let mut rows = false;
    let mut begin = vec!["BEGIN".to_string()];
    let mut end = vec!["COMMIT".to_string()];
    let mut xa_end = None;
    let mut detached = false;
    let mut xa = None;
    for &(offset, event) in unit {
        let data = decoder.decode(offset, event).ok()?.data;
        if let Some(xid) = xa_started(&data) {
            // An XA transaction's rows (see XA_DETACHED).
            begin = match &data {
                EventData::Query(q) => vec![q.query_text().into_owned()],
                _ => {
                    detached = true;
                    vec![XA_DETACHED.to_string(), format!("XA START {xid}")]
                }
            };
            xa = Some(xid);
            continue;
        }
        match data {
            // Marked as XA, without its XID.
            EventData::MariaGtid(g) if g.flags & FL_PREPARED_XA != 0 => return None,
            EventData::Query(q) if starts_with_word(&q.query, "XA END") => {
                xa_end = Some(q.query_text().into_owned())
            }
            EventData::XaPrepare(x) => {
                let attach = detached.then(|| XA_ATTACHED.to_string());
                end = xa_end.take().into_iter().chain([xa_prepare(&x)]).chain(attach).collect();
            }
            EventData::Gtid(_) | EventData::MariaGtid(_) | EventData::AnnotateRows(_) | EventData::Xid(_) => {
            }
            EventData::Query(q) if q.query.eq_ignore_ascii_case(b"BEGIN") => {}
            EventData::Query(q) if is_savepoint(&q.query) => {
                if chunk.len() > maps.len() {
                    pieces.push(Piece::Events(std::mem::replace(&mut chunk, maps.clone())));
                    size = maps.iter().map(|m| m.len()).sum();
                }
                pieces.push(Piece::Sql(String::from_utf8_lossy(&q.query).into_owned()));
            }
            EventData::TableMap(_) => {
                maps.push(event);
                chunk.push(event);
                size += event.len();
            }
            EventData::Rows(_) => {
                if size + event.len() > chunk_bytes && chunk.len() > maps.len() {
                    pieces.push(Piece::Events(std::mem::replace(&mut chunk, maps.clone())));
                    size = maps.iter().map(|m| m.len()).sum();
                }
                chunk.push(event);
                size += event.len();
                rows = true;
            }
            _ => return None,
        }
    }
    if !rows {
        return None;
    }
    if chunk.len() > maps.len() {
        pieces.push(Piece::Events(chunk));
    }
    if xa_end.is_some() {
        // XA END without XA PREPARE: not a group the server writes.
        return None;
    }
    Some(Statements { gtid, format: &format.bytes, pieces, begin, end, xa })
}

/// The XID of the XA transaction whose rows `data` starts: MariaDB's GTID
/// event of such a group names it, MySQL logs `XA START`. Never that of
/// an XA COMMIT or XA ROLLBACK group: undoing that group as an XA
/// transaction would roll back the prepared one.
pub(super) fn xa_started(data: &EventData<'_>) -> Option<String> {
    match data {
        EventData::MariaGtid(g) if g.flags & FL_PREPARED_XA != 0 => g.xid.as_ref().map(xid_text),
        EventData::Query(q) if starts_with_word(&q.query, "XA START") => {
            let text = q.query_text();
            Some(text.trim().get("XA START ".len()..)?.trim().to_string())
        }
        _ => None,
    }
}

impl Statements<'_> {
    /// The XID of an XA transaction.
    pub fn xa(&self) -> Option<&str> {
        self.xa.as_deref()
    }

    /// The length of each statement [`Self::iter`] gives.
    fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        let pieces = self.pieces.iter().map(|p| match p {
            Piece::Events(events) => statement_len(events.iter().map(|e| e.len()).sum()),
            Piece::Sql(sql) => sql.len(),
        });
        let mysql_gtid = self.gtid.contains(':').then_some(MYSQL_GTID_BACK.len());
        let sql = self.begin.iter().chain(&self.end).map(String::len);
        let gtid = gtid_statement(self.gtid).map(|g| g.len());
        std::iter::once(statement_len(self.format.len()))
            .chain(pieces)
            .chain(sql)
            .chain(gtid)
            .chain(mysql_gtid)
    }

    /// The length of the longest statement.
    pub fn longest(&self) -> usize {
        self.lengths().max().unwrap_or(0)
    }

    /// The length of all the statements [`Self::iter`] gives, each with the
    /// `;` and newline that end it in a batch.
    pub fn batched_len(&self) -> usize {
        self.lengths().map(|len| len + 2).sum()
    }

    /// The statements in order: the GTID, `BEGIN`, the format, the events,
    /// `COMMIT` (and for MySQL the GTID back to automatic).
    pub fn iter(&self) -> impl Iterator<Item = String> + '_ {
        let mysql_gtid = self.gtid.contains(':');
        let head = gtid_statement(self.gtid).into_iter().chain(self.begin.iter().cloned());
        let format = binlog_statement(std::iter::once(self.format));
        let pieces = self.pieces.iter().map(|p| match p {
            Piece::Events(events) => binlog_statement(events.iter().copied()),
            Piece::Sql(sql) => sql.clone(),
        });
        let tail = self.end.iter().cloned().chain(mysql_gtid.then(|| MYSQL_GTID_BACK.to_string()));
        head.chain([format]).chain(pieces).chain(tail)
    }
}

/// After a MySQL transaction: its GTID back to automatic.
const MYSQL_GTID_BACK: &str = "SET @@session.gtid_next='AUTOMATIC'";

/// Bytes of events per `BINLOG` statement, at most (about 5.4 MB of
/// base64, under the 16 MB `max_allowed_packet` MariaDB has by default).
const CHUNK_BYTES: usize = 4 << 20;

/// Bytes of events whose `BINLOG '…'` statement is at most `statement`
/// bytes long (base64 makes 4 of every 3).
fn events_within(statement: usize) -> usize {
    statement.saturating_sub(BINLOG_QUOTES.len() + 1) / 4 * 3
}

/// The length of the `BINLOG '…'` statement of `events` bytes.
fn statement_len(events: usize) -> usize {
    BINLOG_QUOTES.len() + events.div_ceil(3) * 4 + 1
}

/// The statement around the base64 text: `BINLOG '` and a closing quote.
const BINLOG_QUOTES: &str = "BINLOG '";

/// `SET` of the transaction's original GTID.
fn gtid_statement(gtid: &str) -> Option<String> {
    if gtid.contains(':') {
        return Some(format!("SET @@session.gtid_next='{gtid}'"));
    }
    let g: gapless_decoder::gtid::MariaGtid = gtid.parse().ok()?;
    Some(format!(
        "SET @@session.gtid_domain_id={}, @@session.server_id={}, @@session.gtid_seq_no={}",
        g.domain_id, g.server_id, g.seq_no
    ))
}

/// One `BINLOG` statement with the events, base64 encoded back to back.
fn binlog_statement<'a>(events: impl Iterator<Item = &'a [u8]>) -> String {
    let bytes: Vec<u8> = events.flat_map(|e| e.iter().copied()).collect();
    let mut sql = String::from(BINLOG_QUOTES);
    base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut sql);
    sql.push('\'');
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of a corpus seed cut from the generated workload's
    /// binlog (fixtures/workload/types.sql): its two XA transactions, one
    /// committed and one rolled back, each as its rows' group and then its
    /// XA COMMIT / XA ROLLBACK group.
    fn xa_seed() -> (Received, Vec<(u64, Vec<u8>)>) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/sql_render/seed-mariadb-xa-groups");
        let data = std::fs::read(path).expect("seed");
        let mut reader = gapless_decoder::BinlogReader::new(&data, Decoder::new()).expect("a binlog");
        let mut events = Vec::new();
        while let Some(ev) = reader.next() {
            let ev = ev.expect("event");
            events.push((ev.offset, ev.raw.to_vec()));
        }
        let (offset, fde) = events.remove(0);
        let format = Received {
            bytes: bytes::Bytes::from(fde),
            file: "mariadb-bin.000002".into(),
            offset,
            end: 0,
            gtid: None,
            resent: false,
            crc32: true,
        };
        (format, events)
    }

    #[test]
    fn an_xa_transactions_rows_go_between_xa_start_and_xa_prepare_detached() {
        let (format, events) = xa_seed();
        let unit: Vec<(u64, &[u8])> = events.iter().map(|(o, e)| (*o, e.as_slice())).collect();
        // The first group ends at the first XA_PREPARE event.
        let end = unit
            .iter()
            .position(|(_, e)| e[4] == gapless_decoder::EventType::XA_PREPARE.0)
            .expect("XA_PREPARE");
        let rows = statements(Some(&format), &unit[..=end], "0-1-74", 1 << 20).expect("BINLOG statements");
        let xid = "X'6761706c6573732d786131',X'',1";
        assert_eq!(rows.xa(), Some(xid));
        let all: Vec<String> = rows.iter().collect();
        assert_eq!(
            all[..3],
            [
                "SET @@session.gtid_domain_id=0, @@session.server_id=1, @@session.gtid_seq_no=74".to_string(),
                XA_DETACHED.to_string(),
                format!("XA START {xid}"),
            ]
        );
        assert!(all[3..all.len() - 3].iter().all(|s| s.starts_with(BINLOG_QUOTES)), "{all:?}");
        assert_eq!(
            all[all.len() - 3..],
            [format!("XA END {xid}"), format!("XA PREPARE {xid}"), XA_ATTACHED.to_string()]
        );
        // A batch is cut by these lengths.
        let length: usize = all.iter().map(|s| s.len() + 2).sum();
        assert_eq!(rows.batched_len(), length);
        assert_eq!(rows.longest(), all.iter().map(String::len).max().unwrap());
        // Cut into several BINLOG statements, and with a MySQL GTID.
        let small = statements(Some(&format), &unit[..=end], "3e11fa47-71ca-11e1-9e33-c80aa9429562:5", 300)
            .expect("BINLOG statements");
        let all: Vec<String> = small.iter().collect();
        assert!(all.iter().filter(|s| s.starts_with(BINLOG_QUOTES)).count() > 2, "{all:?}");
        let length: usize = all.iter().map(|s| s.len() + 2).sum();
        assert_eq!(small.batched_len(), length);
        // Its XA COMMIT is a statement: SQL, not BINLOG.
        let commit = &unit[end + 1..];
        assert!(commit.len() >= 2, "the XA COMMIT group follows");
        assert!(statements(Some(&format), &commit[..2], "0-1-75", 1 << 20).is_none());
    }

    #[test]
    fn events_within_a_length_make_a_statement_of_at_most_that_length() {
        for max in [0, 1, 8, 9, 10, 12, 13, 14, 100, 1023, 1024, 261_120, 4 << 20] {
            let n = events_within(max);
            let fits = vec![0xab_u8; n];
            let statement = binlog_statement(std::iter::once(&fits[..]));
            assert_eq!(statement.len(), statement_len(n));
            assert!(statement.len() <= max || n == 0, "{max}: {n} bytes make {}", statement.len());
            // Three bytes more always make a longer one.
            let more = vec![0xab_u8; n + 3];
            assert!(binlog_statement(std::iter::once(&more[..])).len() > max, "{max}");
        }
    }
}
