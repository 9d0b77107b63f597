//! Which events `gapless decode` shows.

use gapless_decoder::gtid::{Gtid, GtidSet, MariaGtid};
use gapless_decoder::{Event, EventData};

/// The GTIDs whose transactions to show.
#[derive(Debug, Clone, PartialEq)]
pub enum GtidFilter {
    /// A MySQL GTID set (`uuid:1-5,uuid2:7`).
    Mysql(GtidSet),
    /// MariaDB GTIDs (`domain-server-seq`), each shown exactly.
    Maria(Vec<MariaGtid>),
}

/// The transaction identity of a GTID event.
#[derive(Debug, Clone, PartialEq)]
pub enum TrxId {
    /// A MySQL GTID.
    Mysql(Gtid),
    /// A MariaDB GTID.
    Maria(MariaGtid),
}

impl std::fmt::Display for TrxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrxId::Mysql(g) => g.fmt(f),
            TrxId::Maria(g) => g.fmt(f),
        }
    }
}

/// The GTID an event starts, if it is a GTID event with one (anonymous
/// GTID events have none).
pub fn trx_id(ev: &Event<'_>) -> Option<TrxId> {
    match &ev.data {
        EventData::Gtid(g) => g.gtid().map(TrxId::Mysql),
        EventData::MariaGtid(g) => Some(TrxId::Maria(g.gtid())),
        _ => None,
    }
}

impl GtidFilter {
    /// True when the transaction `id` is selected.
    pub fn selects(&self, id: Option<&TrxId>) -> bool {
        match (self, id) {
            (GtidFilter::Mysql(set), Some(TrxId::Mysql(g))) => set.contains(g),
            (GtidFilter::Maria(list), Some(TrxId::Maria(g))) => list.contains(g),
            _ => false,
        }
    }
}

/// The filters of a decode run. Positions and times are half-open
/// ranges: start included, stop excluded, as in mysqlbinlog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// First event position to show (in the first file).
    pub start_position: Option<u64>,
    /// Stop before this position (in the last file).
    pub stop_position: Option<u64>,
    /// Show events at or after this time (seconds since the epoch, UTC).
    pub start_datetime: Option<u32>,
    /// Show events before this time.
    pub stop_datetime: Option<u32>,
    /// Only these transactions.
    pub gtids: Option<GtidFilter>,
    /// Only this database (row events by their table, statements by their
    /// default database).
    pub database: Option<String>,
    /// Only this table (row events and their table maps).
    pub table: Option<String>,
}

impl Filters {
    /// True when the event passes every filter; `trx` is the transaction it
    /// belongs to.
    pub fn selects(&self, ev: &Event<'_>, trx: Option<&TrxId>) -> bool {
        if matches!(ev.data, EventData::FormatDescription(_)) {
            // Always shown: it says how to read the rest.
            return true;
        }
        let ts = ev.header.timestamp;
        if self.start_datetime.is_some_and(|s| ts < s) || self.stop_datetime.is_some_and(|s| ts >= s) {
            return false;
        }
        if let Some(g) = &self.gtids {
            if !g.selects(trx) {
                return false;
            }
        }
        if self.database.is_none() && self.table.is_none() {
            return true;
        }
        let (schema, table) = match &ev.data {
            EventData::Rows(r) => match &r.table {
                Some(t) => (t.schema.as_str(), Some(t.table.as_str())),
                None => return true,
            },
            EventData::TableMap(t) => (t.schema.as_str(), Some(t.table.as_str())),
            EventData::Query(q) => {
                if self.table.is_some() {
                    return false;
                }
                let Ok(s) = std::str::from_utf8(q.schema) else { return false };
                (s, None)
            }
            // Transaction bookkeeping (GTID, XID) stays: without it the
            // shown statements would lose their transaction boundaries.
            _ => return true,
        };
        self.database.as_deref().is_none_or(|d| d == schema)
            && self.table.as_deref().is_none_or(|t| table == Some(t))
    }
}
