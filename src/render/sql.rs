//! The `sql` format: statements that redo the changes on another server.
//!
//! Row events become INSERT, UPDATE and DELETE statements. UPDATE and
//! DELETE find the row by its primary key when the binlog names one
//! (`binlog_row_metadata=FULL`), otherwise by every column of the before
//! image, NULL-safe, with `LIMIT 1`. Statements (DDL, statement-based DML)
//! are written with their default database and the session state they ran
//! under, as `mysqlbinlog` does. Values are UTC (`time_zone='+00:00'`), and
//! binary data is written as hex literals so any client charset works.
//!
//! Like `mysqlbinlog`, each transaction keeps its original GTID unless told
//! otherwise: `SET @@session.gtid_next` (MySQL) or `gtid_domain_id`,
//! `server_id` and `gtid_seq_no` (MariaDB) before it, so a server that runs
//! the output records the same GTIDs and never runs a transaction twice.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use gapless_decoder::events::gtid::{Xid, FL_PREPARED_XA};
use gapless_decoder::events::rows::{Image, Row};
use gapless_decoder::events::XaPrepare;
use gapless_decoder::events::{Column, QueryEvent, RowsKind, TableMap};
use gapless_decoder::{Event, EventData, Value};

use super::text::push_quoted;
use super::value::{push_decimal, push_hex, push_temporal, show, Shown};
use super::{Context, Render, RenderError};

/// The `sql` format.
pub struct SqlRender<W: Write> {
    out: W,
    buf: String,
    started: bool,
    schema: Option<Vec<u8>>,
    session: Option<String>,
    keep_gtids: bool,
    /// A MySQL `gtid_next` is set and must be reset after the commit.
    gtid_next_set: bool,
    /// An XA transaction was started with [`XA_DETACHED`].
    xa_detached: bool,
    /// Column names of tables the binlog does not name (written with
    /// `binlog_row_metadata=MINIMAL`), by (schema, table).
    given_names: SharedColumnNames,
    /// One INSERT per row event rather than per row.
    multi_row_inserts: bool,
    /// Generated columns of the server the SQL is for, by (schema, table).
    generated: SharedGenerated,
    /// Row changes run with the settings a replica applies them with,
    /// statements with their own.
    row_session: bool,
    /// The settings of row changes are the session's now, with foreign
    /// key checks off when this says so.
    row_session_set: Option<bool>,
}

/// Row events flag: written with foreign_key_checks=0.
const NO_FOREIGN_KEY_CHECKS: u16 = 1 << 1;

/// The sql_mode row changes are applied under: every value the old
/// primary stored goes in as it is, as a replica applying the row events
/// takes it. Not strict, which would refuse what a lax session stored
/// there (zero dates, an ENUM's '' error value); NO_AUTO_VALUE_ON_ZERO, so
/// that 0 in an AUTO_INCREMENT column stays 0 instead of taking the next
/// number.
pub const ROW_SQL_MODE: &str = "NO_AUTO_VALUE_ON_ZERO";

/// Column names by (schema, table), shared with whoever fills them in.
pub type SharedColumnNames = std::rc::Rc<std::cell::RefCell<HashMap<(String, String), Vec<String>>>>;

/// Generated columns by (schema, table), shared with whoever fills them in.
pub type SharedGenerated = std::rc::Rc<std::cell::RefCell<HashMap<(String, String), GeneratedColumns>>>;

/// The generated (virtual or stored) columns of a table on the server the
/// SQL is for. The server computes them and refuses a value for one (in
/// strict mode), so they are left out of INSERT, UPDATE and WHERE: the
/// other columns, which it computes them from, are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedColumns {
    /// Their names, lowercase (column names do not depend on case).
    names: HashSet<String>,
    /// Their places, from 0.
    places: HashSet<usize>,
}

