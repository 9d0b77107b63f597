//! The `text` format's row values, checked against MariaDB's own decoder.
//!
//! fixtures/gen-mariadb.sh makes binlogs on a real MariaDB server from a
//! workload touching every column type (fixtures/workload/types.sql). This
//! test runs `gapless decode --format text` and
//! `mariadb-binlog -vv --base64-output=DECODE-ROWS` on the same files, parses
//! the row operations out of both outputs (op, table, before and after
//! images, one value per column position) and requires the same operations
//! in the same order with equal values, column by column.
//!
//! The two tools print many values differently without disagreeing about
//! them; each value is reduced to a canonical form chosen by the column type
//! that `-vv` prints in its trailing comment (`/* INT meta=0 nullable=1
//! is_null=0 */`):
//!
//! | type | mariadb-binlog | gapless | canonical form |
//! | --- | --- | --- | --- |
//! | integers | `-1 (255)`: signed, then unsigned when negative | one number, signed or unsigned as declared | the reading the DDL declares (UNSIGNED or not); the stored bits when the column is not known |
//! | FLOAT | `%-20g` (6 significant digits, padded) | shortest text of the f32 | f64, relative tolerance 6e-6 |
//! | DOUBLE | `%.20g` | shortest text of the f64 | f64, exactly equal |
//! | DECIMAL | digits | digits | sign, integer digits, fraction digits |
//! | DATE | `'YYYY:MM:DD'` | `'YYYY-MM-DD'` | (year, month, day) |
//! | TIME, DATETIME | quoted text | quoted text | parsed fields, fraction digits as printed |
//! | TIMESTAMP | seconds since the epoch, `.fraction` | `'YYYY-MM-DD HH:MM:SS.f'` in UTC | (seconds, fraction digits); the zero timestamp is 0 |
//! | YEAR | `%04d` of 1900 + stored byte | `'YYYY'` | the year (see the exception below the table) |
//! | BIT(M) | `b'…'`, M bits | `X'…'`, ceil(M/8) bytes | the value |
//! | ENUM | the index | the name (FULL metadata) or the index | the index (names from the DDL in types.sql) |
//! | SET | `b'…'` of the stored bytes, little-endian byte order | the names (FULL metadata) or the bit mask | the bit mask |
//! | strings, blobs, geometry | the stored bytes quoted, bytes < 0x20 as `\xHH`, nothing else escaped | UTF-8 text (`\\ \' \0 \n \r \Z` escaped) or `X'…'` for binary | bytes: gapless text encoded back into the column's charset (latin1 from the DDL), BINARY(n) zero-padded to n |
//!
//! Column positions come from mariadb-binlog's `@N`; gapless prints names
//! when the binlog has them (FULL metadata) and `@N` otherwise. Both print
//! the columns of an image in position order, so the cells of an image are
//! paired in order (MINIMAL row images print only some columns); a name must
//! then always pair with the same position within a table map, and with the
//! position the DDL gives it when the workload never ALTERs the table.
//!
//! One exception, where mariadb-binlog is wrong: it prints YEAR as 1900 plus
//! the stored byte, so the zero year 0000 (byte 0) comes out as 1900, which is
//! not a YEAR value; its 1900 is taken to mean 0000 (see `compare`).

mod common;

use gapless_decoder::values::temporal::days_from_civil;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

// ------------------------------------------------------------------ outputs

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Insert,
    Update,
    Delete,
}

/// One `###   LABEL=value` line.
#[derive(Debug, Clone)]
struct Cell {
    /// `@N` or a column name.
    label: String,
    /// The value as printed (bytes: mariadb-binlog prints column bytes raw).
    value: Vec<u8>,
    /// mariadb-binlog -vv: the trailing comment without `/* */`.
    comment: Option<String>,
}

