//! TABLE_MAP_EVENT: which table the next row events change, and how each of
//! its columns is laid out.
//!
//! ```text
//! table_id u48 (u32 before 5.1.4) | flags u16
//! | schema_len u8 | schema | NUL | table_len u8 | table | NUL
//! | column_count lenenc | column_type [column_count]
//! | metadata_len lenenc | metadata (per type: 0, 1 or 2 bytes)
//! | null_bitmap [(column_count + 7) / 8]
//! | optional metadata: (type u8, length lenenc, value)*      (MySQL 8.0.1+, MariaDB 10.5+)
//! ```
//!
//! The map is decoded into an owned [`TableMap`] because row events of
//! later events (and of other transaction payload buffers) refer to it.

use crate::charset::{charset_of, Charset};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::values::{ColumnType, Storage};

/// One column as described by TABLE_MAP and its optional metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The type code written in the event.
    pub wire_type: ColumnType,
    /// The real type (ENUM and SET travel as STRING).
    pub real_type: ColumnType,
    /// The raw metadata (first byte in the low 8 bits).
    pub meta: u16,
    /// How a value is laid out in a row image.
    pub storage: Storage,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// UNSIGNED (numeric columns, from SIGNEDNESS metadata).
    pub unsigned: bool,
    /// Collation id of a character or ENUM/SET column, when the event says.
    pub collation: Option<u16>,
    /// The character set of `collation`, looked up once per table map.
    pub charset: Option<Charset>,
    /// Column name (`binlog_row_metadata=FULL`).
    pub name: Option<String>,
    /// ENUM member names, in index order (FULL metadata).
    pub enum_values: Option<Vec<String>>,
    /// SET member names, in bit order (FULL metadata).
    pub set_values: Option<Vec<String>>,
    /// GEOMETRY subtype (FULL metadata).
    pub geometry_type: Option<u64>,
    /// False for an invisible column (MySQL 8.0.23+).
    pub visible: bool,
    /// VECTOR dimensionality (MySQL 9).
    pub vector_dimensions: Option<u64>,
}

impl Column {
    /// True for columns whose bytes are text in some character set (and
    /// whose collation therefore the charset metadata lists).
    pub fn is_character(&self) -> bool {
        matches!(
            self.real_type,
            ColumnType::STRING
                | ColumnType::VARCHAR
                | ColumnType::VAR_STRING
                | ColumnType::BLOB
                | ColumnType::TINY_BLOB
                | ColumnType::MEDIUM_BLOB
                | ColumnType::LONG_BLOB
                | ColumnType::VECTOR
        )
    }

    /// True for the columns the charset metadata lists. MariaDB counts
    /// GEOMETRY among them (its geometry type derives from BLOB); MySQL does
    /// not.
    fn has_charset_entry(&self, mariadb: bool) -> bool {
        self.is_character() || (mariadb && self.real_type == ColumnType::GEOMETRY)
    }

    /// True for ENUM and SET columns.
    pub fn is_enum_or_set(&self) -> bool {
        matches!(self.real_type, ColumnType::ENUM | ColumnType::SET)
    }

    /// True when the column holds bytes, not text: its collation is
    /// `binary` (BINARY, VARBINARY, BLOB). Unknown without metadata.
    pub fn is_binary(&self) -> Option<bool> {
        self.collation.map(|c| c == crate::values::BINARY_COLLATION)
    }
}

/// A decoded TABLE_MAP event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    /// The id row events use to refer to this map.
    pub table_id: u64,
    /// Map flags.
    pub flags: u16,
    /// Database name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Primary key column indexes with their prefix length (0 = whole
    /// column), from FULL metadata.
    pub primary_key: Vec<(usize, u64)>,
    /// The event body the map was decoded from, to skip re-decoding a map
    /// that repeats (every transaction repeats its maps).
    pub raw: Vec<u8>,
    /// Per column, what the row loop needs, packed densely: the full
    /// [`Column`] is large and the loop runs once per value.
    pub layout: Vec<CellLayout>,
}

/// How to read one column's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellLayout {
    /// The value's layout.
    pub storage: Storage,
    /// UNSIGNED.
    pub unsigned: bool,
}

