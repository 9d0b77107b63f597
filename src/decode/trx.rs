//! Which transaction an event belongs to, and where transactions end.
//!
//! A transaction starts at its GTID event (MySQL GTID, MariaDB GTID) and
//! ends at XID, at COMMIT/ROLLBACK, at XA_PREPARE (an XA transaction's
//! rows, which MySQL and MariaDB log at `XA PREPARE`; `XA END` comes just
//! before it), or, for DDL and other statements outside BEGIN (such as the
//! `XA COMMIT` of a prepared one), right after that statement.

use gapless_decoder::events::QueryEvent;
use gapless_decoder::{Event, EventData};

use super::{trx_id, TrxId};

/// Tracks which transaction (GTID) the current event belongs to.
#[derive(Debug, Default)]
pub struct TrxState {
    id: Option<TrxId>,
    gtid: Option<String>,
    in_trx: bool,
    /// Clear the GTID after the current event was shown.
    ends_here: bool,
}

impl TrxState {
    /// The current transaction's GTID, if it has one.
    pub fn id(&self) -> Option<&TrxId> {
        self.id.as_ref()
    }

    /// The GTID as text.
    pub fn gtid(&self) -> Option<&str> {
        self.gtid.as_deref()
    }

    /// Whether a BEGIN..COMMIT is open after the last event observed.
    pub fn in_trx(&self) -> bool {
        self.in_trx
    }

    /// Whether the last event observed ended a transaction (its commit, or
    /// a statement outside BEGIN).
    pub fn ends_here(&self) -> bool {
        self.ends_here
    }

    /// Updates the state with `ev`, before it is shown.
    pub fn observe(&mut self, ev: &Event<'_>) {
        self.ends_here = false;
        match &ev.data {
            EventData::Gtid(_) => {
                self.set(trx_id(ev));
                self.in_trx = false;
            }
            EventData::MariaGtid(g) => {
                self.set(trx_id(ev));
                self.in_trx = !g.is_standalone();
            }
            EventData::Query(q) => self.query(q),
            EventData::Xid(_) | EventData::XaPrepare(_) => {
                self.in_trx = false;
                self.ends_here = true;
            }
            _ => {}
        }
    }

    fn set(&mut self, id: Option<TrxId>) {
        self.gtid = id.as_ref().map(ToString::to_string);
        self.id = id;
    }

    fn query(&mut self, q: &QueryEvent<'_>) {
        let text = q.query.as_ref();
        let is = |word: &[u8]| text.len() >= word.len() && text[..word.len()].eq_ignore_ascii_case(word);
        if is(b"BEGIN") || is(b"XA START") {
            self.in_trx = true;
        } else if is(b"COMMIT") || (is(b"ROLLBACK") && !is(b"ROLLBACK TO")) || !self.in_trx {
            self.in_trx = false;
            self.ends_here = true;
        }
    }

    /// Call after `ev` was shown: a transaction that ended with it is
    /// forgotten.
    pub fn after_event(&mut self) {
        if self.ends_here {
            self.set(None);
            self.ends_here = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An XA transaction's rows end at XA_PREPARE, not at the XA END just
    /// before it, and its XA COMMIT is a transaction of its own. Events of
    /// a corpus seed cut from the generated workload's binlog.
    #[test]
    fn an_xa_group_ends_at_its_xa_prepare() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/sql_render/seed-mariadb-xa-groups");
        let data = std::fs::read(path).expect("seed");
        let mut reader =
            gapless_decoder::BinlogReader::new(&data, gapless_decoder::Decoder::new()).expect("a binlog");
        let mut state = TrxState::default();
        let mut ends = Vec::new();
        while let Some(ev) = reader.next() {
            let ev = ev.expect("event");
            state.observe(&ev);
            if state.ends_here() {
                ends.push((ev.header.event_type.to_string(), state.gtid().unwrap_or_default().to_string()));
            }
            state.after_event();
        }
        let ends: Vec<(&str, &str)> = ends.iter().map(|(t, g)| (t.as_str(), g.as_str())).collect();
        assert_eq!(
            ends,
            [("XA_prepare", "0-1-74"), ("Query", "0-1-75"), ("XA_prepare", "0-1-76"), ("Query", "0-1-77")]
        );
    }
}