#[derive(Debug, Clone)]
struct Op {
    /// 1-based ordinal of the binlog file.
    file: usize,
    /// The `# at` positions printed since the previous row operation's
    /// lines. gapless prints the rows of each event under its own `# at`
    /// (the last one); mariadb-binlog, for a statement whose rows span
    /// several events, prints every event's `# at` first and then all the
    /// rows, so there the rows event is one of them.
    positions: Vec<u64>,
    table_id: Option<u64>,
    kind: OpKind,
    /// `` `db`.`table` ``
    table: String,
    before: Vec<Cell>,
    after: Vec<Cell>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The row operations of a decoder's text output. `verbose_comments`: the
/// value lines end with mariadb-binlog's `-vv` comment.
fn parse_ops(out: &[u8], verbose_comments: bool, who: &str) -> Vec<Op> {
    let mut ops: Vec<Op> = Vec::new();
    let (mut file, mut positions, mut table_id) = (0usize, Vec::<u64>::new(), None);
    let (mut after, mut rows_seen) = (false, false);
    for line in out.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"# at ") {
            if let Some(p) = std::str::from_utf8(rest).ok().and_then(|s| s.trim().parse::<u64>().ok()) {
                // Every file starts with its format description at 4.
                if p == 4 {
                    file += 1;
                }
                if rows_seen {
                    positions.clear();
                    rows_seen = false;
                }
                positions.push(p);
            }
            continue;
        }
        if !line.starts_with(b"###") {
            // The rows event header: `... Write_rows_v1: table id 21 flags: ...`.
            if line.starts_with(b"#") {
                if let Some(i) = find(line, b": table id ") {
                    let digits: Vec<u8> =
                        line[i + 11..].iter().copied().take_while(u8::is_ascii_digit).collect();
                    table_id = text(&digits).parse().ok();
                }
            }
            continue;
        }
        let rest = line.strip_prefix(b"### ").unwrap_or_else(|| panic!("{who}: odd line {}", text(line)));
        rows_seen = true;
        let mut start = |kind: OpKind, table: &[u8]| {
            ops.push(Op {
                file,
                positions: positions.clone(),
                table_id,
                kind,
                table: text(table).trim().to_owned(),
                before: Vec::new(),
                after: Vec::new(),
            })
        };
        if let Some(t) = rest.strip_prefix(b"INSERT INTO ") {
            start(OpKind::Insert, t);
            after = true;
        } else if let Some(t) = rest.strip_prefix(b"UPDATE ") {
            start(OpKind::Update, t);
            after = false;
        } else if let Some(t) = rest.strip_prefix(b"DELETE FROM ") {
            start(OpKind::Delete, t);
            after = false;
        } else if rest == b"WHERE" {
            after = false;
        } else if rest == b"SET" {
            after = true;
        } else if let Some(cell) = rest.strip_prefix(b"  ") {
            let eq = cell
                .iter()
                .position(|&b| b == b'=')
                .unwrap_or_else(|| panic!("{who}: no = in {}", text(line)));
            let label = text(&cell[..eq]);
            let mut value = &cell[eq + 1..];
            let mut comment = None;
            if verbose_comments {
                // The comment is the last ` /* ... */` on the line; a value
                // may itself contain ` /* `.
                let i = rfind(value, b" /* ")
                    .filter(|_| value.ends_with(b"*/"))
                    .unwrap_or_else(|| panic!("{who}: no -vv comment in {}", text(line)));
                comment = Some(text(&value[i + 4..value.len() - 2]).trim().to_owned());
                value = &value[..i];
                // FLOAT is printed `%-20g`: padded with spaces.
                while value.last() == Some(&b' ') {
                    value = &value[..value.len() - 1];
                }
            }
            let op = ops.last_mut().unwrap_or_else(|| panic!("{who}: value before any row operation"));
            let image = if after { &mut op.after } else { &mut op.before };
            image.push(Cell { label, value: value.to_vec(), comment });
        } else {
            panic!("{who}: unexpected line {}", text(line));
        }
    }
    ops
}

fn run(mut cmd: Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn gapless_text(files: &[PathBuf]) -> Vec<u8> {
    let mut cmd = common::gapless();
    cmd.args(["decode", "--format", "text"]).args(files);
    let out = run(cmd, "gapless decode");
    assert!(std::str::from_utf8(&out).is_ok(), "gapless text output is not UTF-8");
    out
}

fn mariadb_text(files: &[PathBuf]) -> Vec<u8> {
    let mut cmd = Command::new("mariadb-binlog");
    cmd.args(["--no-defaults", "-vv", "--base64-output=DECODE-ROWS"]).args(files);
    run(cmd, "mariadb-binlog")
}

// ------------------------------------------------------------------ schema

/// A column as the workload's DDL declares it.
#[derive(Debug, Clone, Default)]
struct ColumnDef {
    name: String,
    /// `CHARACTER SET x`, lowercase; `None`: the database default (utf8mb4).
    charset: Option<String>,
    /// ENUM / SET members in order.
    members: Vec<String>,
    /// Declared UNSIGNED.
    unsigned: bool,
}

#[derive(Debug, Default)]
struct TableDef {
    /// CREATE TABLE order, then columns added by ALTER TABLE.
    columns: Vec<ColumnDef>,
    /// Altered by the workload: positions of later row events differ.
    altered: bool,
}

impl TableDef {
    fn by_name(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }
    fn at(&self, pos: usize) -> Option<&ColumnDef> {
        if self.altered {
            None
        } else {
            self.columns.get(pos - 1)
        }
    }
}

/// Splits on `sep` outside quotes and parentheses.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut esc, mut from) = (0i32, None::<char>, false, 0);
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&s[from..i]);
                from = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[from..]);
    out
}