impl GeneratedColumns {
    /// From the generated columns' names and places (from 0).
    pub fn new<'a>(columns: impl IntoIterator<Item = (&'a str, usize)>) -> Self {
        let mut g = GeneratedColumns::default();
        for (name, place) in columns {
            g.names.insert(name.to_lowercase());
            g.places.insert(place);
        }
        g
    }

    /// Whether column `i` of a table map is one: by its name when the
    /// binlog names it, otherwise by its place.
    fn contains(&self, i: usize, col: &Column) -> bool {
        match &col.name {
            Some(name) => self.names.contains(&name.to_lowercase()),
            None => self.places.contains(&i),
        }
    }

    /// Drops the generated columns' values from both images of `row`.
    fn drop_from(&self, table: &TableMap, row: &mut Row<'_>) {
        if self.names.is_empty() {
            return;
        }
        for (i, col) in table.columns.iter().enumerate() {
            if self.contains(i, col) {
                for cell in [row.before.get_mut(i), row.after.get_mut(i)].into_iter().flatten() {
                    *cell = None;
                }
            }
        }
    }
}

impl<W: Write> SqlRender<W> {
    /// Writes SQL to `out`; `keep_gtids` writes each transaction's GTID.
    pub fn new(out: W, keep_gtids: bool) -> Self {
        SqlRender {
            out,
            buf: String::with_capacity(4096),
            started: false,
            schema: None,
            session: None,
            keep_gtids,
            gtid_next_set: false,
            xa_detached: false,
            given_names: SharedColumnNames::default(),
            multi_row_inserts: false,
            generated: SharedGenerated::default(),
            row_session: false,
            row_session_set: None,
        }
    }

    /// Applies row changes as a replica applies row events, rather than
    /// with the settings of the statement before them: under
    /// [`ROW_SQL_MODE`] (the statement's may be stricter, or lack
    /// NO_AUTO_VALUE_ON_ZERO), and with foreign key checks off where the
    /// event says the old primary had them off. As replay needs.
    pub fn with_row_session(mut self) -> Self {
        self.row_session = true;
        self
    }

    /// Leaves out these generated columns, by (schema, table) (the
    /// target's information_schema, when replaying).
    pub fn with_generated_columns(mut self, generated: SharedGenerated) -> Self {
        self.generated = generated;
        self
    }

    /// Uses these column names, by (schema, table), for tables whose
    /// binlog table map carries none (e.g. the target's
    /// information_schema, when replaying).
    pub fn with_column_names(mut self, names: SharedColumnNames) -> Self {
        self.given_names = names;
        self
    }

    /// Writes the rows of an insert event as one multi-row INSERT (far
    /// less for the server to parse when applying).
    pub fn with_multi_row_inserts(mut self) -> Self {
        self.multi_row_inserts = true;
        self
    }
}

/// A table's column names: the binlog's, or given ones when it has none.
struct Names<'a> {
    t: &'a TableMap,
    given: Option<&'a [String]>,
}

impl Names<'_> {
    /// Every column has a name.
    fn known(&self) -> bool {
        self.t.columns.iter().all(|c| c.name.is_some())
            || self.given.is_some_and(|g| g.len() == self.t.columns.len())
    }

    fn label(&self, i: usize) -> String {
        match self.t.columns.get(i).and_then(|c| c.name.as_deref()) {
            Some(name) => name.to_owned(),
            None => match self.given.and_then(|g| g.get(i)).filter(|_| self.known()) {
                Some(name) => name.clone(),
                None => format!("@{}", i + 1),
            },
        }
    }
}

/// Ends a transaction: COMMIT, and the MySQL GTID back to automatic.
fn push_commit(out: &mut String, gtid_next_set: &mut bool) {
    out.push_str("COMMIT;\n");
    if std::mem::take(gtid_next_set) {
        out.push_str("SET @@session.gtid_next='AUTOMATIC';\n");
    }
}

/// Before a MariaDB XA transaction: a session that prepares one can do
/// nothing else until it ends (ERROR 1399, XAER_RMFAIL), unless it runs as
/// a replica's applier does, which leaves the prepared transaction to the
/// server at XA PREPARE, to be committed or rolled back by any session
/// (mariadb-binlog writes the same). MySQL does that always.
pub(crate) const XA_DETACHED: &str = "SET @@session.pseudo_slave_mode=1";

/// After a MariaDB XA transaction's XA PREPARE: the session as before.
pub(crate) const XA_ATTACHED: &str = "SET @@session.pseudo_slave_mode=0";

