#!/usr/bin/env python3
"""Regenerates fuzz/corpus/packet_codec/, the seeds of the packet_codec target.

    python3 fuzz/make_packet_seeds.py                # rewrite the corpus
    python3 fuzz/make_packet_seeds.py --capture PORT # print a fresh CAPTURED

Every seed is a byte stream of frames (3-byte length, sequence id, payload),
as gapless_protocol::fuzzing::check_packets reads it, under 4 KiB:

* `cap-*`: frames of real exchanges with MariaDB 10.11.19 (Debian
  10.11.19-MariaDB-0+deb12u1-log), recorded by `--capture` below and kept in
  CAPTURED: logins (native password, wrong password, a switch to
  client_ed25519 answered with a wrong signature), text result sets with and
  without CLIENT_DEPRECATE_EOF, OK and ERR answers, COM_REGISTER_SLAVE and
  two COM_BINLOG_DUMPs (with and without semi-sync) of a small binlog, and
  the ERR 1236 of a dump from a missing file. Each `cap-` seed is one
  command's exchange, both directions, so its sequence ids run on;
  `cap-answer-*` holds the server's frames only.
* `syn-*`: written from the protocol documentation where no server was at
  hand: a MySQL 8.0 greeting, caching_sha2_password fast and full
  authentication (with the RSA test key of protocol/tests/data/auth),
  sha256_password, auth switches to every plugin, every command, handshake
  responses in each layout, OK/ERR/EOF variants, semi-sync packets that ask
  for an ACK, a sequence id wrap, and frames announcing 16 MiB payloads
  (`syn-joined-*`, in the layout of fuzzing::check_joined_frames, which the
  replay test runs on them).

The script empties corpus/packet_codec/ and rewrites it; regressions/ is
never touched. To capture again, start a throw-away server, create the
users and some binlog, then run --capture and paste its output over
CAPTURED:

    . fixtures/lib/mariadb.sh; export GAPLESS_SANDBOX=/tmp/fuzzseed
    mdb_start s1 $(mdb_free_port 36000) 1
    mdb_sql s1 -e "CREATE USER fz@'%' IDENTIFIED BY 'pw'; GRANT ALL ON *.* TO fz@'%';
      INSTALL SONAME 'auth_ed25519';
      CREATE USER fe@'%' IDENTIFIED VIA ed25519 USING PASSWORD('pw');
      SET GLOBAL rpl_semi_sync_master_enabled = ON; CREATE DATABASE d;
      CREATE TABLE d.t (id INT PRIMARY KEY, s VARCHAR(20), j JSON);
      INSERT INTO d.t VALUES (1, 'a', '{\\"k\\":1}'), (2, NULL, '[1,2]');
      UPDATE d.t SET s = 'b' WHERE id = 1; DELETE FROM d.t WHERE id = 2;"
    python3 fuzz/make_packet_seeds.py --capture $(mdb_port s1)
    mdb_destroy s1
"""

import hashlib
import os
import shutil
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "packet_codec")
RSA_PEM = os.path.join(HERE, "..", "protocol", "tests", "data", "auth", "rsa_public_spki.pem")
MAX_SEED = 4096

# Capability flags (protocol/src/handshake.rs, `caps`).
LONG_PASSWORD = 1
CONNECT_WITH_DB = 1 << 3
PROTOCOL_41 = 1 << 9
SSL = 1 << 11
TRANSACTIONS = 1 << 13
SECURE_CONNECTION = 1 << 15
MULTI_RESULTS = 1 << 17
PLUGIN_AUTH = 1 << 19
CONNECT_ATTRS = 1 << 20
PLUGIN_AUTH_LENENC = 1 << 21
DEPRECATE_EOF = 1 << 24