/// The quoted strings in `s` (SQL quoting: '' and backslash escapes).
fn quoted_strings(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut cur = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    cur.push('\'');
                }
                '\'' => break,
                c => cur.push(c),
            }
        }
        out.push(cur);
    }
    out
}

fn ident(s: &str) -> String {
    s.trim().trim_matches('`').to_owned()
}

fn column_def(def: &str) -> Option<ColumnDef> {
    let def = def.trim();
    let (name, rest) = def.split_once(char::is_whitespace)?;
    let upper = rest.trim_start().to_ascii_uppercase();
    if ["PRIMARY", "KEY", "UNIQUE", "INDEX", "CONSTRAINT", "FOREIGN"]
        .contains(&name.to_ascii_uppercase().as_str())
    {
        return None;
    }
    let rest = rest.trim_start();
    let members = if upper.starts_with("ENUM(") || upper.starts_with("SET(") {
        let open = rest.find('(').expect("(");
        let group = split_top(&rest[open..], ' ')[0];
        quoted_strings(group)
    } else {
        Vec::new()
    };
    let charset = upper
        .find("CHARACTER SET ")
        .map(|i| rest[i + 14..].split_whitespace().next().unwrap_or("").to_ascii_lowercase());
    let unsigned = upper.split_whitespace().any(|w| w == "UNSIGNED");
    Some(ColumnDef { name: ident(name), charset, members, unsigned })
}

/// Tables of fixtures/workload/types.sql, by (database, table).
fn load_schema() -> HashMap<(String, String), TableDef> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/workload/types.sql");
    let sql: String = std::fs::read_to_string(path)
        .expect("types.sql")
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut tables: HashMap<(String, String), TableDef> = HashMap::new();
    let mut db = String::new();
    for stmt in split_top(&sql, ';') {
        let stmt = stmt.trim();
        let upper = stmt.to_ascii_uppercase();
        if let Some(rest) = upper.strip_prefix("USE ") {
            db = ident(&stmt[stmt.len() - rest.len()..]);
        } else if upper.starts_with("CREATE TABLE ") {
            let open = stmt.find('(').expect("CREATE TABLE (");
            let name = ident(&stmt["CREATE TABLE ".len()..open]);
            let close = stmt.rfind(')').expect("CREATE TABLE )");
            let columns = split_top(&stmt[open + 1..close], ',').into_iter().filter_map(column_def).collect();
            tables.insert((db.clone(), name), TableDef { columns, altered: false });
        } else if upper.starts_with("ALTER TABLE ") {
            let rest = &stmt["ALTER TABLE ".len()..];
            let (name, changes) =
                rest.trim_start().split_once(char::is_whitespace).expect("ALTER TABLE name");
            let table = tables.entry((db.clone(), ident(name))).or_default();
            table.altered = true;
            for change in split_top(changes, ',') {
                let change = change.trim();
                if change.to_ascii_uppercase().starts_with("ADD COLUMN ") {
                    table.columns.extend(column_def(&change["ADD COLUMN ".len()..]));
                }
            }
        }
    }
    tables
}

// ------------------------------------------------------------------ values

/// mariadb-binlog's quoting (log_event_client.cc, my_b_write_quoted): bytes
/// above 0x1F as they are, the others as `\xHH`.
fn mariadb_escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b > 0x1f {
            out.push(b);
        } else {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
    out
}

fn strip_quotes(raw: &[u8]) -> Option<&[u8]> {
    (raw.len() >= 2 && raw[0] == b'\'' && raw[raw.len() - 1] == b'\'').then(|| &raw[1..raw.len() - 1])
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The bytes of a value mariadb-binlog quoted.
fn mariadb_unquote(raw: &[u8]) -> Result<Vec<u8>, String> {
    let inner = strip_quotes(raw).ok_or("not quoted")?;
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 3 < inner.len() && inner[i + 1] == b'x' {
            if let (Some(h), Some(l)) = (hex_val(inner[i + 2]), hex_val(inner[i + 3])) {
                out.push(h << 4 | l);
                i += 4;
                continue;
            }
        }
        out.push(inner[i]);
        i += 1;
    }
    Ok(out)
}