/// `XA START` of the XA transaction a MariaDB GTID event names.
pub(crate) fn xa_start(xid: &Xid) -> String {
    format!("XA START {}", xid_text(xid))
}

/// A MariaDB GTID event's XID as the server writes it.
pub(crate) fn xid_text(xid: &Xid) -> String {
    let mut text = String::new();
    push_xid(&mut text, xid.format_id, &xid.gtrid, &xid.bqual);
    text
}

/// What an XA_PREPARE event stands for: `XA PREPARE`, or MySQL's
/// `XA COMMIT … ONE PHASE`.
pub(crate) fn xa_prepare(x: &XaPrepare<'_>) -> String {
    let mut sql = if x.one_phase { "XA COMMIT " } else { "XA PREPARE " }.to_string();
    push_xid(&mut sql, x.format_id, x.gtrid, x.bqual);
    if x.one_phase {
        sql.push_str(" ONE PHASE");
    }
    sql
}

/// Appends an XA transaction's XID as the server writes it:
/// `X'gtrid',X'bqual',formatID`.
pub(crate) fn push_xid(out: &mut String, format_id: u32, gtrid: &[u8], bqual: &[u8]) {
    for part in [gtrid, bqual] {
        out.push_str("X'");
        push_hex(out, part);
        out.push_str("',");
    }
    out.push_str(&format_id.to_string());
}

/// Appends a backquoted identifier.
pub fn push_ident(out: &mut String, name: &str) {
    out.push('`');
    out.push_str(&name.replace('`', "``"));
    out.push('`');
}

fn push_sql_value(out: &mut String, v: &Value<'_>, shown: &Shown<'_>) {
    match (v, shown) {
        (_, Shown::Null) => out.push_str("NULL"),
        // The f32's shortest text can read back as a double just above
        // FLT_MAX, which a server rejects; the widened double is exact.
        (Value::Float(f), _) => out.push_str(&format!("{:e}", f64::from(*f))),
        (Value::Bit(bytes), _) => {
            out.push_str("b'");
            for byte in bytes.iter() {
                out.push_str(&format!("{byte:08b}"));
            }
            out.push('\'');
        }
        (_, Shown::Number(n)) => n.push(out),
        (_, Shown::Decimal(d)) => push_decimal(out, d),
        (_, Shown::Temporal(t)) => {
            out.push('\'');
            push_temporal(out, t);
            out.push('\'');
        }
        (_, Shown::Text(t)) => push_quoted(out, t),
        (_, Shown::Json(j)) => push_quoted(out, j),
        (_, Shown::JsonDiff(d)) => out.push_str(d),
        (_, Shown::Bytes(b)) => {
            if b.is_empty() {
                out.push_str("''");
            } else {
                out.push_str("X'");
                push_hex(out, b);
                out.push('\'');
            }
        }
    }
}

fn table_name(t: &TableMap) -> String {
    let mut s = String::new();
    push_ident(&mut s, &t.schema);
    s.push('.');
    push_ident(&mut s, &t.table);
    s
}

fn need_names(names: &Names<'_>, offset: u64) -> Result<(), RenderError> {
    let t = names.t;
    if names.known() {
        return Ok(());
    }
    Err(RenderError::Unrepresentable {
        offset,
        reason: format!(
            "UPDATE/DELETE on {} needs column names, which this binlog lacks (binlog_row_metadata=MINIMAL); use --format text or jsonl",
            table_name(t)
        ),
    })
}

/// `WHERE` for the before image: the primary key when known, otherwise
/// every column present, NULL-safe.
fn push_where(out: &mut String, names: &Names<'_>, before: &Image<'_>) {
    let t = names.t;
    let key: Vec<usize> = if !t.primary_key.is_empty()
        && t.primary_key.iter().all(|&(i, prefix)| prefix == 0 && before.get(i).is_some_and(|c| c.is_some()))
    {
        t.primary_key.iter().map(|&(i, _)| i).collect()
    } else {
        (0..before.len()).filter(|&i| before[i].is_some()).collect()
    };
    out.push_str(" WHERE ");
    for (n, &i) in key.iter().enumerate() {
        if n > 0 {
            out.push_str(" AND ");
        }
        let col = &t.columns[i];
        push_ident(out, &names.label(i));
        out.push_str(" <=> ");
        if let Some(v) = &before[i] {
            push_sql_value(out, v, &show(v, col));
        }
    }
    if t.primary_key.is_empty() {
        out.push_str(" LIMIT 1");
    }
}

