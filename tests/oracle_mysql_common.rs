//! Cross-checks our row values against an independent decoder: the binlog
//! module of `mysql_common` (the crate behind `mysql_async`), used here as a
//! test oracle only.
//!
//! Both decoders read every public fixture in ../shared/fixtures/mysql. For
//! each file mysql_common reads from start to end, the row events of both are
//! walked in order (events packed in TRANSACTION_PAYLOAD included: mysql_common
//! unpacks them with `EventStreamReader::read_decompressed`, our reader hands
//! them out after the payload event, both at the payload's offset) and every
//! row image is compared value by value at two levels:
//!
//! - raw: integers, floats (bit for bit), bytes, ENUM index, SET bitmap,
//!   DECIMAL digits, temporal fields with full microseconds;
//! - shown: what the JSON-lines contract promises (`gapless::render::value::show`),
//!   against the same reduction computed here from mysql_common's value and
//!   its own table map (ENUM/SET names, collation, fraction digits, TIMESTAMP
//!   in UTC); JSON documents are compared as parsed `serde_json` values.
//!
//! The oracle is trusted only as a cross-check: it is another reading of the
//! same format, written by other people, with its own mistakes (see
//! `VECTOR_CHARSET_ERRATUM_FILE`, the one allowed exception). A disagreement
//! means one of the two is wrong, and the failure names file, event offset,
//! row, column and both values so that a third source (the MySQL manual, the
//! mysqlbinlog dumps next to some fixtures) can decide.
//!
//! What is not independent, or not checked: text bytes of a non-UTF-8
//! collation become UTF-8 through our charset table (with mysql_common's
//! collation id); the text of a FLOAT/DOUBLE comes from Rust's formatter on
//! both sides (the bits are compared at the raw level); numbers inside JSON
//! compare as f64, so a DECIMAL's trailing zeros there (`9.00`) are not
//! checked.

mod common;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use gapless::render::value::{show, Shown};
use gapless_decoder::charset::{charset_of, to_utf8, Charset};
use gapless_decoder::events::{Column, RowsEvent};
use gapless_decoder::values::json;
use gapless_decoder::{BinlogReader, Decoder, EventData, Value};
use mysql_common::binlog::consts::{BinlogVersion, EventType as TheirEventType};
use mysql_common::binlog::events::{
    EventData as TheirEventData, OptionalMetaExtractor, OptionalMetadataField, TableMapEvent,
};
use mysql_common::binlog::jsonb::{JsonContainer, JsonDom, JsonNumber, JsonScalar};
use mysql_common::binlog::jsondiff::JsonDiffOperation;
use mysql_common::binlog::value::BinlogValue;
use mysql_common::binlog::EventStreamReader;
use mysql_common::constants::{ColumnFlags, ColumnType as T};
use mysql_common::value::Value as V;

/// Oracle erratum, allowed in this file only: mysql_common 0.38 leaves
/// VECTOR out of the columns that COLUMN_CHARSET/DEFAULT_CHARSET metadata
/// lists (`ColumnType::is_character_type`), so in table `dtb.bar` (id, VECTOR,
/// TEXT, VECTOR) it gives the TEXT column the default `binary` (63) instead
/// of the listed utf8mb4_0900_ai_ci (255), and its 'bar' turns into bytes.
/// MySQL 9's `is_character_type` in sql/log_event.cc lists
/// MYSQL_TYPE_VECTOR, and the event itself agrees: its DEFAULT_CHARSET
/// field overrides character column 1, which only names the TEXT column when
/// the VECTOR before it counts (`foo TEXT` in a utf8mb4 database). Here the
/// collation is recomputed from mysql_common's own charset iterator with
/// MySQL's list of character types.
const VECTOR_CHARSET_ERRATUM_FILE: &str = "rust_mysql_common/vector.binlog";

// ---------------------------------------------------------------------------
// The oracle's side: every row event of a file, decoded by mysql_common.

/// One column as mysql_common's table map describes it.
#[derive(Debug, Clone)]
struct TheirColumn {
    /// Real type (ENUM/SET resolved from a STRING, DATE read as NEWDATE).
    ty: T,
    /// Type metadata bytes from the table map.
    meta: Vec<u8>,
    /// ENUM member names (optional metadata).
    enum_names: Option<Vec<String>>,
    /// SET member names (optional metadata).
    set_names: Option<Vec<String>>,
    /// The collation the charset metadata gives this column when columns
    /// are counted as MySQL counts them (VECTOR included); see
    /// `VECTOR_CHARSET_ERRATUM_FILE`.
    mysql_collation: Option<u16>,
}

/// One present value of a row image: column index, value and the column
/// flags mysql_common attached (UNSIGNED, collation, name).
#[derive(Debug, Clone)]
struct TheirValue {
    index: usize,
    value: BinlogValue<'static>,
    unsigned: bool,
    collation: u16,
    name: String,
}

type TheirImage = Vec<TheirValue>;

/// One row event as mysql_common read it. `rows` is `None` for event types
/// mysql_common does not decode (pre-GA 5.1 rows, MariaDB compressed rows).
#[derive(Debug)]
struct TheirRows {
    offset: u64,
    event_type: u8,
    columns: Vec<TheirColumn>,
    rows: Option<Vec<(Option<TheirImage>, Option<TheirImage>)>>,
}

