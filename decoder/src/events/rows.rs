//! WRITE/UPDATE/DELETE_ROWS (v0, v1, v2), PARTIAL_UPDATE_ROWS and MariaDB's
//! compressed row events.
//!
//! ```text
//! table_id u48 | flags u16 | [v2: extra_len u16 (counts itself) | extra]
//! | column_count lenenc | columns_present [(n+7)/8]
//! | [update: columns_present_after [(n+7)/8]]
//! | rows: ( null_bitmap [(present+7)/8] | values )+       (update: before, after)
//! ```
//!
//! The rows part is decoded lazily by [`RowIter`], against the [`TableMap`]
//! the event names.

use std::borrow::Cow;
use std::sync::Arc;

use crate::compress;
use crate::cursor::Cursor;
use crate::error::{DecodeError, Result};
use crate::events::table_map::TableMap;
use crate::header::EventType;
use crate::values::{decode_value, ColumnType, Storage, Value};

/// What a row event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    /// INSERT: after images only.
    Write,
    /// UPDATE: before and after images.
    Update,
    /// DELETE: before images only.
    Delete,
    /// UPDATE whose after image may carry JSON diffs (MySQL 8.0).
    PartialUpdate,
}

/// Flag: the last row event of a statement.
pub const STMT_END_F: u16 = 1;

/// A row event with its rows still encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsEvent<'a> {
    /// The event type it was decoded from.
    pub event_type: EventType,
    /// What it does.
    pub kind: RowsKind,
    /// 0 (pre-GA), 1 or 2.
    pub version: u8,
    /// The TABLE_MAP the rows follow.
    pub table_id: u64,
    /// Row event flags (STMT_END_F, NO_FOREIGN_KEY_CHECKS_F...).
    pub flags: u16,
    /// v2 extra data (partition info, NDB info), raw.
    pub extra: &'a [u8],
    /// Columns in the table as the event sees it.
    pub column_count: usize,
    /// Bitmap of the columns present in before images (or the only image).
    pub present: &'a [u8],
    /// Bitmap of the columns present in after images (updates).
    pub present_after: &'a [u8],
    /// The encoded rows (inflated for MariaDB compressed events).
    pub rows: Cow<'a, [u8]>,
    /// Absolute offset of the rows part, for error messages (for inflated
    /// rows: the offset of the compressed data).
    pub rows_offset: u64,
    /// Position of the event, attached by the [`crate::Decoder`], so row
    /// errors can name it.
    pub event_offset: u64,
    /// The table map the event refers to, attached by the [`crate::Decoder`]
    /// (`None` when no TABLE_MAP for its id was seen).
    pub table: Option<Arc<TableMap>>,
}

impl RowsKind {
    /// The kind and version of a row event type, or `None` for other types.
    pub fn of(ty: EventType) -> Option<(RowsKind, u8, bool)> {
        Some(match ty {
            EventType::PRE_GA_WRITE_ROWS => (RowsKind::Write, 0, false),
            EventType::PRE_GA_UPDATE_ROWS => (RowsKind::Update, 0, false),
            EventType::PRE_GA_DELETE_ROWS => (RowsKind::Delete, 0, false),
            EventType::WRITE_ROWS_V1 => (RowsKind::Write, 1, false),
            EventType::UPDATE_ROWS_V1 => (RowsKind::Update, 1, false),
            EventType::DELETE_ROWS_V1 => (RowsKind::Delete, 1, false),
            EventType::WRITE_ROWS_V2 => (RowsKind::Write, 2, false),
            EventType::UPDATE_ROWS_V2 => (RowsKind::Update, 2, false),
            EventType::DELETE_ROWS_V2 => (RowsKind::Delete, 2, false),
            EventType::PARTIAL_UPDATE_ROWS => (RowsKind::PartialUpdate, 2, false),
            EventType::MARIA_WRITE_ROWS_COMPRESSED_V1 => (RowsKind::Write, 1, true),
            EventType::MARIA_UPDATE_ROWS_COMPRESSED_V1 => (RowsKind::Update, 1, true),
            EventType::MARIA_DELETE_ROWS_COMPRESSED_V1 => (RowsKind::Delete, 1, true),
            EventType::MARIA_WRITE_ROWS_COMPRESSED => (RowsKind::Write, 2, true),
            EventType::MARIA_UPDATE_ROWS_COMPRESSED => (RowsKind::Update, 2, true),
            EventType::MARIA_DELETE_ROWS_COMPRESSED => (RowsKind::Delete, 2, true),
            _ => return None,
        })
    }