fn push_assignments(out: &mut String, names: &Names<'_>, image: &Image<'_>) {
    let t = names.t;
    let mut first = true;
    for (i, cell) in image.iter().enumerate() {
        let Some(v) = cell else { continue };
        if !first {
            out.push_str(", ");
        }
        first = false;
        push_ident(out, &names.label(i));
        out.push('=');
        push_sql_value(out, v, &show(v, &t.columns[i]));
    }
}

fn row_sql(
    out: &mut String,
    kind: RowsKind,
    names: &Names<'_>,
    row: &Row<'_>,
    offset: u64,
) -> Result<(), RenderError> {
    let t = names.t;
    let name = table_name(t);
    match kind {
        RowsKind::Write => {
            push_insert_head(out, names, row, offset)?;
            push_values(out, t, row);
            out.push_str(";\n");
        }
        RowsKind::Update | RowsKind::PartialUpdate => {
            need_names(names, offset)?;
            out.push_str("UPDATE ");
            out.push_str(&name);
            out.push_str(" SET ");
            push_assignments(out, names, &row.after);
            push_where(out, names, &row.before);
            out.push_str(";\n");
        }
        RowsKind::Delete => {
            need_names(names, offset)?;
            out.push_str("DELETE FROM ");
            out.push_str(&name);
            push_where(out, names, &row.before);
            out.push_str(";\n");
        }
    }
    Ok(())
}

/// `INSERT INTO t (columns) VALUES ` for the columns `row` has.
fn push_insert_head(
    out: &mut String,
    names: &Names<'_>,
    row: &Row<'_>,
    offset: u64,
) -> Result<(), RenderError> {
    let name = table_name(names.t);
    out.push_str("INSERT INTO ");
    out.push_str(&name);
    if names.known() {
        out.push_str(" (");
        let mut first = true;
        for (i, cell) in row.after.iter().enumerate() {
            if cell.is_none() {
                continue;
            }
            if !first {
                out.push_str(", ");
            }
            first = false;
            push_ident(out, &names.label(i));
        }
        out.push(')');
    } else if row.after.iter().any(Option::is_none) {
        return Err(RenderError::Unrepresentable {
            offset,
            reason: format!("INSERT into {name} with a partial row image needs column names"),
        });
    }
    out.push_str(" VALUES ");
    Ok(())
}

/// `(v1, v2, …)` of the values `row` has.
fn push_values(out: &mut String, t: &TableMap, row: &Row<'_>) {
    out.push('(');
    let mut first = true;
    for (i, cell) in row.after.iter().enumerate() {
        let Some(v) = cell else { continue };
        if !first {
            out.push_str(", ");
        }
        first = false;
        push_sql_value(out, v, &show(v, &t.columns[i]));
    }
    out.push(')');
}

/// BEGIN, COMMIT, ROLLBACK, the XA statements or a savepoint: a QUERY
/// event that changes no table.
pub fn is_transaction_control(query: &[u8]) -> bool {
    ["BEGIN", "COMMIT", "ROLLBACK", "XA START", "XA END", "XA PREPARE", "XA COMMIT", "XA ROLLBACK"]
        .into_iter()
        .any(|w| starts_with_word(query, w))
        || is_savepoint(query)
}

/// `SAVEPOINT`, `ROLLBACK TO` or `RELEASE SAVEPOINT`: statements that stay
/// inside the transaction.
pub fn is_savepoint(query: &[u8]) -> bool {
    ["SAVEPOINT ", "ROLLBACK TO ", "RELEASE SAVEPOINT "]
        .into_iter()
        .any(|w| starts_with_word(query, w) && query.trim_ascii().len() > w.len())
}

/// Whether `query`, past leading blanks, starts with `word` in any case.
pub(crate) fn starts_with_word(query: &[u8], word: &str) -> bool {
    let text = query.trim_ascii();
    text.len() >= word.len() && text[..word.len()].eq_ignore_ascii_case(word.as_bytes())
}