const PRE_GA_ROWS: std::ops::RangeInclusive<u8> = 20..=22;
const MARIA_COMPRESSED_ROWS: std::ops::RangeInclusive<u8> = 166..=171;

fn is_rows_type(t: u8) -> bool {
    matches!(t, 23..=25 | 30..=32 | 39)
}

/// Reads the whole file with mysql_common. `Err` when it cannot read it to
/// the end (an error or a panic inside mysql_common), with the reason.
fn oracle_read(bytes: &[u8]) -> Result<Vec<TheirRows>, String> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(|| oracle_read_inner(bytes)));
    std::panic::set_hook(quiet);
    match result {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("panicked: {msg}"))
        }
    }
}

fn oracle_read_inner(bytes: &[u8]) -> Result<Vec<TheirRows>, String> {
    if bytes.len() < 4 || bytes[..4] != [0xfe, b'b', b'i', b'n'] {
        return Err("no binlog magic".into());
    }
    let mut input = &bytes[4..];
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut out = Vec::new();
    while !input.is_empty() {
        let offset = (bytes.len() - input.len()) as u64;
        let ev = reader
            .read(&mut input)
            .map_err(|e| format!("event at {offset}: {e}"))?
            .ok_or_else(|| format!("event at {offset}: no event"))?;
        let ty = ev.header().event_type_raw();
        if ty == TheirEventType::FORMAT_DESCRIPTION_EVENT as u8 && early_type_numbers(reader.get_fde()) {
            return Err("early 5.1 development build: TABLE_MAP is type 16, rows 17..=19, XID 20 \
                        (MySQL's reader permutes them, mysql_common does not)"
                .into());
        }
        if ty == TheirEventType::TRANSACTION_PAYLOAD_EVENT as u8 {
            let Some(TheirEventData::TransactionPayloadEvent(tp)) =
                ev.read_data().map_err(|e| format!("payload at {offset}: {e}"))?
            else {
                return Err(format!("payload at {offset}: not a payload"));
            };
            let mut payload = tp.decompressed().map_err(|e| format!("payload at {offset}: {e}"))?;
            while let Some(inner) =
                reader.read_decompressed(&mut payload).map_err(|e| format!("payload at {offset}: {e}"))?
            {
                collect_rows(&reader, &inner, offset, &mut out)?;
            }
        } else {
            collect_rows(&reader, &ev, offset, &mut out)?;
        }
    }
    Ok(out)
}

/// Servers 5.1.0..5.1.14 and the 5.2 row-format trees numbered seven
/// event types differently (22 of them); MySQL's reader maps them back with
/// `event_type_permutation`. mysql_common reads the codes as current ones,
/// so it would take their XID for a rows event: the file is not comparable.
fn early_type_numbers(fde: &mysql_common::binlog::events::FormatDescriptionEvent<'_>) -> bool {
    let (major, minor, patch) = fde.split_version();
    fde.event_type_header_lengths().len() == 22 && major == 5 && ((minor == 1 && patch < 15) || minor == 2)
}

/// Appends `ev` to `out` when it is a row event.
fn collect_rows(
    reader: &EventStreamReader,
    ev: &mysql_common::binlog::events::Event,
    offset: u64,
    out: &mut Vec<TheirRows>,
) -> Result<(), String> {
    let ty = ev.header().event_type_raw();
    if PRE_GA_ROWS.contains(&ty) || MARIA_COMPRESSED_ROWS.contains(&ty) {
        out.push(TheirRows { offset, event_type: ty, columns: Vec::new(), rows: None });
        return Ok(());
    }
    if !is_rows_type(ty) {
        return Ok(());
    }
    let err = |e: &dyn std::fmt::Display| format!("rows event at {offset}: {e}");
    let Some(TheirEventData::RowsEvent(re)) = ev.read_data().map_err(|e| err(&e))? else {
        return Err(err(&"not a rows event"));
    };
    let tme = reader.get_tme(re.table_id()).ok_or_else(|| err(&"no table map"))?;
    let columns = their_columns(tme).map_err(|e| err(&e))?;
    // Column indexes set in an image bitmap (a bitvec slice, a type this
    // crate cannot name: bitvec is mysql_common's dependency, not ours).
    macro_rules! present {
        ($bits:expr) => {
            match $bits {
                Some(b) => (0..re.num_columns() as usize).filter(|&i| b.get(i).is_some_and(|x| *x)).collect(),
                None => Vec::new(),
            }
        };
    }
    let before_bits: Vec<usize> = present!(re.columns_before_image());
    let after_bits: Vec<usize> = present!(re.columns_after_image());
    let mut rows = Vec::new();
    for row in re.rows(tme) {
        let (before, after) = row.map_err(|e| err(&e))?;
        rows.push((before.map(|r| their_image(r, &before_bits)), after.map(|r| their_image(r, &after_bits))));
    }
    out.push(TheirRows { offset, event_type: ty, columns, rows: Some(rows) });
    Ok(())
}