/// Optional metadata field types.
mod opt {
    pub const SIGNEDNESS: u8 = 1;
    pub const DEFAULT_CHARSET: u8 = 2;
    pub const COLUMN_CHARSET: u8 = 3;
    pub const COLUMN_NAME: u8 = 4;
    pub const SET_STR_VALUE: u8 = 5;
    pub const ENUM_STR_VALUE: u8 = 6;
    pub const GEOMETRY_TYPE: u8 = 7;
    pub const SIMPLE_PRIMARY_KEY: u8 = 8;
    pub const PRIMARY_KEY_WITH_PREFIX: u8 = 9;
    pub const ENUM_AND_SET_DEFAULT_CHARSET: u8 = 10;
    pub const ENUM_AND_SET_COLUMN_CHARSET: u8 = 11;
    pub const COLUMN_VISIBILITY: u8 = 12;
    pub const VECTOR_DIMENSIONALITY: u8 = 13;
}

/// Reads bit `i` of a most-significant-bit-first bitmap.
fn msb_bit(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
}

impl TableMap {
    /// Decodes a TABLE_MAP body written by MySQL. `post_header_len` is 6
    /// for servers before 5.1.4 (4-byte table id) and 8 after.
    pub fn parse(c: &mut Cursor<'_>, post_header_len: u8) -> Result<Self> {
        Self::parse_from(c, post_header_len, false)
    }

    /// Decodes a TABLE_MAP body; `mariadb` when a MariaDB server wrote it
    /// (the servers count charset columns differently).
    pub fn parse_from(c: &mut Cursor<'_>, post_header_len: u8, mariadb: bool) -> Result<Self> {
        let raw = c.rest().to_vec();
        let table_id = if post_header_len == 6 {
            u64::from(c.u32("table map table id")?)
        } else {
            c.uint_n("table map table id", 6)?
        };
        let flags = c.u16("table map flags")?;
        let schema = String::from_utf8_lossy(c.u8_prefixed("table map schema")?).into_owned();
        c.skip("table map schema terminator", 1)?;
        let table = String::from_utf8_lossy(c.u8_prefixed("table map table")?).into_owned();
        c.skip("table map table terminator", 1)?;
        let count = c.lenenc_len("table map column count")?;
        let types = c.bytes("table map column types", count)?;
        // Pre-GA 5.1 maps end here: no metadata, no NULL bitmap.
        let pre_ga = c.is_empty();
        let meta_len = if pre_ga { 0 } else { c.lenenc_len("table map metadata length")? };
        let mut meta = c.sub("table map metadata", meta_len)?;
        let mut columns = Vec::with_capacity(count);
        for &t in types {
            let wire_type = ColumnType(t);
            let at = meta.offset();
            let m = match wire_type.metadata_len() {
                _ if pre_ga => 0,
                0 => 0,
                1 => u16::from(meta.u8("column metadata")?),
                _ => {
                    let first = meta.u8("column metadata")?;
                    let second = meta.u8("column metadata")?;
                    if matches!(wire_type, ColumnType::VARCHAR | ColumnType::VAR_STRING) {
                        u16::from_le_bytes([first, second])
                    } else {
                        u16::from(first) | (u16::from(second) << 8)
                    }
                }
            };
            let (real_type, storage) =
                Storage::from_table_map(wire_type, m).ok_or_else(|| crate::error::DecodeError::Invalid {
                    offset: at,
                    what: "column metadata",
                    detail: format!("{m:#06x} is impossible for a {wire_type:?} column"),
                })?;
            columns.push(Column {
                wire_type,
                real_type,
                meta: m,
                storage,
                nullable: false,
                unsigned: false,
                collation: None,
                charset: None,
                name: None,
                enum_values: None,
                set_values: None,
                geometry_type: None,
                visible: true,
                vector_dimensions: None,
            });
        }
        meta.expect_end("table map metadata")?;
        let nulls = if pre_ga { &[][..] } else { c.bytes("table map null bitmap", count.div_ceil(8))? };
        for (i, col) in columns.iter_mut().enumerate() {
            col.nullable = nulls.get(i / 8).is_none_or(|b| b & (1 << (i % 8)) != 0);
        }
        let mut map = TableMap {
            table_id,
            flags,
            schema,
            table,
            columns,
            primary_key: Vec::new(),
            raw,
            layout: Vec::new(),
        };
        while !c.is_empty() {
            let kind = c.u8("optional metadata type")?;
            let len = c.lenenc_len("optional metadata length")?;
            let mut field = c.sub("optional metadata", len)?;
            map.apply_optional(kind, &mut field, mariadb)?;
        }
        for col in &mut map.columns {
            col.charset = col.collation.map(charset_of);
        }
        map.layout =
            map.columns.iter().map(|c| CellLayout { storage: c.storage, unsigned: c.unsigned }).collect();
        Ok(map)
    }

