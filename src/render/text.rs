//! The `text` format: close to `mysqlbinlog -v`. Each event gets a
//! `# at POS` line and a header line; row events are shown as commented
//! pseudo-SQL (`### INSERT INTO ...`), one `###   column=value` per line.
//! Times in header lines are UTC.

use std::fmt::Write as _;
use std::io::Write;

/// `write!` into a String, which cannot fail.
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

use gapless_decoder::events::gtid::FL_PREPARED_XA;
use gapless_decoder::events::rows::{Image, Row};
use gapless_decoder::events::{RowsKind, TableMap};
use gapless_decoder::values::Timestamp;
use gapless_decoder::{ChecksumAlg, Event, EventData};

use super::sql::{xa_prepare, xa_start};
use super::value::{push_decimal, push_hex, push_temporal, show, Shown};
use super::{Context, Render, RenderError};

/// The `text` format.
pub struct TextRender<W: Write> {
    out: W,
    buf: String,
    checksum: bool,
}

impl<W: Write> TextRender<W> {
    /// Writes text to `out`.
    pub fn new(out: W) -> Self {
        TextRender { out, buf: String::with_capacity(4096), checksum: false }
    }
}

/// Appends a value as `mysqlbinlog -v` would write it in a `###` line.
pub fn push_text_value(out: &mut String, shown: &Shown<'_>) {
    match shown {
        Shown::Null => out.push_str("NULL"),
        Shown::Number(n) => n.push(out),
        Shown::Decimal(d) => push_decimal(out, d),
        Shown::Temporal(t) => {
            out.push('\'');
            push_temporal(out, t);
            out.push('\'');
        }
        Shown::Text(t) => push_quoted(out, t),
        Shown::Json(j) => push_quoted(out, j),
        Shown::JsonDiff(d) => out.push_str(d),
        Shown::Bytes(b) => {
            out.push_str("X'");
            push_hex(out, b);
            out.push('\'');
        }
    }
}

/// Appends `s` as a single-quoted SQL string literal (runs without
/// special characters are copied whole).
pub fn push_quoted(out: &mut String, s: &str) {
    out.push('\'');
    let mut rest = s;
    while let Some(i) = rest.bytes().position(|b| matches!(b, b'\'' | b'\\' | 0 | b'\n' | b'\r' | 0x1a)) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'\'' => "\\'",
            b'\\' => "\\\\",
            0 => "\\0",
            b'\n' => "\\n",
            b'\r' => "\\r",
            _ => "\\Z",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('\'');
}

fn push_image(out: &mut String, table: &TableMap, image: &Image<'_>) {
    for (i, (cell, col)) in image.iter().zip(table.columns.iter()).enumerate() {
        let Some(v) = cell else { continue };
        out.push_str("###   ");
        match &table.columns[i].name {
            Some(n) => out.push_str(n),
            None => {
                out.push('@');
                out.push_str(itoa::Buffer::new().format(i + 1));
            }
        }
        out.push('=');
        push_text_value(out, &show(v, col));
        out.push('\n');
    }
}

