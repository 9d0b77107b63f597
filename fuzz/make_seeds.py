#!/usr/bin/env python3
"""Regenerates fuzz/corpus/ from the public fixtures in ../shared/fixtures/mysql.

    python3 fuzz/make_seeds.py [FIXTURES_DIR]

Seeds are cut only from MIT / Apache-2.0 / ISC-licensed fixtures (see
../shared/fixtures/INDEX.md); files that came from mysql-server's GPL test
data are not used. The walker below is deliberately independent of the
decoder under test: it frames events by `event_size` and decodes just
enough of TABLE_MAP and row events to cut seeds.

The script empties and rewrites fuzz/corpus/<target>/ for the four targets;
fuzz/regressions/ is never touched.
"""

import hashlib
import os
import shutil
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = (
    sys.argv[1]
    if len(sys.argv) > 1
    else os.path.join(HERE, "..", "..", "shared", "fixtures", "mysql")
)
CORPUS = os.path.join(HERE, "corpus")
MAGIC = b"\xfebin"
MAX_SEED = 4096

# Whole files for event_decoder (all under 4 KiB; MIT / Apache-2.0 / ISC).
WHOLE_FILES = [
    "rust_mysql_common/binlog-invisible-columns.000001",  # 8.0.26 invisible columns
    "rust_mysql_common/binlog_transaction_previous_GTID_no_tag.000001",  # 8.0.40
    "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001",  # 9.6.0 tagged GTID
    "rust_mysql_common/binlog_truncated_event.000001",  # broken: 14 bytes
    "rust_mysql_common/json-opaque.binlog",  # 9.0.1 JSON opaque scalars
    "rust_mysql_common/json.binlog.000001",  # 8.0.22 JSON, PARTIAL_UPDATE_ROWS
    "rust_mysql_common/mariadb-bin.000001",  # MariaDB 10.5 ANNOTATE_ROWS, FULL metadata
    "rust_mysql_common/minimal_row_metadata.000001",  # 8.0.40
    "rust_mysql_common/mysql-enum-string-set.000001",  # 8.0.28 ENUM/SET metadata
    "rust_mysql_common/mysql_type_bit.000001",  # 8.0.26 BIT
    "rust_mysql_common/time_issue.000001",  # 8.0.40 TIME
    "rust_mysql_common/transaction_compression.000001",  # 8.0.32 TRANSACTION_PAYLOAD
    "rust_mysql_common/vector.binlog",  # 9.0.1 VECTOR
    "mysql-binlog-connector-java/mysql-bin.compressed",  # 8.0.28 TRANSACTION_PAYLOAD
    "mysql-binlog-connector-java/mysql-bin.aurora-padding",  # Aurora 5.7.12, type 100
    "MySqlCdc/mysql-bin.000001",  # 5.7.23, 22 column types
    "binlog-parser/fixtures/mysql-bin.01",  # 5.6.35
    "binlog-parser/fixtures/mysql-bin.07",  # MariaDB 10.0.15, checksum OFF
    "binlog-parser/fixtures/mysql-bin.empty",  # FDE only
    "canal/mysql-bin.000002",  # 5.1.34, ends without ROTATE/STOP
    "canal/tsdb/mysql-bin.000001",  # broken: UTF-8-mangled magic
    "go-mysql/tcb-eval002c-bin.003320",  # 5.6.16 DECIMAL
    "wal-g/binlog_small_test",  # 5.7.25 non-empty PREVIOUS_GTIDS
    "ybinlogp/mysql-bin.default-path",  # 5.0.91
    "tiflow/mysql-bin.000001",  # MariaDB 10.0.17, the known hard TIMESTAMP(3) case
    "mariadb-poc/domain_id_0/mariadb-repl-bin.000009",  # MariaDB 11.8.5
    "mariadb-poc/domain_id_1/mariadb-repl-bin.000002",  # MariaDB 11.8.5, domain 1
    "mysql-cdc-rs/5.7/17_18_load/log.bin",  # LOAD DATA events
    "mysql-cdc-rs/5.7/14_user_var/log.bin",  # USER_VAR
    "mysql-cdc-rs/5.7/13_rand/log.bin",  # RAND
    "mysql-cdc-rs/5.7/31_update_rows_v2/log.bin",  # FLOAT/DOUBLE/DECIMAL/BLOB update
    "mysql-cdc-rs/8.0/32_delete_rows_v2/binlog.000001",  # 8.2.0 W/U/D
]

