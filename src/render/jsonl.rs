//! JSON lines: one object per changed row; other events as objects with an
//! `"event"` key. Written by hand into a reused buffer: this is the hot path
//! of `decode --format jsonl`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use gapless_decoder::events::rows::{Image, Row};
use gapless_decoder::events::{Column, RowsKind, TableMap};
use gapless_decoder::{Event, EventData};

use super::value::{push_display, push_hex, show, Shown};
use super::{Context, Render, RenderError};

/// The `jsonl` format.
pub struct JsonlRender<W: Write> {
    out: W,
    line: String,
    /// The part of a row's line that all rows of an event share.
    prefix: String,
    /// `"label":` for each column, per table map (keyed by its address;
    /// the Arc kept here keeps the address from being reused).
    labels: HashMap<usize, (Arc<TableMap>, Vec<String>)>,
}

impl<W: Write> JsonlRender<W> {
    /// Writes JSON lines to `out`.
    pub fn new(out: W) -> Self {
        JsonlRender { out, line: String::with_capacity(4096), prefix: String::new(), labels: HashMap::new() }
    }
}

/// `"name":` (or `"@N":`) for every column of `table`.
fn column_labels(table: &TableMap) -> Vec<String> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let mut l = String::new();
            push_label(&mut l, col, i);
            l.push(':');
            l
        })
        .collect()
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                out.push_str("\\u00");
                push_hex(out, &[b]);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn push_value(out: &mut String, shown: &Shown<'_>) {
    match shown {
        Shown::Null => out.push_str("null"),
        Shown::Number(n) => n.push(out),
        // Digits, a sign and a point: nothing to escape.
        Shown::Decimal(d) => {
            out.push('"');
            push_display(out, d);
            out.push('"');
        }
        Shown::Temporal(t) => {
            out.push('"');
            push_display(out, t);
            out.push('"');
        }
        Shown::Text(t) => push_json_str(out, t),
        Shown::Bytes(b) => {
            out.push('"');
            push_hex(out, b);
            out.push('"');
        }
        Shown::Json(j) => out.push_str(j),
        Shown::JsonDiff(d) => push_json_str(out, d),
    }
}

fn push_image(out: &mut String, table: &TableMap, labels: &[String], image: &Image<'_>) {
    out.push('{');
    let mut first = true;
    for ((cell, col), label) in image.iter().zip(table.columns.iter()).zip(labels) {
        let Some(v) = cell else { continue };
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(label);
        push_value(out, &show(v, col));
    }
    out.push('}');
}

fn push_label(out: &mut String, col: &Column, i: usize) {
    match &col.name {
        Some(n) => push_json_str(out, n),
        None => {
            out.push_str("\"@");
            out.push_str(itoa::Buffer::new().format(i + 1));
            out.push('"');
        }
    }
}

fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Starts a line: the fields every object has (file … gtid).
fn push_head(l: &mut String, cx: &Context<'_>, ev: &Event<'_>) {
    l.clear();
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
    fn flush_line(&mut self) -> Result<(), RenderError> {
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())?;
        Ok(())
    }

    fn other(
        &mut self,
        cx: &Context<'_>,
        ev: &Event<'_>,
        kind: &str,
        extra: impl FnOnce(&mut String),
    ) -> Result<(), RenderError> {
        push_head(&mut self.line, cx, ev);
        self.line.push_str(",\"event\":");
        push_json_str(&mut self.line, kind);
        extra(&mut self.line);
        self.line.push('}');
        self.flush_line()
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
                push_head(p, cx, ev);
                p.push_str(",\"db\":");
                push_json_str(p, &table.schema);
                p.push_str(",\"table\":");
                push_json_str(p, &table.table);
                p.push_str(",\"op\":\"");
                p.push_str(op);
                p.push_str("\",\"before\":");
                let mut iter = rows.rows()?;
                let mut row = Row::default();
                while iter.next_into(&mut row)? {
                    let l = &mut self.line;
                    l.clear();
                    l.push_str(&self.prefix);
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
                    self.out.write_all(l.as_bytes())?;
                }
                Ok(())
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
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_string_escapes() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}é");
    }
}