    /// True when rows carry a before image.
    pub fn has_before(self) -> bool {
        !matches!(self, RowsKind::Write)
    }

    /// True when rows carry an after image.
    pub fn has_after(self) -> bool {
        !matches!(self, RowsKind::Delete)
    }
}

impl<'a> RowsEvent<'a> {
    /// Decodes the fixed part of a row event body of type `ty`.
    pub fn parse(c: &mut Cursor<'a>, ty: EventType, post_header_len: u8) -> Result<Self> {
        let (kind, version, compressed) = RowsKind::of(ty)
            .ok_or_else(|| c.invalid("row event type", format!("{ty:?} is not a row event")))?;
        let table_id = if post_header_len == 6 {
            u64::from(c.u32("rows table id")?)
        } else {
            c.uint_n("rows table id", 6)?
        };
        let flags = c.u16("rows flags")?;
        let extra = if version == 2 {
            let at = c.offset();
            let len = usize::from(c.u16("rows extra data length")?);
            let len = len.checked_sub(2).ok_or_else(|| DecodeError::Invalid {
                offset: at,
                what: "rows extra data length",
                detail: format!("{len} is shorter than the length field itself"),
            })?;
            c.bytes("rows extra data", len)?
        } else {
            &[]
        };
        let at = c.offset();
        let column_count = c.lenenc("rows column count")?;
        // Both servers cap a table at 4096 columns.
        if column_count > 4096 {
            return Err(DecodeError::Invalid {
                offset: at,
                what: "rows column count",
                detail: format!("{column_count} columns; a table has at most 4096"),
            });
        }
        let column_count = column_count as usize;
        let bitmap_len = column_count.div_ceil(8);
        let present = c.bytes("rows columns bitmap", bitmap_len)?;
        // Pre-GA updates have a single bitmap for both images.
        let present_after = if matches!(kind, RowsKind::Update | RowsKind::PartialUpdate) && version > 0 {
            c.bytes("rows after-image columns bitmap", bitmap_len)?
        } else {
            present
        };
        let rows_offset = c.offset();
        let data = c.take_rest();
        let rows = if compressed {
            Cow::Owned(compress::inflate(data, rows_offset, "compressed rows")?)
        } else {
            Cow::Borrowed(data)
        };
        Ok(RowsEvent {
            event_type: ty,
            kind,
            version,
            table_id,
            flags,
            extra,
            column_count,
            present,
            present_after,
            rows,
            rows_offset,
            event_offset: rows_offset,
            table: None,
        })
    }

    /// The table map, or an error naming the table id when it is missing.
    pub fn table(&self) -> Result<&Arc<TableMap>> {
        self.table
            .as_ref()
            .ok_or(DecodeError::UnknownTable { offset: self.event_offset, table_id: self.table_id })
    }

    /// Iterates over the rows, decoding values against the attached table map.
    pub fn rows(&self) -> Result<RowIter<'_>> {
        let table: &TableMap = self.table()?;
        if self.column_count > table.columns.len() {
            return Err(DecodeError::Invalid {
                offset: self.rows_offset,
                what: "rows column count",
                detail: format!(
                    "{} columns, but the table map of {}.{} has {}",
                    self.column_count,
                    table.schema,
                    table.table,
                    table.columns.len()
                ),
            });
        }
        let n = self.column_count;
        Ok(RowIter {
            event: self,
            table,
            cur: Cursor::new(&self.rows, self.rows_offset),
            present_counts: (count_bits(self.present, n), count_bits(self.present_after, n)),
        })
    }
}

/// The values of one row image, by column index; `None` where the column
/// is not in the image (`binlog_row_image=MINIMAL`).
pub type Image<'e> = Vec<Option<Value<'e>>>;

/// One changed row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row<'e> {
    /// Before image (empty for inserts).
    pub before: Image<'e>,
    /// After image (empty for deletes).
    pub after: Image<'e>,
}