# Files whose events (after their FDE) become "selector + events" seeds for
# the mode of event_decoder that supplies the FDE: selector = index into
# gapless_decoder::fuzzing::FORMATS (0 MySQL 5.7, 1 MySQL 8.0, 2 MariaDB,
# 3 MySQL 5.1 without checksums). Events from files whose checksum setting
# differs from the selected FDE would be misframed, so each file goes with a
# format of the same checksum kind.
PREFIXED = [
    (0, "MySqlCdc/mysql-bin.000001"),
    (0, "mysql-cdc-rs/5.7/17_18_load/log.bin"),
    (1, "rust_mysql_common/json.binlog.000001"),
    (1, "rust_mysql_common/transaction_compression.000001"),
    (1, "rust_mysql_common/vector.binlog"),
    (1, "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001"),
    (2, "rust_mysql_common/mariadb-bin.000001"),
    (2, "mariadb-poc/domain_id_1/mariadb-repl-bin.000002"),
    (3, "canal/mysql-bin.000001"),
    (3, "ybinlogp/mysql-bin.default-path"),
]

# Files whose TABLE_MAP + row event pairs become row_decoder seeds.
ROW_FILES = [
    "MySqlCdc/mysql-bin.000001",
    "rust_mysql_common/json.binlog.000001",
    "rust_mysql_common/json-opaque.binlog",
    "rust_mysql_common/mysql-enum-string-set.000001",
    "rust_mysql_common/vector.binlog",
    "rust_mysql_common/binlog-invisible-columns.000001",
    "rust_mysql_common/mysql_type_bit.000001",
    "rust_mysql_common/minimal_row_metadata.000001",
    "rust_mysql_common/time_issue.000001",
    "rust_mysql_common/mariadb-bin.000001",
    "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001",
    "mysql-cdc-rs/5.7/31_update_rows_v2/log.bin",
    "mysql-cdc-rs/5.7/32_delete_rows_v2/log.bin",
    "mysql-cdc-rs/8.0/02_query_bigger/binlog.000733",
    "mysql-cdc-rs/8.0/32_delete_rows_v2/binlog.000001",
    "mysql-binlog-connector-java/mysql-bin.checksum-crc32",
    "go-mysql/tcb-eval002c-bin.003320",
    "binlog-parser/fixtures/mysql-bin.01",
    "canal/mysql-bin.000001",
    "tiflow/mysql-bin.000001",
    "mariadb-poc/domain_id_1/mariadb-repl-bin.000002",
]

# Files whose JSON column values (and the PARTIAL_UPDATE_ROWS diff list)
# become json_binary seeds.
JSON_FILES = [
    "rust_mysql_common/json.binlog.000001",
    "rust_mysql_common/json-opaque.binlog",
]

# gapless_decoder::fuzzing::ROW_TYPES, by event type code.
ROW_TYPES = [23, 24, 25, 30, 31, 32, 39, 20, 21, 22, 166, 167, 168, 169, 170, 171]

TABLE_MAP = 19
FORMAT_DESCRIPTION = 15
TRANSACTION_PAYLOAD = 40


def split_version(v):
    parts = []
    for p in "".join(c if c.isdigit() else " " for c in v).split()[:3]:
        parts.append(int(p))
    return tuple(parts + [0] * (3 - len(parts)))


class Fde:
    def __init__(self, body):
        self.version = body[2:52].split(b"\0")[0].decode("latin-1")
        split = (5, 3, 0) if "MariaDB" in self.version else (5, 6, 1)
        self.has_alg = split_version(self.version) >= split
        if self.has_alg:
            self.post_headers = list(body[57:-5])
            self.crc32 = body[-5] == 1
        else:
            self.post_headers = list(body[57:])
            self.crc32 = False


