//! Where the stream resumes after a unit: the same rule for the writer as
//! it appends and for recovery as it walks what was appended.

use gapless_decoder::gtid::{Gtid, MariaGtid};
use gapless_decoder::header::HEADER_LEN;

use super::record::{RecordMeta, CRC32, RESENT};
use crate::stream::ResumePoint;

/// The ROTATE event's type code.
const ROTATE: u8 = 4;

/// Moves `resume` past a complete unit whose last event is `event` (with
/// `last` its record) and whose GTID is `gtid`.
///
/// A ROTATE at the end of a file sends the stream to the next file; any
/// other unit ends at its last event. A unit's GTID joins the GTID
/// position (MariaDB: the domain's last; MySQL: the executed set).
pub fn advance(resume: &mut ResumePoint, last: &RecordMeta<'_>, event: &[u8], gtid: &str) {
    if last.flags & RESENT != 0 {
        return;
    }
    match rotate_target(event, last.flags & CRC32 != 0) {
        Some((file, position)) => {
            resume.file = file;
            resume.position = position;
        }
        None => {
            resume.file.clear();
            resume.file.push_str(last.file);
            resume.position = last.end;
        }
    }
    if gtid.is_empty() {
        return;
    }
    if let Ok(g) = gtid.parse::<MariaGtid>() {
        resume.maria.set(g);
    } else if let Ok(g) = gtid.parse::<Gtid>() {
        resume.mysql.insert(&g);
    }
}

/// The next file and position a ROTATE event names.
pub fn rotate_target(event: &[u8], crc32: bool) -> Option<(String, u64)> {
    if event.get(4) != Some(&ROTATE) {
        return None;
    }
    let trailer = if crc32 { 4 } else { 0 };
    let body = event.get(HEADER_LEN..event.len().checked_sub(trailer)?)?;
    let position = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    Some((String::from_utf8_lossy(&body[8..]).into_owned(), position))
}