impl Row<'_> {
    /// Empties the row and hands its buffers over to rows of another event
    /// (a row borrows its event, so it cannot simply be kept): decoding a
    /// stream of events then reuses two allocations instead of making two
    /// per event.
    pub fn recycle<'b>(self) -> Row<'b> {
        Row { before: reuse(self.before), after: reuse(self.after) }
    }
}

/// An empty image with `v`'s allocation: collecting an emptied vector into
/// one of the same layout reuses the buffer (in-place collect).
fn reuse<'b>(mut v: Image<'_>) -> Image<'b> {
    v.clear();
    v.into_iter().map(|_| None).collect()
}

/// Decodes rows one at a time.
#[derive(Debug)]
pub struct RowIter<'e> {
    event: &'e RowsEvent<'e>,
    table: &'e TableMap,
    cur: Cursor<'e>,
    /// Columns present in before images and in after images.
    present_counts: (usize, usize),
}

/// True when every one of the first `n` columns is present.
fn all_present(bitmap: &[u8], n: usize) -> bool {
    count_bits(bitmap, n) == n
}

/// Set bits among the first `n` of a bitmap.
fn count_bits(bitmap: &[u8], n: usize) -> usize {
    (0..n).filter(|&i| lsb_bit(bitmap, i)).count()
}

#[inline]
fn lsb_bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

impl<'e> RowIter<'e> {
    /// Decodes the next row into `row` (reusing its buffers). Returns false
    /// when every row was read.
    pub fn next_into(&mut self, row: &mut Row<'e>) -> Result<bool> {
        self.next_row(row).map_err(|e| e.in_event(self.event.event_offset, self.event.event_type))
    }

    fn next_row(&mut self, row: &mut Row<'e>) -> Result<bool> {
        if self.cur.is_empty() {
            return Ok(false);
        }
        let kind = self.event.kind;
        let at = self.cur.offset();
        row.before.clear();
        row.after.clear();
        if kind.has_before() {
            self.image(self.event.present, self.present_counts.0, false, &mut row.before)?;
        }
        if kind.has_after() {
            let (bitmap, count) = if kind == RowsKind::Write {
                (self.event.present, self.present_counts.0)
            } else {
                (self.event.present_after, self.present_counts.1)
            };
            self.image(bitmap, count, kind == RowsKind::PartialUpdate, &mut row.after)?;
        }
        // With no column in its images a row takes no bytes: the bytes left
        // can never be read as rows (found by fuzzing: it looped for ever).
        if self.cur.offset() == at {
            return Err(self.cur.invalid(
                "row data",
                format!("{} bytes of rows for an event with no columns in its images", self.cur.remaining()),
            ));
        }
        Ok(true)
    }

    fn image(&mut self, present: &'e [u8], count: usize, partial: bool, out: &mut Image<'e>) -> Result<()> {
        let n = self.event.column_count;
        let columns = &self.table.columns[..n];
        // Which JSON columns carry a diff instead of a full value.
        let mut partial_bits: &[u8] = &[];
        if partial {
            let options = self.cur.lenenc("partial update value options")?;
            if options & 1 != 0 {
                let json_cols = (0..n)
                    .filter(|&i| lsb_bit(present, i) && columns[i].real_type == ColumnType::JSON)
                    .count();
                partial_bits = self.cur.bytes("partial update JSON bitmap", json_cols.div_ceil(8))?;
            }
        }
        // Pre-GA rows copy the engine's record null bytes, whose first bit
        // is reserved: column bits start at bit 1.
        let first_bit = usize::from(self.event.version == 0);
        let nulls = self.cur.bytes("row null bitmap", (count + first_bit).div_ceil(8))?;
        out.reserve(n);
        if !partial && first_bit == 0 && count == n {
            // Every column present (the usual full row image): a tight loop
            // over the packed layout.
            debug_assert!(all_present(present, n));
            for (i, cell) in self.table.layout[..n].iter().enumerate() {
                let value = if nulls[i / 8] & (1 << (i % 8)) != 0 {
                    Value::Null
                } else {
                    decode_value(&mut self.cur, cell.storage, cell.unsigned)
                        .map_err(|e| self.context(e, i))?
                };
                out.push(Some(value));
            }
            return Ok(());
        }
        let mut k = first_bit;
        let mut json_k = 0usize;
        for (i, col) in columns.iter().enumerate() {
            if !lsb_bit(present, i) {
                out.push(None);
                continue;
            }
            let is_null = lsb_bit(nulls, k);
            k += 1;
            let is_json = col.real_type == ColumnType::JSON;
            let diff = is_json && lsb_bit(partial_bits, json_k);
            if is_json {
                json_k += 1;
            }
            if is_null {
                out.push(Some(Value::Null));
                continue;
            }
            let value = if diff {
                let Storage::Json(len_bytes) = col.storage else { unreachable!("JSON storage") };
                let len = self.cur.uint_n("JSON diff length", usize::from(len_bytes))?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                Value::JsonDiff(self.cur.bytes("JSON diff", len)?)
            } else {
                decode_value(&mut self.cur, col.storage, col.unsigned).map_err(|e| self.context(e, i))?
            };
            out.push(Some(value));
        }
        Ok(())
    }

