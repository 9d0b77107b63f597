//! `--mode binlog`: a transaction as `BINLOG '…'` statements, the server
//! applying the original row events byte for byte (as `mysqlbinlog` output
//! piped into a client does).
//!
//! A transaction of row events becomes: its GTID, `BEGIN`, one `BINLOG`
//! statement holding the FORMAT_DESCRIPTION in force (which says how the
//! events are written), then its table maps and row events, in order, in
//! statements of at most 4 MiB of events, and `COMMIT`. Statements (DDL, statement-based DML) are not
//! events the `BINLOG` statement takes: such a transaction is rendered as
//! SQL, as in `--mode sql`. The target login needs `BINLOG REPLAY`
//! (MariaDB) or `SUPER`.

use base64::Engine as _;
use gapless_decoder::{Decoder, EventData};

use crate::stream::Received;

/// The statements of one transaction, or `None` when it holds events that
/// only SQL can carry (then it is rendered as SQL). They are sent one by
/// one inside the transaction: MariaDB 10.11 ends a multi-statement
/// response early after a `BINLOG` statement (its OK lacks the "more
/// results" flag), which would leave the client out of step.
pub fn statements(format: Option<&Received>, unit: &[Received], gtid: &str) -> Option<Vec<String>> {
    let format = format?;
    let mut decoder = Decoder::new();
    decoder.decode(format.offset, &format.bytes).ok()?;
    // Row events in `BINLOG` statements of at most CHUNK_BYTES (a large
    // transaction would pass max_allowed_packet in one); each statement
    // starts with the transaction's table maps seen so far.
    let mut chunks: Vec<Vec<&[u8]>> = vec![Vec::new()];
    let mut maps: Vec<&[u8]> = Vec::new();
    let mut size = 0;
    for r in unit {
        match decoder.decode(r.offset, &r.bytes).ok()?.data {
            EventData::Gtid(_) | EventData::MariaGtid(_) | EventData::AnnotateRows(_) | EventData::Xid(_) => {
            }
            EventData::Query(q) if q.query.eq_ignore_ascii_case(b"BEGIN") => {}
            EventData::TableMap(_) => {
                maps.push(&r.bytes[..]);
                chunks.last_mut().expect("one chunk at least").push(&r.bytes[..]);
                size += r.bytes.len();
            }
            EventData::Rows(_) => {
                if size + r.bytes.len() > CHUNK_BYTES && size > 0 {
                    chunks.push(maps.clone());
                    size = maps.iter().map(|m| m.len()).sum();
                }
                chunks.last_mut().expect("one chunk at least").push(&r.bytes[..]);
                size += r.bytes.len();
            }
            _ => return None,
        }
    }
    if chunks[0].is_empty() {
        return None;
    }
    let mut sql = Vec::with_capacity(6);
    let mysql_gtid = gtid.contains(':');
    sql.extend(gtid_statement(gtid));
    sql.push("BEGIN".to_string());
    sql.push(binlog_statement(std::iter::once(&format.bytes[..])));
    sql.extend(chunks.into_iter().map(|c| binlog_statement(c.into_iter())));
    sql.push("COMMIT".to_string());
    if mysql_gtid {
        sql.push("SET @@session.gtid_next='AUTOMATIC'".to_string());
    }
    Some(sql)
}

/// Bytes of events per `BINLOG` statement, at most (about 5.4 MB of
/// base64, under the 16 MB `max_allowed_packet` MariaDB has by default).
const CHUNK_BYTES: usize = 4 << 20;

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
    let mut sql = String::from("BINLOG '");
    base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut sql);
    sql.push('\'');
    sql
}
