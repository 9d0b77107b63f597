#!/usr/bin/env bash
# benches/replay.sh — times `gapless replay --auto` against the classic way
# of applying a missing binlog tail (what MHA does:
# `mariadb-binlog --start-position=X FILE | mariadb`), on the same missing
# tail and the same kind of target, in one run.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/replay.sh [--no-build] [--keep]

Two scenarios, each on fresh servers (fixtures/lib/mariadb.sh, sandbox
$REPLAY_SANDBOX):

1. Set-up. A primary P and two targets T1 and T2, all three with binlog
   ROW, binlog_row_metadata=FULL, binlog_checksum CRC32, sync_binlog=1,
   innodb_flush_log_at_trx_commit=1, log_slave_updates, server ids 1, 2, 3.
   On P a replication user (REPLICATION SLAVE, BINLOG MONITOR, REPLICATION
   MASTER ADMIN, SLAVE MONITOR); on T1 and T2, with sql_log_bin=0, a user
   with GRANT ALL for gapless replay. T1 and T2 replicate from P with GTID
   (MASTER_USE_GTID=slave_pos). On P the schema: sbtest.sbtest1 (id INT
   PRIMARY KEY, k INT, c CHAR(120), pad CHAR(60), KEY k) filled with
   $TABLE_SIZE rows, and sbtest.big (same columns, empty). Once T1 and T2
   have caught up (gtid_slave_pos = P's gtid_binlog_pos): STOP SLAVE and
   RESET SLAVE ALL on both, so both lack the same tail; P's SHOW MASTER
   STATUS then is X (file, position).
2. The sidecar on P, into a ring on the real disk ($REPLAY_RING/<scenario>):
     gapless stream --source mysql://bench_repl@127.0.0.1:P --from-gtid ''
       --ring DIR --ssl-mode DISABLED
3. The missing tail, written on P:
     small: $SMALL_TXNS autocommit transactions from one client session,
            each changing one row of sbtest1 (odd ones INSERT a new row,
            even ones UPDATE k and c of an existing row by its id), from a
            SQL file generated first (fixed seed);
     big:   one transaction: INSERT INTO sbtest.big SELECT ... FROM
            seq_1_to_$BIG_ROWS ($BIG_ROWS rows).
   Then waits until the ring is durable up to P's SHOW MASTER STATUS and
   holds P's last GTID, and stops the sidecar (SIGTERM, must exit 0).
4. Timed, one after the other, warm (ring and binlog just written):
     gapless replay   on T1: gapless replay --ring DIR --auto --json
                      --target mysql://bench_apply@127.0.0.1:T1 --ssl-mode DISABLED
     mariadb-binlog | mariadb   on T2: mariadb-binlog --no-defaults
                      --start-position=X P's binlog(s) from X's file on |
                      mariadb --no-defaults --socket=T2 --user=root
   Wall time from start to exit ($EPOCHREALTIME around each, both run under
   /usr/bin/time for CPU and peak RSS; the pipeline under `bash -c`).
   rows = row changes of the transactions gapless applied, counted in
   `gapless decode --ring DIR --format jsonl` (must equal what was written);
   rows/s = rows / seconds, the same rows for both methods.
5. Checks (any failing one fails the run): CHECKSUM TABLE of both tables
   equal on P, T1 and T2; gtid_binlog_pos of T1 and T2 equal to P's; gapless
   applied every transaction of the tail; a second `gapless replay --auto`
   applies nothing.
6. A table: scenario, method, seconds, rows, rows/s, client CPU s, target
   server CPU s, client peak RSS, and the CPU s the rest of the machine
   used meanwhile (its busy time minus the client's and the target's: the
   idle P and other target count there); then the issue's targets, PASS/FAIL:
     gapless rows/s >= 2 x the pipeline's (each scenario)
     small: gapless done in under 2 s
   The exit status is non-zero when a check or a target fails.

Options:
  --no-build      skip `cargo build --release --bin gapless`
  --keep          leave the servers running and keep the rings and the work
                  files (logs, reports, decoded rings); prints where
  -h, --help      this text

Environment:
  REPLAY_SANDBOX  parent dir of the throw-away servers (default /tmp/gapless-replay-bench)
  REPLAY_RING     parent dir of the rings (default target/replay-bench; emptied first)
  SMALL_TXNS      transactions of the small scenario (default 10000)
  BIG_ROWS        rows of the big transaction (default 100000)
  TABLE_SIZE      rows of sbtest1 before the tail (default 10000)
  QUIET_WAIT      seconds to wait for a quiet machine before timing (default 120)
  GAPLESS_BIN     the gapless binary (default target/release/gapless; with
                  --no-build when set)
  REPLAY_ARGS     more flags for both gapless replay runs (split on blanks),
                  e.g. "--mode binlog"

Numbers are only meaningful on an otherwise idle machine: the script prints
CPU use before each timing.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPLAY_SANDBOX=${REPLAY_SANDBOX:-/tmp/gapless-replay-bench}
REPLAY_RING=${REPLAY_RING:-$ROOT/target/replay-bench}
[[ $REPLAY_RING == /* ]] || REPLAY_RING=$PWD/$REPLAY_RING
SMALL_TXNS=${SMALL_TXNS:-10000}
BIG_ROWS=${BIG_ROWS:-100000}
TABLE_SIZE=${TABLE_SIZE:-10000}
QUIET_WAIT=${QUIET_WAIT:-120}
read -ra REPLAY_EXTRA <<<"${REPLAY_ARGS:-}"
BUILD=1
KEEP=0

while (($#)); do
    case $1 in
    -h | --help) usage; exit 0 ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    *) echo "replay.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for v in SMALL_TXNS BIG_ROWS TABLE_SIZE QUIET_WAIT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "replay.sh: $v must be a positive number" >&2; exit 2; }
done

log() { printf '[replay.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "replay.sh: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

GAPLESS=${GAPLESS_BIN:-$ROOT/target/release/gapless}
REPL_USER=bench_repl
APPLY_USER=bench_apply
# Throw-away servers on 127.0.0.1 only, gone at the end of the run.
PASSWORD=replay-bench-pw
APPLY_PASSWORD=replay-bench-apply-pw
SERVER_OPTS=(--sync-binlog=1 --innodb-flush-log-at-trx-commit=1 --binlog-checksum=CRC32
    --binlog-row-metadata=FULL --log-slave-updates --max-binlog-size=1G)

ensure_packages() {
    local need=()
    [[ -x /usr/bin/time ]] || need+=(time)
    command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]] || need+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
    command -v mariadb-binlog >/dev/null 2>&1 || need+=(mariadb-client)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    install_missing "${need[@]}"
}

# ---------------------------------------------------------------- state

WORK=$(mktemp -d /tmp/gapless-replay-work.XXXXXX)
INSTANCES=() # every server started, for the cleanup
SIDECAR_PID=""
FAILED=0

cleanup() {
    local rc=$? n
    if [[ -n $SIDECAR_PID ]] && kill -0 "$SIDECAR_PID" 2>/dev/null; then
        kill -TERM "$SIDECAR_PID" 2>/dev/null || true
        wait "$SIDECAR_PID" 2>/dev/null || true
    fi
    if ((KEEP)); then
        for n in "${INSTANCES[@]}"; do
            mdb_running "$n" && echo "--keep: server '$n' on 127.0.0.1:$(mdb_port "$n" 2>/dev/null || echo '?')" \
                "(GAPLESS_SANDBOX=$REPLAY_SANDBOX fixtures/lib/mariadb.sh mdb_sql $n)" >&2
        done
        echo "--keep: rings in $REPLAY_RING, work files (logs, reports, SQL, decoded rings) in $WORK" >&2
    else
        for n in "${INSTANCES[@]}"; do mdb_destroy "$n" || true; done
        for n in "$REPLAY_RING"/*; do
            [[ ! -f $n/state.json ]] || rm -rf -- "$n"
        done
        rmdir -- "$REPLAY_RING" 2>/dev/null || true
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers

fail() { echo "FAIL: $*"; FAILED=1; }





# One value from a server.
sql_value() { mdb_sql "$1" -N -B -e "$2"; }


# ---------------------------------------------------------------- set-up

# setup SCENARIO: fresh P, T1, T2 at the same GTID, the sidecar on P.
# Sets P T1 T2, P_PORT T1_PORT, X_FILE X_POS X_GTID, RING.
setup() {
    local s=$1 n port id=1 i
    P=rp-$s-p T1=rp-$s-t1 T2=rp-$s-t2
    for n in "$P" "$T1" "$T2"; do
        mdb_destroy "$n" >/dev/null 2>&1 || true
        port=$(mdb_free_port 34900)
        INSTANCES+=("$n")
        log "$s: starting MariaDB '$n' (server id $id) on 127.0.0.1:$port"
        mdb_start "$n" "$port" "$id" "${SERVER_OPTS[@]}"
        id=$((id + 1))
    done
    P_PORT=$(mdb_port "$P") T1_PORT=$(mdb_port "$T1")
    mdb_sql "$P" <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER '$REPL_USER'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICATION MASTER ADMIN, SLAVE MONITOR ON *.* TO '$REPL_USER'@'127.0.0.1';
SQL
    for n in "$T1" "$T2"; do
        mdb_sql "$n" <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER '$APPLY_USER'@'127.0.0.1' IDENTIFIED BY '$APPLY_PASSWORD';
GRANT ALL ON *.* TO '$APPLY_USER'@'127.0.0.1';
CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $P_PORT,
  MASTER_USER = '$REPL_USER', MASTER_PASSWORD = '$PASSWORD', MASTER_USE_GTID = slave_pos;
START SLAVE;
SQL
    done
    mdb_sql "$P" <<SQL
CREATE DATABASE sbtest;
CREATE TABLE sbtest.sbtest1 (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0,
  c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB;
CREATE TABLE sbtest.big (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0,
  c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB;
INSERT INTO sbtest.sbtest1 (id, k, c, pad)
  SELECT seq, 1 + (seq * 7919) % $TABLE_SIZE,
         LEFT(CONCAT(MD5(seq), '-', MD5(seq + 1), '-', MD5(seq + 2), '-', MD5(seq + 3)), 119),
         LEFT(CONCAT(MD5(seq * 3), '-', MD5(seq * 5)), 59)
  FROM sbtest.seq_1_to_$TABLE_SIZE;
SQL
    local want
    want=$(sql_value "$P" 'SELECT @@GLOBAL.gtid_binlog_pos')
    for n in "$T1" "$T2"; do
        for ((i = 0; i < 600; i++)); do
            [[ $(sql_value "$n" 'SELECT @@GLOBAL.gtid_slave_pos') == "$want" ]] && break
            sleep 0.1
        done
        [[ $(sql_value "$n" 'SELECT @@GLOBAL.gtid_slave_pos') == "$want" ]] ||
            die "$s: $n did not reach P's $want within 60 s: $(mdb_sql "$n" -e 'SHOW SLAVE STATUS\G' | grep -E 'Running|Error' | tr -s ' ' | tr '\n' ' ')"
        mdb_sql "$n" -e 'STOP SLAVE; RESET SLAVE ALL'
    done
    local ms
    ms=$(mdb_sql "$P" -N -B -e 'SHOW MASTER STATUS' | cut -f1,2)
    X_FILE=${ms%$'\t'*} X_POS=${ms#*$'\t'}
    X_GTID=$(sql_value "$P" 'SELECT @@GLOBAL.gtid_binlog_pos')
    [[ $X_GTID == "$want" ]] || die "$s: P moved on during the set-up ($want, then $X_GTID)"
    log "$s: T1 and T2 stopped at $X_GTID; X = $X_FILE:$X_POS"

    RING=$REPLAY_RING/$s
    fresh_ring "$RING" REPLAY_RING
    log "$s: starting the sidecar into $RING"
    GAPLESS_PASSWORD=$PASSWORD GAPLESS_LOG=info,gapless::ring=debug "$GAPLESS" stream \
        --source "mysql://$REPL_USER@127.0.0.1:$P_PORT" --from-gtid '' --ring "$RING" \
        --ssl-mode DISABLED >"$SCN/sidecar.out" 2>"$SCN/sidecar.log" &
    SIDECAR_PID=$!
    for ((i = 0; i < 300; i++)); do
        grep -q ' streaming ' "$SCN/sidecar.log" && break
        kill -0 "$SIDECAR_PID" 2>/dev/null || { tail -n 5 "$SCN/sidecar.log" >&2; die "$s: the sidecar exited at start"; }
        sleep 0.1
    done
    grep -q ' streaming ' "$SCN/sidecar.log" || die "$s: the sidecar did not start streaming within 30 s"
}

# The small scenario's SQL: SMALL_TXNS single-row autocommit statements,
# odd ones INSERT a new id, even ones UPDATE an existing one (fixed seed).
small_sql() {
    awk -v n="$SMALL_TXNS" -v size="$TABLE_SIZE" '
        function digits(groups,   s, g, j) {
            s = ""
            for (g = 0; g < groups; g++) {
                if (g) s = s "-"
                for (j = 0; j < 11; j++) s = s int(rand() * 10)
            }
            return s
        }
        BEGIN {
            srand(1)
            print "USE sbtest;"
            next_id = size + 1
            for (i = 1; i <= n; i++) {
                if (i % 2)
                    printf "INSERT INTO sbtest1 (id, k, c, pad) VALUES (%d, %d, '\''%s'\'', '\''%s'\'');\n",
                        next_id++, 1 + int(rand() * size), digits(10), digits(5)
                else
                    printf "UPDATE sbtest1 SET k = k + 1, c = '\''%s'\'' WHERE id = %d;\n",
                        digits(10), 1 + int(rand() * size)
            }
        }'
}

# Writes the scenario's tail on P, waits until the ring holds it, stops
# the sidecar. Sets EXPECT_TXNS and EXPECT_ROWS.
write_tail() {
    local s=$1 t0
    t0=$EPOCHREALTIME
    case $s in
    small)
        small_sql >"$SCN/tail.sql"
        log "$s: $SMALL_TXNS transactions on P (one session, autocommit)"
        mdb_sql "$P" <"$SCN/tail.sql"
        EXPECT_TXNS=$SMALL_TXNS EXPECT_ROWS=$SMALL_TXNS
        ;;
    big)
        log "$s: one transaction of $BIG_ROWS rows on P"
        mdb_sql "$P" <<SQL
INSERT INTO sbtest.big (id, k, c, pad)
  SELECT seq, 1 + (seq * 7919) % 10007,
         LEFT(CONCAT(MD5(seq), '-', MD5(seq + 1), '-', MD5(seq + 2), '-', MD5(seq + 3)), 119),
         LEFT(CONCAT(MD5(seq * 3), '-', MD5(seq * 5)), 59)
  FROM sbtest.seq_1_to_$BIG_ROWS;
SQL
        EXPECT_TXNS=1 EXPECT_ROWS=$BIG_ROWS
        ;;
    esac
    log "$s: written on P in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"

    local ms ffile fpos cur cfile cpos i caught=0
    ms=$(mdb_sql "$P" -N -B -e 'SHOW MASTER STATUS' | cut -f1,2)
    ffile=${ms%$'\t'*} fpos=${ms#*$'\t'}
    P_GTID=$(sql_value "$P" 'SELECT @@GLOBAL.gtid_binlog_pos')
    for ((i = 0; i < 1200; i++)); do
        cur=$(last_durable "$SCN/sidecar.log")
        cfile=${cur% *} cpos=${cur#* }
        if [[ -n $cur ]]; then
            if [[ $cfile > $ffile ]] || { [[ $cfile == "$ffile" ]] && ((cpos >= fpos)); }; then
                caught=1
                break
            fi
        fi
        kill -0 "$SIDECAR_PID" 2>/dev/null || { tail -n 5 "$SCN/sidecar.log" >&2; die "$s: the sidecar exited"; }
        sleep 0.1
    done
    ((caught)) || die "$s: the ring is durable at ${cur:-nothing}, P at $ffile:$fpos after 120 s"
    kill -TERM "$SIDECAR_PID"
    wait "$SIDECAR_PID" || die "$s: the sidecar exited with status $? after SIGTERM: $(tail -n 3 "$SCN/sidecar.log")"
    SIDECAR_PID=""
    "$GAPLESS" decode --ring "$RING" --format jsonl >"$SCN/ring.jsonl"
    grep -qF "\"gtid\":\"$P_GTID\"" "$SCN/ring.jsonl" || die "$s: the ring does not hold P's last GTID $P_GTID"
    log "$s: the ring holds up to $P_GTID (durable at $cfile:$cpos, P at $ffile:$fpos); sidecar stopped"
}

# ---------------------------------------------------------------- timing

# time_gapless SCENARIO: gapless replay --auto onto T1.
time_gapless() {
    local s=$1 tpid c0 c1 t0 t1 b0 b1
    tpid=$(mdb_pid "$T1")
    c0=$(proc_ticks "$tpid") b0=$(sys_busy)
    t0=$EPOCHREALTIME
    GAPLESS_PASSWORD=$APPLY_PASSWORD /usr/bin/time -f '%U %S %M' -o "$SCN/gapless.time" \
        "$GAPLESS" replay --ring "$RING" --target "mysql://$APPLY_USER@127.0.0.1:$T1_PORT" --auto \
        --ssl-mode DISABLED --json "${REPLAY_EXTRA[@]}" >"$SCN/report.json" 2>"$SCN/replay.log" ||
        { tail -n 5 "$SCN/replay.log" >&2; die "$s: gapless replay failed"; }
    t1=$EPOCHREALTIME
    c1=$(proc_ticks "$tpid") b1=$(sys_busy)
    G_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    G_TCPU=$(awk -v t="$((c1 - c0))" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
    read -r u sy G_RSS <"$SCN/gapless.time"
    G_CPU=$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')
    G_OTHER=$(awk -v b="$((b1 - b0))" -v hz="$HZ" -v c="$G_CPU" -v t="$G_TCPU" 'BEGIN { printf "%.2f", b / hz - c - t }')
}

# time_pipeline SCENARIO: mariadb-binlog --start-position=X FILES | mariadb onto T2.
time_pipeline() {
    local s=$1 tpid c0 c1 t0 t1 b0 b1 files=() f started=0
    while IFS= read -r f; do
        [[ ${f##*/} == "$X_FILE" ]] && started=1
        ((started)) && files+=("$f")
    done < <(mdb_binlogs "$P")
    ((${#files[@]})) || die "$s: P's binlog $X_FILE not found"
    PIPE_FILES="${files[*]##*/}"
    tpid=$(mdb_pid "$T2")
    c0=$(proc_ticks "$tpid") b0=$(sys_busy)
    t0=$EPOCHREALTIME
    # shellcheck disable=SC2016 # expanded by the inner shell
    /usr/bin/time -f '%U %S %M' -o "$SCN/pipeline.time" bash -c '
        set -o pipefail
        mariadb-binlog --no-defaults --start-position="$1" "${@:3}" |
            mariadb --no-defaults --socket="$2" --user=root --default-character-set=utf8mb4 --max-allowed-packet=256M
        ' _ "$X_POS" "$(mdb_socket "$T2")" "${files[@]}" >"$SCN/pipeline.out" 2>"$SCN/pipeline.err" ||
        { tail -n 5 "$SCN/pipeline.err" >&2; die "$s: mariadb-binlog | mariadb failed"; }
    t1=$EPOCHREALTIME
    c1=$(proc_ticks "$tpid") b1=$(sys_busy)
    M_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    M_TCPU=$(awk -v t="$((c1 - c0))" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
    read -r u sy M_RSS <"$SCN/pipeline.time"
    M_CPU=$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')
    M_OTHER=$(awk -v b="$((b1 - b0))" -v hz="$HZ" -v c="$M_CPU" -v t="$M_TCPU" 'BEGIN { printf "%.2f", b / hz - c - t }')
}

# Transactions gapless applied and the row changes in them (from the
# decoded ring): "TXNS ROWS".
applied_rows() {
    python3 - "$SCN/report.json" "$SCN/ring.jsonl" <<'PY'
import json, sys
report, ring = sys.argv[1:3]
applied = {a["gtid"] for a in json.load(open(report))["applied"]}
rows = 0
with open(ring) as f:
    for line in f:
        o = json.loads(line)
        if "op" in o and o.get("gtid") in applied:
            rows += 1
print(len(applied), rows)
PY
}

# ---------------------------------------------------------------- a scenario

run_scenario() {
    local s=$1 busy
    SCN=$WORK/$s
    mkdir -p -- "$SCN"
    echo
    echo "== scenario $s"
    setup "$s"
    write_tail "$s"

    busy=$(cpu_busy)
    if ((busy > 10)); then
        log "$s: the machine is ${busy}% busy (servers flushing?); waiting up to ${QUIET_WAIT}s for it to be quiet"
        wait_quiet || log "$s: the machine did not get quiet; going ahead (numbers provisional)"
    fi
    echo "before timing: load $(cut -d' ' -f1-3 /proc/loadavg); CPU busy (1 s sample): $(cpu_busy)%"

    log "$s: gapless replay onto T1"
    time_gapless "$s"
    log "$s: gapless replay: ${G_SECS} s"
    log "$s: mariadb-binlog | mariadb onto T2"
    time_pipeline "$s"
    log "$s: mariadb-binlog | mariadb: ${M_SECS} s"

    # What was applied.
    local txns rows report_secs
    read -r txns rows < <(applied_rows)
    report_secs=$(python3 -c 'import json, sys; print("%.3f" % json.load(open(sys.argv[1]))["seconds"])' "$SCN/report.json")
    echo "gapless replay: $txns transaction(s), $rows row changes applied; report seconds $report_secs, wall $G_SECS s"
    ((txns == EXPECT_TXNS)) || fail "$s: gapless applied $txns transactions, $EXPECT_TXNS were written"
    ((rows == EXPECT_ROWS)) || fail "$s: the applied transactions hold $rows row changes, $EXPECT_ROWS were written"

    # Same data and GTIDs everywhere.
    local n sum psum pg g
    psum=$(mdb_sql "$P" -N -B -e 'CHECKSUM TABLE sbtest.sbtest1, sbtest.big' | tr '\n' ' ')
    pg=$(sql_value "$P" 'SELECT @@GLOBAL.gtid_binlog_pos')
    echo "P:  CHECKSUM TABLE $psum gtid_binlog_pos $pg"
    for n in "$T1" "$T2"; do
        sum=$(mdb_sql "$n" -N -B -e 'CHECKSUM TABLE sbtest.sbtest1, sbtest.big' | tr '\n' ' ')
        g=$(sql_value "$n" 'SELECT @@GLOBAL.gtid_binlog_pos')
        echo "${n##*-}: CHECKSUM TABLE $sum gtid_binlog_pos $g"
        [[ $sum == "$psum" ]] || fail "$s: CHECKSUM TABLE on $n differs from P's"
        [[ $g == "$pg" ]] || fail "$s: gtid_binlog_pos on $n is $g, P's is $pg"
    done

    # A second run applies nothing.
    local again
    GAPLESS_PASSWORD=$APPLY_PASSWORD "$GAPLESS" replay --ring "$RING" \
        --target "mysql://$APPLY_USER@127.0.0.1:$T1_PORT" --auto --ssl-mode DISABLED --json "${REPLAY_EXTRA[@]}" \
        >"$SCN/report2.json" 2>"$SCN/replay2.log" || fail "$s: the second gapless replay failed: $(tail -n 3 "$SCN/replay2.log")"
    again=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(len(r["applied"]), "%.3f" % r["seconds"])' "$SCN/report2.json" 2>/dev/null || echo '? ?')
    echo "second gapless replay --auto: applied ${again% *} transaction(s) in ${again#* } s"
    [[ ${again% *} == 0 ]] || fail "$s: the second gapless replay applied ${again% *} transactions"

    RESULTS+=("$s gapless-replay $G_SECS $rows $G_CPU $G_TCPU $G_RSS $G_OTHER")
    RESULTS+=("$s mariadb-binlog|mariadb $M_SECS $rows $M_CPU $M_TCPU $M_RSS $M_OTHER")
    echo "pipeline files: $PIPE_FILES from position $X_POS"

    if ((!KEEP)); then
        for n in "$P" "$T1" "$T2"; do mdb_destroy "$n" || true; done
        rm -rf -- "$RING"
    fi
}

# ---------------------------------------------------------------- run

main() {
    ensure_packages
    if ((BUILD)) && [[ -z ${GAPLESS_BIN:-} ]]; then
        log "cargo build --release --bin gapless"
        (cd "$ROOT" && cargo build --release --bin gapless --quiet)
    fi
    [[ -x $GAPLESS ]] || die "$GAPLESS missing (run without --no-build)"
    [[ -z ${GAPLESS_BIN:-} ]] || echo "gapless binary: $GAPLESS (GAPLESS_BIN)"
    ((${#REPLAY_EXTRA[@]} == 0)) || echo "gapless replay flags added: ${REPLAY_EXTRA[*]} (REPLAY_ARGS)"

    export GAPLESS_SANDBOX=$REPLAY_SANDBOX
    # shellcheck source=../fixtures/lib/mariadb.sh disable=SC1091
    . "$ROOT/fixtures/lib/mariadb.sh"

    local mariadbd
    mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
    mkdir -p -- "$REPLAY_SANDBOX" "$REPLAY_RING"
    echo "date: $(date -u '+%F %T UTC')"
    echo "machine: $(nproc) vCPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(uname -sr)"
    echo "versions: server $("$mariadbd" --version | sed 's/.*Ver //'); $(mariadb-binlog --version | sed 's/^[^ ]* //'); gapless $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree)"
    echo "disk: rings in $REPLAY_RING ($(where "$REPLAY_RING")), servers in $REPLAY_SANDBOX ($(where "$REPLAY_SANDBOX"))"
    echo "servers: ${SERVER_OPTS[*]} (and fixtures/lib/mariadb.sh's: ROW, innodb_buffer_pool_size 64M, max_allowed_packet 64M)"

    RESULTS=()
    run_scenario small
    run_scenario big

    echo
    echo "== results ($(date -u '+%F %T UTC'))"
    printf '%s\n' "${RESULTS[@]}" | awk '
        BEGIN { printf "%-8s %-24s %9s %8s %9s %11s %11s %10s %10s\n", "scenario", "method", "seconds", "rows", "rows/s", "client CPU", "target CPU", "peak RSS", "other CPU" }
        { printf "%-8s %-24s %9.3f %8d %9.0f %10.2fs %10.2fs %6.1f MiB %9.2fs\n", $1, $2, $3, $4, $4 / $3, $5, $6, $7 / 1024, $8 }'
    echo "(client CPU: user + system of gapless, or of mariadb-binlog and mariadb together; target CPU: the target server's;"
    echo " peak RSS: gapless, or the larger of mariadb-binlog and mariadb; other CPU: the rest of the machine during the run)"
    echo
    echo "targets:"
    local line ok
    while IFS= read -r line; do
        echo "  $line"
        [[ $line == *PASS* ]] || ok=0
    done < <(printf '%s\n' "${RESULTS[@]}" | awk '
        { secs[$1, $2] = $3; rows[$1, $2] = $4; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
        END {
            for (i = 1; i <= n; i++) {
                s = order[i]; g = rows[s, "gapless-replay"] / secs[s, "gapless-replay"]
                m = rows[s, "mariadb-binlog|mariadb"] / secs[s, "mariadb-binlog|mariadb"]
                printf "%s: gapless rows/s %.0f vs pipeline %.0f = %.2fx (target >= 2x) %s\n", s, g, m, g / m, (g >= 2 * m ? "PASS" : "FAIL")
                if (s == "small")
                    printf "small: gapless replay done in %.3f s (target < 2 s) %s\n", secs[s, "gapless-replay"], (secs[s, "gapless-replay"] < 2 ? "PASS" : "FAIL")
            }
        }')
    ((${ok:-1})) || FAILED=1
    echo "after: load $(cut -d' ' -f1-3 /proc/loadavg); CPU busy now: $(cpu_busy)%"
    ((!FAILED)) || { echo "replay.sh: a check or a target failed (above)" >&2; exit 1; }
}

main
