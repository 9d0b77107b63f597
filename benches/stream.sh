#!/usr/bin/env bash
# benches/stream.sh — times `gapless stream` (raw events, and decoded to JSON
# lines) against `mariadb-binlog --read-from-remote-server --raw`, all
# fetching the same ≥1 GiB binlog range from one real MariaDB primary.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/stream.sh [--no-build] [--repeat N] [--sets "mixed sysbench"] [--accept-busy] [--perf DIR] [--perf-stat DIR]

1. Data: the binlog data sets of benches/compare.sh ($BENCH_DATA/<set>/ with
   files.txt); made with `benches/compare.sh --data-only` when missing.
2. Build: cargo build --release --bin gapless (unless --no-build).
3. Per data set, a throw-away MariaDB (fixtures/lib/mariadb.sh, its own
   sandbox $STREAM_SANDBOX) is made to serve the set's files as its own
   binlogs: they are hard-linked (copied if on another file system) into its
   binlog directory under the server's names and listed in its
   mariadb-bin.index; SHOW BINARY LOGS must list them with their sizes. A
   replication user is created (REPLICATION SLAVE, BINLOG MONITOR,
   REPLICATION MASTER ADMIN, SLAVE MONITOR). The range fetched is the data
   files from the first one's position 4 to the end of the last one; the
   restarted server appends a small file of its own after them.
   Checks, untimed: one mariadb-binlog --raw fetch written to a directory
   ($VERIFY_DIR, default /dev/shm) must be byte-identical to the data files.
