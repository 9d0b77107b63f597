//! JSON lines: one object per changed row; other events as objects with an
//! `"event"` key. Written by hand into a reused buffer: this is the hot path
//! of `decode --format jsonl`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use gapless_decoder::events::rows::{Image, Row};
use gapless_decoder::events::{Column, RowsKind, TableMap};
use gapless_decoder::{Event, EventData};

use super::value::{hex_chunks, show, Shown};

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
use super::{Context, Render, RenderError};

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
    /// `"label":` for each column, per table map (keyed by its address;
    /// the Arc kept here keeps the address from being reused).
    labels: HashMap<usize, (Arc<TableMap>, Vec<Vec<u8>>)>,
    /// Row buffers kept from one event to the next.
    spare: Row<'static>,
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
        }
    }
}

/// `"name":` (or `"@N":`) for every column of `table`.
fn column_labels(table: &TableMap) -> Vec<Vec<u8>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let mut l = Vec::new();
            push_label(&mut l, col, i);
            l.push(b':');
            l
        })
        .collect()
}

/// Index of the first byte JSON must escape (`"`, `\`, a control
/// character) at or after `from`, or the length. Eight bytes at a time: most
/// strings have nothing to escape.
fn next_escape(b: &[u8], from: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let control = x.wrapping_sub(LO * 0x20) & !x & HI;
        if control | has_zero(x ^ (LO * u64::from(b'"'))) | has_zero(x ^ (LO * u64::from(b'\\'))) != 0 {
            break;
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c < 0x20 || c == b'"' || c == b'\\').map_or(b.len(), |p| i + p)
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = next_escape(bytes, start);
        out.push_str(&s[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                out.push_str("\\u00");
                hex_chunks(&[b], |h| out.extend_from_slice(h));
            }
        }
        start = i + 1;
    }
    out.push(b'"');
}

fn push_value(out: &mut Vec<u8>, shown: &Shown<'_>) {
    match shown {
        Shown::Null => out.push_str("null"),
        Shown::Number(n) => n.with_text(|t| out.push_str(t)),
        // Digits, a sign and a point: nothing to escape.
        Shown::Decimal(d) => {
            out.push(b'"');
            d.with_ascii(|b| out.extend_from_slice(b));
            out.push(b'"');
        }
        Shown::Temporal(t) => {
            out.push(b'"');
            out.extend_from_slice(t.text().as_bytes());
            out.push(b'"');
        }
        Shown::Text(t) => push_json_str(out, t),
        Shown::Bytes(b) => {
            out.push(b'"');
            hex_chunks(b, |h| out.extend_from_slice(h));
            out.push(b'"');
        }
        Shown::Json(j) => out.push_str(j),
        Shown::JsonDiff(d) => push_json_str(out, d),
    }
}

fn push_image(out: &mut Vec<u8>, table: &TableMap, labels: &[Vec<u8>], image: &Image<'_>) {
    out.push(b'{');
    let mut first = true;
    for ((cell, col), label) in image.iter().zip(table.columns.iter()).zip(labels) {
        let Some(v) = cell else { continue };
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(label);
        push_value(out, &show(v, col));
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
            EventData::Gtid(_) | EventData::MariaGtid(_) => self.other(cx, ev, "gtid", |_| {}),
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
    fn json_string_escapes() {
        let mut out = Vec::new();
        push_json_str(&mut out, "a\"b\\c\n\u{1}é");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}é");
    }
}
