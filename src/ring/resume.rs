//! Where the stream resumes after a unit: the same rule for the writer as
//! it appends and for recovery as it walks what was appended.

use gapless_decoder::gtid::{GnoInterval, Gtid, MariaGtid};
use gapless_decoder::header::HEADER_LEN;

use super::index::gtid_parts;
use super::record::{RecordMeta, CRC32, RESENT};
use crate::stream::ResumePoint;

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
    if !gtid.is_empty() {
        advance_gtid(resume, gtid);
    }
}

/// The next file and position a ROTATE event names.
pub fn rotate_target(event: &[u8], crc32: bool) -> Option<(String, u64)> {
    if super::record::event_type(event) != Some(gapless_decoder::EventType::ROTATE) {
        return None;
    }
    let trailer = if crc32 { 4 } else { 0 };
    let body = event.get(HEADER_LEN..event.len().checked_sub(trailer)?)?;
    let position = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    Some((String::from_utf8_lossy(&body[8..]).into_owned(), position))
}

/// A resume point kept up to date unit by unit, cheaply: a run of GTIDs
/// from one source (a MariaDB domain; a MySQL uuid with consecutive
/// numbers) is parsed once, when the run ends or the point is read.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    point: ResumePoint,
    /// The run not applied yet: its last GTID as text, the length of its
    /// source prefix, and its first and last numbers.
    pending: String,
    source_len: usize,
    first: u64,
    last: u64,
}

impl Resume {
    /// Starts from `point`.
    pub fn new(point: ResumePoint) -> Self {
        Resume { point, ..Default::default() }
    }

    /// The point after everything passed in.
    pub fn point(&self) -> ResumePoint {
        let mut point = self.point.clone();
        self.apply_pending(&mut point);
        point
    }

    /// Like [`advance`].
    pub fn advance(&mut self, last: &RecordMeta<'_>, event: &[u8], gtid: &str) {
        advance(&mut self.point, last, event, "");
        if last.flags & RESENT != 0 || gtid.is_empty() {
            return;
        }
        let Some((source, n)) = gtid_parts(gtid) else {
            // Not a GTID this code orders: apply it as it is.
            let mut point = std::mem::take(&mut self.point);
            advance_gtid(&mut point, gtid);
            self.point = point;
            return;
        };
        let maria = !gtid.contains(':');
        let same = !self.pending.is_empty() && self.pending[..self.source_len] == *source;
        if same && (maria || n == self.last + 1) {
            self.last = n;
        } else {
            let mut point = std::mem::take(&mut self.point);
            self.apply_pending(&mut point);
            self.point = point;
            self.first = n;
            self.last = n;
        }
        self.pending.clear();
        self.pending.push_str(gtid);
        self.source_len = source.len();
    }

    fn apply_pending(&self, point: &mut ResumePoint) {
        if self.pending.is_empty() {
            return;
        }
        if !self.pending.contains(':') {
            advance_gtid(point, &self.pending);
        } else if let Ok(g) = self.pending.parse::<Gtid>() {
            if let Some(interval) = GnoInterval::new(self.first, self.last) {
                point.mysql.add_interval(g.uuid, g.tag.clone(), interval);
            }
        }
    }
}

/// Adds one GTID to a resume point.
fn advance_gtid(resume: &mut ResumePoint, gtid: &str) {
    if let Ok(g) = gtid.parse::<MariaGtid>() {
        resume.maria.set(g);
    } else if let Ok(g) = gtid.parse::<Gtid>() {
        resume.mysql.insert(&g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(gtid: &str) -> RecordMeta<'_> {
        RecordMeta { flags: 0, file: "f.000001", gtid, start: 4, end: 10, timestamp: 0 }
    }

    /// The cheap path gives the point the plain one gives, for runs, source
    /// changes and gaps.
    #[test]
    fn runs_give_the_same_point_as_one_by_one() {
        let uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let other = "4e11fa47-71ca-11e1-9e33-c80aa9429562";
        let gtids: Vec<String> = (1..=5)
            .map(|n| format!("0-1-{n}"))
            .chain((1..=3).map(|n| format!("1-2-{n}")))
            .chain(["0-3-6".to_string()])
            .chain((1..=4).map(|n| format!("{uuid}:{n}")))
            .chain([
                format!("{uuid}:9"),
                format!("{other}:1"),
                format!("{uuid}:10"),
                format!("{uuid}:blue:3"),
            ])
            .collect();
        let mut plain = ResumePoint::default();
        let mut fast = Resume::default();
        for (i, g) in gtids.iter().enumerate() {
            advance(&mut plain, &meta(g), &[0; 19], g);
            fast.advance(&meta(g), &[0; 19], g);
            assert_eq!(fast.point(), plain, "after {} GTIDs", i + 1);
        }
        assert_eq!(plain.maria.to_string(), "0-3-6,1-2-3");
    }
}