    fn context(&self, e: DecodeError, column: usize) -> DecodeError {
        // MariaDB 5.3-10.0 stored fractional TIME/DATETIME/TIMESTAMP under
        // the old type codes, with a width the binlog does not record.
        let old_temporal =
            self.table.columns.iter().any(|c| {
                matches!(c.real_type, ColumnType::TIMESTAMP | ColumnType::DATETIME | ColumnType::TIME)
            });
        DecodeError::InColumn {
            column: self.table.column_label(column),
            table: format!("{}.{}", self.table.schema, self.table.table),
            hint: if old_temporal {
                "; the table has old-format TIME/DATETIME/TIMESTAMP columns: if it was written by MariaDB 5.3-10.0 with fractional seconds, their width is not in the binlog and the row cannot be read without the table's definition"
            } else {
                ""
            },
            source: Box::new(e),
        }
    }
}

impl<'e> Iterator for RowIter<'e> {
    type Item = Result<Row<'e>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut row = Row::default();
        match self.next_into(&mut row) {
            Ok(true) => Some(Ok(row)),
            Ok(false) => None,
            Err(e) => {
                // Stop after an error: the rest cannot be framed.
                self.cur = Cursor::new(&[], 0);
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::table_map::TableMap;

    fn table() -> TableMap {
        // id INT NOT NULL, name VARCHAR(20) NULL
        let mut b = vec![7, 0, 0, 0, 0, 0, 1, 0, 1, b'd', 0, 1, b't', 0, 2, 3, 15, 2, 20, 0, 0b10];
        b.extend_from_slice(&[]);
        TableMap::parse(&mut Cursor::new(&b, 0), 8).unwrap()
    }

    fn update_body() -> Vec<u8> {
        let mut b = vec![7, 0, 0, 0, 0, 0, 1, 0, 2, 0, 2, 0b11, 0b11];
        // before: id=1, name NULL
        b.extend_from_slice(&[0b10, 1, 0, 0, 0]);
        // after: id=1, name "ab"
        b.extend_from_slice(&[0b00, 1, 0, 0, 0, 2, b'a', b'b']);
        b
    }

    #[test]
    fn update_before_and_after() {
        let body = update_body();
        let mut ev = RowsEvent::parse(&mut Cursor::new(&body, 0), EventType::UPDATE_ROWS_V2, 10).unwrap();
        assert_eq!(ev.flags, STMT_END_F);
        assert!(ev.rows().is_err(), "no table map attached yet");
        ev.table = Some(Arc::new(table()));
        let rows: Vec<_> = ev.rows().unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].before, vec![Some(Value::Int(1)), Some(Value::Null)]);
        assert_eq!(rows[0].after, vec![Some(Value::Int(1)), Some(Value::String(b"ab"))]);
    }

    #[test]
    fn every_truncation_fails_without_panic() {
        let body = update_body();
        let t = Arc::new(table());
        for cut in 0..body.len() {
            let r = RowsEvent::parse(&mut Cursor::new(&body[..cut], 0), EventType::UPDATE_ROWS_V2, 10)
                .and_then(|mut ev| {
                    ev.table = Some(Arc::clone(&t));
                    ev.rows()?.collect::<Result<Vec<_>>>().map(|_| ())
                });
            // A cut exactly between rows is a valid shorter event.
            if cut != 13 {
                assert!(r.is_err(), "cut at {cut} should fail");
            }
        }
    }
}