4. Timings, warm (files read once first), best of N, the tools taking turns
   (run 1 of each tool, then run 2 of each, ...):
     mariadb-binlog raw         mariadb-binlog -R --raw FILES (output files
                                are symlinks to /dev/null)
     gapless stream raw         gapless stream --from FIRST:4 --format raw > /dev/null
     gapless stream jsonl       gapless stream --from FIRST:4 --format jsonl > /dev/null
   gapless streams forever; it is timed from its start to the moment it has
   handled the last event: the CPU time it has run (/proc/PID/task/*/schedstat)
   is sampled every 5 ms, and every 50 ms the primary is asked whether the
   dump thread is in state "Master has sent all binlog to slave; waiting
   for more updates"; once it is, the connection's TCP queues are empty (ss)
   and gapless has been idle for 20 ms, the run ends at the last change of
   its CPU time, and gapless gets SIGTERM. Its final log line must show
   every event of the range received (events=, resume=, connections=1).
   A run during which other processes used more than 0.25 CPU s plus
   $MAX_OTHER of a CPU on average (user + system time of the whole machine
   minus the client's and the server's; this script's own watching of a
   gapless run, ~0.05 CPU, counts as other) is thrown away and made again
   once the machine has been quiet for 3 s (waiting at most $QUIET_WAIT s,
   then kept and marked busy).
   Prints seconds, MB/s (bytes of the data files / 1e6 / s), MB/s of what
   the server actually sent, the client's CPU seconds, the server's CPU
   seconds, peak RSS (GNU time) and the issue's targets:
     gapless raw   MB/s >= mariadb-binlog raw MB/s
     gapless jsonl MB/s >= 0.5 x mariadb-binlog raw MB/s

Options:
  --no-build      skip the build (use target/release/gapless as it is)
  --repeat N      runs per tool (default $REPEAT or 3)
  --sets LIST     data sets (default "mixed"; "mixed sysbench" for both)
  --accept-busy   keep runs during which other processes were busy
  --perf DIR      afterwards, one more run of each gapless format under
                  `perf record -e cpu-clock -g`, data and a report in DIR
  --perf-stat DIR afterwards, N more runs of each gapless format (taking
                  turns) under `perf stat -e task-clock,page-faults,
                  context-switches`; prints the CPU time and page faults of
                  each (less noisy than wall time on a shared VM; with
                  GAPLESS_BIN, to compare two builds)
  -h, --help      this text

Environment:
  BENCH_DATA      data sets (default benches/data)
  GAPLESS_BIN     the gapless binary to time (default target/release/gapless),
                  e.g. an older build to compare with
  STREAM_SANDBOX  parent dir of the throw-away server (default /tmp/gapless-stream-bench)
  VERIFY_DIR      where the untimed check writes mariadb-binlog's copy (default /dev/shm)
  STREAM_TIMEOUT  seconds one gapless run may take (default 900)
  REPEAT          runs per tool (default 3)
  MAX_OTHER       CPUs other processes may use during a kept run (default 0.1)
  QUIET_WAIT      seconds to wait for a quiet machine before a run is made
                  again (default 900)

Numbers are only meaningful on an otherwise idle machine: the script prints
CPU use before and after; say "provisional" when it was not idle.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DATA=${BENCH_DATA:-$ROOT/benches/data}
[[ $BENCH_DATA == /* ]] || BENCH_DATA=$PWD/$BENCH_DATA
STREAM_SANDBOX=${STREAM_SANDBOX:-/tmp/gapless-stream-bench}
VERIFY_DIR=${VERIFY_DIR:-/dev/shm}
STREAM_TIMEOUT=${STREAM_TIMEOUT:-900}
REPEAT=${REPEAT:-3}
MAX_OTHER=${MAX_OTHER:-0.1}
QUIET_WAIT=${QUIET_WAIT:-900}
SETS="mixed"
BUILD=1
PERF_DIR=""
PERF_STAT_DIR=""

while (($#)); do
    case $1 in
    -h | --help) usage; exit 0 ;;
    --no-build) BUILD=0 ;;
    --repeat) REPEAT=${2:?--repeat needs a number}; shift ;;
    --sets) SETS=${2:?--sets needs a list}; shift ;;
    --perf) PERF_DIR=${2:?--perf needs a directory}; shift ;;
    --perf-stat) PERF_STAT_DIR=${2:?--perf-stat needs a directory}; shift ;;
    --accept-busy) MAX_OTHER=off ;;
    *) echo "stream.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "stream.sh: --repeat must be a positive number" >&2; exit 2; }
[[ -z $PERF_DIR || $PERF_DIR == /* ]] || PERF_DIR=$PWD/$PERF_DIR
[[ -z $PERF_STAT_DIR || $PERF_STAT_DIR == /* ]] || PERF_STAT_DIR=$PWD/$PERF_STAT_DIR

log() { printf '[stream.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "stream.sh: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

GAPLESS=${GAPLESS_BIN:-$ROOT/target/release/gapless}
INSTANCE=stream-bench
REPL_USER=bench_repl
# Throw-away server on 127.0.0.1 only, gone at the end of the run.
PASSWORD=stream-bench-pw
REPLICA_ID=4242
SENT_ALL='Master has sent all binlog to slave; waiting for more updates'

# ---------------------------------------------------------------- set-up

ensure_packages() {
    local need=()
    [[ -x /usr/bin/time ]] || need+=(time)
    command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]] || need+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
    command -v mariadb-binlog >/dev/null 2>&1 || need+=(mariadb-client)
    command -v ss >/dev/null 2>&1 || need+=(iproute2)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    [[ -z $PERF_DIR$PERF_STAT_DIR ]] || command -v perf >/dev/null 2>&1 || need+=(linux-perf)
    install_missing "${need[@]}"
}

ensure_data() {
    local missing=() s
    for s in $SETS; do
        [[ $s == sysbench || $s == mixed ]] || die "unknown data set '$s' (sysbench, mixed)"
        have_set "$s" || missing+=("$s")
    done
    ((${#missing[@]})) || return 0
    log "data sets missing: ${missing[*]}; running benches/compare.sh --data-only"
    BENCH_DATA=$BENCH_DATA "$ROOT/benches/compare.sh" --data-only --sets "${missing[*]}"
    for s in "${missing[@]}"; do have_set "$s" || die "compare.sh did not make $s"; done
}

# ---------------------------------------------------------------- state

TMP=$(mktemp -d)
SERVER_UP=0
STREAM_PID="" # /usr/bin/time (or perf) running gapless
POLL_CHILD="" # the polling client session (coproc) and its pipes
POLL_IN=""
POLL_OUT=""
LAG=""
VERIFY_OUT=""
cleanup() {
    local rc=$?
    if [[ -n $STREAM_PID ]] && kill -0 "$STREAM_PID" 2>/dev/null; then
        stop_children "$STREAM_PID"
        kill -TERM "$STREAM_PID" 2>/dev/null || true
        wait "$STREAM_PID" 2>/dev/null || true
    fi
    close_poll
    if ((SERVER_UP)); then mdb_destroy "$INSTANCE" || true; fi
    [[ -z $VERIFY_OUT ]] || rm -rf -- "$VERIFY_OUT"
    rm -rf -- "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Sleeps without a fork: a read that times out on a pipe nobody writes to.
exec {NAP_FD}<> <(:)
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }

# SIGTERM to the children of a pid (gapless under /usr/bin/time or perf).
stop_children() {
    local parent=$1 kids=() c
    read -ra kids <"/proc/$parent/task/$parent/children" 2>/dev/null || true
    for c in "${kids[@]}"; do
        kill -TERM "$c" 2>/dev/null || true
    done
}

# ---------------------------------------------------------------- the primary

# serve_set SET: a fresh server whose binlogs are the set's files. Sets PORT,
# FILES (paths in the set), NAMES (file names), DATA_BYTES, LAST_FILE and
# LAST_SIZE (the server's own last binlog, after the data files), SERVED
# (paths of every binlog the server has).
serve_set() {
    local set=$1 dir=$BENCH_DATA/$1 sdir f n size
    mapfile -t NAMES <"$dir/files.txt"
    FILES=()
    DATA_BYTES=0
    for n in "${NAMES[@]}"; do
        [[ $n =~ ^mariadb-bin\.[0-9]{6}$ ]] || die "$set: '$n' is not named mariadb-bin.NNNNNN like the server's binlogs"
        FILES+=("$dir/$n")
        DATA_BYTES=$((DATA_BYTES + $(stat -c %s "$dir/$n")))
    done

    mdb_destroy "$INSTANCE" >/dev/null 2>&1 || true
    PORT=$(mdb_free_port 34700)
    sdir=$(mdb_dir "$INSTANCE")
    SERVER_UP=1
    log "$set: starting MariaDB '$INSTANCE' on 127.0.0.1:$PORT ($sdir)"
    mdb_start "$INSTANCE" "$PORT" 1 --max-binlog-size=1G
    mdb_sql "$INSTANCE" <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER '$REPL_USER'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICATION MASTER ADMIN, SLAVE MONITOR ON *.* TO '$REPL_USER'@'127.0.0.1';
SQL
    mdb_stop "$INSTANCE"
    # Its own binlogs out, the data set's in. Without mariadb-bin.state the
    # server takes its GTID state from the last file, as after a crash-free
    # restart of the server that wrote them.
    while IFS= read -r f; do rm -f -- "$f"; done < <(mdb_binlogs "$INSTANCE")
    rm -f -- "$sdir/mariadb-bin.index" "$sdir/mariadb-bin.state"
    local how=linked
    for n in "${NAMES[@]}"; do
        if ! ln -- "$dir/$n" "$sdir/$n" 2>/dev/null; then
            cp -- "$dir/$n" "$sdir/$n"
            how=copied
        fi
        echo "$sdir/$n" >>"$sdir/mariadb-bin.index"
    done
    log "$set: ${#NAMES[@]} files $how into $sdir; restarting"
    mdb_start "$INSTANCE" "$PORT" 1 --max-binlog-size=1G

    # SHOW BINARY LOGS: the data files with their sizes, then the server's.
    local logs=() i=0 name
    mapfile -t logs < <(mdb_sql "$INSTANCE" -N -B -e 'SHOW BINARY LOGS' | cut -f1,2)
    ((${#logs[@]} > ${#NAMES[@]})) || die "$set: SHOW BINARY LOGS lists ${#logs[@]} files, expected more than ${#NAMES[@]}"
    for n in "${NAMES[@]}"; do
        [[ ${logs[i]} == "$n"$'\t'"$(stat -c %s "$dir/$n")" ]] ||
            die "$set: SHOW BINARY LOGS line $((i + 1)) is '${logs[i]}', expected $n with its size"
        i=$((i + 1))
    done
    SERVED=("${FILES[@]}")
    for ((; i < ${#logs[@]}; i++)); do
        name=${logs[i]%%$'\t'*}
        size=${logs[i]#*$'\t'}
        SERVED+=("$sdir/$name")
    done
    LAST_FILE=$name
    LAST_SIZE=$size
    log "$set: serving ${NAMES[*]} ($DATA_BYTES bytes), then the server's own $((${#SERVED[@]} - ${#FILES[@]})) file(s) up to $LAST_FILE ($LAST_SIZE bytes)"
}

# A client session kept open for polling (no client start-up per poll).
open_poll() {
    coproc POLL { mdb_sql "$INSTANCE" -N -B --unbuffered 2>&1; }
    POLL_CHILD=$POLL_PID
    POLL_IN=${POLL[0]} POLL_OUT=${POLL[1]}
}
close_poll() {
    if [[ -n $POLL_CHILD ]]; then
        # Closing its stdin ends the client.
        exec {POLL_OUT}>&- {POLL_IN}<&-
        wait "$POLL_CHILD" 2>/dev/null || true
        POLL_CHILD=""
    fi
}
# poll SQL: one row, tab-separated, into REPLY.
poll() {
    printf '%s\n' "$1" >&"$POLL_OUT"
    IFS= read -r -t 10 -u "$POLL_IN" REPLY || die "no answer from the polling session to: $1"
}

# Dump threads: "COUNT SENT_ALL".
dump_state() {
    poll "SELECT COUNT(*), IFNULL(SUM(STATE = '$SENT_ALL'), 0) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump';"
}

# Ends the dump threads of earlier runs (a stopped client's thread lingers
# until its next heartbeat fails).
clear_dumps() {
    local ids id i
    ids=$(mdb_sql "$INSTANCE" -N -B -e "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'")
    for id in $ids; do mdb_sql "$INSTANCE" -e "KILL $id" 2>/dev/null || true; done
    for ((i = 0; i < 200; i++)); do
        dump_state
        [[ ${REPLY%%$'\t'*} == 0 ]] && return 0
        nap 0.05
    done
    die "dump threads of earlier runs still there after 10 s"
}

# Bytes in flight on the server's TCP port (Recv-Q + Send-Q of every
# established socket on it: the dump connection, both ends).
queued_bytes() {
    ss -Htn state established "( sport = :$PORT or dport = :$PORT )" | awk '{ q += $1 + $2 } END { print q + 0 }'
}

# CPU seconds (user + system) the server has used.
server_cpu() {
    local pid
    pid=$(mdb_pid "$INSTANCE")
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$pid/stat"
}

# Events of the served files (gapless asks for ANNOTATE_ROWS too, as
# mariadb-binlog does), and the bytes of the ANNOTATE_ROWS events in the
# data files. Prints "EVENTS ANNOTATE_BYTES".
count_events() {
    python3 - "${#FILES[@]}" "${SERVED[@]}" <<'PY'
import mmap, struct, sys
ndata, paths = int(sys.argv[1]), sys.argv[2:]
events = annotate_bytes = 0
for i, path in enumerate(paths):
    with open(path, 'rb') as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        pos, end = 4, len(m)
        while pos + 19 <= end:
            size = struct.unpack_from('<I', m, pos + 9)[0]
            if size < 19 or pos + size > end:
                break
            if m[pos + 4] == 160 and i < ndata:  # ANNOTATE_ROWS
                annotate_bytes += size
            events += 1
            pos += size
print(events, annotate_bytes)
PY
}

# ---------------------------------------------------------------- runs

# Busy and stolen CPU ticks of the whole machine (first line of /proc/stat,
# read without a fork), into SYS_BUSY and SYS_STEAL.
sys_ticks() {
    local user nice system irq softirq steal
    # cpu user nice system idle iowait irq softirq steal ...
    read -r _ user nice system _ _ irq softirq steal _ </proc/stat
    SYS_BUSY=$((user + nice + system))
    SYS_IRQ=$((irq + softirq))
    SYS_STEAL=$steal
}

# What the rest of the machine used during a run: OTHER = user and system
# CPU seconds of the whole machine minus the client's and the server's
# (tick granularity, 10 ms, and softirq time billed to the processes: can
# come out slightly negative), IRQ = interrupt and softirq seconds, STEAL =
# CPU seconds the hypervisor took.
other_cpu() {
    local b0=$1 st0=$2 i0=$SYS_IRQ0
    sys_ticks
    IRQ=$(awk -v t="$((SYS_IRQ - i0))" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
    OTHER=$(awk -v b="$((SYS_BUSY - b0))" -v hz="$HZ" -v c="$CPU" -v s="$SCPU" 'BEGIN { printf "%.2f", b / hz - c - s }')
    STEAL=$(awk -v t="$((SYS_STEAL - st0))" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
}

# Whether other processes kept under MAX_OTHER CPUs during the last run,
# with 0.25 CPU s of slack for tick accounting (10 ms ticks, and the
# loopback traffic's softirq time is billed now to the processes, now not).
clean_run() {
    [[ $MAX_OTHER == off ]] || awk -v o="$OTHER" -v s="$SECS" -v m="$MAX_OTHER" 'BEGIN { exit !(o <= 0.25 + m * s) }'
}

# Results of one run: SECS, RSS (KiB), CPU (client user+sys s), SCPU
# (server s), OTHER and STEAL (other_cpu), LAG (gapless only).
MB_BINLOG=(mariadb-binlog --no-defaults --read-from-remote-server --raw
    --host=127.0.0.1 --user="$REPL_USER" --skip-ssl)

run_mariadb_binlog() {
    local out=$1 t0 t1 s0 s1 u s b0 st0
    shift
    LAG=""
    s0=$(server_cpu)
    sys_ticks
    b0=$SYS_BUSY st0=$SYS_STEAL SYS_IRQ0=$SYS_IRQ
    t0=$EPOCHREALTIME
    if ! MYSQL_PWD=$PASSWORD /usr/bin/time -f '%M %U %S' -o "$TMP/time" \
        "${MB_BINLOG[@]}" --port="$PORT" "$@" --result-file="$out/" "${NAMES[@]}" 2>"$TMP/stderr"; then
        tail -n 5 "$TMP/stderr" >&2
        die "mariadb-binlog failed"
    fi
    t1=$EPOCHREALTIME
    s1=$(server_cpu)
    read -r RSS u s <"$TMP/time"
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
    SCPU=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }')
    other_cpu "$b0" "$st0"
}

# Nanoseconds the threads of process $1 have run, into RUN_NS.
run_ns() {
    local f a total=0
    for f in /proc/"$1"/task/*/schedstat; do
        read -r a _ <"$f" 2>/dev/null || return 1
        total=$((total + a))
    done
    RUN_NS=$total
}

