//! JSON lines: one object per changed row; other events as objects with an
//! `"event"` key. Written by hand into a reused buffer: this is the hot path
//! of `decode --format jsonl`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use gapless_decoder::charset::Charset;
use gapless_decoder::events::rows::{Image, Row};
use gapless_decoder::events::{Column, RowsKind, TableMap};
use gapless_decoder::values::temporal::TEXT_MAX;
use gapless_decoder::values::{decimal, Decimal};
use gapless_decoder::{Event, EventData, Value};

use super::block::{push_i64, push_integer, push_with, Short};
use super::sql::{push_xid, xid_text};
use super::value::{enum_name, extend_hex, set_names, show, Number, Shown, Temporal};
use super::{Context, Render, RenderError};

/// `push_str` for the byte buffer JSON lines are built in: the output is
/// bytes, so ASCII digits and hex need no UTF-8 check on the way in.
trait PushStr {
    fn push_str(&mut self, s: &str);
}

impl PushStr for Vec<u8> {
    #[inline]
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// Output is batched in `buf` and written in chunks of at least this size,
/// which a `BufWriter` of up to this capacity passes through without
/// copying.
const FLUSH_AT: usize = 1 << 20;

/// The `jsonl` format.
pub struct JsonlRender<W: Write> {
    out: W,
    /// Lines not written yet.
    buf: Vec<u8>,
    /// The part of a row's line that all rows of an event share.
    prefix: Vec<u8>,
    /// `,"label":` for each column, per table map (keyed by its address;
    /// the Arc kept here keeps the address from being reused).
    labels: HashMap<usize, (Arc<TableMap>, Vec<Short>)>,
    /// Row buffers kept from one event to the next.
    spare: Row<'static>,
    /// Keep every line in `buf` for [`Render::take_output`]; `out` is
    /// not written.
    keep: bool,
}

impl<W: Write> JsonlRender<W> {
    /// Writes JSON lines to `out`.
    pub fn new(out: W) -> Self {
        JsonlRender {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 64 * 1024),
            prefix: Vec::new(),
            labels: HashMap::new(),
            spare: Row::default(),
            keep: false,
        }
    }
}

impl JsonlRender<std::io::Sink> {
    /// A renderer that keeps its lines in memory until
    /// [`Render::take_output`], for threads that render for another one
    /// to write: the lines are built where they are handed over, not
    /// copied into a second buffer.
    pub fn in_memory(capacity: usize) -> Self {
        JsonlRender { buf: Vec::with_capacity(capacity), keep: true, ..JsonlRender::new(std::io::sink()) }
    }
}

/// `,"name":` (or `,"@N":`) for every column of `table`.
fn column_labels(table: &TableMap) -> Vec<Short> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let mut l = vec![b','];
            push_label(&mut l, col, i);
            l.push(b':');
            Short::new(&l)
        })
        .collect()
}

/// Index of the first byte at or after `from` that JSON must escape (`"`,
/// `\\`, a control character), and with `HIGH` the first non-ASCII byte
/// too, or the length. Sixteen bytes at a time: most strings have nothing
/// to escape.
fn next_special<const HIGH: bool>(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
        let found = specials16::<HIGH>(chunk);
        if found != 0 {
            return i + found.trailing_zeros() as usize;
        }
        i += 16;
    }
    if i >= b.len() {
        return b.len();
    }
    // The last sixteen bytes, overlapping what was checked: bits below the
    // ones for `i..` are dropped.
    if let Some(last) =
        b.len().checked_sub(16).and_then(|at| Some((at, <&[u8; 16]>::try_from(&b[at..]).ok()?)))
    {
        let (at, chunk) = last;
        let found = specials16::<HIGH>(chunk) >> (i - at);
        return if found != 0 { i + found.trailing_zeros() as usize } else { b.len() };
    }
    let special = |c: u8| c < 0x20 || c == b'"' || c == b'\\' || (HIGH && c >= 0x80);
    b[i..].iter().position(|&c| special(c)).map_or(b.len(), |p| i + p)
}