# Frames of real exchanges with MariaDB 10.11.19 ("s:" server, "c:" client),
# as --capture prints them.
CAPTURED = {
    "login-native": [
        (
            "s:680000000a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275312d6c6f67002000000064"
            "784f5f7343337400fef7080200ff81150000000000001d0000006f522a7a4a424a2f49612e61006d7973716c5f6e6174"
            "6976655f70617373776f726400"
        ),
        (
            "c:7300000101a23a00000000012d0000000000000000000000000000000000000000000000667a00147735cb9cee10c9"
            "c26aa6e677856a365035fa8a4e6d7973716c5f6e61746976655f70617373776f726400240c5f636c69656e745f6e616d"
            "650c6761706c6573732d73656564045f7069640434323432"
        ),
        "s:0700000200000002000000",
    ],
    "login-db-deprecate-eof": [
        (
            "s:680000000a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275312d6c6f67002100000073"
            "583d656858616000fef7080200ff81150000000000001d0000003f577876692b377360655a73006d7973716c5f6e6174"
            "6976655f70617373776f726400"
        ),
        (
            "c:7900000109a23a01000000012d0000000000000000000000000000000000000000000000667a0014e54de76d783309"
            "c345c713a9ef74cc24a2d3da086d7973716c006d7973716c5f6e61746976655f70617373776f726400240c5f636c6965"
            "6e745f6e616d650c6761706c6573732d73656564045f7069640434323432"
        ),
        "s:0700000200000002000000",
    ],
    "login-denied": [
        (
            "s:680000000a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275312d6c6f67002200000061"
            "6d215671563a5e00fef7080200ff81150000000000001d0000004c403b4732637e7039682475006d7973716c5f6e6174"
            "6976655f70617373776f726400"
        ),
        (
            "c:7300000101a23a00000000012d0000000000000000000000000000000000000000000000667a00144eff9876fdad43"
            "5cdc4db704d7ef4fa347205f7e6d7973716c5f6e61746976655f70617373776f726400240c5f636c69656e745f6e616d"
            "650c6761706c6573732d73656564045f7069640434323432"
        ),
        (
            "s:46000002ff15042332383030304163636573732064656e69656420666f7220757365722027667a2740273132372e30"
            "2e302e312720287573696e672070617373776f72643a2059455329"
        ),
    ],
    "login-ed25519-switch": [
        (
            "s:680000000a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275312d6c6f67002300000035"
            "7925497e61492b00fef7080200ff81150000000000001d0000003878756476422739295f253a006d7973716c5f6e6174"
            "6976655f70617373776f726400"
        ),
        (
            "c:7300000101a23a00000000012d000000000000000000000000000000000000000000000066650014b03ab76f6c0f93"
            "fdb7b62badfc37abc0d46980386d7973716c5f6e61746976655f70617373776f726400240c5f636c69656e745f6e616d"
            "650c6761706c6573732d73656564045f7069640434323432"
        ),
        (
            "s:30000002fe636c69656e745f65643235353139000a28fc6b0bac7afe23b440c68053fd7ae2bd61fa3e3b8c71151a00"
            "13b9deaddb"
        ),
        (
            "c:4000000300000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
            "000000000000000000000000000000000000000000"
        ),
        (
            "s:46000004ff15042332383030304163636573732064656e69656420666f722075736572202766652740273132372e30"
            "2e302e312720287573696e672070617373776f72643a2059455329"
        ),
    ],
    "query-eof": [
        (
            "c:340000000353454c4543542040407365727665725f69642041532069642c20404076657273696f6e20415320762c20"
            "4e554c4c204153206e"
        ),
        "s:0100000103",
        "s:1800000203646566000000026964000c3f001500000008a000000000",
        "s:17000003036465660000000176000c2d0078000000fd0000270000",
        "s:1700000403646566000000016e000c3f0000000000068000000000",
        "s:05000005fe00000200",
        "s:2200000601311e31302e31312e31392d4d6172696144422d302b646562313275312d6c6f67fb",
        "s:05000007fe00000200",
    ],
    "query-deprecate-eof": [
        (
            "c:2f0000000353454c4543542031204153206f6e652c20277827204153207320554e494f4e2053454c45435420322c20"
            "4e554c4c"
        ),
        "s:0100000102",
        "s:1c00000203646566000000036f6e65036f6e650c3f0002000000030100000000",
        "s:1800000303646566000000017301730c2d0004000000fd0000000000",
        "s:0400000401310178",
        "s:030000050132fb",
        "s:07000006fe000022000000",
    ],
    "query-err": [
        "c:140000000353454c454354206e6f73756368636f6c756d6e",
        (
            "s:32000001ff1e04233432533232556e6b6e6f776e20636f6c756d6e20276e6f73756368636f6c756d6e2720696e2027"
            "53454c45435427"
        ),
    ],
    "query-ok": [
        "c:0b00000003534554204061203d2031",
        "s:0700000100000002000000",
    ],
    "register-slave": [
        "c:1d00000015a00f000009736964656361722d3102667a00ea0c0000000000000000",
        "s:0700000100000002000000",
    ],
    "binlog-dump-semi": [
        "c:1d00000012040000000100a00f00006d6172696164622d62696e2e303030303031",
        (
            "s:3400000100ef000000000004010000003100000000000000200004000000000000006d6172696164622d62696e2e30"
            "3030303031523c7354"
        ),
        (
            "s:ff00000200ef00d858086b0f01000000fc000000000100000000040031302e31312e31392d4d6172696144422d302b"
            "646562313275312d6c6f670000000000000000000000000000000000000000d858086b13380d00080012000404040412"
            "0000e400041a08000000080808020000000a0a0a0000000000000a0a0a00000000000000000000000000000000000000"
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
            "00000000041304000d0808080a0a0a01fbed4353"
        ),
        "s:2000000300ef00d858086ba3010000001d0000001d0100000000000000000000839e6bc5",
        (
            "s:3000000400ef00d858086ba1010000002d0000004a0100000000120000006d6172696164622d62696e2e3030303030"
            "31069d23ef"
        ),
        (
            "s:2d00000500ef00d958086ba2010000002a000000740100000800010000000000000000000000290000000000001a9d"
            "ab5b"
        ),
        (
            "s:6900000600ef00d958086b020100000066000000da010000000006000000000000000000001a000000000001010000"
            "2054000000000603737464042d002d0008000043524541544520555345522027667a2740272527204944454e54494649"
            "454420425920277077273f283901"
        ),
        (
            "s:2d00000700ef00d958086ba2010000002a00000004020000080002000000000000000000000029000000000000d040"
            "f7f3"
        ),
        (
            "s:6e00000800ef00d958086b02010000006b0000006f020000000006000000000000000000002a000000000001010000"
            "2054000000000603737464042d002d0008000b04726f6f74096c6f63616c686f7374004752414e5420414c4c204f4e20"
            "2a2e2a20544f2027667a27402725272628a90d"
        ),
        (
            "s:2d00000900ef00d958086ba2010000002a00000099020000080003000000000000000000000029000000000000179f"
            "15a3"
        ),
        (
            "s:8200000a00ef00d958086b02010000007f00000018030000000007000000000000000000001a000000000001010000"
            "2054000000000603737464042d002d000800004352454154452055534552202766652740272527204944454e54494649"
            "4544205649412065643235353139205553494e472050415353574f5244282770772729b087980d"
        ),
        (
            "s:2d00000b00ef00d958086ba2010000002a00000042030000080004000000000000000000000029000000000000bbd9"
            "f83f"
        ),
        (
            "s:6e00000c00ef00d958086b02010000006b000000ad030000000007000000000000000000002a000000000001010000"
            "2054000000000603737464042d002d0008000b04726f6f74096c6f63616c686f7374004752414e5420414c4c204f4e20"
            "2a2e2a20544f202766652740272527361078f7"
        ),
        (
            "s:2d00000d00ef00e958086ba2010000002a000000d70300000800050000000000000000000000290000000000003d86"
            "b746"
        ),
        (
            "s:5400000e00ef00e958086b02010000005100000028040000080008000000000000000100001a000000000001010000"
            "2054000000000603737464042d002d00080064004352454154452044415441424153452064ba22115c"
        ),
        (
            "s:2d00000f00ef00f358086ba2010000002a00000052040000080006000000000000000000000029000000000000db28"
            "56e5"
        ),
        (
            "s:8700001000ef00f358086b020100000084000000d60400000000080000000100000000000023000000000001010000"
            "2054000000000603737464042d002d00080081110000000000000000435245415445205441424c4520642e7420286964"
            "20494e54205052494d415259204b45592c20732056415243484152283230292c206a204a534f4e2958069c51"
        ),
        (
            "s:2d00001100ef00f458086ba2010000002a0000000005000008000700000000000000000000000c00000000000079bc"
            "104b"
        ),
        (
            "s:3100001200ef00f458086b13010000002e0000007e0500000000150000000000010001640001740003030ffc031400"
            "04063443b235"
        ),
        (
            "s:4400001300ef00f458086b170100000041000000bf050000000015000000000001000307f801000000016107000000"
            "7b226b223a317dfa02000000050000005b312c325d0a6de033"
        ),
        "s:2200001400ef00f458086b10010000001f000000de0500000000120000000000000038c25462",
        (
            "s:2d00001500ef00f458086ba2010000002a0000000806000008000800000000000000000000000c0000000000002810"
            "9a7c"
        ),
        (
            "s:3100001600ef00f458086b13010000002e0000006c0600000000150000000000010001640001740003030ffc031400"
            "04065e7bab77"
        ),
        (
            "s:4900001700ef00f458086b180100000046000000b206000000001500000000000100030707f8010000000161070000"
            "007b226b223a317df8010000000162070000007b226b223a317dc2f9bb95"
        ),
        "s:2200001800ef00f458086b10010000001f000000d1060000000013000000000000009e1aa045",
        (
            "s:2d00001900ef00f458086ba2010000002a000000fb06000008000900000000000000000000000c000000000000dbe5"
            "ab60"
        ),
        (
            "s:3100001a00ef00f458086b13010000002e0000005a0700000000150000000000010001640001740003030ffc031400"
            "040694c757b7"
        ),
        (
            "s:3200001b00ef00f458086b19010000002f00000089070000000015000000000001000307fa02000000050000005b31"
            "2c325d25cc0003"
        ),
        "s:2200001c00ef01f458086b10010000001f000000a8070000000014000000000000000786cad6",
        "c:1b000000efa8070000000000006d6172696164622d62696e2e303030303031",
        "s:05000001fe00000200",
    ],
    "binlog-dump": [
        "c:1d00000012040000000100a10f00006d6172696164622d62696e2e303030303031",
        (
            "s:32000001000000000004010000003100000000000000200004000000000000006d6172696164622d62696e2e303030"
            "303031523c7354"
        ),
        (
            "s:fd00000200d858086b0f01000000fc000000000100000000040031302e31312e31392d4d6172696144422d302b6465"
            "62313275312d6c6f670000000000000000000000000000000000000000d858086b13380d000800120004040404120000"
            "e400041a08000000080808020000000a0a0a0000000000000a0a0a000000000000000000000000000000000000000000"
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
            "0000041304000d0808080a0a0a01fbed4353"
        ),
        "s:1e00000300d858086b0e010000001d0000001d0100000800010000002101ce45e02b",
        (
            "s:2e00000400d858086b02010000002d0000004a01000008000000000000000000000000000000232044756d6d7920c6"
            "951d88"
        ),
        "s:2b00000500d958086b02010000002a0000007401000008000000000000000000000000000000232044756db2d64a5b",
        (
            "s:6700000600d958086b020100000066000000da010000000006000000000000000000001a0000000000010100002054"
            "000000000603737464042d002d0008000043524541544520555345522027667a2740272527204944454e544946494544"
            "20425920277077273f283901"
        ),
        "s:2b00000700d958086b02010000002a0000000402000008000000000000000000000000000000232044756dd18d4050",
        (
            "s:6c00000800d958086b02010000006b0000006f020000000006000000000000000000002a0000000000010100002054"
            "000000000603737464042d002d0008000b04726f6f74096c6f63616c686f7374004752414e5420414c4c204f4e202a2e"
            "2a20544f2027667a27402725272628a90d"
        ),
        "s:2b00000900d958086b02010000002a0000009902000008000000000000000000000000000000232044756d4ed240d7",
        (
            "s:8000000a00d958086b02010000007f00000018030000000007000000000000000000001a0000000000010100002054"
            "000000000603737464042d002d000800004352454154452055534552202766652740272527204944454e544946494544"
            "205649412065643235353139205553494e472050415353574f5244282770772729b087980d"
        ),
        "s:2b00000b00d958086b02010000002a0000004203000008000000000000000000000000000000232044756da91f9301",
        (
            "s:6c00000c00d958086b02010000006b000000ad030000000007000000000000000000002a0000000000010100002054"
            "000000000603737464042d002d0008000b04726f6f74096c6f63616c686f7374004752414e5420414c4c204f4e202a2e"
            "2a20544f202766652740272527361078f7"
        ),
        "s:2b00000d00e958086b02010000002a000000d703000008000000000000000000000000000000232044756d77c03eaf",
        (
            "s:5200000e00e958086b02010000005100000028040000080008000000000000000100001a0000000000010100002054"
            "000000000603737464042d002d00080064004352454154452044415441424153452064ba22115c"
        ),
        "s:2b00000f00f358086b02010000002a0000005204000008000000000000000000000000000000232044756d38e889af",
        (
            "s:8500001000f358086b020100000084000000d604000000000800000001000000000000230000000000010100002054"
            "000000000603737464042d002d00080081110000000000000000435245415445205441424c4520642e74202869642049"
            "4e54205052494d415259204b45592c20732056415243484152283230292c206a204a534f4e2958069c51"
        ),
        "s:2b00001100f458086b02010000002a0000000005000008000000000000000000000000000000424547494ee105d030",
        (
            "s:5100001200f458086b0201000000500000005005000008000000000000000000000000000000232044756d6d792065"
            "76656e74207265706c6163696e67206576656e742074797065203136302074686174f054e343"
        ),
        (
            "s:2f00001300f458086b13010000002e0000007e0500000000150000000000010001640001740003030ffc0314000406"
            "3443b235"
        ),
        (
            "s:4200001400f458086b170100000041000000bf050000000015000000000001000307f8010000000161070000007b22"
            "6b223a317dfa02000000050000005b312c325d0a6de033"
        ),
        "s:2000001500f458086b10010000001f000000de0500000000120000000000000038c25462",
        "s:2b00001600f458086b02010000002a0000000806000008000000000000000000000000000000424547494e7e3fc544",
        (
            "s:3700001700f458086b0201000000360000003e06000008000000000000000000000000000000232044756d6d792065"
            "76656e7420726570a6713812"
        ),
        (
            "s:2f00001800f458086b13010000002e0000006c0600000000150000000000010001640001740003030ffc0314000406"
            "5e7bab77"
        ),
        (
            "s:4700001900f458086b180100000046000000b206000000001500000000000100030707f8010000000161070000007b"
            "226b223a317df8010000000162070000007b226b223a317dc2f9bb95"
        ),
        "s:2000001a00f458086b10010000001f000000d1060000000013000000000000009e1aa045",
        "s:2b00001b00f458086b02010000002a000000fb06000008000000000000000000000000000000424547494ed54a168f",
        (
            "s:3200001c00f458086b0201000000310000002c07000008000000000000000000000000000000232044756d6d792065"
            "76656e3f877c7e"
        ),
        (
            "s:2f00001d00f458086b13010000002e0000005a0700000000150000000000010001640001740003030ffc0314000406"
            "94c757b7"
        ),
        (
            "s:3000001e00f458086b19010000002f00000089070000000015000000000001000307fa02000000050000005b312c32"
            "5d25cc0003"
        ),
        "s:2000001f00f458086b10010000001f000000a8070000000014000000000000000786cad6",
        "s:05000020fe00000200",
    ],
    "binlog-dump-missing": [
        "c:1e00000012040000000100a10f00006e6f2d737563682d66696c652e303030303039",
        (
            "s:44000001ffd404234859303030436f756c64206e6f742066696e64206669727374206c6f672066696c65206e616d65"
            "20696e2062696e617279206c6f6720696e6465782066696c65"
        ),
    ],
}