/// The text of a value gapless quoted (text.rs push_quoted).
fn gapless_unquote(raw: &[u8]) -> Result<String, String> {
    let inner = strip_quotes(raw).ok_or("not quoted")?;
    let s = std::str::from_utf8(inner).map_err(|_| "not UTF-8")?;
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('\\') => '\\',
            Some('\'') => '\'',
            Some('0') => '\0',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('Z') => '\u{1a}',
            other => return Err(format!("unknown escape \\{other:?}")),
        });
    }
    Ok(out)
}

/// Windows-1252 code points of bytes 0x80..=0x9f, which MariaDB's latin1 uses
/// (the five bytes 1252 leaves undefined map to the C1 controls).
const CP1252_80: [u32; 32] = [
    0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d,
    0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a,
    0x153, 0x9d, 0x17e, 0x178,
];

fn latin1_encode(s: &str) -> Result<Vec<u8>, String> {
    s.chars()
        .map(|c| {
            let u = c as u32;
            if let Some(i) = CP1252_80.iter().position(|&x| x == u) {
                Ok(0x80 + i as u8)
            } else if u < 0x80 || (0xa0..0x100).contains(&u) {
                Ok(u as u8)
            } else {
                Err(format!("{c:?} is not in latin1"))
            }
        })
        .collect()
}

fn unhex(s: &[u8]) -> Result<Vec<u8>, String> {
    let pairs = s.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return Err("odd hex length".into());
    }
    pairs
        .map(|p| match (hex_val(p[0]), hex_val(p[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err("bad hex".to_owned()),
        })
        .collect()
}

/// The bytes gapless printed: `X'hex'` as is, text encoded in `charset`.
/// The flag says it was hex.
fn gapless_bytes(raw: &[u8], charset: Option<&str>) -> Result<(Vec<u8>, bool), String> {
    if let Some(hex) = raw.strip_prefix(b"X'").and_then(|r| r.strip_suffix(b"'")) {
        return Ok((unhex(hex)?, true));
    }
    let s = gapless_unquote(raw)?;
    match charset {
        Some("latin1") => Ok((latin1_encode(&s)?, false)),
        _ => Ok((s.into_bytes(), false)),
    }
}

fn ascii(raw: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(raw).map_err(|_| "not UTF-8".to_owned())
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse::<T>().map_err(|_| format!("not a number: {s:?}"))
}

/// `-1 (255)` or `5`, of a `width`-bit integer, as its bits.
fn mariadb_int(raw: &str, width: u32) -> Result<i128, String> {
    let modulus = 1i128 << width;
    let (signed, unsigned) = match raw.split_once(" (") {
        Some((s, u)) => (num::<i128>(s)?, Some(num::<i128>(u.strip_suffix(')').ok_or("no )")?)?)),
        None => (num::<i128>(raw)?, None),
    };
    let bits = signed.rem_euclid(modulus);
    if unsigned.is_some_and(|u| u != bits) {
        return Err(format!("signed and unsigned disagree in {raw:?}"));
    }
    Ok(bits)
}

fn gapless_int(raw: &str, width: u32) -> Result<i128, String> {
    let v = num::<i128>(raw)?;
    let (min, max) = (-(1i128 << (width - 1)), (1i128 << width) - 1);
    if !(min..=max).contains(&v) {
        return Err(format!("{v} does not fit {width} bits"));
    }
    Ok(v.rem_euclid(1i128 << width))
}

/// Sign, integer digits without leading zeros, fraction without trailing zeros.
fn decimal_canon(s: &str) -> Result<(bool, String, String), String> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(format!("not a decimal: {s:?}"));
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let zero = int.is_empty() && frac.is_empty();
    Ok((neg && !zero, if int.is_empty() { "0".into() } else { int.into() }, frac.into()))
}

/// `[-]H:MM:SS[.f]` → (negative, h, m, s, fraction digits).
fn time_canon(s: &str) -> Result<(bool, u32, u32, u32, String), String> {
    let (neg, t) = match s.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, s),
    };
    let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
    let p: Vec<&str> = hms.split(':').collect();
    if p.len() != 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("not a time: {s:?}"));
    }
    Ok((neg, num(p[0])?, num(p[1])?, num(p[2])?, frac.to_owned()))
}