fn their_image(row: mysql_common::binlog::row::BinlogRow, indexes: &[usize]) -> TheirImage {
    let columns = row.columns();
    let values = row.unwrap();
    assert_eq!(values.len(), indexes.len(), "mysql_common row and its bitmap disagree");
    values
        .into_iter()
        .zip(columns.iter())
        .zip(indexes)
        .map(|((value, col), &index)| TheirValue {
            index,
            value,
            unsigned: col.flags().contains(ColumnFlags::UNSIGNED_FLAG),
            collation: col.character_set(),
            name: col.name_str().into_owned(),
        })
        .collect()
}

/// Types, metadata and ENUM/SET names of every column of a table map.
fn their_columns(tme: &TableMapEvent<'_>) -> std::io::Result<Vec<TheirColumn>> {
    let n = tme.columns_count() as usize;
    let mut columns = Vec::with_capacity(n);
    for i in 0..n {
        let ty = tme
            .get_column_type(i)
            .map_err(std::io::Error::other)?
            .ok_or_else(|| std::io::Error::other("column type out of range"))?;
        let meta = tme.get_column_metadata(i).unwrap_or(&[]).to_vec();
        columns.push(TheirColumn { ty, meta, enum_names: None, set_names: None, mysql_collation: None });
    }
    let extractor = OptionalMetaExtractor::new(tme.iter_optional_meta())?;
    let mut charsets = extractor.iter_charset();
    for c in columns.iter_mut().filter(|c| c.ty.is_character_type() || c.ty == T::MYSQL_TYPE_VECTOR) {
        c.mysql_collation = charsets.next().transpose()?;
    }
    for field in tme.iter_optional_meta() {
        match field? {
            OptionalMetadataField::EnumStrValue(v) => {
                let mut targets = columns.iter_mut().filter(|c| c.ty == T::MYSQL_TYPE_ENUM);
                for names in v.iter_values() {
                    let names = names?;
                    if let Some(c) = targets.next() {
                        c.enum_names = Some(names.values().iter().map(|x| x.value().into_owned()).collect());
                    }
                }
            }
            OptionalMetadataField::SetStrValue(v) => {
                let mut targets = columns.iter_mut().filter(|c| c.ty == T::MYSQL_TYPE_SET);
                for names in v.iter_values() {
                    let names = names?;
                    if let Some(c) = targets.next() {
                        c.set_names = Some(names.values().iter().map(|x| x.value().into_owned()).collect());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(columns)
}

// ---------------------------------------------------------------------------
// Raw level: the decoded value with representation differences removed.

/// A value in a form both decoders can be reduced to.
#[derive(Debug, PartialEq)]
enum Raw {
    Null,
    Int(i128),
    /// Bits of a FLOAT.
    F32(u32),
    /// Bits of a DOUBLE.
    F64(u64),
    Bytes(Vec<u8>),
    /// DECIMAL digits, or a temporal value with all six fraction digits.
    Text(String),
    /// No raw form to compare (JSON; compared as parsed JSON instead).
    Skip,
}

fn ymd(y: impl Into<u32>, m: impl Into<u32>, d: impl Into<u32>) -> String {
    format!("{:04}-{:02}-{:02}", y.into(), m.into(), d.into())
}

fn hms(neg: bool, h: u32, m: impl Into<u32>, s: impl Into<u32>) -> String {
    format!("{}{h:02}:{:02}:{:02}", if neg { "-" } else { "" }, m.into(), s.into())
}

fn ours_raw(v: &Value<'_>) -> Raw {
    match *v {
        Value::Null => Raw::Null,
        Value::Int(i) => Raw::Int(i.into()),
        Value::UInt(u) => Raw::Int(u.into()),
        Value::Float(f) => Raw::F32(f.to_bits()),
        Value::Double(d) => Raw::F64(d.to_bits()),
        Value::Decimal(d) => Raw::Text(d.to_string()),
        Value::Year(y) => Raw::Int(y.into()),
        Value::Date(d) => Raw::Text(ymd(d.year, d.month, d.day)),
        Value::Time(t) => {
            Raw::Text(format!("{}.{:06}", hms(t.negative, t.hours, t.minute, t.second), t.micros))
        }
        Value::DateTime(t) => Raw::Text(format!(
            "{} {}.{:06}",
            ymd(t.date.year, t.date.month, t.date.day),
            hms(false, t.hour.into(), t.minute, t.second),
            t.micros
        )),
        Value::Timestamp(t) => Raw::Text(format!("{}.{:06}", t.seconds, t.micros)),
        Value::Enum(i) => Raw::Int(i.into()),
        Value::Set(bits) => Raw::Int(bits.into()),
        Value::Bit(b) | Value::String(b) | Value::Blob(b) | Value::Geometry(b) | Value::Vector(b) => {
            Raw::Bytes(b.to_vec())
        }
        Value::Json(_) | Value::JsonDiff(_) => Raw::Skip,
    }
}

/// mysql_common's TIMESTAMP2 text, `secs` or `secs.micros`, as (secs, micros).
fn their_timestamp2(b: &[u8]) -> Result<(u64, u32), String> {
    let s = std::str::from_utf8(b).map_err(|e| e.to_string())?;
    let (secs, micros) = s.split_once('.').unwrap_or((s, "0"));
    Ok((
        secs.parse().map_err(|_| format!("TIMESTAMP2 {s:?}"))?,
        micros.parse().map_err(|_| format!("TIMESTAMP2 {s:?}"))?,
    ))
}

/// A SET bitmap from mysql_common's little-endian bytes.
fn le_bits(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |acc, &x| acc << 8 | u64::from(x))
}

fn their_raw(tv: &TheirValue, tc: &TheirColumn) -> Result<Raw, String> {
    let v = match &tv.value {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(_) | BinlogValue::JsonDiff(_) => return Ok(Raw::Skip),
    };
    Ok(match (tc.ty, v) {
        (_, V::NULL) => Raw::Null,
        (T::MYSQL_TYPE_TIMESTAMP, V::Int(secs)) => Raw::Text(format!("{secs}.000000")),
        (T::MYSQL_TYPE_TIMESTAMP2, V::Bytes(b)) => {
            let (secs, micros) = their_timestamp2(b)?;
            Raw::Text(format!("{secs}.{micros:06}"))
        }
        (T::MYSQL_TYPE_YEAR, V::Bytes(b)) => {
            Raw::Int(std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or("YEAR not a number")?)
        }
        (T::MYSQL_TYPE_NEWDECIMAL, V::Bytes(b)) => Raw::Text(String::from_utf8_lossy(b).into_owned()),
        (T::MYSQL_TYPE_NEWDATE | T::MYSQL_TYPE_DATE, V::Date(y, m, d, ..)) => Raw::Text(ymd(*y, *m, *d)),
        (T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2, V::Date(y, mo, d, h, mi, s, us)) => {
            Raw::Text(format!("{} {}.{us:06}", ymd(*y, *mo, *d), hms(false, (*h).into(), *mi, *s)))
        }
        (T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2, V::Time(neg, days, h, m, s, us)) => {
            Raw::Text(format!("{}.{us:06}", hms(*neg, days * 24 + u32::from(*h), *m, *s)))
        }
        (T::MYSQL_TYPE_SET, V::Bytes(b)) => Raw::Int(le_bits(b).into()),
        (_, V::Int(i)) => Raw::Int((*i).into()),
        (_, V::UInt(u)) => Raw::Int((*u).into()),
        (_, V::Float(f)) => Raw::F32(f.to_bits()),
        (_, V::Double(d)) => Raw::F64(d.to_bits()),
        (_, V::Bytes(b)) => Raw::Bytes(b.clone()),
        (ty, other) => return Err(format!("unexpected {other:?} for a {ty:?} column")),
    })
}

// ---------------------------------------------------------------------------
// Shown level: what the JSON-lines contract promises, built here from
// mysql_common's value and table map, then compared with what `show` gives.

/// A value as a JSON-lines line carries it.
#[derive(Debug, PartialEq)]
enum Printed {
    Null,
    /// A JSON number's text (integers, FLOAT, DOUBLE, ENUM/SET without names).
    Number(String),
    /// DECIMAL digits, a JSON string.
    Decimal(String),
    /// A JSON string: text, temporal value, ENUM/SET names.
    Text(String),
    /// Bytes, a JSON string of lowercase hex.
    Bytes(Vec<u8>),
    /// A JSON document.
    Json(serde_json::Value),
    /// A partial JSON update (compared as diffs, not here).
    JsonDiff,
}

/// What our `show` reduces a value to, as a line would carry it.
fn ours_printed(shown: &Shown<'_>) -> Result<Printed, String> {
    Ok(match shown {
        Shown::Null => Printed::Null,
        Shown::Number(n) => {
            let mut text = String::new();
            n.push(&mut text);
            Printed::Number(text)
        }
        Shown::Decimal(d) => Printed::Decimal(d.to_string()),
        Shown::Temporal(t) => Printed::Text(t.to_string()),
        Shown::Text(s) => Printed::Text(s.to_string()),
        Shown::Bytes(b) => Printed::Bytes(b.to_vec()),
        Shown::Json(text) => Printed::Json(ours_json(text)?),
        Shown::JsonDiff(_) => Printed::JsonDiff,
    })
}

/// Equal as a consumer of the line sees them: number texts may differ in
/// notation (`1e20` and `100000000000000000000`) but not in value, and ours
/// must be a JSON number.
fn printed_equal(ours: &Printed, theirs: &Printed) -> bool {
    match (ours, theirs) {
        (Printed::Number(a), Printed::Number(b)) => {
            serde_json::from_str::<serde_json::Number>(a).is_ok()
                && (a == b || a.parse::<f64>().is_ok_and(|x| b.parse::<f64>().is_ok_and(|y| x == y)))
        }
        _ => ours == theirs,
    }
}

/// `.ffffff` cut to `fsp` digits, as SELECT prints a column of that precision.
fn fraction(micros: u32, fsp: u8) -> String {
    if fsp == 0 {
        return String::new();
    }
    let fsp = u32::from(fsp.min(6));
    format!(".{:0w$}", micros / 10u32.pow(6 - fsp), w = fsp as usize)
}

/// UTC calendar fields of a Unix time, counted year by year and month by
/// month (slow and obvious on purpose: it must not share our algorithm).
fn utc(secs: u64) -> (u32, u32, u32, u32, u32, u32) {
    let leap = |y: u32| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let (mut days, rem) = (secs / 86_400, secs % 86_400);
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let lengths = [31, if leap(year) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 0;
    while days >= lengths[month] {
        days -= lengths[month];
        month += 1;
    }
    let rem = rem as u32;
    (year, month as u32 + 1, days as u32 + 1, rem / 3600, rem / 60 % 60, rem % 60)
}

/// TIMESTAMP as SELECT prints it in UTC; 0 is the zero timestamp.
fn timestamp_text(secs: u64, micros: u32, fsp: u8) -> String {
    if secs == 0 && micros == 0 {
        return format!("0000-00-00 00:00:00{}", fraction(0, fsp));
    }
    let (y, mo, d, h, mi, s) = utc(secs);
    format!("{} {}{}", ymd(y, mo, d), hms(false, h, mi, s), fraction(micros, fsp))
}

/// Fraction digits of a TIME2/DATETIME2/TIMESTAMP2 column (first metadata byte).
fn their_fsp(tc: &TheirColumn) -> u8 {
    match tc.ty {
        T::MYSQL_TYPE_TIME2 | T::MYSQL_TYPE_DATETIME2 | T::MYSQL_TYPE_TIMESTAMP2 => {
            tc.meta.first().copied().unwrap_or(0)
        }
        _ => 0,
    }
}

/// Declared byte length of a CHAR/BINARY column, from its two metadata bytes.
fn their_char_len(tc: &TheirColumn) -> usize {
    let [b0, b1] = match tc.meta[..] {
        [b0, b1, ..] => [usize::from(b0), usize::from(b1)],
        _ => return 0,
    };
    if b0 & 0x30 != 0x30 {
        b1 | (((b0 & 0x30) ^ 0x30) << 4)
    } else {
        b1
    }
}

/// Text or hex of a string value, by the collation mysql_common attached
/// (0 when the table map has none).
fn their_text(b: &[u8], tv: &TheirValue, tc: &TheirColumn) -> Printed {
    let utf8_or_bytes = |b: &[u8]| match std::str::from_utf8(b) {
        Ok(s) => Printed::Text(s.to_owned()),
        Err(_) => Printed::Bytes(b.to_vec()),
    };
    match tv.collation {
        0 => utf8_or_bytes(b),
        63 => {
            // BINARY(n): SELECT gives the trailing zero bytes the binlog drops.
            let mut bytes = b.to_vec();
            if tc.ty == T::MYSQL_TYPE_STRING {
                bytes.resize(bytes.len().max(their_char_len(tc)), 0);
            }
            Printed::Bytes(bytes)
        }
        c => match charset_of(c) {
            Charset::Utf8 => utf8_or_bytes(b),
            // Not independent: our table turns other charsets into UTF-8.
            cs => match to_utf8(b, cs) {
                Some(s) => Printed::Text(s.into_owned()),
                None => Printed::Bytes(b.to_vec()),
            },
        },
    }
}

fn their_printed(tv: &TheirValue, tc: &TheirColumn) -> Result<Printed, String> {
    let text = Printed::Text;
    let v = match &tv.value {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            let dom = j.clone().parse().map_err(|e| format!("mysql_common JSON: {e}"))?;
            return Ok(Printed::Json(dom_to_json(dom)));
        }
        BinlogValue::JsonDiff(_) => return Err("a JSON diff has no shown form here".into()),
    };
    let fsp = their_fsp(tc);
    Ok(match (tc.ty, v) {
        (_, V::NULL) => Printed::Null,
        (T::MYSQL_TYPE_NEWDECIMAL, V::Bytes(b)) => Printed::Decimal(String::from_utf8_lossy(b).into_owned()),
        (T::MYSQL_TYPE_YEAR, V::Bytes(b)) => {
            let y: u32 =
                std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or("YEAR not a number")?;
            text(format!("{y:04}"))
        }
        (T::MYSQL_TYPE_NEWDATE | T::MYSQL_TYPE_DATE, V::Date(y, m, d, ..)) => text(ymd(*y, *m, *d)),
        (T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2, V::Date(y, mo, d, h, mi, s, us)) => {
            text(format!("{} {}{}", ymd(*y, *mo, *d), hms(false, (*h).into(), *mi, *s), fraction(*us, fsp)))
        }
        (T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2, V::Time(neg, days, h, m, s, us)) => {
            text(format!("{}{}", hms(*neg, days * 24 + u32::from(*h), *m, *s), fraction(*us, fsp)))
        }
        (T::MYSQL_TYPE_TIMESTAMP, V::Int(secs)) => text(timestamp_text(*secs as u64, 0, 0)),
        (T::MYSQL_TYPE_TIMESTAMP2, V::Bytes(b)) => {
            let (secs, micros) = their_timestamp2(b)?;
            text(timestamp_text(secs, micros, fsp))
        }
        (T::MYSQL_TYPE_ENUM, V::Int(i)) => match (&tc.enum_names, *i) {
            (Some(_), 0) => text(String::new()),
            (Some(names), i) => match names.get(i as usize - 1) {
                Some(n) => text(n.clone()),
                None => Printed::Number(i.to_string()),
            },
            (None, i) => Printed::Number(i.to_string()),
        },
        (T::MYSQL_TYPE_SET, V::Bytes(b)) => {
            let bits = le_bits(b);
            match &tc.set_names {
                Some(names) => text(
                    names
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i < 64 && bits & (1 << i) != 0)
                        .map(|(_, n)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                None => Printed::Number(bits.to_string()),
            }
        }
        (
            T::MYSQL_TYPE_STRING
            | T::MYSQL_TYPE_VARCHAR
            | T::MYSQL_TYPE_VAR_STRING
            | T::MYSQL_TYPE_BLOB
            | T::MYSQL_TYPE_TINY_BLOB
            | T::MYSQL_TYPE_MEDIUM_BLOB
            | T::MYSQL_TYPE_LONG_BLOB,
            V::Bytes(b),
        ) => their_text(b, tv, tc),
        (T::MYSQL_TYPE_BIT | T::MYSQL_TYPE_GEOMETRY | T::MYSQL_TYPE_VECTOR, V::Bytes(b)) => {
            Printed::Bytes(b.clone())
        }
        (_, V::Int(i)) => Printed::Number(i.to_string()),
        (_, V::UInt(u)) => Printed::Number(u.to_string()),
        (_, V::Float(f)) => Printed::Number(f.to_string()),
        (_, V::Double(d)) => Printed::Number(d.to_string()),
        (ty, other) => return Err(format!("unexpected {other:?} for a {ty:?} column")),
    })
}

// ---------------------------------------------------------------------------
// JSON: both sides as serde_json values.

/// mysql_common's JSON DOM as the JSON MySQL prints: DECIMAL as a number,
/// temporal values as strings with six fraction digits (DATE without time),
/// other opaque values as `base64:type<N>:<base64>`.
fn dom_to_json(d: JsonDom) -> serde_json::Value {
    use serde_json::Value as J;
    match d {
        JsonDom::Container(JsonContainer::Array(a)) => J::Array(a.into_iter().map(dom_to_json).collect()),
        JsonDom::Container(JsonContainer::Object(o)) => {
            J::Object(o.into_iter().map(|(k, v)| (k, dom_to_json(v))).collect())
        }
        JsonDom::Scalar(JsonScalar::Number(JsonNumber::Decimal(d))) => {
            let s = d.to_string();
            serde_json::from_str(&s).unwrap_or(J::String(s))
        }
        JsonDom::Scalar(JsonScalar::DateTime(t)) => J::String(format!("{t:.6}")),
        JsonDom::Scalar(s) => s.into(),
    }
}

/// Our JSON text as a serde value, with MySQL's base64 line breaks (a
/// newline every 76 characters) removed so it compares with plain base64.
fn ours_json(text: &str) -> Result<serde_json::Value, String> {
    fn unwrap_base64(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.starts_with("base64:type") => s.retain(|c| c != '\n'),
            serde_json::Value::Array(a) => a.iter_mut().for_each(unwrap_base64),
            serde_json::Value::Object(o) => o.values_mut().for_each(unwrap_base64),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("{e} in {text}"))?;
    unwrap_base64(&mut v);
    Ok(v)
}

/// Compares a PARTIAL_UPDATE_ROWS JSON diff list: operation, path, value.
fn compare_diffs(ours: &[u8], theirs: &BinlogValue<'static>) -> Result<(), String> {
    let BinlogValue::JsonDiff(theirs) = theirs else { return Err(format!("mysql_common gave {theirs:?}")) };
    let ours = json::parse_diffs(ours).map_err(|e| format!("ours: {e}"))?;
    if ours.len() != theirs.len() {
        return Err(format!("{} diffs vs {}", ours.len(), theirs.len()));
    }
    for (o, t) in ours.iter().zip(theirs) {
        let op = match o.op {
            json::JsonDiffOp::Replace => JsonDiffOperation::REPLACE,
            json::JsonDiffOp::Insert => JsonDiffOperation::INSERT,
            json::JsonDiffOp::Remove => JsonDiffOperation::REMOVE,
        };
        let ov = match o.value {
            Some(b) => {
                let mut s = String::new();
                json::write_json(b, &mut s).map_err(|e| format!("ours: {e}"))?;
                Some(ours_json(&s)?)
            }
            None => None,
        };
        let tv = match t.value() {
            Some(v) => Some(dom_to_json(v.clone().parse().map_err(|e| format!("theirs: {e}"))?)),
            None => None,
        };
        if op != t.operation() || o.path != t.path_str() || ov != tv {
            return Err(format!(
                "ours {:?} {} {ov:?}, theirs {:?} {} {tv:?}",
                o.op,
                o.path,
                t.operation(),
                t.path_str()
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Walking both decoders.

#[derive(Default, Debug)]
struct Tally {
    files: usize,
    events: usize,
    rows: usize,
    values: usize,
    raw_checks: usize,
    shown_checks: usize,
    diff_checks: usize,
    /// Row events mysql_common does not decode (pre-GA, MariaDB compressed).
    skipped_events: usize,
    /// Non-NULL values compared, by column type.
    by_type: std::collections::BTreeMap<String, usize>,
    unreadable: Vec<String>,
    errata: Vec<String>,
    failures: Vec<String>,
}

/// Where a value sits, for failure messages.
struct At<'a> {
    file: &'a str,
    offset: u64,
    row: usize,
    image: &'static str,
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} event@{} row {} {}", self.file, self.offset, self.row, self.image)
    }
}

/// Column metadata both decoders attach: name, collation, signedness.
fn compare_column(at: &At<'_>, i: usize, col: &Column, tv: &TheirValue, t: &mut Tally) {
    if let Some(name) = &col.name {
        if *name != tv.name {
            t.failures.push(format!("{at} col {i}: name ours {name:?} theirs {:?}", tv.name));
        }
    }
    let character = col.is_character() && col.real_type != gapless_decoder::ColumnType::VECTOR;
    if character && col.collation.unwrap_or(0) != tv.collation {
        t.failures.push(format!("{at} col {i}: collation ours {:?} theirs {}", col.collation, tv.collation));
    }
    if col.real_type.is_numeric() && col.unsigned != tv.unsigned {
        t.failures.push(format!("{at} col {i}: unsigned ours {} theirs {}", col.unsigned, tv.unsigned));
    }
}

/// mysql_common's value, with the one known metadata erratum corrected
/// in the one file it is allowed in (see `VECTOR_CHARSET_ERRATUM_FILE`).
fn apply_errata<'v>(
    at: &At<'_>,
    i: usize,
    tv: &'v TheirValue,
    tc: &TheirColumn,
    t: &mut Tally,
) -> Cow<'v, TheirValue> {
    match tc.mysql_collation {
        Some(c)
            if at.file == VECTOR_CHARSET_ERRATUM_FILE && tc.ty.is_character_type() && c != tv.collation =>
        {
            t.errata.push(format!("{at} col {i}: collation {} read as {c} (VECTOR charset)", tv.collation));
            Cow::Owned(TheirValue { collation: c, ..tv.clone() })
        }
        _ => Cow::Borrowed(tv),
    }
}

fn compare_value(
    at: &At<'_>,
    i: usize,
    v: &Value<'_>,
    col: &Column,
    tv: &TheirValue,
    tc: &TheirColumn,
    t: &mut Tally,
) {
    let ty = col.real_type;
    let tv = &*apply_errata(at, i, tv, tc, t);
    if !matches!(v, Value::Null) {
        *t.by_type.entry(format!("{ty}")).or_default() += 1;
    }
    compare_column(at, i, col, tv, t);
    if let Value::JsonDiff(b) = v {
        t.diff_checks += 1;
        if let Err(e) = compare_diffs(b, &tv.value) {
            t.failures.push(format!("{at} col {i} ({ty:?}) JSON diff: {e}"));
        }
        return;
    }
    match (ours_raw(v), their_raw(tv, tc)) {
        (Raw::Skip, _) | (_, Ok(Raw::Skip)) => {}
        (ours, Ok(theirs)) => {
            t.raw_checks += 1;
            if ours != theirs {
                t.failures.push(format!("{at} col {i} ({ty:?}) raw: ours {ours:?} theirs {theirs:?}"));
            }
        }
        (ours, Err(e)) => {
            t.failures.push(format!("{at} col {i} ({ty:?}) raw: ours {ours:?}, mysql_common: {e}"))
        }
    }
    match (ours_printed(&show(v, col)), their_printed(tv, tc)) {
        (Ok(ours), Ok(theirs)) => {
            t.shown_checks += 1;
            if !printed_equal(&ours, &theirs) {
                t.failures.push(format!("{at} col {i} ({ty:?}) shown: ours {ours:?} theirs {theirs:?}"));
            }
        }
        (ours, theirs) => {
            t.failures.push(format!("{at} col {i} ({ty:?}) shown: ours {ours:?} theirs {theirs:?}"))
        }
    }
}

fn compare_image(
    at: &At<'_>,
    ours: &[Option<Value<'_>>],
    theirs: Option<&TheirImage>,
    table: &[Column],
    their_columns: &[TheirColumn],
    t: &mut Tally,
) {
    let ours_present: Vec<usize> =
        ours.iter().enumerate().filter(|(_, v)| v.is_some()).map(|(i, _)| i).collect();
    let theirs_present: Vec<usize> =
        theirs.map(|img| img.iter().map(|tv| tv.index).collect()).unwrap_or_default();
    if ours_present != theirs_present {
        t.failures.push(format!("{at}: columns present ours {ours_present:?} theirs {theirs_present:?}"));
        return;
    }
    for (tv, &i) in theirs.into_iter().flatten().zip(&ours_present) {
        let v = ours[i].as_ref().expect("present");
        t.values += 1;
        compare_value(at, i, v, &table[i], tv, &their_columns[i], t);
    }
}

fn compare_event(file: &str, offset: u64, ours: &RowsEvent<'_>, theirs: &TheirRows, t: &mut Tally) {
    let Some(their_rows) = &theirs.rows else {
        t.skipped_events += 1;
        return;
    };
    let table = match ours.table() {
        Ok(table) => table,
        Err(e) => return t.failures.push(format!("{file} event@{offset}: ours: {e}")),
    };
    let rows = match ours.rows().and_then(|it| it.collect::<Result<Vec<_>, _>>()) {
        Ok(rows) => rows,
        Err(e) => return t.failures.push(format!("{file} event@{offset}: ours: {e}")),
    };
    if rows.len() != their_rows.len() {
        return t.failures.push(format!(
            "{file} event@{offset}: {} rows ours, {} theirs",
            rows.len(),
            their_rows.len()
        ));
    }
    t.events += 1;
    t.rows += rows.len();
    for (r, (row, (before, after))) in rows.iter().zip(their_rows).enumerate() {
        let at = At { file, offset, row: r, image: "before" };
        compare_image(&at, &row.before, before.as_ref(), &table.columns, &theirs.columns, t);
        let at = At { image: "after", ..at };
        compare_image(&at, &row.after, after.as_ref(), &table.columns, &theirs.columns, t);
    }
}

/// Walks our decoder over `bytes` and compares each row event with the
/// oracle's, in order.
fn compare_file(file: &str, bytes: &[u8], theirs: &[TheirRows], t: &mut Tally) {
    let mut theirs = theirs.iter();
    let mut reader = match BinlogReader::new(bytes, Decoder::new()) {
        Ok(r) => r,
        Err(e) => return t.failures.push(format!("{file}: mysql_common reads it, ours fails: {e}")),
    };
    while let Some(ev) = reader.next() {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                // The fixture test decides which files must fail; here it
                // only matters whether the oracle decoded rows we did not.
                let left = theirs.as_slice().len();
                if left > 0 {
                    t.failures.push(format!(
                        "{file}: ours stops ({e}); mysql_common decoded {left} more row events"
                    ));
                }
                return;
            }
        };
        let EventData::Rows(rows) = &ev.data else { continue };
        let Some(their) = theirs.next() else {
            return t
                .failures
                .push(format!("{file} event@{}: a row event mysql_common does not have", ev.offset));
        };
        if their.offset != ev.offset {
            return t.failures.push(format!(
                "{file}: row events out of step: ours at {}, mysql_common at {} (type {})",
                ev.offset, their.offset, their.event_type
            ));
        }
        compare_event(file, ev.offset, rows, their, t);
    }
    if let Some(their) = theirs.next() {
        t.failures
            .push(format!("{file}: mysql_common has a row event at {} that ours does not", their.offset));
    }
}

fn relative(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/")
}

#[test]
fn row_values_agree_with_mysql_common() {
    let Some(root) = common::shared_fixtures() else { return };
    let mut t = Tally::default();
    for path in common::walk(&root).into_iter().filter(|p| common::is_binlog(p)) {
        let file = relative(&root, &path);
        let bytes = common::read_binlog(&path);
        match oracle_read(&bytes) {
            Ok(theirs) => {
                t.files += 1;
                compare_file(&file, &bytes, &theirs, &mut t);
            }
            Err(e) => t.unreadable.push(format!("{file}: {e}")),
        }
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "compared {} files, {} row events, {} rows, {} values ({} raw, {} shown, {} JSON diffs); \
         {} row events mysql_common does not decode",
        t.files, t.events, t.rows, t.values, t.raw_checks, t.shown_checks, t.diff_checks, t.skipped_events
    );
    let _ = writeln!(report, "non-NULL values by type: {:?}", t.by_type);
    let _ = writeln!(report, "{} files mysql_common cannot read:", t.unreadable.len());
    for u in &t.unreadable {
        let _ = writeln!(report, "  {u}");
    }
    for e in &t.errata {
        let _ = writeln!(report, "  oracle erratum: {e}");
    }
    eprintln!("{report}");
    let shown: Vec<&str> = t.failures.iter().take(60).map(String::as_str).collect();
    assert!(
        t.failures.is_empty(),
        "{} disagreements with mysql_common (first {}):\n{}",
        t.failures.len(),
        shown.len(),
        shown.join("\n")
    );
    assert_enough_compared(&t);
}

/// A regression that silently stops comparing must fail: the counts sit a
/// little below what the fixtures give today (90 files, 1688 row events,
/// 47663 rows, 295377 values, 6 JSON diffs), and every column type seen
/// today must still be compared at least once.
fn assert_enough_compared(t: &Tally) {
    assert!(t.files >= 85, "only {} files compared", t.files);
    assert!(t.events >= 1600, "only {} row events compared", t.events);
    assert!(t.rows >= 45_000, "only {} rows compared", t.rows);
    assert!(t.values >= 280_000, "only {} values compared", t.values);
    assert!(t.raw_checks >= 280_000, "only {} raw checks", t.raw_checks);
    assert!(t.shown_checks >= 280_000, "only {} shown checks", t.shown_checks);
    assert!(t.diff_checks >= 6, "only {} JSON diffs compared", t.diff_checks);
    const TYPES: &str = "TINYINT SMALLINT MEDIUMINT INT BIGINT FLOAT DOUBLE DECIMAL YEAR DATE DATETIME \
                         DATETIME2 TIME2 TIMESTAMP TIMESTAMP2 BIT ENUM SET CHAR VARCHAR BLOB JSON VECTOR";
    let missing: Vec<_> = TYPES.split_whitespace().filter(|ty| !t.by_type.contains_key(*ty)).collect();
    assert!(missing.is_empty(), "no values compared for {missing:?}");
}