    /// Indexes of the columns a predicate selects, in order.
    fn indexes(&self, pred: impl Fn(&Column) -> bool) -> Vec<usize> {
        self.columns.iter().enumerate().filter(|(_, c)| pred(c)).map(|(i, _)| i).collect()
    }

    fn apply_optional(&mut self, kind: u8, f: &mut Cursor<'_>, mariadb: bool) -> Result<()> {
        match kind {
            opt::SIGNEDNESS => {
                let bitmap = f.take_rest();
                for (n, i) in self.indexes(|c| c.real_type.is_numeric()).into_iter().enumerate() {
                    self.columns[i].unsigned = msb_bit(bitmap, n);
                }
            }
            opt::DEFAULT_CHARSET | opt::ENUM_AND_SET_DEFAULT_CHARSET => {
                let targets = if kind == opt::DEFAULT_CHARSET {
                    self.indexes(|c| c.has_charset_entry(mariadb))
                } else {
                    self.indexes(Column::is_enum_or_set)
                };
                let default = f.lenenc("default charset")? as u16;
                for &i in &targets {
                    self.columns[i].collation = Some(default);
                }
                while !f.is_empty() {
                    let n = f.lenenc("charset column index")? as usize;
                    let collation = f.lenenc("charset collation")? as u16;
                    let i = *targets.get(n).ok_or_else(|| {
                        f.invalid("charset column index", format!("{n} is past the last column"))
                    })?;
                    self.columns[i].collation = Some(collation);
                }
            }
            opt::COLUMN_CHARSET | opt::ENUM_AND_SET_COLUMN_CHARSET => {
                let targets = if kind == opt::COLUMN_CHARSET {
                    self.indexes(|c| c.has_charset_entry(mariadb))
                } else {
                    self.indexes(Column::is_enum_or_set)
                };
                for i in targets {
                    self.columns[i].collation = Some(f.lenenc("column charset")? as u16);
                }
            }
            opt::COLUMN_NAME => {
                for col in &mut self.columns {
                    col.name = Some(String::from_utf8_lossy(f.lenenc_bytes("column name")?).into_owned());
                }
            }
            opt::SET_STR_VALUE | opt::ENUM_STR_VALUE => {
                let want = if kind == opt::SET_STR_VALUE { ColumnType::SET } else { ColumnType::ENUM };
                for i in self.indexes(|c| c.real_type == want) {
                    let n = f.lenenc_len("enum/set member count")?;
                    let mut names = Vec::with_capacity(n);
                    for _ in 0..n {
                        names.push(String::from_utf8_lossy(f.lenenc_bytes("enum/set member")?).into_owned());
                    }
                    if kind == opt::SET_STR_VALUE {
                        self.columns[i].set_values = Some(names);
                    } else {
                        self.columns[i].enum_values = Some(names);
                    }
                }
            }
            opt::GEOMETRY_TYPE => {
                for i in self.indexes(|c| c.real_type == ColumnType::GEOMETRY) {
                    self.columns[i].geometry_type = Some(f.lenenc("geometry type")?);
                }
            }
            opt::SIMPLE_PRIMARY_KEY => {
                while !f.is_empty() {
                    let i = self.column_index(f, "primary key column")?;
                    self.primary_key.push((i, 0));
                }
            }
            opt::PRIMARY_KEY_WITH_PREFIX => {
                while !f.is_empty() {
                    let i = self.column_index(f, "primary key column")?;
                    let prefix = f.lenenc("primary key prefix")?;
                    self.primary_key.push((i, prefix));
                }
            }
            opt::COLUMN_VISIBILITY => {
                let bitmap = f.take_rest();
                for (i, col) in self.columns.iter_mut().enumerate() {
                    col.visible = msb_bit(bitmap, i);
                }
            }
            opt::VECTOR_DIMENSIONALITY => {
                for i in self.indexes(|c| c.real_type == ColumnType::VECTOR) {
                    if f.is_empty() {
                        break;
                    }
                    self.columns[i].vector_dimensions = Some(f.lenenc("vector dimensionality")?);
                }
            }
            // Newer servers may add fields; they are length-prefixed, so
            // skipping them is safe.
            _ => {
                f.take_rest();
            }
        }
        Ok(())
    }

