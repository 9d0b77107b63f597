#!/usr/bin/env bash
# benches/compare.sh — times gapless against mariadb-binlog and two Rust
# binlog decoders on the same ≥1 GiB binlogs of a real MariaDB, in one run.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/compare.sh [--data-only] [--no-build] [--regen] [--repeat N] [--sets "sysbench mixed"]

1. Data (skipped when $BENCH_DATA already holds it): starts a throw-away
   MariaDB (fixtures/lib/mariadb.sh) with binlog_row_metadata=FULL and
   max_binlog_size=1G, writes two binlog data sets and copies them to
   $BENCH_DATA/<set>/ with a files.txt list; the commands that made them
   go to $BENCH_DATA/README:
     sysbench  sysbench oltp_write_only (8 tables x 100k rows prepared, the
               prepare's binlog discarded), run until the binlog holds
               $SYSBENCH_MB MB
     mixed     rounds of INSERT / UPDATE / DELETE (200 rows a statement) on a
               table of 26 column types with NULLs, deterministic values, until
               the binlog holds $MIXED_MB MB
   Installs sysbench, GNU time and mariadb-server from Debian if missing.
2. Build: cargo build --release (gapless) and the bench-only peer programs
   in benches/peers (release).
3. Times, per data set, on the same files, each warm (the files are read
   once first) and best of N runs (wall time; peak RSS from GNU time):
     cat                      cat FILES > /dev/null
     mariadb-binlog -v        mariadb-binlog -v --base64-output=DECODE-ROWS FILES > /dev/null
     gapless jsonl            gapless decode --format jsonl FILES > /dev/null
     gapless text             gapless decode --format text FILES > /dev/null
     gapless-values           every row value decoded, no output (CRC32 verified)
     gapless-values no-crc    the same without checksum verification (as the peers)
     mysql-common-values      mysql_common 0.38's binlog module, every value
     connector-rust-values    mysql-binlog-connector-rust 0.3.3, every value
   and prints seconds, MB/s (input bytes / 1e6 / s), rows/s (rows counted by
   gapless-values) and peak RSS, then the issue's targets: gapless values
   >= 1.5x the faster Rust peer, jsonl >= 8x mariadb-binlog -v, peak RSS of
   gapless decode < 64 MiB. The three *-values programs must agree on the
   row and value counts (checked).

Options:
  --data-only     stop after step 1
  --no-build      skip step 2 (use the binaries already built)
  --regen         make the data again even if $BENCH_DATA holds it
  --repeat N      runs per tool (default $REPEAT or 3)
  --sets LIST     data sets to time (default "sysbench mixed")
  -h, --help      this text

Environment:
  BENCH_DATA      where the data sets live (default benches/data, gitignored)
  SYSBENCH_MB     binlog size the sysbench run stops at (default 1100)
  MIXED_MB        binlog size the mixed workload stops at (default 1100)
  REPEAT          runs per tool (default 3)
  GAPLESS_SANDBOX parent dir of the throw-away server (default /tmp/gapless-bench)

Numbers are only meaningful on an otherwise idle machine: the script prints
the load average before and after; say "provisional" when it was not idle.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DATA=${BENCH_DATA:-$ROOT/benches/data}
[[ $BENCH_DATA == /* ]] || BENCH_DATA=$PWD/$BENCH_DATA
SYSBENCH_MB=${SYSBENCH_MB:-1100}
MIXED_MB=${MIXED_MB:-1100}
REPEAT=${REPEAT:-3}
SETS="sysbench mixed"
DATA_ONLY=0
BUILD=1
REGEN=0

while (($#)); do
    case $1 in
    -h | --help) usage; exit 0 ;;
    --data-only) DATA_ONLY=1 ;;
    --no-build) BUILD=0 ;;
    --regen) REGEN=1 ;;
    --repeat) REPEAT=${2:?--repeat needs a number}; shift ;;
    --sets) SETS=${2:?--sets needs a list}; shift ;;
    *) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --repeat must be a positive number" >&2; exit 2; }

log() { printf '[compare.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "compare.sh: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

# ---------------------------------------------------------------- tools

ensure_packages() {
    local need=()
    command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
    [[ -x /usr/bin/time ]] || need+=(time)
    command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]] || need+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
    command -v mariadb-binlog >/dev/null 2>&1 || need+=(mariadb-client)
    install_missing "${need[@]}"
}

# ---------------------------------------------------------------- data

# Size in bytes of the instance's binlog files.
binlog_bytes() {
    local total=0 f
    while IFS= read -r f; do
        total=$((total + $(stat -c %s "$f")))
    done < <(mdb_binlogs "$INSTANCE")
    echo "$total"
}

# Copies the closed binlogs of the instance into $1 and lists them.
collect_binlogs() {
    local dest=$1 f files=()
    mdb_sql "$INSTANCE" -e 'FLUSH BINARY LOGS'
    mapfile -t files < <(mdb_binlogs "$INSTANCE")
    unset 'files[-1]' # the file FLUSH just opened: still in use, empty
    rm -rf "$dest"
    mkdir -p "$dest"
    for f in "${files[@]}"; do
        cp "$f" "$dest/"
        basename "$f" >>"$dest/files.txt"
    done
    log "$(basename "$dest"): ${#files[@]} files, $(du -shc "${files[@]}" | tail -n1 | cut -f1)"
}

SERVER_OPTS=(
    --binlog-row-metadata=FULL
    --max-binlog-size=1G
    --binlog-row-image=FULL
    --innodb-buffer-pool-size=1G
    --innodb-log-file-size=512M
    --innodb-flush-log-at-trx-commit=0
    --sync-binlog=0
    --max-connections=200
)

# The mixed table: every common column type, some NULLs.
MIXED_DDL="
CREATE DATABASE IF NOT EXISTS mixed;
CREATE TABLE mixed.t (
  id INT UNSIGNED PRIMARY KEY,
  ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, bi BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dec10 DECIMAL(10,2), dec65 DECIMAL(65,30),
  dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, y YEAR,
  b BIT(12), e ENUM('new','paid','shipped','returned','lost'), s SET('a','b','c','d','e','f'),
  ch CHAR(8), vs VARCHAR(64), vl VARCHAR(1000), vb VARBINARY(32),
  tx TEXT, bl BLOB, js JSON
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;"

# One round of the mixed workload, for ids @lo..@hi (200-row statements):
# INSERT every row, UPDATE every row (12 columns change), DELETE every
# other 200-row block. Values come from the id only (MD5 is deterministic).
mixed_round_sql() {
    local lo=$1 hi=$2 step=200 a b
    echo "USE mixed; SET time_zone = '+00:00';"
    for ((a = lo; a <= hi; a += step)); do
        b=$((a + step - 1))
        cat <<SQL
INSERT INTO mixed.t SELECT seq,
  n % 256 - 128, seq % 65536, (n * 7919) % 16777216 - 8388608,
  (n * 2654435761) % 4294967296 - 2147483648, seq * 1000003,
  IF(seq % 10 = 3, NULL, seq / 7), seq * 3.14159265358979,
  (seq % 100000000) / 100, CONCAT(seq * 97, '.', LPAD((seq * 7) % 1000000000, 9, '0'), LPAD(seq % 1000, 3, '0')),
  '2000-01-01' + INTERVAL (seq % 10000) DAY, SEC_TO_TIME(seq % 86400 + (seq % 1000) / 1000),
  TIMESTAMP'2020-01-01 00:00:00' + INTERVAL seq * 1000003 MICROSECOND,
  IF(seq % 10 = 5, NULL, FROM_UNIXTIME(1600000000 + seq + (seq % 1000000) / 1000000)), 1901 + seq % 255,
  seq % 4096, 1 + seq % 5, seq % 64,
  LEFT(MD5(seq), 8), CONCAT('user-', seq, '@example.com'), REPEAT(MD5(seq), 1 + seq % 20), UNHEX(MD5(seq)),
  IF(seq % 10 = 7, NULL, CONCAT('note ', REPEAT('lorem ipsum ', seq % 30))), UNHEX(REPEAT(MD5(seq), 1 + seq % 8)),
  JSON_OBJECT('id', seq, 'tags', JSON_ARRAY('x', seq % 10), 'ok', seq % 2 = 0)
FROM (SELECT seq, CAST(seq AS SIGNED) AS n FROM seq_${a}_to_${b}) s;
SQL
    done
    for ((a = lo; a <= hi; a += step)); do
        b=$((a + step - 1))
        cat <<SQL
UPDATE mixed.t SET ti = ti DIV 2, si = si DIV 2, i = i DIV 2, f = f * 2, dec10 = dec10 / 2,
  dtm = dtm + INTERVAL 1 SECOND, e = 1 + (e + 1) % 5, vs = CONCAT(vs, '.x'),
  vl = LEFT(vl, 100), tx = NULL, js = JSON_SET(js, '$.ok', 1), y = 2000 + id % 100
WHERE id BETWEEN $a AND $b;
SQL
    done
    for ((a = lo; a <= hi; a += 2 * step)); do
        b=$((a + step - 1))
        echo "DELETE FROM mixed.t WHERE id BETWEEN $a AND $b;"
    done
}

gen_sysbench() {
    local dest=$BENCH_DATA/sysbench target=$((SYSBENCH_MB * 1000000)) chunk=0 size
    local sb=(sysbench --db-driver=mysql --mysql-socket="$(mdb_socket "$INSTANCE")" --mysql-user=root
        --mysql-db=sbtest --tables=8 --table-size=100000)
    mdb_sql "$INSTANCE" -e 'DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest'
    log "sysbench prepare: 8 tables x 100k rows"
    "${sb[@]}" oltp_write_only prepare >/dev/null
    # Keep only what the write-only run writes.
    mdb_sql "$INSTANCE" -e 'RESET MASTER'
    while size=$(binlog_bytes) && ((size < target)); do
        chunk=$((chunk + 1))
        log "sysbench run chunk $chunk (binlog $((size / 1000000)) MB of $SYSBENCH_MB)"
        "${sb[@]}" --threads=4 --time=0 --events=100000 --rand-seed="$chunk" \
            --report-interval=0 oltp_write_only run >"$BENCH_DATA/.sysbench-run-$chunk.log"
    done
    collect_binlogs "$dest"
    cat >>"$BENCH_DATA/README" <<EOF

## sysbench/ ($(date -u +%F), $(mariadbd --version 2>/dev/null || /usr/sbin/mariadbd --version), $(sysbench --version))

    # server: mdb_start (fixtures/lib/mariadb.sh) plus ${SERVER_OPTS[*]}
    mariadb -e 'CREATE DATABASE sbtest'
    ${sb[*]} oltp_write_only prepare
    mariadb -e 'RESET MASTER'     # the binlog holds the run only
    # $chunk times, N = 1..$chunk, until the binlog held >= $SYSBENCH_MB MB:
    ${sb[*]} --threads=4 --time=0 --events=100000 --rand-seed=N --report-interval=0 oltp_write_only run
    mariadb -e 'FLUSH BINARY LOGS'  # then the closed files copied here, listed in files.txt
EOF
    rm -f "$BENCH_DATA"/.sysbench-run-*.log
}

gen_mixed() {
    local dest=$BENCH_DATA/mixed target=$((MIXED_MB * 1000000)) rows=20000 round=0 size lo
    mdb_sql "$INSTANCE" -e 'DROP DATABASE IF EXISTS mixed'
    mdb_sql "$INSTANCE" -e "$MIXED_DDL"
    mdb_sql "$INSTANCE" -e 'RESET MASTER'
    while size=$(binlog_bytes) && ((size < target)); do
        lo=$((round * rows + 1))
        round=$((round + 1))
        log "mixed round $round: ids $lo..$((lo + rows - 1)) (binlog $((size / 1000000)) MB of $MIXED_MB)"
        mixed_round_sql "$lo" $((lo + rows - 1)) | mdb_sql "$INSTANCE"
    done
    collect_binlogs "$dest"
    {
        cat <<EOF

## mixed/ ($(date -u +%F), $(mariadbd --version 2>/dev/null || /usr/sbin/mariadbd --version))

Server: mdb_start plus ${SERVER_OPTS[*]}. Then, with the mariadb client
(utf8mb4), the table below and RESET MASTER, then $round rounds
(R = 0..$((round - 1))) of the statements that
\`mixed_round_sql $((0 * rows + 1)) $rows\` in benches/compare.sh prints for
ids R*$rows+1 .. (R+1)*$rows (INSERT ... FROM seq_A_to_B, UPDATE and DELETE in
200-row statements), until the binlog held >= $MIXED_MB MB; FLUSH BINARY LOGS
and the closed files copied here, listed in files.txt.

\`\`\`sql$MIXED_DDL
\`\`\`

The first statements of round 0:

\`\`\`sql
EOF
        mixed_round_sql 1 "$rows" | head -n 16 || true
        echo '```'
    } >>"$BENCH_DATA/README"
}

ensure_data() {
    local missing=() s
    for s in $SETS; do
        [[ $s == sysbench || $s == mixed ]] || die "unknown data set '$s' (sysbench, mixed)"
        if ((REGEN)) || ! have_set "$s"; then missing+=("$s"); fi
    done
    ((${#missing[@]})) || { log "data: $BENCH_DATA holds ${SETS// /, }"; return 0; }

    export GAPLESS_SANDBOX=${GAPLESS_SANDBOX:-/tmp/gapless-bench}
    # shellcheck source=../fixtures/lib/mariadb.sh disable=SC1091
    . "$ROOT/fixtures/lib/mariadb.sh"
    INSTANCE=bench
    mdb_destroy "$INSTANCE" >/dev/null 2>&1 || true
    local port
    port=$(mdb_free_port 34500)
    SERVER_UP=1
    log "starting MariaDB '$INSTANCE' on 127.0.0.1:$port ($GAPLESS_SANDBOX)"
    mdb_start "$INSTANCE" "$port" 1 "${SERVER_OPTS[@]}"
    mkdir -p "$BENCH_DATA"
    [[ -s $BENCH_DATA/README ]] || cat >"$BENCH_DATA/README" <<'EOF'
# Benchmark binlogs (made by benches/compare.sh; not in git)

Each folder holds closed binlog files of a throw-away MariaDB and files.txt,
the list of them in order. How each set was made:
EOF
    for s in "${missing[@]}"; do
        "gen_$s"
    done
    mdb_destroy "$INSTANCE"
    SERVER_UP=0
}

# ---------------------------------------------------------------- build

GAPLESS=$ROOT/target/release/gapless
PEERS=$ROOT/benches/peers/target/release

build() {
    log "cargo build --release (gapless)"
    (cd "$ROOT" && cargo build --release --bin gapless --quiet)
    log "cargo build --release (benches/peers)"
    cargo build --release --quiet --manifest-path "$ROOT/benches/peers/Cargo.toml"
}

# ---------------------------------------------------------------- timing

TMP=$(mktemp -d)
SERVER_UP=0
cleanup() {
    rm -rf "$TMP"
    if ((SERVER_UP)); then mdb_destroy "$INSTANCE" || true; fi
}
trap cleanup EXIT

# run NAME OUTFILE CMD...: best wall time of $REPEAT runs and the highest
# peak RSS; sets BEST (seconds) and RSS (KiB). OUTFILE gets stdout of the last
# run (/dev/null when the output is not needed).
run() {
    local name=$1 out=$2 t0 t1 secs rss i
    shift 2
    BEST="" RSS=0
    for ((i = 1; i <= REPEAT; i++)); do
        t0=$EPOCHREALTIME
        if ! /usr/bin/time -f '%M' -o "$TMP/time" "$@" >"$out" 2>"$TMP/stderr"; then
            echo "compare.sh: $name failed:" >&2
            tail -n 5 "$TMP/stderr" >&2
            BEST=fail
            return 0
        fi
        t1=$EPOCHREALTIME
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        rss=$(tail -n 1 "$TMP/time")
        if [[ -z $BEST ]] || awk -v a="$secs" -v b="$BEST" 'BEGIN { exit !(a < b) }'; then BEST=$secs; fi
        if ((rss > RSS)); then RSS=$rss; fi
    done
}

# Field of a "files=.. bytes=.. rows=.. values=.." line.
field() { sed -n "s/.*\\b$2=\\([0-9]*\\).*/\\1/p" "$1"; }

bench_set() {
    local set=$1 dir=$BENCH_DATA/$1 files=() f bytes=0
    mapfile -t files < <(sed "s|^|$dir/|" "$dir/files.txt")
    for f in "${files[@]}"; do bytes=$((bytes + $(stat -c %s "$f"))); done
    log "$set: ${#files[@]} files, $bytes bytes; warming the page cache"
    cat "${files[@]}" >/dev/null

    local -a names
    names=("cat" "mariadb-binlog -v" "gapless jsonl" "gapless text" "gapless-values"
        "gapless-values no-crc" "mysql-common-values" "connector-rust-values")
    local -A secs rss
    local rows="" values="" counts_ok=1 n
    for n in "${names[@]}"; do
        log "$set: $n (best of $REPEAT)"
        case $n in
        "cat") run "$n" /dev/null cat "${files[@]}" ;;
        "mariadb-binlog -v") run "$n" /dev/null mariadb-binlog --no-defaults -v --base64-output=DECODE-ROWS "${files[@]}" ;;
        "gapless jsonl") run "$n" /dev/null "$GAPLESS" decode --format jsonl "${files[@]}" ;;
        "gapless text") run "$n" /dev/null "$GAPLESS" decode --format text "${files[@]}" ;;
        "gapless-values") run "$n" "$TMP/out" "$PEERS/gapless-values" "${files[@]}" ;;
        "gapless-values no-crc") run "$n" "$TMP/out" "$PEERS/gapless-values" --no-verify-checksums "${files[@]}" ;;
        "mysql-common-values") run "$n" "$TMP/out" "$PEERS/mysql-common-values" "${files[@]}" ;;
        "connector-rust-values") run "$n" "$TMP/out" "$PEERS/connector-rust-values" "${files[@]}" ;;
        esac
        secs[$n]=$BEST
        rss[$n]=$RSS
        if [[ $n == *-values* && $BEST != fail ]]; then
            log "$set: $n: $(cat "$TMP/out")"
            if [[ -z $rows ]]; then
                rows=$(field "$TMP/out" rows)
                values=$(field "$TMP/out" values)
            elif [[ $(field "$TMP/out" rows) != "$rows" || $(field "$TMP/out" values) != "$values" ]]; then
                echo "compare.sh: $set: $n counted $(cat "$TMP/out"), gapless-values rows=$rows values=$values" >&2
                counts_ok=0
            fi
        fi
    done

    echo
    echo "== $set: ${#files[@]} files, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }') MiB ($bytes bytes), $rows rows, $values values; best of $REPEAT, warm cache"
    printf '%-24s %9s %9s %12s %9s\n' tool seconds MB/s rows/s "RSS MiB"
    for n in "${names[@]}"; do
        if [[ ${secs[$n]} == fail ]]; then
            printf '%-24s %9s\n' "$n" failed
            continue
        fi
        awk -v n="$n" -v s="${secs[$n]}" -v b="$bytes" -v r="$rows" -v m="${rss[$n]}" 'BEGIN {
            if (s <= 0) s = 0.001
            printf "%-24s %9.3f %9.1f %12.0f %9.1f\n", n, s, b / 1e6 / s, r / s, m / 1024 }'
    done
    ((counts_ok)) && echo "row and value counts: the three *-values programs agree" ||
        echo "row and value counts: the *-values programs DISAGREE (see above)"

    local peer=${secs[mysql-common-values]} peer_name=mysql-common-values
    if [[ ${secs[connector-rust-values]} != fail ]] &&
        { [[ $peer == fail ]] || awk -v a="${secs[connector-rust-values]}" -v b="$peer" 'BEGIN { exit !(a < b) }'; }; then
        peer=${secs[connector-rust-values]} peer_name=connector-rust-values
    fi
    echo "targets:"
    if [[ $peer != fail && ${secs[gapless-values]} != fail ]]; then
        awk -v p="$peer" -v g="${secs[gapless-values]}" -v nc="${secs[gapless-values no-crc]}" -v pn="$peer_name" 'BEGIN {
            r = p / g; printf "  gapless-values vs the faster Rust peer (%s): %.2fx (target >= 1.5x) %s\n", pn, r, (r >= 1.5 ? "MET" : "NOT MET")
            if (nc != "fail") printf "    (without CRC32 verification, as the peers: %.2fx)\n", p / nc }'
    fi
    if [[ ${secs[mariadb-binlog -v]} != fail && ${secs[gapless jsonl]} != fail ]]; then
        awk -v m="${secs[mariadb-binlog -v]}" -v j="${secs[gapless jsonl]}" 'BEGIN {
            r = m / j; printf "  gapless jsonl vs mariadb-binlog -v: %.2fx (target >= 8x) %s\n", r, (r >= 8 ? "MET" : "NOT MET") }'
    fi
    local worst=0
    for n in "gapless jsonl" "gapless text" "gapless-values"; do
        if ((${rss[$n]} > worst)); then worst=${rss[$n]}; fi
    done
    awk -v k="$worst" 'BEGIN { m = k / 1024; printf "  peak RSS of gapless (decode jsonl/text, values): %.1f MiB (target < 64 MiB) %s\n", m, (m < 64 ? "MET" : "NOT MET") }'
}


main() {
    ensure_packages
    ensure_data
    ((DATA_ONLY)) && return 0
    ((BUILD)) && build
    [[ -x $GAPLESS ]] || die "$GAPLESS missing (run without --no-build)"
    for p in gapless-values mysql-common-values connector-rust-values; do
        [[ -x $PEERS/$p ]] || die "$PEERS/$p missing (run without --no-build)"
    done
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(uname -sr)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    local busy
    busy=$(cpu_busy)
    echo "CPU busy before the timings (1 s sample, other processes): ${busy}%"
    if ((busy > 10)); then
        echo "NOTE: the machine is not idle: treat these numbers as provisional"
    fi
    echo "versions: $(mariadb-binlog --version | head -n1); gapless $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree)"
    local s
    for s in $SETS; do
        bench_set "$s"
    done
    echo
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); CPU busy now: $(cpu_busy)%"
}

main