type DateTime = (u32, u32, u32, u32, u32, u32, String);

/// `YYYY-MM-DD HH:MM:SS[.f]` (date separator `sep`).
fn datetime_canon(s: &str, sep: char) -> Result<DateTime, String> {
    let (date, time) = s.split_once(' ').unwrap_or((s, "00:00:00"));
    let d: Vec<&str> = date.split(sep).collect();
    if d.len() != 3 || d[0].len() != 4 {
        return Err(format!("not a date: {s:?}"));
    }
    let (neg, h, mi, sec, frac) = time_canon(time)?;
    if neg {
        return Err(format!("negative time of day: {s:?}"));
    }
    Ok((num(d[0])?, num(d[1])?, num(d[2])?, h, mi, sec, frac))
}

/// `b'0101'` → the bits, most significant first.
fn bit_string(raw: &str) -> Result<&str, String> {
    let bits = raw.strip_prefix("b'").and_then(|r| r.strip_suffix('\'')).ok_or("not b'...'")?;
    if !bits.bytes().all(|b| b == b'0' || b == b'1') {
        return Err(format!("not bits: {raw:?}"));
    }
    Ok(bits)
}

/// How a value pair came out.
enum Verdict {
    Same,
    /// Accepted under a documented exception (the name).
    Excepted(&'static str),
}

/// What the DDL says of a column, when known.
#[derive(Default, Clone, Copy)]
struct ColInfo<'a> {
    def: Option<&'a ColumnDef>,
}