    fn column_index(&self, f: &mut Cursor<'_>, what: &'static str) -> Result<usize> {
        let i = f.lenenc(what)? as usize;
        if i >= self.columns.len() {
            return Err(f.invalid(what, format!("{i} is past the last column")));
        }
        Ok(i)
    }

    /// The column's name, or `@N` (1-based) when the binlog carries no names.
    pub fn column_label(&self, i: usize) -> String {
        match self.columns.get(i).and_then(|c| c.name.as_deref()) {
            Some(name) => name.to_owned(),
            None => format!("@{}", i + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(types: &[u8], meta: &[u8], nulls: &[u8], optional: &[u8]) -> Vec<u8> {
        let mut b = vec![42, 0, 0, 0, 0, 0, 1, 0];
        b.extend_from_slice(&[4, b's', b'h', b'o', b'p', 0, 1, b't', 0]);
        b.push(types.len() as u8);
        b.extend_from_slice(types);
        b.push(meta.len() as u8);
        b.extend_from_slice(meta);
        b.extend_from_slice(nulls);
        b.extend_from_slice(optional);
        b
    }

    #[test]
    fn columns_metadata_and_optional_fields() {
        // INT, VARCHAR(300), ENUM in STRING, DECIMAL(10,2)
        let types = [3, 15, 254, 246];
        let meta = [0x2c, 0x01, 0xf7, 0x01, 10, 2];
        let mut optional = vec![opt::SIGNEDNESS, 1, 0b1000_0000];
        optional.extend_from_slice(&[opt::COLUMN_NAME, 8, 1, b'a', 1, b'b', 1, b'c', 1, b'd']);
        optional.extend_from_slice(&[opt::ENUM_STR_VALUE, 5, 2, 1, b'x', 1, b'y']);
        optional.extend_from_slice(&[opt::DEFAULT_CHARSET, 3, 45, 0, 63]);
        optional.extend_from_slice(&[opt::SIMPLE_PRIMARY_KEY, 1, 0]);
        let body = build(&types, &meta, &[0b1110], &optional);
        let map = TableMap::parse(&mut Cursor::new(&body, 0), 8).unwrap();
        assert_eq!(map.table_id, 42);
        assert_eq!((map.schema.as_str(), map.table.as_str()), ("shop", "t"));
        assert_eq!(map.columns.len(), 4);
        assert!(map.columns[0].unsigned && !map.columns[3].unsigned);
        assert!(!map.columns[0].nullable && map.columns[1].nullable);
        assert_eq!(map.columns[1].storage, Storage::String { len_bytes: 2, max_len: 300 });
        assert_eq!(map.columns[2].real_type, ColumnType::ENUM);
        assert_eq!(map.columns[2].enum_values.as_deref(), Some(&["x".to_owned(), "y".to_owned()][..]));
        assert_eq!(map.columns[1].collation, Some(63));
        assert_eq!(map.column_label(3), "d");
        assert_eq!(map.primary_key, vec![(0, 0)]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let body = build(&[3, 15], &[0x2c, 0x01], &[0], &[opt::COLUMN_NAME, 4, 1, b'a', 1, b'b']);
        TableMap::parse(&mut Cursor::new(&body, 0), 8).unwrap();
        let after_types = 20; // a pre-GA map ends here, validly
        for cut in 0..body.len() {
            // Cuts inside the optional block can leave a valid shorter map;
            // everything before it must fail.
            if cut < body.len() - 6 && cut != after_types {
                assert!(TableMap::parse(&mut Cursor::new(&body[..cut], 0), 8).is_err(), "cut {cut}");
            }
        }
    }
}