/// A bit per byte of `chunk` that [`next_special`] stops at (bit 0 for the
/// first byte): four SSE2 compares.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn specials16<const HIGH: bool>(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of every x86_64 CPU (the intrinsics only need
    // it enabled), and the load reads exactly the 16 bytes `chunk` borrows,
    // unaligned.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Signed: bytes from 0x80 up are negative, so "below 0x20" takes in
        // the non-ASCII bytes, which only `HIGH` wants.
        let below = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
        let below =
            if HIGH { below } else { _mm_andnot_si128(_mm_cmplt_epi8(v, _mm_setzero_si128()), below) };
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), below)) as u32
    }
}

/// The same, a byte at a time, where SSE2 is not there.
#[cfg(not(target_arch = "x86_64"))]
fn specials16<const HIGH: bool>(chunk: &[u8; 16]) -> u32 {
    let special = |c: u8| c < 0x20 || c == b'"' || c == b'\\' || (HIGH && c >= 0x80);
    chunk.iter().enumerate().fold(0, |bits, (i, &c)| bits | (u32::from(special(c)) << i))
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    push_json_text::<true>(out, s.as_bytes(), false);
}

/// Appends `bytes` as a JSON string literal when they are UTF-8 (only ASCII
/// when `ascii_only`) and returns true; otherwise appends nothing and
/// returns false. Text is checked and escaped in one pass while it is
/// ASCII; from the first other byte on, the rest is checked once.
fn push_json_text<const VALID: bool>(out: &mut Vec<u8>, bytes: &[u8], ascii_only: bool) -> bool {
    let mark = out.len();
    out.push(b'"');
    if !push_escaped::<VALID>(out, bytes, ascii_only) {
        out.truncate(mark);
        return false;
    }
    out.push(b'"');
    true
}

/// [`push_json_text`] without the quotes. On false, what it appended is
/// left for the caller to cut.
fn push_escaped<const VALID: bool>(out: &mut Vec<u8>, bytes: &[u8], ascii_only: bool) -> bool {
    let mut checked = VALID;
    let mut start = 0;
    loop {
        let i =
            if checked { next_special::<false>(bytes, start) } else { next_special::<true>(bytes, start) };
        out.extend_from_slice(&bytes[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        if b >= 0x80 {
            if ascii_only || std::str::from_utf8(&bytes[i..]).is_err() {
                return false;
            }
            checked = true;
            start = i;
            continue;
        }
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                out.extend_from_slice(b"\\u00");
                extend_hex(out, &[b]);
            }
        }
        start = i + 1;
    }
    true
}

/// Appends a text column's value straight from its bytes when its charset
/// shows them as they are (UTF-8, or ASCII in latin1); false when the
/// value needs [`show`] (another charset, or bytes shown as hex).
fn push_text_cell(out: &mut Vec<u8>, value: &Value<'_>, col: &Column) -> bool {
    let (Value::String(bytes) | Value::Blob(bytes)) = value else { return false };
    match col.charset {
        None | Some(Charset::Utf8 | Charset::Other(_)) => push_json_text::<false>(out, bytes, false),
        Some(Charset::Latin1) => push_json_text::<false>(out, bytes, true),
        Some(_) => false,
    }
}

/// Appends the value of a cell. The common types are written straight from
/// the value; the rest go through [`show`], which decides how they look.
#[inline]
fn push_cell(out: &mut Vec<u8>, value: &Value<'_>, col: &Column) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Int(v) => push_i64(out, *v),
        Value::UInt(v) => push_integer(out, *v, false),
        Value::Float(v) => Number::Float(*v).with_text(|t| out.push_str(t)),
        Value::Double(v) => Number::Double(*v).with_text(|t| out.push_str(t)),
        Value::Decimal(d) => push_decimal(out, d),
        Value::Enum(i) => match enum_name(*i, col) {
            Some(name) => push_json_str(out, name),
            None => push_integer(out, u64::from(*i), false),
        },
        Value::Set(bits) => match &col.set_values {
            Some(names) => {
                out.push(b'"');
                for (k, name) in set_names(*bits, names).enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    push_escaped::<true>(out, name.as_bytes(), false);
                }
                out.push(b'"');
            }
            None => push_integer(out, *bits, false),
        },
        Value::Year(_) | Value::Date(_) | Value::Time(_) | Value::DateTime(_) | Value::Timestamp(_) => {
            if let Some(t) = Temporal::of(value) {
                push_temporal(out, &t);
            }
        }
        _ => {
            if !push_text_cell(out, value, col) {
                push_value(out, &show(value, col));
            }
        }
    }
}

