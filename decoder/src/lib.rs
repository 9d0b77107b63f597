//! A zero-copy decoder for MySQL and MariaDB binary logs.
//!
//! A binlog file is the 4-byte magic `\xfebin` followed by events. Every
//! event has a 19-byte header (timestamp, type, server id, size, end
//! position, flags), a body whose layout depends on the type and on the
//! file's FORMAT_DESCRIPTION_EVENT, and, when the format says so, a CRC32.
//! Row changes come as a TABLE_MAP event (the table and its column types)
//! followed by WRITE/UPDATE/DELETE_ROWS events whose rows are decoded
//! against that map.
//!
//! This crate only turns bytes into values: no I/O, no async runtime. The
//! caller maps or reads the file and hands the bytes over; values borrow
//! from those bytes wherever the format allows.
//!
//! ```
//! use gapless_decoder::{BinlogReader, Decoder, EventData};
//!
//! // A file holding only a MySQL 5.0 FORMAT_DESCRIPTION event.
//! let mut file = vec![0xfe, b'b', b'i', b'n'];
//! let mut fde = vec![0u8; 19];
//! fde[4] = 15; // type: FORMAT_DESCRIPTION
//! let mut body = 4u16.to_le_bytes().to_vec();
//! let mut version = b"5.0.96-log".to_vec();
//! version.resize(50, 0);
//! body.extend(version);
//! body.extend(0u32.to_le_bytes()); // created
//! body.push(19); // header length
//! body.extend([56, 13, 0, 8, 0, 18, 0, 4, 4, 4, 4, 18, 0, 0, 0, 0, 0, 0]); // post-header lengths
//! let size = (19 + body.len()) as u32;
//! fde[9..13].copy_from_slice(&size.to_le_bytes());
//! fde[13..17].copy_from_slice(&(4 + size).to_le_bytes());
//! file.extend(fde);
//! file.extend(body);
//!
//! let mut reader = BinlogReader::new(&file, Decoder::new()).unwrap();
//! let event = reader.next().unwrap().unwrap();
//! match event.data {
//!     EventData::FormatDescription(fd) => assert_eq!(fd.server_version, "5.0.96-log"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert!(reader.next().is_none());
//! ```
#![warn(missing_docs)]

pub mod charset;
pub mod checksum;
mod compress;
pub mod cursor;
pub mod error;
pub mod events;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod gtid;
pub mod header;
pub mod reader;
pub mod values;

pub use error::{DecodeError, Result};
pub use events::{Decoder, Event, EventData};
pub use format::{ChecksumAlg, FormatDescription};
pub use header::{EventHeader, EventType};
pub use reader::{BinlogReader, PayloadEvents};
pub use values::{ColumnType, Value};