# run_gapless FORMAT LAUNCHER...: one stream from FIRST:4 to the end.
#
# When it ends: gapless never stops by itself, so the run is watched from
# two sides. Every 5 ms the CPU time gapless has run (schedstat of its
# threads: a file read, no fork) is sampled and the time of its last
# change kept; every 50 ms the primary is asked (one open session) whether
# the dump thread is in state "$SENT_ALL". Once it is, the connection's TCP
# queues are empty (ss) and gapless has not run for 20 ms, it has read and
# handled everything: the run ends at the last change of its CPU time
# (within 5 ms). Then SIGTERM.
#
# Also checks the final log line: EXPECT_EVENTS events, resume at the end of
# the server's last file, one connection.
run_gapless() {
    local fmt=$1 t0 t1 t_seen s0 s1 deadline i line events resume conns u s
    local gpid="" kids=() last=-1 b0 st0
    shift
    clear_dumps
    s0=$(server_cpu)
    sys_ticks
    b0=$SYS_BUSY st0=$SYS_STEAL SYS_IRQ0=$SYS_IRQ
    t0=$EPOCHREALTIME
    GAPLESS_PASSWORD=$PASSWORD "$@" "$GAPLESS" stream --source "mysql://$REPL_USER@127.0.0.1:$PORT" \
        --from "${NAMES[0]}:4" --format "$fmt" --ssl-mode DISABLED --server-id "$REPLICA_ID" \
        >/dev/null 2>"$TMP/stream.err" &
    STREAM_PID=$!
    t1=$t0
    deadline=$((SECONDS + STREAM_TIMEOUT))
    for ((i = 0; ; i++)); do
        if [[ -z $gpid ]]; then
            read -ra kids <"/proc/$STREAM_PID/task/$STREAM_PID/children" 2>/dev/null || true
            gpid=${kids[0]-}
        fi
        if [[ -n $gpid ]] && run_ns "$gpid" && ((RUN_NS != last)); then
            last=$RUN_NS
            t1=$EPOCHREALTIME
        fi
        if ((i % 10 == 0)); then
            dump_state
            if [[ ${REPLY#*$'\t'} == 1 ]] && (($(queued_bytes) == 0)); then
                # Until it has been idle for 20 ms: the last bytes read may
                # still be in the works.
                while ((i % 10 < 4)); do
                    nap 0.005
                    i=$((i + 1))
                    if run_ns "$gpid" && ((RUN_NS != last)); then
                        last=$RUN_NS
                        t1=$EPOCHREALTIME
                        i=$((i - i % 10))
                    fi
                done
                break
            fi
            if ! kill -0 "$STREAM_PID" 2>/dev/null; then
                tail -n 5 "$TMP/stream.err" >&2
                die "gapless stream --format $fmt exited before the end of the range"
            fi
            ((SECONDS < deadline)) || die "gapless stream --format $fmt: not done after ${STREAM_TIMEOUT}s"
        fi
        nap 0.005
    done
    t_seen=$EPOCHREALTIME
    s1=$(server_cpu)
    stop_children "$STREAM_PID"
    wait "$STREAM_PID" || die "gapless stream --format $fmt: exit status $? after SIGTERM: $(tail -n 3 "$TMP/stream.err")"
    STREAM_PID=""
    RSS=0 CPU=0
    if [[ $1 == /usr/bin/time ]]; then
        read -r RSS u s <"$TMP/time"
        CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
    fi
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    LAG=$(awk -v a="$t1" -v b="$t_seen" 'BEGIN { printf "%.3f", b - a }')
    SCPU=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }')
    other_cpu "$b0" "$st0"
    line=$(grep ' stopped ' "$TMP/stream.err" | tail -n 1 || true)
    events=$(sed -n 's/.* events=\([0-9]*\).*/\1/p' <<<"$line")
    conns=$(sed -n 's/.* connections=\([0-9]*\).*/\1/p' <<<"$line")
    resume=$(sed -n 's/.* resume=\([^ ]*\).*/\1/p' <<<"$line")
    if [[ $events != "$EXPECT_EVENTS" || $conns != 1 || $resume != "$LAST_FILE:$LAST_SIZE" ]]; then
        echo "stream.sh: gapless stream --format $fmt did not receive the whole range:" >&2
        echo "  got:      ${line:-no 'stopped' line}" >&2
        echo "  expected: events=$EXPECT_EVENTS connections=1 resume=$LAST_FILE:$LAST_SIZE" >&2
        exit 1
    fi
}

# Untimed: mariadb-binlog's copy must equal the data files.
verify_mariadb_binlog() {
    local set=$1 n free
    free=$(df -P -B1 "$VERIFY_DIR" 2>/dev/null | awk 'NR == 2 { print $4 }')
    if [[ -z $free ]] || ((free < DATA_BYTES + (256 << 20))); then
        log "$set: $VERIFY_DIR lacks room for the check copy; using $TMP"
        VERIFY_OUT=$(mktemp -d "$TMP/verify.XXXXXX")
    else
        VERIFY_OUT=$(mktemp -d "$VERIFY_DIR/gapless-stream-bench.XXXXXX")
    fi
    log "$set: check: mariadb-binlog --raw copy into $VERIFY_OUT, compared with the data files"
    run_mariadb_binlog "$VERIFY_OUT"
    for n in "${NAMES[@]}"; do
        cmp -s -- "$VERIFY_OUT/$n" "$BENCH_DATA/$set/$n" || die "$set: mariadb-binlog's $n differs from the data file"
    done
    rm -rf -- "$VERIFY_OUT"
    VERIFY_OUT=""
    log "$set: check passed: the server serves the data files byte for byte"
}

fmt_row() {
    # name best_secs median_secs bytes sent_bytes cpu scpu other rss_kib
    awk -v n="$1" -v s="$2" -v md="$3" -v b="$4" -v t="$5" -v c="$6" -v sc="$7" -v o="$8" -v m="$9" 'BEGIN {
        if (s <= 0) s = 0.001
        printf "%-24s %7.3f %7.3f %8.1f %9.1f %6.2f %7.2f %6.2f %7.1f\n", n, s, md, b / 1e6 / s, t / 1e6 / s, c, sc, o, m / 1024 }'
}

# Median of the numbers given.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

bench_set() {
    local set=$1 r n
    serve_set "$set"
    open_poll
    log "$set: warming the page cache"
    cat "${FILES[@]}" >/dev/null
    verify_mariadb_binlog "$set"

    local counts annotate
    counts=$(count_events)
    EXPECT_EVENTS=${counts% *}
    annotate=${counts#* }
    log "$set: the served files hold $EXPECT_EVENTS events; ANNOTATE_ROWS: $annotate bytes of the data files"

    # mariadb-binlog writes FILE under --result-file: make each a link to /dev/null.
    local sink=$TMP/sink
    rm -rf "$sink"
    mkdir -p "$sink"
    for n in "${NAMES[@]}"; do ln -s /dev/null "$sink/$n"; done

    local -a names=("mariadb-binlog raw" "gapless stream raw" "gapless stream jsonl")
    local -A best cpu scpu other rss lag sent all maxother steal redone busy
    local quiet=1
    sent["mariadb-binlog raw"]=$DATA_BYTES
    sent["gapless stream raw"]=$DATA_BYTES
    sent["gapless stream jsonl"]=$DATA_BYTES
    for n in "${names[@]}"; do rss[$n]=0 lag[$n]=0 all[$n]="" maxother[$n]=-9 steal[$n]=0 redone[$n]=0 busy[$n]=0; done
    for ((r = 1; r <= REPEAT; r++)); do
        for n in "${names[@]}"; do
            while :; do
                case $n in
                "mariadb-binlog raw") run_mariadb_binlog "$sink" ;;
                "gapless stream raw") run_gapless raw /usr/bin/time -f '%M %U %S' -o "$TMP/time" ;;
                "gapless stream jsonl") run_gapless jsonl /usr/bin/time -f '%M %U %S' -o "$TMP/time" ;;
                esac
                log "$set: run $r/$REPEAT: $n: $SECS s, client CPU $CPU s, server CPU $SCPU s, other CPU $OTHER s, irq $IRQ s, steal $STEAL s, RSS $RSS KiB${LAG:+, end seen ${LAG} s after it went idle}"
                clean_run && break
                if ((quiet)); then
                    log "$set: other processes were busy during that run; waiting for a quiet machine to make it again"
                    if wait_quiet 5; then
                        redone[$n]=$((redone[$n] + 1))
                        continue
                    fi
                    quiet=0
                    log "$set: the machine was not quiet for ${QUIET_WAIT}s; keeping busy runs from now on"
                fi
                busy[$n]=$((busy[$n] + 1))
                break
            done
            all[$n]+="$SECS "
            if [[ -z ${best[$n]-} ]] || awk -v a="$SECS" -v b="${best[$n]}" 'BEGIN { exit !(a < b) }'; then
                best[$n]=$SECS cpu[$n]=$CPU scpu[$n]=$SCPU other[$n]=$OTHER
            fi
            if awk -v a="$OTHER" -v b="${maxother[$n]}" 'BEGIN { exit !(a > b) }'; then maxother[$n]=$OTHER; fi
            steal[$n]=$(awk -v a="$STEAL" -v b="${steal[$n]}" 'BEGIN { print a + b }')
            if [[ $n == gapless* ]] && awk -v a="$LAG" -v b="${lag[$n]}" 'BEGIN { exit !(a > b) }'; then
                lag[$n]=$LAG
            fi
            ((RSS > rss[$n])) && rss[$n]=$RSS
        done
    done

    echo
    echo "== $set: ${#NAMES[@]} files, $DATA_BYTES bytes ($(awk -v b="$DATA_BYTES" 'BEGIN { printf "%.1f MiB", b / 1048576 }')), ${NAMES[0]}:4 to the end of ${NAMES[-1]}; best of $REPEAT, warm cache"
    echo "   best s / median s: wall time; MB/s: data-file bytes / 1e6 / best s; sent MB/s: bytes of the events the"
    echo "   server sent / 1e6 / best s (every tool gets every event, ANNOTATE_ROWS included: $(awk -v b="$DATA_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB);"
    echo "   CPU, srv CPU, other: CPU seconds of the client, the server and"
    echo "   everything else during the best run; RSS: highest peak RSS of the client"
    printf '%-24s %7s %7s %8s %9s %6s %7s %6s %7s\n' tool "best s" "median" MB/s "sent MB/s" CPU "srv CPU" other "RSS MiB"
    for n in "${names[@]}"; do
        # shellcheck disable=SC2086 # all[] is a list of numbers
        fmt_row "$n" "${best[$n]}" "$(median ${all[$n]})" "$DATA_BYTES" "${sent[$n]}" "${cpu[$n]}" "${scpu[$n]}" "${other[$n]}" "${rss[$n]}"
    done
    local worst=-9 stolen=0
    for n in "${names[@]}"; do
        worst=$(awk -v a="${maxother[$n]}" -v b="$worst" 'BEGIN { print (a > b ? a : b) }')
        stolen=$(awk -v a="${steal[$n]}" -v b="$stolen" 'BEGIN { print a + b }')
    done
    echo "other processes: at most $worst CPU s in any kept run; CPU stolen by the hypervisor over all kept runs: $stolen s"
    local redo="" kept_busy=""
    for n in "${names[@]}"; do
        redo+="${redo:+, }$n ${redone[$n]}"
        ((busy[$n] == 0)) || kept_busy+="${kept_busy:+, }$n ${busy[$n]}"
    done
    if [[ $MAX_OTHER == off ]]; then
        echo "runs kept whether other processes were busy or not (--accept-busy)"
    else
        echo "runs made again because other processes used more than $MAX_OTHER CPU during them: $redo"
        [[ -z $kept_busy ]] || echo "NOTE: runs kept although other processes were busy (provisional): $kept_busy"
    fi
    echo "gapless runs complete: events=$EXPECT_EVENTS, connections=1, resume=$LAST_FILE:$LAST_SIZE in every run;" \
        "end detected at most ${lag[gapless stream raw]} s (raw), ${lag[gapless stream jsonl]} s (jsonl) after gapless went idle"
    echo "targets (on data-file MB/s, as the issue states them):"
    awk -v m="${best[mariadb-binlog raw]}" \
        -v g="${best[gapless stream raw]}" -v j="${best[gapless stream jsonl]}" 'BEGIN {
        r = m / g; printf "  gapless raw   vs mariadb-binlog raw: %.2fx (target >= 1x)   %s\n", r, (r >= 1 ? "PASS" : "FAIL")
        r = m / j; printf "  gapless jsonl vs mariadb-binlog raw: %.2fx (target >= 0.5x) %s\n", r, (r >= 0.5 ? "PASS" : "FAIL") }'

    if [[ -n $PERF_DIR ]]; then
        mkdir -p "$PERF_DIR"
        local fmt
        for fmt in raw jsonl; do
            log "$set: perf record of gapless stream --format $fmt"
            run_gapless "$fmt" perf record -q -e cpu-clock -g -o "$PERF_DIR/$set-$fmt.data" --
            perf report -i "$PERF_DIR/$set-$fmt.data" --no-children --sort dso,sym -g none --percent-limit 0.5 --stdio \
                >"$PERF_DIR/$set-$fmt.txt" 2>/dev/null || true
            log "$set: $PERF_DIR/$set-$fmt.data (report: $PERF_DIR/$set-$fmt.txt; ${SECS} s under perf)"
        done
    fi
    if [[ -n $PERF_STAT_DIR ]]; then
        mkdir -p "$PERF_STAT_DIR"
        local i fmt stat
        for ((i = 1; i <= REPEAT; i++)); do
            for fmt in raw jsonl; do
                stat=$PERF_STAT_DIR/$set-$fmt-$i.stat
                run_gapless "$fmt" perf stat -x, -e task-clock,page-faults,context-switches -o "$stat" --
                awk -F, -v what="$set: perf stat $i/$REPEAT: gapless stream $fmt:" '
                    $3 == "task-clock" { cpu = $1 } $3 == "page-faults" { pf = $1 } $3 == "context-switches" { cs = $1 }
                    END { printf "%s CPU %.0f ms, %d page faults, %d context switches\n", what, cpu, pf, cs }' "$stat"
            done
        done
    fi

    clear_dumps
    close_poll
    mdb_destroy "$INSTANCE"
    SERVER_UP=0
}