/// A DECIMAL, quoted: digits, a sign and a point need no escaping.
fn push_decimal(out: &mut Vec<u8>, d: &Decimal<'_>) {
    push_quoted::<{ decimal::TEXT_MAX }, { decimal::TEXT_MAX + 2 }>(out, |text| d.write_ascii(text));
}

/// A temporal value, quoted.
fn push_temporal(out: &mut Vec<u8>, t: &Temporal) {
    push_quoted::<TEXT_MAX, { TEXT_MAX + 2 }>(out, |text| t.write_text(text));
}

/// Appends `"text"`, where `write` fills in the text (at most `N` bytes;
/// `M` is `N + 2`) and returns its length: quotes and text in one block.
#[inline(always)]
fn push_quoted<const N: usize, const M: usize>(out: &mut Vec<u8>, write: impl FnOnce(&mut [u8; N]) -> usize) {
    push_with(out, [b'"'; M], |block| {
        let len = match <&mut [u8; N]>::try_from(&mut block[1..=N]) {
            Ok(text) => write(text).min(N),
            Err(_) => 0,
        };
        block[1 + len] = b'"';
        len + 2
    });
}

fn push_value(out: &mut Vec<u8>, shown: &Shown<'_>) {
    match shown {
        Shown::Null => out.push_str("null"),
        Shown::Number(Number::Int(v)) => push_i64(out, *v),
        Shown::Number(Number::UInt(v)) => push_integer(out, *v, false),
        Shown::Number(n) => n.with_text(|t| out.push_str(t)),
        Shown::Decimal(d) => push_decimal(out, d),
        Shown::Temporal(t) => push_temporal(out, t),
        Shown::Text(t) => push_json_str(out, t),
        Shown::Bytes(b) => {
            out.push(b'"');
            extend_hex(out, b);
            out.push(b'"');
        }
        Shown::Json(j) => out.push_str(j),
        Shown::JsonDiff(d) => push_json_str(out, d),
    }
}

fn push_image(out: &mut Vec<u8>, table: &TableMap, labels: &[Short], image: &Image<'_>) {
    // Every label starts with a comma; the first one becomes the brace.
    let at = out.len();
    for ((cell, col), label) in image.iter().zip(table.columns.iter()).zip(labels) {
        let Some(v) = cell else { continue };
        label.push_to(out);
        push_cell(out, v, col);
    }
    match out.get_mut(at) {
        Some(comma) => *comma = b'{',
        None => out.push(b'{'),
    }
    out.push(b'}');
}