/// CREATE/DROP/ALTER DATABASE (or SCHEMA), ignoring leading blanks and case.
fn is_database_ddl(query: &[u8]) -> bool {
    let text = String::from_utf8_lossy(query);
    let mut words = text.split_ascii_whitespace().map(str::to_ascii_uppercase);
    matches!(
        (words.next().as_deref(), words.next().as_deref()),
        (Some("CREATE" | "DROP" | "ALTER"), Some("DATABASE" | "SCHEMA"))
    )
}

/// The session settings a statement ran under, as `SET` statements.
fn session_of(q: &QueryEvent<'_>) -> String {
    let s = &q.status;
    let mut parts = Vec::new();
    if let Some(flags2) = s.flags2 {
        // OPTION_AUTO_IS_NULL, OPTION_NOT_AUTOCOMMIT, OPTION_NO_FOREIGN_KEY_CHECKS,
        // OPTION_RELAXED_UNIQUE_CHECKS.
        parts.push(format!(
            "@@session.foreign_key_checks={}, @@session.sql_auto_is_null={}, @@session.unique_checks={}, @@session.autocommit={}",
            u8::from(flags2 & (1 << 26) == 0),
            u8::from(flags2 & (1 << 14) != 0),
            u8::from(flags2 & (1 << 27) == 0),
            u8::from(flags2 & (1 << 19) == 0),
        ));
    }
    if let Some(mode) = s.sql_mode {
        parts.push(format!("@@session.sql_mode={mode}"));
    }
    if let Some((client, conn, server)) = s.charset {
        parts.push(format!(
            "@@session.character_set_client={client}, @@session.collation_connection={conn}, @@session.collation_server={server}"
        ));
    }
    if let Some(tz) = s.time_zone {
        let mut q = String::new();
        push_quoted(&mut q, &String::from_utf8_lossy(tz));
        parts.push(format!("@@session.time_zone={q}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("SET {};\n", parts.join(", "))
    }
}

impl<W: Write> Render for SqlRender<W> {
    fn event(&mut self, cx: &Context<'_>, ev: &Event<'_>) -> Result<(), RenderError> {
        let b = &mut self.buf;
        b.clear();
        if !self.started {
            self.started = true;
            b.push_str("-- generated by gapless decode --format sql\nSET NAMES utf8mb4;\nSET @@session.time_zone='+00:00';\n");
        }
        match &ev.data {
            EventData::Query(q) => {
                let session = session_of(q);
                let changed = self.session.as_deref() != Some(session.as_str());
                // With row settings, a statement runs with its own settings
                // again; BEGIN and COMMIT need none.
                let emit = match self.row_session {
                    true => !is_transaction_control(&q.query) && (changed || self.row_session_set.is_some()),
                    false => changed,
                };
                if emit && !session.is_empty() {
                    b.push_str(&session);
                    self.session = Some(session);
                    self.row_session_set = None;
                }
                // The server logs CREATE/DROP DATABASE with that database as
                // the default one; a USE of it would fail where it does not
                // exist yet (or any more).
                if !q.schema.is_empty()
                    && self.schema.as_deref() != Some(q.schema)
                    && !is_database_ddl(&q.query)
                {
                    b.push_str("USE ");
                    push_ident(b, &String::from_utf8_lossy(q.schema));
                    b.push_str(";\n");
                    self.schema = Some(q.schema.to_vec());
                }
                let text = q.query_text();
                let ends = text.eq_ignore_ascii_case("COMMIT");
                if ends {
                    push_commit(b, &mut self.gtid_next_set);
                } else {
                    b.push_str(&text);
                    b.push_str(";\n");
                }
                // A statement outside BEGIN..COMMIT (DDL) ends its GTID too.
                if self.gtid_next_set
                    && !ends
                    && !text.eq_ignore_ascii_case("BEGIN")
                    && cx.in_trx == Some(false)
                {
                    self.gtid_next_set = false;
                    b.push_str("SET @@session.gtid_next='AUTOMATIC';\n");
                }
            }
            EventData::Xid(_) => push_commit(b, &mut self.gtid_next_set),
            EventData::Gtid(g) => {
                if let (true, Some(gtid)) = (self.keep_gtids, g.gtid()) {
                    b.push_str(&format!("SET @@session.gtid_next='{gtid}';\n"));
                    self.gtid_next_set = true;
                }
            }
            EventData::MariaGtid(g) => {
                if self.keep_gtids {
                    b.push_str(&format!(
                        "SET @@session.gtid_domain_id={}, @@session.server_id={}, @@session.gtid_seq_no={};\n",
                        g.domain_id, g.server_id, g.seq_no
                    ));
                }
                // MariaDB writes no BEGIN event: the GTID event starts the
                // transaction (an XA one's names its XID).
                match &g.xid {
                    Some(xid) if g.flags & FL_PREPARED_XA != 0 => {
                        b.push_str(XA_DETACHED);
                        b.push_str(";\n");
                        b.push_str(&xa_start(xid));
                        b.push_str(";\n");
                        self.xa_detached = true;
                    }
                    _ if !g.is_standalone() => b.push_str("BEGIN;\n"),
                    _ => {}
                }
            }
            // The end of an XA transaction's rows, logged at XA PREPARE
            // (or at XA COMMIT ... ONE PHASE by MySQL).
            EventData::XaPrepare(x) => {
                b.push_str(&xa_prepare(x));
                b.push_str(";\n");
                if std::mem::take(&mut self.xa_detached) {
                    b.push_str(XA_ATTACHED);
                    b.push_str(";\n");
                }
                if std::mem::take(&mut self.gtid_next_set) {
                    b.push_str("SET @@session.gtid_next='AUTOMATIC';\n");
                }
            }
            EventData::Rows(rows) => {
                let checks_off = rows.flags & NO_FOREIGN_KEY_CHECKS != 0;
                if self.row_session && self.row_session_set != Some(checks_off) {
                    b.push_str(&format!(
                        "SET @@session.sql_mode='{ROW_SQL_MODE}', @@session.foreign_key_checks={};\n",
                        u8::from(!checks_off)
                    ));
                    self.row_session_set = Some(checks_off);
                }
                let table = rows.table()?.clone();
                let given_names = self.given_names.borrow();
                let given = given_names.get(&(table.schema.clone(), table.table.clone()));
                let names = Names { t: &table, given: given.map(Vec::as_slice) };
                let generated = self.generated.borrow();
                let generated = generated.get(&(table.schema.clone(), table.table.clone()));
                let mut iter = rows.rows()?;
                let mut row = Row::default();
                if self.multi_row_inserts && rows.kind == RowsKind::Write {
                    // One INSERT for the rows of the event: they share
                    // their table and the columns present.
                    let mut first = true;
                    while iter.next_into(&mut row)? {
                        if let Some(g) = generated {
                            g.drop_from(&table, &mut row);
                        }
                        if first {
                            push_insert_head(b, &names, &row, ev.offset)?;
                            first = false;
                        } else {
                            b.push_str(", ");
                        }
                        push_values(b, &table, &row);
                    }
                    if !first {
                        b.push_str(";\n");
                    }
                } else {
                    while iter.next_into(&mut row)? {
                        if let Some(g) = generated {
                            g.drop_from(&table, &mut row);
                        }
                        row_sql(b, rows.kind, &names, &row, ev.offset)?;
                    }
                }
            }
            EventData::Unknown(_) => b.push_str(&format!(
                "-- event type {} at {} is unknown to gapless and was not rendered\n",
                ev.header.event_type.0, ev.offset
            )),
            _ => {}
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
    fn savepoints_are_told_from_other_statements() {
        for yes in [
            "SAVEPOINT `s1`",
            "savepoint a",
            "ROLLBACK TO `s1`",
            "ROLLBACK TO SAVEPOINT x",
            " RELEASE SAVEPOINT b",
        ] {
            assert!(is_savepoint(yes.as_bytes()), "{yes}");
        }
        for no in
            ["SAVEPOINT", "ROLLBACK", "BEGIN", "COMMIT", "INSERT INTO savepoint VALUES (1)", "DROP TABLE t"]
        {
            assert!(!is_savepoint(no.as_bytes()), "{no}");
        }
    }
}