# ---------------------------------------------------------------------------
# Wire helpers


def frame(seq, payload):
    assert len(payload) < 0xFFFFFF
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


def frames(payloads, seq=0):
    return b"".join(frame(seq + i, p) for i, p in enumerate(payloads))


def lenenc_int(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + n.to_bytes(3, "little")
    return b"\xfe" + struct.pack("<Q", n)


def lenenc(b):
    return lenenc_int(len(b)) + b


def greeting(version, conn_id, caps, charset, nonce, plugin, mariadb_caps=0):
    """Protocol::HandshakeV10 as servers write it (10 filler bytes after the
    capabilities; MariaDB puts its extended flags in the last 4)."""
    out = b"\x0a" + version + b"\0" + struct.pack("<I", conn_id) + nonce[:8] + b"\0"
    out += struct.pack("<HBHH", caps & 0xFFFF, charset, 2, caps >> 16)
    out += bytes([len(nonce) + 1 if caps & PLUGIN_AUTH else 0]) + b"\0" * 6
    out += struct.pack("<I", mariadb_caps)
    if caps & SECURE_CONNECTION:
        out += nonce[8:].ljust(12, b"\0") + b"\0"
    if caps & PLUGIN_AUTH:
        out += plugin + b"\0"
    return out


def handshake_response(caps, user, auth, db=None, plugin=None, attrs=()):
    out = struct.pack("<IIB", caps, 1 << 24, 255) + b"\0" * 23 + user + b"\0"
    out += lenenc(auth) if caps & PLUGIN_AUTH_LENENC else bytes([len(auth)]) + auth
    if db is not None:
        out += db + b"\0"
    if plugin is not None:
        out += plugin + b"\0"
    if attrs:
        out += lenenc(b"".join(lenenc(k) + lenenc(v) for k, v in attrs))
    return out


def ok(affected=0, insert_id=0, status=2, warnings=0, info=b"", header=b"\x00"):
    return header + lenenc_int(affected) + lenenc_int(insert_id) + struct.pack("<HH", status, warnings) + info


def err(code, state, message):
    return b"\xff" + struct.pack("<H", code) + (b"#" + state if state else b"") + message


def column(name, col_type, charset=33, length=1024, flags=0, decimals=0, table=b"t", schema=b"d"):
    out = lenenc(b"def") + lenenc(schema) + lenenc(table) + lenenc(table) + lenenc(name) + lenenc(name)
    return out + b"\x0c" + struct.pack("<HIBHB", charset, length, col_type, flags, decimals) + b"\0\0"


def row(*values):
    return b"".join(b"\xfb" if v is None else lenenc(v) for v in values)


def register_slave(server_id, host, user, password, port):
    out = b"\x15" + struct.pack("<I", server_id)
    for s in (host, user, password):
        out += bytes([len(s)]) + s
    return out + struct.pack("<HII", port, 0, 0)


def binlog_dump(position, flags, server_id, file):
    return b"\x12" + struct.pack("<IHI", position, flags, server_id) + file


def binlog_dump_gtid(flags, server_id, file, position, gtid_set=None):
    out = b"\x1e" + struct.pack("<HII", flags, server_id, len(file)) + file + struct.pack("<Q", position)
    if gtid_set is not None:
        out += struct.pack("<I", len(gtid_set)) + gtid_set
    return out


def flow(name, server_only=False):
    """The frames of CAPTURED[name] (the server's only, if asked)."""
    out = b""
    for item in CAPTURED[name]:
        direction, hexa = item.split(":")
        if direction == "s" or not server_only:
            out += bytes.fromhex(hexa)
    return out


def split_frames(stream):
    pos = 0
    while pos + 4 <= len(stream):
        n = int.from_bytes(stream[pos : pos + 3], "little")
        yield stream[pos + 3], stream[pos + 4 : pos + 4 + n]
        pos += 4 + n


# ---------------------------------------------------------------------------
# Seeds


def seeds():
    nonce = bytes(range(0x41, 0x55))  # 20 printable bytes, as servers send
    mysql8_caps = 0xDFFFFFFF & ~SSL
    mysql8 = greeting(b"8.0.40", 11, mysql8_caps, 255, nonce, b"caching_sha2_password")
    client = PROTOCOL_41 | SECURE_CONNECTION | TRANSACTIONS | MULTI_RESULTS | PLUGIN_AUTH | PLUGIN_AUTH_LENENC
    with open(RSA_PEM, "rb") as f:
        pem = f.read()
    scramble32 = hashlib.sha256(b"caching_sha2 scramble").digest()

    s = {}
    # Captured exchanges.
    for name in CAPTURED:
        s["cap-" + name] = flow(name)
    s["cap-greeting-mariadb-10.11"] = flow("login-native")[: 4 + 0x68]
    for name in ("query-eof", "query-deprecate-eof", "query-err", "binlog-dump-semi"):
        s["cap-answer-" + name] = flow(name, server_only=True)

    # Semi-sync packets that ask for an ACK, and the ACK.
    events = [p for _, p in split_frames(flow("binlog-dump-semi", server_only=True))]
    acked = [p[:2] + b"\x01" + p[3:] if p[:2] == b"\x00\xef" else p for p in events[:6]]
    s["syn-semi-sync-needs-ack"] = frames(acked, seq=1)
    end = int.from_bytes(acked[-1][3 + 13 : 3 + 17], "little")
    s["syn-semi-sync-ack"] = frame(0, b"\xef" + struct.pack("<Q", end) + b"mariadb-bin.000001")
    s["syn-semi-sync-without-magic"] = frames([b"\x00\x00\x00" + events[1][3:]], seq=1)

    # Greetings.
    # Greetings: MySQL 8.0; then, one per frame, 8.0 without the final NUL
    # (5.5.7-5.5.9 did that), 5.1 (no PLUGIN_AUTH), pre-4.1, protocol 9.
    s["syn-greeting-mysql-8.0"] = frame(0, mysql8)
    s["syn-greetings"] = frames(
        [
            mysql8[:-1],
            greeting(b"5.1.73-log", 3, 0xF7FF & ~SSL, 8, nonce, b""),
            b"\x0a4.0.30\0" + struct.pack("<I", 1) + nonce[:8] + b"\0\x2c\x00",
            b"\x09" + mysql8[1:],
        ]
    )

    # Logins with caching_sha2_password: fast path, then full authentication
    # over an insecure connection (key request, PEM, RSA ciphertext).
    caching = handshake_response(client, b"repl", scramble32, plugin=b"caching_sha2_password")
    s["syn-login-caching-sha2-fast"] = frames([mysql8, caching, b"\x01\x03", ok()])
    s["syn-login-caching-sha2-full"] = frames(
        [mysql8, caching, b"\x01\x04", b"\x02", b"\x01" + pem, bytes(range(256)), ok()]
    )
    sha256 = greeting(b"8.0.40", 12, mysql8_caps, 255, nonce, b"sha256_password")
    s["syn-login-sha256"] = frames(
        [sha256, handshake_response(client, b"repl", b"\x01", plugin=b"sha256_password"), b"\x01" + pem, ok()]
    )
    s["syn-login-caching-sha2-bad-key"] = frames(
        [mysql8, caching, b"\x01\x04", b"\x02", b"\x01not a key", err(1045, b"28000", b"Access denied")]
    )

    # Auth switches after MariaDB's greeting: to caching_sha2_password
    # (then full authentication), to sha256_password (then the key), back to
    # native; and to plugins that must be refused.
    native = handshake_response(client, b"repl", bytes(20), plugin=b"mysql_native_password")
    maria = flow("login-native")[4:][:0x68]

    def switch(plugin, data):
        return b"\xfe" + plugin + b"\0" + data

    s["syn-auth-switches"] = frames(
        [
            maria,
            native,
            switch(b"caching_sha2_password", nonce + b"\0"),
            b"\x01\x04",
            switch(b"sha256_password", nonce + b"\0"),
            b"\x01" + pem,
            switch(b"mysql_native_password", nonce + b"\0"),
            ok(),
        ]
    )
    s["syn-auth-switches-refused"] = frames(
        [
            maria,
            native,
            switch(b"mysql_clear_password", b""),
            switch(b"dialog", b"\x04Password: "),
            switch(b"client_ed25519", bytes(range(32))),
            b"\xfe",
        ]
    )

    # Handshake responses in each layout, and the TLS request.
    # Handshake responses, one per frame: one-byte auth length with a
    # database, attributes and an empty database, pre-4.1; the TLS request.
    s["syn-responses"] = frames(
        [
            handshake_response(
                PROTOCOL_41 | SECURE_CONNECTION | CONNECT_WITH_DB, b"root", bytes(20), db=b"shop"
            ),
            handshake_response(
                client | CONNECT_ATTRS | CONNECT_WITH_DB | DEPRECATE_EOF,
                b"repl",
                scramble32,
                db=b"",
                plugin=b"caching_sha2_password",
                attrs=[(b"_client_name", b"gapless"), (b"program_name", b"gapless")],
            ),
            struct.pack("<HI", 0x8F, 1 << 24)[:5] + b"root\0",
        ],
        seq=1,
    )
    s["syn-ssl-request"] = frame(1, struct.pack("<IIB", client | SSL, 1 << 24, 45) + bytes(23))

    # OK, ERR and EOF variants.
    s["syn-ok-err-eof"] = frames(
        [
            ok(300, 1 << 40, 0x22, 1, b"Rows matched: 1  Changed: 1  Warnings: 0"),
            b"\x00\x01\x00",  # pre-4.1 OK
            err(1040, None, b"Too many connections"),  # before the capabilities are agreed
            b"\xfe\x00\x00\x02\x00",
        ],
        seq=1,
    )
    s["syn-ok-more-results"] = frames([ok(1, status=0x0A), ok(2)], seq=1)

    # A result set with a long value (0xfc length prefix), NULLs and an
    # OK-shaped EOF (CLIENT_DEPRECATE_EOF).
    long_value = bytes(range(256)) + b"x" * 44
    s["syn-answer-rows-deprecate-eof"] = frames(
        [
            b"\x03",
            column(b"id", 3, charset=63, length=11, flags=0x1003),
            column(b"doc", 252, length=65535, flags=0x10),
            column(b"note", 253),
            row(b"1", long_value, None),
            row(b"2", None, b""),
            ok(header=b"\xfe"),
        ],
        seq=1,
    )
    s["syn-answer-column-count-fc"] = frames([b"\xfc\x01\x00", column(b"a", 253), b"\xfe\0\0\2\0"], seq=1)

    # Every command.
    commands = {
        "quit": b"\x01",
        "ping": b"\x0e",
        "query": b"\x03SELECT @@server_id, @@gtid_binlog_pos",
        "query-empty": b"\x03",
        "register-slave": register_slave(4000, b"sidecar-1", b"repl", b"secret", 3306),
        "binlog-dump": binlog_dump(4, 0, 4000, b"mysql-bin.000001"),
        "binlog-dump-nonblock-first": binlog_dump(4, 1, 4000, b""),
        "binlog-dump-gtid": binlog_dump_gtid(
            4, 4000, b"", 4, struct.pack("<Q", 1) + bytes(range(16)) + struct.pack("<Qqq", 1, 1, 101)
        ),
        "binlog-dump-gtid-file": binlog_dump_gtid(0, 4000, b"binlog.000002", 5_000_000_000),
        "unknown-0x99": b"\x99",
    }
    # One per frame (a client sends each at sequence id 0).
    s["syn-commands"] = frames(list(commands.values()))

    # Binlog stream ends.
    s["syn-stream-ends"] = frames(
        [
            b"\x00" + bytes(10),  # shorter than an event header
            b"\xfe\x00\x00\x02\x00",
            err(1236, b"HY000", b"Could not find first log file name in binary log index file"),
        ],
        seq=1,
    )

    # Sequence ids wrap at 256; a frame out of order.
    s["syn-seq-wrap"] = frames([b"\x00\x00\x00\x02\x00\x00\x00", b"\x01", b"\x03abc", b""], seq=254)
    s["syn-out-of-order"] = frame(1, ok()) + frame(3, ok())

    # 16 MiB payloads: a full frame (joined-frames layout: header, k,
    # k pattern bytes, then the frames that follow).
    s["syn-joined-then-short"] = b"\xff\xff\xff\x00" + b"\x04abcd" + frame(1, b"hello")
    s["syn-joined-then-empty"] = b"\xff\xff\xff\x05" + b"\x00" + frame(6, b"")
    s["syn-joined-out-of-order"] = b"\xff\xff\xff\x07" + b"\x01x" + frame(9, b"abc")
    tail = frame(2, b"tail of a 16 MiB event")
    s["syn-joined-then-event"] = b"\xff\xff\xff\x01\x13" + events[3][3:22] + tail
    return s


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    total = 0
    for name, data in sorted(seeds().items()):
        assert len(data) <= MAX_SEED, (name, len(data))
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        total += len(data)
    print(f"packet_codec: {len(os.listdir(OUT))} seeds, {total} bytes")


# ---------------------------------------------------------------------------
# --capture PORT: record the exchanges of CAPTURED from a live server.


class Conn:
    def __init__(self, port, log):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.log = log
        self.seq = 0

    def read(self):
        def need(n):
            while len(self.buf) < n:
                data = self.s.recv(65536)
                if not data:
                    raise EOFError
                self.buf += data

        need(4)
        n = int.from_bytes(self.buf[:3], "little")
        need(4 + n)
        raw, self.buf = self.buf[: 4 + n], self.buf[4 + n :]
        self.log.append("s:" + raw.hex())
        self.seq = (raw[3] + 1) & 0xFF
        return raw[4:]

    def send(self, payload, reset=False):
        if reset:
            self.seq = 0
        raw = frame(self.seq, payload)
        self.seq = (self.seq + 1) & 0xFF
        self.log.append("c:" + raw.hex())
        self.s.sendall(raw)


def native_password(password, nonce):
    stage1 = hashlib.sha1(password).digest()
    mask = hashlib.sha1(nonce + hashlib.sha1(stage1).digest()).digest()
    return bytes(a ^ b for a, b in zip(stage1, mask))


def login(port, log, user, password, caps=0, db=None):
    c = Conn(port, log)
    g = c.read()
    at = g.index(b"\0", 1) + 5
    nonce = g[at : at + 8] + g[at + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10 :][:12]
    caps |= LONG_PASSWORD | PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION | MULTI_RESULTS
    caps |= PLUGIN_AUTH | CONNECT_ATTRS | PLUGIN_AUTH_LENENC | (CONNECT_WITH_DB if db else 0)
    attrs = [(b"_client_name", b"gapless-seed"), (b"_pid", b"4242")]
    out = struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23 + user + b"\0"
    out += lenenc(native_password(password, nonce))
    out += (db + b"\0" if db else b"") + b"mysql_native_password\0"
    out += lenenc(b"".join(lenenc(k) + lenenc(v) for k, v in attrs))
    c.send(out)
    return c, c.read()


def command(c, payload, deprecate_eof=False):
    """Sends a command and reads its whole answer."""
    c.send(payload, reset=True)
    first = c.read()
    if first[0] in (0x00, 0xFF) or payload[:1] != b"\x03":
        return
    for _ in range(first[0]):
        c.read()
    if not deprecate_eof:
        c.read()
    while True:
        p = c.read()
        if p[0] in (0xFE, 0xFF) and len(p) < 9 or p[0] == 0xFF or (deprecate_eof and p[0] == 0xFE):
            return


def dump(c, payload, ack_file):
    c.send(payload, reset=True)
    while True:
        p = c.read()
        if p[0] != 0x00:
            return
        if p[1:2] == b"\xef" and p[2] & 1:  # semi-sync: the primary waits for this ACK
            end = int.from_bytes(p[3 + 13 : 3 + 17], "little")
            raw = frame(0, b"\xef" + struct.pack("<Q", end) + ack_file)
            c.log.append("c:" + raw.hex())
            c.s.sendall(raw)


def capture(port):
    flows = {}

    def take(name, log):
        flows[name] = log[:]
        log.clear()

    log = []
    c, _ = login(port, log, b"fz", b"pw")
    take("login-native", log)
    command(c, b"\x03SELECT @@server_id AS id, @@version AS v, NULL AS n")
    take("query-eof", log)
    command(c, b"\x03SELECT nosuchcolumn")
    take("query-err", log)
    command(c, b"\x03SET @a = 1")
    take("query-ok", log)

    c, _ = login(port, log, b"fz", b"pw", caps=DEPRECATE_EOF, db=b"mysql")
    take("login-db-deprecate-eof", log)
    command(c, b"\x03SELECT 1 AS one, 'x' AS s UNION SELECT 2, NULL", deprecate_eof=True)
    take("query-deprecate-eof", log)

    try:
        login(port, log, b"fz", b"wrong")
    except EOFError:
        pass
    take("login-denied", log)

    c, answer = login(port, log, b"fe", b"pw")
    if answer[:1] == b"\xfe":
        c.send(bytes(64))  # not the signature: ERR follows
        c.read()
    take("login-ed25519-switch", log)

    c, _ = login(port, log, b"fz", b"pw")
    for sql in (b"SET @master_binlog_checksum = 'CRC32'", b"SET @rpl_semi_sync_slave = 1"):
        command(c, b"\x03" + sql)
    log.clear()
    command(c, register_slave(4000, b"sidecar-1", b"fz", b"", 3306))
    take("register-slave", log)
    dump(c, binlog_dump(4, 1, 4000, b"mariadb-bin.000001"), b"mariadb-bin.000001")
    take("binlog-dump-semi", log)

    c, _ = login(port, log, b"fz", b"pw")
    command(c, b"\x03SET @master_binlog_checksum = 'CRC32'")
    log.clear()
    dump(c, binlog_dump(4, 1, 4001, b"mariadb-bin.000001"), b"")
    take("binlog-dump", log)

    c, _ = login(port, log, b"fz", b"pw")
    log.clear()
    dump(c, binlog_dump(4, 1, 4001, b"no-such-file.000009"), b"")
    take("binlog-dump-missing", log)

    print("CAPTURED = {")
    for name, items in flows.items():
        print(f'    "{name}": [')
        for item in items:
            parts = [item[i : i + 96] for i in range(0, len(item), 96)]
            if len(parts) == 1:
                print(f'        "{parts[0]}",')
            else:
                print("        (")
                for p in parts:
                    print(f'            "{p}"')
                print("        ),")
        print("    ],")
    print("}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--capture"]:
        capture(int(sys.argv[2]))
    else:
        main()