fn push_label(out: &mut Vec<u8>, col: &Column, i: usize) {
    match &col.name {
        Some(n) => push_json_str(out, n),
        None => {
            out.push_str("\"@");
            out.push_str(itoa::Buffer::new().format(i + 1));
            out.push(b'"');
        }
    }
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Starts a line: the fields every object has (file … gtid).
fn push_head(l: &mut Vec<u8>, cx: &Context<'_>, ev: &Event<'_>) {
    l.push_str("{\"file\":");
    push_json_str(l, cx.file);
    l.push_str(",\"pos\":");
    push_u64(l, ev.offset);
    l.push_str(",\"end_pos\":");
    push_u64(l, ev.end_offset);
    l.push_str(",\"ts\":");
    push_u64(l, u64::from(ev.header.timestamp));
    l.push_str(",\"server_id\":");
    push_u64(l, u64::from(ev.header.server_id));
    l.push_str(",\"gtid\":");
    match cx.gtid {
        Some(g) => push_json_str(l, g),
        None => l.push_str("null"),
    }
}

impl<W: Write> JsonlRender<W> {
    /// Writes the batch once it is large enough (or always, at the end).
    fn write_out(&mut self, force: bool) -> Result<(), RenderError> {
        if self.keep {
            return Ok(());
        }
        if force || self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn other(
        &mut self,
        cx: &Context<'_>,
        ev: &Event<'_>,
        kind: &str,
        extra: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), RenderError> {
        let l = &mut self.buf;
        push_head(l, cx, ev);
        l.push_str(",\"event\":");
        push_json_str(l, kind);
        extra(l);
        l.push_str("}\n");
        self.write_out(false)
    }
}

impl<W: Write> Render for JsonlRender<W> {
    fn event(&mut self, cx: &Context<'_>, ev: &Event<'_>) -> Result<(), RenderError> {
        match &ev.data {
            EventData::Rows(rows) => {
                let table = rows.table()?;
                let key = Arc::as_ptr(table) as usize;
                if !self.labels.contains_key(&key) {
                    if self.labels.len() > 4096 {
                        self.labels.clear();
                    }
                    self.labels.insert(key, (Arc::clone(table), column_labels(table)));
                }
                let labels = &self.labels[&key].1;
                let op = match rows.kind {
                    RowsKind::Write => "insert",
                    RowsKind::Update | RowsKind::PartialUpdate => "update",
                    RowsKind::Delete => "delete",
                };
                let p = &mut self.prefix;
                p.clear();
                push_head(p, cx, ev);
                p.push_str(",\"db\":");
                push_json_str(p, &table.schema);
                p.push_str(",\"table\":");
                push_json_str(p, &table.table);
                p.push_str(",\"op\":\"");
                p.push_str(op);
                p.push_str("\",\"before\":");
                let mut iter = rows.rows()?;
                let mut row = std::mem::take(&mut self.spare).recycle();
                while iter.next_into(&mut row)? {
                    let l = &mut self.buf;
                    l.extend_from_slice(&self.prefix);
                    if rows.kind.has_before() {
                        push_image(l, table, labels, &row.before);
                    } else {
                        l.push_str("null");
                    }
                    l.push_str(",\"after\":");
                    if rows.kind.has_after() {
                        push_image(l, table, labels, &row.after);
                    } else {
                        l.push_str("null");
                    }
                    l.push_str("}\n");
                }
                self.spare = row.recycle();
                self.write_out(false)
            }
            EventData::Query(q) => {
                let schema = String::from_utf8_lossy(q.schema).into_owned();
                let text = q.query_text().into_owned();
                self.other(cx, ev, "query", |l| {
                    l.push_str(",\"db\":");
                    push_json_str(l, &schema);
                    l.push_str(",\"query\":");
                    push_json_str(l, &text);
                })
            }
            EventData::Xid(xid) => {
                let xid = *xid;
                self.other(cx, ev, "xid", |l| {
                    l.push_str(",\"xid\":");
                    l.push_str(&xid.to_string());
                })
            }
            EventData::MariaGtid(g) if g.xid.is_some() => {
                // The group of an XA transaction: its rows (prepared), or
                // its XA COMMIT / XA ROLLBACK.
                let xa = g.xid.as_ref().map(xid_text).unwrap_or_default();
                self.other(cx, ev, "gtid", |l| {
                    l.push_str(",\"xa\":");
                    push_json_str(l, &xa);
                })
            }
            EventData::Gtid(_) | EventData::MariaGtid(_) => self.other(cx, ev, "gtid", |_| {}),
            EventData::XaPrepare(x) => {
                let mut xa = String::new();
                push_xid(&mut xa, x.format_id, x.gtrid, x.bqual);
                let one_phase = x.one_phase;
                self.other(cx, ev, "xa_prepare", |l| {
                    l.push_str(",\"xa\":");
                    push_json_str(l, &xa);
                    l.push_str(if one_phase { ",\"one_phase\":true" } else { ",\"one_phase\":false" });
                })
            }
            EventData::Rotate(r) => {
                let next = String::from_utf8_lossy(r.next_file).into_owned();
                let pos = r.position;
                self.other(cx, ev, "rotate", |l| {
                    l.push_str(",\"next_file\":");
                    push_json_str(l, &next);
                    l.push_str(",\"next_pos\":");
                    l.push_str(&pos.to_string());
                })
            }
            EventData::Unknown(body) => {
                let code = ev.header.event_type.0;
                let len = body.len();
                self.other(cx, ev, "unknown", |l| {
                    l.push_str(",\"type_code\":");
                    l.push_str(&code.to_string());
                    l.push_str(",\"body_len\":");
                    l.push_str(&len.to_string());
                })
            }
            EventData::Incident(i) => {
                let msg = String::from_utf8_lossy(i.message).into_owned();
                self.other(cx, ev, "incident", |l| {
                    l.push_str(",\"message\":");
                    push_json_str(l, &msg);
                })
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), RenderError> {
        self.write_out(true)?;
        self.out.flush()?;
        Ok(())
    }

    fn take_output(&mut self) -> Vec<u8> {
        let capacity = self.buf.capacity();
        std::mem::replace(&mut self.buf, Vec::with_capacity(capacity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious escaper, to check the word-at-a-time one against.
    fn naive(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn word_scan_escapes_like_the_obvious_loop() {
        let mut cases: Vec<String> = (0u8..0x80).map(|b| format!("abcdefgh{}ijklmnopq", b as char)).collect();
        for len in 0..40 {
            for at in 0..len {
                let mut s: Vec<char> = "xé☃yzw🦀q".chars().cycle().take(len).collect();
                s[at] = ['"', '\\', '\n', '\u{1}', '\u{1f}'][at % 5];
                cases.push(s.into_iter().collect());
            }
        }
        for s in cases {
            let mut out = Vec::new();
            push_json_str(&mut out, &s);
            assert_eq!(String::from_utf8(out).unwrap(), naive(&s), "{s:?}");
        }
    }

    #[test]
    fn text_cells_are_checked_as_they_are_escaped() {
        let text = |bytes: &[u8], ascii_only: bool| {
            let mut out = b"[".to_vec();
            let ok = push_json_text::<false>(&mut out, bytes, ascii_only);
            (ok, String::from_utf8(out).unwrap())
        };
        assert_eq!(
            text(b"plain ascii, long enough for words", false),
            (true, "[\"plain ascii, long enough for words\"".into())
        );
        assert_eq!(text("q\"\u{1}é☃🦀\"".as_bytes(), false), (true, "[\"q\\\"\\u0001é☃🦀\\\"\"".into()));
        // Not UTF-8, wherever the bad byte is: nothing is appended.
        for bad in [&b"\xff"[..], b"abcdefgh\xc3", b"abcdefghijk\xe2\x98", b"\xc3\xa9 then \x80"] {
            assert_eq!(text(bad, false), (false, "[".into()), "{bad:?}");
        }
        // latin1 takes this path only while it is ASCII.
        assert_eq!(text(b"abc", true), (true, "[\"abc\"".into()));
        assert_eq!(text("abcdefghé".as_bytes(), true), (false, "[".into()));
    }

    /// Random byte strings (mostly ASCII, some quotes, controls and UTF-8
    /// pieces, some broken): valid ones read back as themselves, broken
    /// ones are refused.
    #[test]
    fn text_cells_agree_with_utf8_and_serde() {
        let pieces: [&[u8]; 9] =
            [b"a", b"word ", b"\"", b"\\", b"\n", b"\x01", "é".as_bytes(), "🦀".as_bytes(), b"\xe2\x98"];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut r = x;
            for _ in 0..(r % 24) {
                r = r.rotate_left(7) ^ 0x9e37_79b9;
                let piece = pieces[(r % 97) as usize % pieces.len()];
                bytes.extend_from_slice(if r.is_multiple_of(5) { piece } else { b"ab" });
            }
            let mut out = Vec::new();
            let ok = push_json_text::<false>(&mut out, &bytes, false);
            match std::str::from_utf8(&bytes) {
                Ok(s) => {
                    assert!(ok, "{bytes:?}");
                    let back: String = serde_json::from_slice(&out).unwrap();
                    assert_eq!(back, s);
                }
                Err(_) => assert!(!ok && out.is_empty(), "{bytes:?}"),
            }
        }
    }

    #[test]
    fn json_string_escapes() {
        let mut out = Vec::new();
        push_json_str(&mut out, "a\"b\\c\n\u{1}é");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}é");
    }
}