main() {
    ensure_packages
    ensure_data
    if ((BUILD)); then
        log "cargo build --release --bin gapless"
        (cd "$ROOT" && cargo build --release --bin gapless --quiet)
    fi
    [[ -x $GAPLESS ]] || die "$GAPLESS missing (run without --no-build)"

    export GAPLESS_SANDBOX=$STREAM_SANDBOX
    # shellcheck source=../fixtures/lib/mariadb.sh disable=SC1091
    . "$ROOT/fixtures/lib/mariadb.sh"

    echo "machine: $(nproc) vCPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(uname -sr)"
    echo "date: $(date -u '+%F %T UTC')"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    local busy
    busy=$(cpu_busy)
    echo "CPU busy before the timings (1 s sample, other processes): ${busy}%"
    ((busy <= 10)) || echo "NOTE: the machine is not idle: treat these numbers as provisional"
    local mariadbd
    mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
    local ours
    if [[ -n ${GAPLESS_BIN:-} ]]; then
        ours="$GAPLESS (GAPLESS_BIN)"
    else
        ours="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree)"
    fi
    echo "versions: $(mariadb-binlog --version | head -n1); server $("$mariadbd" --version | sed 's/.*Ver //'); gapless $ours"
    local s
    for s in $SETS; do
        bench_set "$s"
    done
    echo
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); CPU busy now: $(cpu_busy)%"
}

main