/// Compares mariadb-binlog's value `m` with gapless' `g` for a column whose
/// `-vv` type is `ty`.
fn compare(ty: &str, m: &[u8], g: &[u8], col: ColInfo<'_>) -> Result<Verdict, String> {
    use Verdict::*;
    let same = |ok: bool, why: &str| if ok { Ok(Same) } else { Err(why.to_owned()) };
    let (m_null, g_null) = (m == b"NULL", g == b"NULL");
    if m_null || g_null {
        return same(m_null == g_null, "NULL on one side only");
    }
    let base = ty.split('(').next().unwrap_or(ty);
    let arg = ty.split_once('(').map(|(_, a)| a.trim_end_matches(')')).unwrap_or("");
    let int_width = match base {
        "TINYINT" => Some(8),
        "SHORTINT" => Some(16),
        "MEDIUMINT" => Some(24),
        "INT" => Some(32),
        "LONGINT" => Some(64),
        _ => None,
    };
    if let Some(w) = int_width {
        let bits = mariadb_int(ascii(m)?, w)?;
        let v = num::<i128>(ascii(g)?)?;
        return match col.def {
            // The DDL says which of mariadb-binlog's two readings is the value.
            Some(def) => {
                let signed = if bits >= 1 << (w - 1) { bits - (1 << w) } else { bits };
                same(v == if def.unsigned { bits } else { signed }, "integer values differ")
            }
            None => same(gapless_int(ascii(g)?, w)? == bits, "different bits"),
        };
    }
    match base {
        "FLOAT" => {
            let a: f64 = num(ascii(m)?)?;
            let b = f64::from(num::<f32>(ascii(g)?)?);
            // %g keeps 6 significant digits: up to 5e-6 relative error.
            same(a == b || (a - b).abs() <= 6e-6 * a.abs().max(b.abs()), "FLOAT values differ")
        }
        "DOUBLE" => {
            // %.20g reads back to the same double.
            let a: f64 = num(ascii(m)?)?;
            let b: f64 = num(ascii(g)?)?;
            same(a == b, "DOUBLE values differ")
        }
        "DECIMAL" => same(decimal_canon(ascii(m)?)? == decimal_canon(ascii(g)?)?, "DECIMAL values differ"),
        "DATE" => {
            let a = datetime_canon(&text(&mariadb_unquote(m)?), ':')?;
            let b = datetime_canon(&gapless_unquote(g)?, '-')?;
            same(a == b, "DATE values differ")
        }
        "TIME" => {
            let a = time_canon(&text(&mariadb_unquote(m)?))?;
            let b = time_canon(&gapless_unquote(g)?)?;
            same(a == b, "TIME values differ")
        }
        "DATETIME" => {
            let a = datetime_canon(&text(&mariadb_unquote(m)?), '-')?;
            let b = datetime_canon(&gapless_unquote(g)?, '-')?;
            same(a == b, "DATETIME values differ")
        }
        "TIMESTAMP" => {
            let s = ascii(m)?;
            let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
            let a = (num::<i64>(secs)?, frac.to_owned());
            let (y, mo, d, h, mi, sec, frac) = datetime_canon(&gapless_unquote(g)?, '-')?;
            let secs = if (y, mo, d, h, mi, sec) == (0, 0, 0, 0, 0, 0) {
                0 // the zero timestamp is stored as 0
            } else {
                days_from_civil(y.into(), mo.into(), d.into()) * 86400
                    + i64::from(h) * 3600
                    + i64::from(mi) * 60
                    + i64::from(sec)
            };
            same(a == (secs, frac), "TIMESTAMP values differ")
        }
        "YEAR" => {
            let a: u32 = num(ascii(m)?)?;
            let b: u32 = num(&gapless_unquote(g)?)?;
            if a == 1900 {
                // EXCEPTION: mariadb-binlog prints 1900 + the stored byte
                // (log_event_client.cc: `my_b_printf(file, "%04d", i32+ 1900)`)
                // without the zero year's special case: byte 0 is YEAR 0000
                // (what SELECT returns; "1901 to 2155, and 0000" per
                // https://mariadb.com/kb/en/year-data-type), 1900 is not a
                // YEAR value at all. So its 1900 means 0000, and only 0000.
                return if b == 0 {
                    Ok(Excepted("YEAR 0000 printed as 1900 by mariadb-binlog"))
                } else {
                    Err("mariadb-binlog's 1900 is the zero year 0000".into())
                };
            }
            same(a == b, "YEAR values differ")
        }
        "BIT" => {
            let nbits: usize = num(arg)?;
            let bits = bit_string(ascii(m)?)?;
            if bits.len() != nbits {
                return Err(format!("mariadb-binlog printed {} bits for BIT({nbits})", bits.len()));
            }
            let a = u64::from_str_radix(bits, 2).map_err(|e| e.to_string())?;
            let (bytes, hex) = gapless_bytes(g, None)?;
            if !hex || bytes.len() != nbits.div_ceil(8) {
                return Err(format!("BIT({nbits}) is not {} bytes of hex", nbits.div_ceil(8)));
            }
            let b = bytes.iter().fold(0u64, |v, &x| v << 8 | u64::from(x));
            same(a == b, "BIT values differ")
        }
        "ENUM" => {
            let a: u16 = num(ascii(m)?)?;
            let b: u16 = if g.starts_with(b"'") {
                let name = gapless_unquote(g)?;
                if name.is_empty() {
                    0 // the error value '' is index 0
                } else {
                    let members = col
                        .def
                        .map(|c| &c.members)
                        .filter(|m| !m.is_empty())
                        .ok_or("ENUM members unknown")?;
                    let i = members.iter().position(|x| *x == name).ok_or("not an ENUM member")?;
                    u16::try_from(i + 1).map_err(|e| e.to_string())?
                }
            } else {
                num(ascii(g)?)?
            };
            same(a == b, "ENUM indexes differ")
        }
        "SET" => {
            // The stored bytes, least significant first, each MSB first.
            let bits = bit_string(ascii(m)?)?;
            let bytes: Vec<u8> = bits
                .as_bytes()
                .chunks(8)
                .map(|c| u8::from_str_radix(std::str::from_utf8(c).expect("ascii"), 2).expect("bits"))
                .collect();
            let a = bytes.iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x));
            let b: u64 = if g.starts_with(b"'") {
                let names = gapless_unquote(g)?;
                let members =
                    col.def.map(|c| &c.members).filter(|m| !m.is_empty()).ok_or("SET members unknown")?;
                let mut mask = 0u64;
                for n in names.split(',').filter(|n| !n.is_empty()) {
                    mask |= 1 << members.iter().position(|x| x == n).ok_or("not a SET member")?;
                }
                mask
            } else {
                num(ascii(g)?)?
            };
            same(a == b, "SET masks differ")
        }
        "STRING"
        | "VARSTRING"
        | "BLOB/TEXT"
        | "TINYBLOB/TINYTEXT"
        | "MEDIUMBLOB/MEDIUMTEXT"
        | "LONGBLOB/LONGTEXT"
        | "GEOMETRY" => {
            let charset = col.def.and_then(|c| c.charset.as_deref());
            let (g_bytes, hex) = gapless_bytes(g, charset)?;
            let mut m_bytes = mariadb_unquote(m)?;
            if base == "STRING" && hex {
                // BINARY(n): the binlog drops trailing zero bytes, SELECT
                // (and gapless) shows them; STRING(n) is n bytes.
                let n: usize = num(arg)?;
                if m_bytes.len() < n {
                    m_bytes.resize(n, 0);
                }
            }
            if m_bytes == g_bytes {
                return Ok(Same);
            }
            // `\xHH` is ambiguous in mariadb-binlog's quoting (a backslash is
            // not escaped): compare in its quoting instead.
            let m_inner = strip_quotes(m).unwrap_or(m);
            same(mariadb_escape(&g_bytes) == m_inner, "bytes differ")
        }
        _ => Err(format!("no comparison for type {ty}")),
    }
}