def events(data):
    """(offset, type, whole event bytes, body without checksum, fde in force)."""
    if not data.startswith(MAGIC):
        return
    pos, fde = 4, None
    while pos + 19 <= len(data):
        ty = data[pos + 4]
        size = struct.unpack_from("<I", data, pos + 9)[0]
        if size < 19 or pos + size > len(data):
            return
        ev = data[pos : pos + size]
        if ty == FORMAT_DESCRIPTION:
            fde = Fde(ev[19:])
            body = ev[19:]
        else:
            trailer = 4 if fde is not None and fde.crc32 else 0
            body = ev[19 : size - trailer]
        yield pos, ty, ev, body, fde
        pos += size


def lenenc(b, at):
    first = b[at]
    if first < 0xFB:
        return first, at + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(b[at + 1 : at + 1 + width], "little"), at + 1 + width


METADATA_LEN = {
    4: 1, 5: 1, 252: 1, 249: 1, 250: 1, 251: 1, 255: 1, 245: 1, 242: 1, 17: 1, 18: 1, 19: 1,
    15: 2, 253: 2, 16: 2, 246: 2, 254: 2, 247: 2, 248: 2,
}


def table_map_columns(body):
    """Column (type, metadata) pairs of a TABLE_MAP body (post-header 8)."""
    at = 8
    at += 1 + body[at] + 1  # schema
    at += 1 + body[at] + 1  # table
    n, at = lenenc(body, at)
    types = body[at : at + n]
    at += n
    _, at = lenenc(body, at)
    cols = []
    for t in types:
        m = METADATA_LEN.get(t, 0)
        cols.append((t, int.from_bytes(body[at : at + m], "little")))
        at += m
    return cols


FIXED = {1: 1, 2: 2, 3: 4, 8: 8, 9: 3}