impl<W: Write> Render for TextRender<W> {
    fn event(&mut self, cx: &Context<'_>, ev: &Event<'_>) -> Result<(), RenderError> {
        let b = &mut self.buf;
        b.clear();
        if let EventData::FormatDescription(fd) = &ev.data {
            self.checksum = fd.checksum == ChecksumAlg::Crc32;
        }
        if !ev.in_payload {
            w!(b, "# at {}\n", ev.offset);
        }
        let when = Timestamp { seconds: ev.header.timestamp, micros: 0, fsp: 0 }.to_utc();
        w!(
            b,
            "#{:02}{:02}{:02} {:02}:{:02}:{:02} server id {}  end_log_pos {}",
            when.date.year % 100,
            when.date.month,
            when.date.day,
            when.hour,
            when.minute,
            when.second,
            ev.header.server_id,
            ev.end_offset,
        );
        if self.checksum && !ev.in_payload && ev.raw.len() >= 4 {
            let t = &ev.raw[ev.raw.len() - 4..];
            w!(b, " CRC32 0x{:08x}", u32::from_le_bytes([t[0], t[1], t[2], t[3]]));
        }
        b.push('\t');
        b.push_str(&ev.header.event_type.to_string());
        match &ev.data {
            EventData::FormatDescription(fd) => {
                w!(b, ": binlog v {}, server v {}\n", fd.binlog_version, fd.server_version)
            }
            EventData::Query(q) => {
                w!(
                    b,
                    "\tthread_id={}\texec_time={}\terror_code={}\n",
                    q.thread_id,
                    q.exec_time,
                    q.error_code
                );
                if !q.schema.is_empty() {
                    w!(b, "use `{}`/*!*/;\n", String::from_utf8_lossy(q.schema));
                }
                b.push_str(&q.query_text());
                b.push_str("\n/*!*/;\n");
            }
            EventData::MariaGtid(g) if g.flags & FL_PREPARED_XA != 0 && g.xid.is_some() => {
                let xid = g.xid.as_ref().map(xa_start).unwrap_or_default();
                w!(b, " {}\n{xid}/*!*/;\n", cx.gtid.unwrap_or("(anonymous)"))
            }
            EventData::Gtid(_) | EventData::MariaGtid(_) => {
                w!(b, " {}\n", cx.gtid.unwrap_or("(anonymous)"))
            }
            EventData::XaPrepare(x) => w!(b, "\n{}\n/*!*/;\n", xa_prepare(x)),
            EventData::Xid(x) => w!(b, " = {x}\nCOMMIT/*!*/;\n"),
            EventData::Rotate(r) => {
                w!(b, " to {}  pos: {}\n", String::from_utf8_lossy(r.next_file), r.position)
            }
            EventData::TableMap(t) => {
                w!(b, ": `{}`.`{}` mapped to number {}\n", t.schema, t.table, t.table_id)
            }
            EventData::PreviousGtids(set) => w!(b, "\n# {set}\n"),
            EventData::MariaGtidList(list) => {
                let items: Vec<String> = list.iter().map(|g| g.to_string()).collect();
                w!(b, " [{}]\n", items.join(","));
            }
            EventData::RowsQuery(q) | EventData::AnnotateRows(q) => {
                w!(b, "\n# {}\n", String::from_utf8_lossy(q).replace('\n', "\n# "))
            }
            EventData::Unknown(body) => w!(
                b,
                ": event type {} unknown to gapless, {} bytes not decoded\n",
                ev.header.event_type.0,
                body.len()
            ),
            EventData::Rows(rows) => {
                w!(
                    b,
                    ": table id {}{}\n",
                    rows.table_id,
                    if rows.flags & 1 != 0 { " flags: STMT_END_F" } else { "" }
                );
                let table = rows.table()?.clone();
                let name = format!("`{}`.`{}`", table.schema, table.table);
                let mut iter = rows.rows()?;
                let mut row = Row::default();
                while iter.next_into(&mut row)? {
                    match rows.kind {
                        RowsKind::Write => {
                            w!(b, "### INSERT INTO {name}\n### SET\n");
                            push_image(b, &table, &row.after);
                        }
                        RowsKind::Delete => {
                            w!(b, "### DELETE FROM {name}\n### WHERE\n");
                            push_image(b, &table, &row.before);
                        }
                        RowsKind::Update | RowsKind::PartialUpdate => {
                            w!(b, "### UPDATE {name}\n### WHERE\n");
                            push_image(b, &table, &row.before);
                            b.push_str("### SET\n");
                            push_image(b, &table, &row.after);
                        }
                    }
                }
            }
            _ => b.push('\n'),
        }
        self.out.write_all(b.as_bytes())?;
        Ok(())
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
    fn quoting_escapes_what_sql_needs() {
        let mut out = String::new();
        push_quoted(&mut out, "it's a\\b\0c\nd\re\u{1a}f é");
        assert_eq!(out, "'it\\'s a\\\\b\\0c\\nd\\re\\Zf é'");
    }
}