// ------------------------------------------------------------------ the test

fn short(b: &[u8]) -> String {
    let t = text(b);
    if t.chars().count() > 160 {
        let head: String = t.chars().take(160).collect();
        format!("{head}... ({} bytes)", b.len())
    } else {
        t
    }
}

#[derive(Default)]
struct Tally {
    ops: usize,
    values: usize,
    non_null: usize,
    excepted: HashMap<&'static str, usize>,
    by_type: std::collections::BTreeMap<String, usize>,
}

fn split_table(t: &str) -> Option<(String, String)> {
    let (db, table) = t.split_once("`.`")?;
    Some((db.trim_start_matches('`').to_owned(), table.trim_end_matches('`').to_owned()))
}

/// Compares one variant; returns the tally and every disagreement.
fn compare_variant(
    variant: &str,
    schema: &HashMap<(String, String), TableDef>,
    files: &[PathBuf],
) -> (Tally, Vec<String>) {
    let names: Vec<String> =
        files.iter().map(|f| f.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned()).collect();
    let maria = parse_ops(&mariadb_text(files), true, "mariadb-binlog");
    let ours = parse_ops(&gapless_text(files), false, "gapless");
    let mut tally = Tally::default();
    let mut diffs = Vec::new();
    if maria.len() != ours.len() {
        diffs.push(format!(
            "{variant}: mariadb-binlog shows {} row operations, gapless {}",
            maria.len(),
            ours.len()
        ));
    }
    // (table, table id, position) <-> name, as gapless labels them.
    let mut name_at: HashMap<(String, Option<u64>, usize), String> = HashMap::new();
    for (k, (m, g)) in maria.iter().zip(&ours).enumerate() {
        let file = names.get(m.file.wrapping_sub(1)).map_or("?", String::as_str);
        let pos = g.positions.last().copied().unwrap_or(0);
        let at = format!("{variant} {file} at {pos} (row operation #{k}, {:?} {})", m.kind, m.table);
        if (m.file, m.table_id, m.kind, &m.table) != (g.file, g.table_id, g.kind, &g.table)
            || !m.positions.contains(&pos)
        {
            diffs.push(format!(
                "{at}: operations out of step\n    mariadb-binlog: {:?} {} in file #{} at one of {:?}, table id {:?}\n    \
                 gapless:        {:?} {} in file #{} at {pos}, table id {:?}",
                m.kind, m.table, m.file, m.positions, m.table_id, g.kind, g.table, g.file, g.table_id
            ));
            // Out of step: comparing further would only add noise.
            break;
        }
        tally.ops += 1;
        let def = split_table(&m.table).and_then(|t| schema.get(&t));
        for (image, mi, gi) in [("before", &m.before, &g.before), ("after", &m.after, &g.after)] {
            if mi.len() != gi.len() {
                let ml: Vec<&str> = mi.iter().map(|c| c.label.as_str()).collect();
                let gl: Vec<&str> = gi.iter().map(|c| c.label.as_str()).collect();
                diffs.push(format!("{at} {image} image: mariadb-binlog columns {ml:?}, gapless {gl:?}"));
                continue;
            }
            for (mc, gc) in mi.iter().zip(gi) {
                let comment = mc.comment.as_deref().unwrap_or("");
                let ty = comment.split(" meta=").next().unwrap_or("");
                let Some(pos) = mc.label.strip_prefix('@').and_then(|n| n.parse::<usize>().ok()) else {
                    diffs.push(format!("{at}: mariadb-binlog label {}", mc.label));
                    continue;
                };
                let place = format!("{at} {image} @{pos} ({}, {comment})", gc.label);
                // Which column gapless means.
                let name = if let Some(n) = gc.label.strip_prefix('@') {
                    if n != pos.to_string() {
                        diffs.push(format!("{place}: gapless labels it {}", gc.label));
                        continue;
                    }
                    def.and_then(|d| d.at(pos)).map(|c| c.name.clone())
                } else {
                    let key = (m.table.clone(), m.table_id, pos);
                    let known = name_at.entry(key).or_insert_with(|| gc.label.clone());
                    let ddl = def.and_then(|d| d.at(pos)).map(|c| c.name.as_str());
                    if *known != gc.label || ddl.is_some_and(|n| !n.eq_ignore_ascii_case(&gc.label)) {
                        diffs.push(format!(
                            "{place}: gapless names it {}, elsewhere {known}, the DDL {ddl:?}",
                            gc.label
                        ));
                        continue;
                    }
                    Some(gc.label.clone())
                };
                let info = ColInfo { def: name.as_deref().and_then(|n| def.and_then(|d| d.by_name(n))) };
                // -vv says whether the value is NULL: check the parse.
                if comment.contains("is_null=1") != (mc.value == b"NULL") {
                    diffs.push(format!("{place}: cannot parse mariadb-binlog value {}", short(&mc.value)));
                    continue;
                }
                match compare(ty, &mc.value, &gc.value, info) {
                    Ok(v) => {
                        tally.values += 1;
                        if mc.value != b"NULL" {
                            tally.non_null += 1;
                            *tally
                                .by_type
                                .entry(ty.split('(').next().unwrap_or(ty).to_owned())
                                .or_default() += 1;
                        }
                        if let Verdict::Excepted(why) = v {
                            *tally.excepted.entry(why).or_default() += 1;
                        }
                    }
                    Err(why) => diffs.push(format!(
                        "{place}: {why}\n    mariadb-binlog: {}\n    gapless:        {}",
                        short(&mc.value),
                        short(&gc.value)
                    )),
                }
            }
        }
    }
    (tally, diffs)
}