def json_values(rows_body, ty, cols):
    """JSON column values of a row event body (fixed ints, VARCHAR and JSON
    columns only; anything else stops the walk)."""
    version2 = ty in (30, 31, 32, 39)
    at = 8
    if version2:
        at += struct.unpack_from("<H", rows_body, at)[0]
    n, at = lenenc(rows_body, at)
    bitmap_len = (n + 7) // 8
    present = rows_body[at : at + bitmap_len]
    at += bitmap_len
    present_after = present
    if ty in (24, 31, 39):
        present_after = rows_body[at : at + bitmap_len]
        at += bitmap_len
    images = {23: [present], 30: [present], 25: [present], 32: [present]}.get(ty, [present, present_after])
    out = []
    try:
        while at < len(rows_body):
            for k, bitmap in enumerate(images):
                partial_bits = b""
                if ty == 39 and k == 1:
                    options, at = lenenc(rows_body, at)
                    if options & 1:
                        njson = sum(1 for i in range(n) if bitmap[i // 8] >> (i % 8) & 1 and cols[i][0] == 245)
                        partial_bits = rows_body[at : at + (njson + 7) // 8]
                        at += (njson + 7) // 8
                cols_in = [i for i in range(n) if bitmap[i // 8] >> (i % 8) & 1]
                nulls = rows_body[at : at + (len(cols_in) + 7) // 8]
                at += (len(cols_in) + 7) // 8
                json_k = 0
                for k2, i in enumerate(cols_in):
                    t, meta = cols[i]
                    is_diff = False
                    if t == 245:
                        is_diff = bool(partial_bits) and partial_bits[json_k // 8] >> (json_k % 8) & 1
                        json_k += 1
                    if nulls[k2 // 8] >> (k2 % 8) & 1:
                        continue
                    if t in FIXED:
                        at += FIXED[t]
                    elif t == 15:
                        w = 1 if meta < 256 else 2
                        at += w + int.from_bytes(rows_body[at : at + w], "little")
                    elif t == 245:
                        length = int.from_bytes(rows_body[at : at + meta], "little")
                        value = rows_body[at + meta : at + meta + length]
                        out.append(("diff" if is_diff else "value", value))
                        at += meta + length
                    else:
                        return out
    except (IndexError, KeyError):
        pass
    return out


def read(rel):
    with open(os.path.join(FIXTURES, rel), "rb") as f:
        return f.read()


def name_for(prefix, data):
    return f"{prefix}-{hashlib.sha1(data).hexdigest()[:12]}"


def write(target, prefix, data, written):
    digest = hashlib.sha1(data).hexdigest()
    if digest in written[target]:
        return
    written[target].add(digest)
    with open(os.path.join(CORPUS, target, name_for(prefix, data)), "wb") as f:
        f.write(data)


def slug(rel):
    return rel.replace("/", "_").replace(".", "_")


def main():
    written = {t: set() for t in ("event_decoder", "row_decoder", "json_binary", "jsonl_render", "sql_render")}
    for t in written:
        shutil.rmtree(os.path.join(CORPUS, t), ignore_errors=True)
        os.makedirs(os.path.join(CORPUS, t))

    # event_decoder: whole files.
    for rel in WHOLE_FILES:
        data = read(rel)
        assert len(data) <= MAX_SEED, rel
        write("event_decoder", "file-" + slug(rel), data, written)
    # Broken files derived from MIT ones: cut inside an event, and one
    # event's CRC damaged.
    data = read("MySqlCdc/mysql-bin.000001")
    write("event_decoder", "cut-MySqlCdc", data[:1500], written)
    damaged = bytearray(read("rust_mysql_common/json.binlog.000001"))
    damaged[-3] ^= 0xFF
    write("event_decoder", "badcrc-json_binlog", bytes(damaged), written)
    # event_decoder: selector + events behind a supplied FDE.
    for selector, rel in PREFIXED:
        data = read(rel)
        evs = list(events(data))
        start = evs[0][0] + len(evs[0][2])  # after the file's first FDE
        end = start
        for pos, _, ev, _, _ in evs[1:]:
            if pos + len(ev) - start > MAX_SEED - 1:
                break
            end = pos + len(ev)
        write("event_decoder", f"fde{selector}-" + slug(rel), bytes([selector]) + data[start:end], written)
    # jsonl_render and sql_render read their input as event_decoder does:
    # the same seeds.
    source = os.path.join(CORPUS, "event_decoder")
    for name in sorted(os.listdir(source)):
        for target in ("jsonl_render", "sql_render"):
            shutil.copy(os.path.join(source, name), os.path.join(CORPUS, target, name))

    # row_decoder: (table map, row event) pairs.
    for rel in ROW_FILES:
        maps, per_file = {}, 0
        for _, ty, _, body, fde in events(read(rel)):
            if ty == TABLE_MAP:
                maps[int.from_bytes(body[:6], "little")] = body
            elif ty in ROW_TYPES and per_file < 6:
                tm = maps.get(int.from_bytes(body[:6], "little"))
                if tm is None or 3 + len(tm) + len(body) > MAX_SEED:
                    continue
                seed = bytes([ROW_TYPES.index(ty)]) + struct.pack("<H", len(tm)) + tm + body
                write("row_decoder", "rows-" + slug(rel), seed, written)
                per_file += 1

    # json_binary: JSON column values and diff lists.
    for rel in JSON_FILES:
        maps = {}
        for _, ty, _, body, _ in events(read(rel)):
            if ty == TABLE_MAP:
                maps[int.from_bytes(body[:6], "little")] = table_map_columns(body)
            elif ty in (30, 31, 39):
                cols = maps.get(int.from_bytes(body[:6], "little"))
                for kind, value in json_values(body, ty, cols or []):
                    write("json_binary", f"{kind}-" + slug(rel), value, written)

    for t, digests in written.items():
        print(f"{t}: {len(digests)} seeds")


if __name__ == "__main__":
    main()