/// The `-vv` types the workload must produce a non-NULL value of.
const TYPES: &[&str] = &[
    "TINYINT",
    "SHORTINT",
    "MEDIUMINT",
    "INT",
    "LONGINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "DATE",
    "TIME",
    "DATETIME",
    "TIMESTAMP",
    "YEAR",
    "BIT",
    "ENUM",
    "SET",
    "STRING",
    "VARSTRING",
    "TINYBLOB/TINYTEXT",
    "BLOB/TEXT",
    "MEDIUMBLOB/MEDIUMTEXT",
    "LONGBLOB/LONGTEXT",
    "GEOMETRY",
];

/// Fewest values each variant must compare (observed: 1059 and 629).
fn floor(variant: &str) -> usize {
    match variant {
        // MINIMAL row images: updates and deletes log only some columns.
        "image-minimal" => 580,
        _ => 1000,
    }
}

#[test]
fn text_row_values_match_mariadb_binlog() {
    let Some(generated) = common::generated() else { return };
    let schema = load_schema();
    assert!(schema.len() >= 10, "types.sql: only {} tables parsed", schema.len());
    let mut report = Vec::new();
    let mut all_diffs = Vec::new();
    for variant in common::VARIANTS {
        let dir = generated.join(variant);
        let (tally, diffs) = compare_variant(variant, &schema, &common::variant_binlogs(&dir));
        let mut line = format!(
            "{variant}: {} row operations, {} values equal ({} not NULL)",
            tally.ops, tally.values, tally.non_null
        );
        for (why, n) in &tally.excepted {
            let _ = write!(line, "; {n} accepted as \"{why}\"");
        }
        let _ = write!(line, "\n    not NULL, by type: {:?}", tally.by_type);
        report.push(line);
        if diffs.is_empty() {
            assert!(
                tally.values >= floor(variant),
                "{variant}: only {} values compared (expected at least {})",
                tally.values,
                floor(variant)
            );
            assert!(tally.ops >= 110, "{variant}: only {} row operations", tally.ops);
            let missing: Vec<_> = TYPES.iter().filter(|t| !tally.by_type.contains_key(**t)).collect();
            assert!(missing.is_empty(), "{variant}: no value of {missing:?} compared");
        }
        all_diffs.extend(diffs);
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        all_diffs.is_empty(),
        "{} disagreements between gapless and mariadb-binlog:\n{}",
        all_diffs.len(),
        all_diffs.join("\n")
    );
}
