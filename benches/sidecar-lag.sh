#!/usr/bin/env bash
# benches/sidecar-lag.sh — how far the sidecar (`gapless stream --ring`,
# fsync per commit) trails a MariaDB primary running sysbench
# oltp_write_only at full rate: the time from a write on the primary to the
# event being durable in the ring, measured with probe rows.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/sidecar-lag.sh [--no-build] [--seconds N] [--threads N] [--keep]

1. A throw-away MariaDB primary (fixtures/lib/mariadb.sh, sandbox
   $LAG_SANDBOX): binlog ROW, sync_binlog=1, innodb_flush_log_at_trx_commit=1,
   binlog_checksum CRC32, max_binlog_size 1G, time zone UTC. A replication
   user (REPLICATION SLAVE, BINLOG MONITOR, REPLICATION MASTER ADMIN, SLAVE
   MONITOR), sysbench oltp_write_only prepared ($TABLES tables x $TABLE_SIZE
   rows) and a probe table bench_probe.probe (id AUTO_INCREMENT, t DATETIME(6)).
2. The sidecar, started after the prepare (so it begins at the primary's
   current end):
     GAPLESS_LOG=info,gapless::ring=debug gapless stream --source mysql://...
       --ring $LAG_RING --fsync commit --ring-size $RING_SIZE --ssl-mode DISABLED
   The ring is on the real disk (default under target/), like the primary's
   data. At every sync of the ring it logs
     <RFC3339 UTC time> DEBUG gapless::ring::writer: durable file=F position=P
3. Load: sysbench oltp_write_only, --threads N (default 4) for --seconds N
   (default 60), no rate limit. From 1 s after it starts until 1 s before it
   ends, a probe client (one mariadb session) commits
     INSERT INTO bench_probe.probe (t) VALUES (NOW(6))
   every $PROBE_MS ms (a slot is skipped when the previous commit was not
   back yet), then reads SELECT LAST_INSERT_ID(), NOW(6): the time its
   commit had returned.
4. After the load: waits until the sidecar has logged a durable position at
   or past SHOW MASTER STATUS, reads its peak RSS (VmHWM) and CPU time,
   stops it (SIGTERM; it must exit 0).
5. For each probe row in `gapless decode --ring DIR --format jsonl --table
   probe`: its transaction's XID event (same gtid) ends at (file, end_pos);
   the first durable line at or past that is when it became durable.
     write -> durable   = durable time - t (the primary's NOW(6) in the INSERT)
     commit -> durable  = durable time - NOW(6) read right after the commit
                          returned (negative: durable in the ring before the
                          client had its OK)
   Prints count, p50, p90, p99, max (whole run and per sixth of it),
   sysbench transactions/s and latency, and the sidecar's peak RSS (VmHWM:
   file pages it has mapped count too; RssAnon/RssFile at the end split
   them) and CPU.
   Fails if a probe row is missing from the ring or never became durable.

Options:
  --no-build      skip `cargo build --release --bin gapless`
  --seconds N     length of the sysbench run (default 60, at least 5)
  --threads N     sysbench threads (default 4)
  --keep          leave the server running, and keep the ring and the work
                  files (logs, probe times, decoded probes); prints where
  -h, --help      this text

Environment:
  LAG_SANDBOX     parent dir of the throw-away server (default /tmp/gapless-lag-bench)
  LAG_RING        ring directory (default target/sidecar-lag-ring; emptied first)
  RING_SIZE       --ring-size (default 4G, the sidecar's own default)
  TABLES, TABLE_SIZE  sysbench tables and rows per table (default 4, 10000)
  PROBE_MS        probe period in ms (default 20)
  QUIET_WAIT      seconds to wait for a quiet machine first (default 300;
                  then the run goes ahead and says it was busy)
  CATCHUP_TIMEOUT seconds the sidecar may take to catch up after the load (default 120)

Numbers are only meaningful on an otherwise idle machine: the script prints
the CPU other processes used during the run.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAG_SANDBOX=${LAG_SANDBOX:-/tmp/gapless-lag-bench}
LAG_RING=${LAG_RING:-$ROOT/target/sidecar-lag-ring}
[[ $LAG_RING == /* ]] || LAG_RING=$PWD/$LAG_RING
RING_SIZE=${RING_SIZE:-4G}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
PROBE_MS=${PROBE_MS:-20}
QUIET_WAIT=${QUIET_WAIT:-300}
CATCHUP_TIMEOUT=${CATCHUP_TIMEOUT:-120}
DURATION=60
THREADS=4
BUILD=1
KEEP=0

while (($#)); do
    case $1 in
    -h | --help) usage; exit 0 ;;
    --no-build) BUILD=0 ;;
    --seconds) DURATION=${2:?--seconds needs a number}; shift ;;
    --threads) THREADS=${2:?--threads needs a number}; shift ;;
    --keep) KEEP=1 ;;
    *) echo "sidecar-lag.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [[ ! $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 5)); then
    echo "sidecar-lag.sh: --seconds must be a number >= 5" >&2
    exit 2
fi
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || { echo "sidecar-lag.sh: --threads must be a positive number" >&2; exit 2; }
[[ $PROBE_MS =~ ^[1-9][0-9]*$ ]] || { echo "sidecar-lag.sh: PROBE_MS must be a positive number" >&2; exit 2; }

log() { printf '[sidecar-lag.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "sidecar-lag.sh: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

GAPLESS=$ROOT/target/release/gapless
INSTANCE=lag-bench
REPL_USER=bench_repl
# Throw-away server on 127.0.0.1 only, gone at the end of the run.
PASSWORD=lag-bench-pw

ensure_packages() {
    local need=()
    [[ -x /usr/bin/time ]] || need+=(time)
    command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]] || need+=(mariadb-server)
    command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
    command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    install_missing "${need[@]}"
}

# ---------------------------------------------------------------- state

WORK=$(mktemp -d /tmp/gapless-lag-work.XXXXXX)
SERVER_UP=0
SIDECAR_PID=""
SYSBENCH_PID="" # /usr/bin/time running sysbench
PROBE_PID=""

# SIGTERM to the children of a pid (sysbench under /usr/bin/time).
stop_children() {
    local parent=$1 kids=() c
    read -ra kids <"/proc/$parent/task/$parent/children" 2>/dev/null || true
    for c in "${kids[@]}"; do kill -TERM "$c" 2>/dev/null || true; done
}

cleanup() {
    local rc=$?
    if [[ -n $PROBE_PID ]] && kill -0 "$PROBE_PID" 2>/dev/null; then
        kill -TERM "$PROBE_PID" 2>/dev/null || true
        wait "$PROBE_PID" 2>/dev/null || true
    fi
    if [[ -n $SYSBENCH_PID ]] && kill -0 "$SYSBENCH_PID" 2>/dev/null; then
        stop_children "$SYSBENCH_PID"
        wait "$SYSBENCH_PID" 2>/dev/null || true
    fi
    if [[ -n $SIDECAR_PID ]] && kill -0 "$SIDECAR_PID" 2>/dev/null; then
        kill -TERM "$SIDECAR_PID" 2>/dev/null || true
        wait "$SIDECAR_PID" 2>/dev/null || true
    fi
    if ((KEEP)); then
        if ((SERVER_UP)); then
            echo "--keep: server '$INSTANCE' left running on 127.0.0.1:$(mdb_port "$INSTANCE" 2>/dev/null || echo '?')" \
                "(GAPLESS_SANDBOX=$LAG_SANDBOX fixtures/lib/mariadb.sh mdb_sql $INSTANCE; mdb_destroy $INSTANCE to remove it)" >&2
        fi
        echo "--keep: ring in $LAG_RING, work files (sidecar log, probe times, decoded probes, sysbench output) in $WORK" >&2
    else
        if ((SERVER_UP)); then mdb_destroy "$INSTANCE" || true; fi
        [[ ! -f $LAG_RING/state.json ]] || rm -rf -- "$LAG_RING"
        rmdir -- "$LAG_RING" 2>/dev/null || true
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers






# ---------------------------------------------------------------- the probe

# python3 probe.py DURATION_S PERIOD_S CLIENT...: one client session; every
# PERIOD_S an INSERT of NOW(6) (autocommit), then the id and NOW(6) once it
# is back, printed as "id<TAB>t_after". Stops after DURATION_S or on SIGTERM.
cat >"$WORK/probe.py" <<'PY'
import signal, subprocess, sys, time

duration, period, cmd = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
client = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
sql = "INSERT INTO bench_probe.probe (t) VALUES (NOW(6)); SELECT LAST_INSERT_ID(), NOW(6);\n"
start = time.monotonic()
done = skipped = 0
while not stop and time.monotonic() - start < duration:
    client.stdin.write(sql)
    client.stdin.flush()
    line = client.stdout.readline()
    if not line:
        sys.exit(f"probe: the client ended after {done} probes (exit status {client.wait()})")
    print(line.rstrip("\n"), flush=True)
    done += 1
    now = time.monotonic()
    slot = int((now - start) / period) + 1  # the next slot not yet begun
    skipped = slot - done
    time.sleep(max(0.0, start + slot * period - time.monotonic()))
client.stdin.close()
if client.wait() != 0:
    sys.exit(f"probe: the client exited with status {client.returncode}")
print(f"probe: {done} probes, {skipped} slots skipped (the previous commit not back)", file=sys.stderr)
PY

# ---------------------------------------------------------------- analysis

# python3 analyse.py SIDECAR_LOG PROBES_JSONL PROBE_TSV FINAL_FILE FINAL_POS LOAD_END_US
cat >"$WORK/analyse.py" <<'PY'
import bisect, datetime, json, re, sys

log_path, jsonl_path, tsv_path, final_file, final_pos, load_end_us = sys.argv[1:7]
final = (final_file, int(final_pos))
load_end_us = int(load_end_us)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
US = datetime.timedelta(microseconds=1)

def us_iso(s):  # 2026-11-26T18:30:19.982775Z
    return (datetime.datetime.fromisoformat(s.replace("Z", "+00:00")) - EPOCH) // US

def us_sql(s):  # 2026-11-26 18:30:19.982775 (UTC: the server runs with time zone +00:00)
    d = datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
    return (d - EPOCH) // US

def die(msg):
    sys.exit("analyse: " + msg)

# Durable lines, in log order: their positions never go back.
line_re = re.compile(r"^(\S+)\s+DEBUG gapless::ring::writer: durable file=(\S+) position=(\d+)")
keys, times = [], []
with open(log_path) as f:
    for line in f:
        m = line_re.match(line)
        if not m:
            continue
        key = (m.group(2), int(m.group(3)))
        if keys and key < keys[-1]:
            die(f"durable positions went back: {keys[-1]} then {key}")
        keys.append(key)
        times.append(us_iso(m.group(1)))
if not keys:
    die("no durable lines in the sidecar log (GAPLESS_LOG=gapless::ring=debug?)")

def durable_at(key):
    i = bisect.bisect_left(keys, key)
    return times[i] if i < len(keys) else None

# Probe rows and the end of their transactions (the XID event with the same gtid).
rows, xid_end = {}, {}
with open(jsonl_path) as f:
    for line in f:
        o = json.loads(line)
        if o.get("event") == "xid":
            xid_end[o["gtid"]] = (o["file"], o["end_pos"])
        elif o.get("table") == "probe" and o.get("db") == "bench_probe" and o.get("op") == "insert":
            a = o["after"]
            rows[a.get("id", a.get("@1"))] = (o["gtid"], a.get("t", a.get("@2")))
after = {}
with open(tsv_path) as f:
    for line in f:
        i, t = line.rstrip("\n").split("\t")
        after[int(i)] = us_sql(t)
missing = sorted(set(after) - set(rows))
if missing:
    die(f"{len(missing)} of {len(after)} probe rows are not in the ring (first ids: {missing[:5]})")

samples = []  # (t_write_us, write->durable us, commit->durable us)
for pid in sorted(after):
    gtid, t = rows[pid]
    if gtid not in xid_end:
        die(f"probe {pid} (gtid {gtid}): no XID event with that gtid in the ring")
    d = durable_at(xid_end[gtid])
    if d is None:
        die(f"probe {pid}: its XID end {xid_end[gtid]} is past the last durable line")
    tw = us_sql(t)
    samples.append((tw, d - tw, d - after[pid]))

def pct(sorted_vals, p):  # nearest rank
    k = max(1, -(-len(sorted_vals) * p // 100))
    return sorted_vals[k - 1]

def stats(vals):
    v = sorted(vals)
    return len(v), pct(v, 50), pct(v, 90), pct(v, 99), v[-1]

def ms(us):
    return f"{us / 1000:8.2f}"

print(f"{'probes':<28} {'count':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
for name, idx in (("write -> durable", 1), ("commit returned -> durable", 2)):
    n, p50, p90, p99, mx = stats([s[idx] for s in samples])
    print(f"{name:<28} {n:>6} {ms(p50)} {ms(p90)} {ms(p99)} {ms(mx)}")
    if idx == 1:
        summary = (p50, p99, mx)

print()
print("write -> durable over the run, per sixth (does it grow?):")
print(f"  {'from s':>6} {'to s':>6} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
t0, t1 = samples[0][0], samples[-1][0]
span = max(1, t1 - t0 + 1)
firsts = []
for k in range(6):
    lo, hi = t0 + span * k // 6, t0 + span * (k + 1) // 6
    part = [s[1] for s in samples if lo <= s[0] < hi]
    if not part:
        continue
    n, p50, _, p99, mx = stats(part)
    firsts.append(p50)
    print(f"  {(lo - t0) / 1e6:6.1f} {(hi - t0) / 1e6:6.1f} {n:>6} {ms(p50)} {ms(p99)} {ms(mx)}")

caught = durable_at(final)
if caught is None:
    die(f"the primary's final position {final} was never logged durable")
print()
print(f"after the load: the primary's last position {final[0]}:{final[1]} was durable in the ring "
      f"{(caught - load_end_us) / 1000:.1f} ms after sysbench exited (negative: before)")
notes = []
if caught - load_end_us > 1_000_000:
    notes.append("the sidecar needed more than 1 s after the load to catch up: it fell behind")
if len(firsts) >= 2 and firsts[-1] > 3 * firsts[0] and firsts[-1] > 10_000:
    notes.append("the median lag of the last sixth is over 3x that of the first: the lag grew during the run")
for n in notes:
    print("NOTE: " + n)
print(f"SUMMARY p50_ms={summary[0] / 1000:.2f} p99_ms={summary[1] / 1000:.2f} max_ms={summary[2] / 1000:.2f} probes={len(samples)}")
PY

# ---------------------------------------------------------------- run

main() {
    ensure_packages
    if ((BUILD)); then
        log "cargo build --release --bin gapless"
        (cd "$ROOT" && cargo build --release --bin gapless --quiet)
    fi
    [[ -x $GAPLESS ]] || die "$GAPLESS missing (run without --no-build)"

    export GAPLESS_SANDBOX=$LAG_SANDBOX
    # shellcheck source=../fixtures/lib/mariadb.sh disable=SC1091
    . "$ROOT/fixtures/lib/mariadb.sh"

    local mariadbd
    mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
    echo "machine: $(nproc) vCPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(uname -sr)"
    echo "versions: server $("$mariadbd" --version | sed 's/.*Ver //'); $(sysbench --version); gapless $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree)"
    fresh_ring "$LAG_RING" LAG_RING
    mkdir -p -- "$LAG_SANDBOX"
    echo "disk: ring in $LAG_RING ($(where "$LAG_RING")), primary in $LAG_SANDBOX ($(where "$LAG_SANDBOX"))"

    # The primary.
    mdb_destroy "$INSTANCE" >/dev/null 2>&1 || true
    local port sock
    port=$(mdb_free_port 34800)
    SERVER_UP=1
    log "starting MariaDB '$INSTANCE' on 127.0.0.1:$port ($(mdb_dir "$INSTANCE"))"
    mdb_start "$INSTANCE" "$port" 1 --sync-binlog=1 --innodb-flush-log-at-trx-commit=1 \
        --binlog-checksum=CRC32 --max-binlog-size=1G --max-connections=200
    sock=$(mdb_socket "$INSTANCE")
    mdb_sql "$INSTANCE" <<SQL
SET SESSION sql_log_bin = 0;
CREATE USER '$REPL_USER'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICATION MASTER ADMIN, SLAVE MONITOR ON *.* TO '$REPL_USER'@'127.0.0.1';
SQL
    mdb_sql "$INSTANCE" <<'SQL'
CREATE DATABASE sbtest;
CREATE DATABASE bench_probe;
CREATE TABLE bench_probe.probe (id BIGINT AUTO_INCREMENT PRIMARY KEY, t DATETIME(6) NOT NULL) ENGINE=InnoDB;
SQL
    local sb=(sysbench --db-driver=mysql --mysql-socket="$sock" --mysql-user=root
        --mysql-db=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE")
    log "sysbench prepare: $TABLES tables x $TABLE_SIZE rows"
    "${sb[@]}" oltp_write_only prepare >"$WORK/prepare.log" 2>&1 || { tail -n 5 "$WORK/prepare.log" >&2; die "sysbench prepare failed"; }
    echo "primary: $(mdb_sql "$INSTANCE" -N -B -e "SELECT CONCAT('sync_binlog=', @@sync_binlog, ' innodb_flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit, ' binlog_format=', @@binlog_format, ' binlog_checksum=', @@binlog_checksum, ' time_zone=', @@time_zone)")"

    # The sidecar.
    log "starting the sidecar: ring $LAG_RING, --fsync commit"
    GAPLESS_PASSWORD=$PASSWORD GAPLESS_LOG=info,gapless::ring=debug "$GAPLESS" stream \
        --source "mysql://$REPL_USER@127.0.0.1:$port" --ring "$LAG_RING" --fsync commit \
        --ring-size "$RING_SIZE" --ssl-mode DISABLED >"$WORK/sidecar.out" 2>"$WORK/sidecar.log" &
    SIDECAR_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q ' streaming ' "$WORK/sidecar.log" && break
        kill -0 "$SIDECAR_PID" 2>/dev/null || { tail -n 5 "$WORK/sidecar.log" >&2; die "the sidecar exited at start"; }
        sleep 0.1
    done
    grep -q ' streaming ' "$WORK/sidecar.log" || die "the sidecar did not start streaming within 30 s"
    log "sidecar: $(grep -m1 ' streaming ' "$WORK/sidecar.log" | sed 's/.*INFO //')"

    # A quiet machine first (shared cores).
    local busy
    busy=$(cpu_busy)
    if ((busy > 10)); then
        log "other processes use ${busy}% of the CPUs; waiting up to ${QUIET_WAIT}s for a quiet machine"
        wait_quiet || log "the machine did not get quiet; going ahead (numbers provisional)"
    fi
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); CPU busy (1 s sample): $(cpu_busy)%"

    # The load, and the probes meanwhile.
    local spid b0 b1 g0 g1 s0 s1 t_start t_end
    spid=$(mdb_pid "$INSTANCE")
    b0=$(sys_busy) g0=$(proc_ticks "$SIDECAR_PID") s0=$(proc_ticks "$spid")
    t_start=$EPOCHREALTIME
    log "sysbench oltp_write_only run: --threads=$THREADS --time=$DURATION; probe every $PROBE_MS ms"
    /usr/bin/time -f '%U %S' -o "$WORK/sysbench.time" "${sb[@]}" --threads="$THREADS" --time="$DURATION" \
        --report-interval=10 --rand-seed=1 oltp_write_only run >"$WORK/sysbench.log" 2>&1 &
    SYSBENCH_PID=$!
    sleep 1
    python3 "$WORK/probe.py" "$((DURATION - 2))" "$(awk -v m="$PROBE_MS" 'BEGIN { print m / 1000 }')" \
        mariadb --no-defaults --socket="$sock" --user=root -N -B --unbuffered \
        >"$WORK/probe.tsv" 2>"$WORK/probe.err" &
    PROBE_PID=$!
    wait "$PROBE_PID" || { cat "$WORK/probe.err" >&2; die "the probe failed"; }
    PROBE_PID=""
    wait "$SYSBENCH_PID" || { tail -n 20 "$WORK/sysbench.log" >&2; die "sysbench failed"; }
    SYSBENCH_PID=""
    t_end=$EPOCHREALTIME
    b1=$(sys_busy) g1=$(proc_ticks "$SIDECAR_PID") s1=$(proc_ticks "$spid")
    log "$(cat "$WORK/probe.err")"

    # Catching up.
    local final ffile fpos cur cfile cpos deadline=$((SECONDS + CATCHUP_TIMEOUT))
    final=$(mdb_sql "$INSTANCE" -N -B -e 'SHOW MASTER STATUS' | cut -f1,2)
    ffile=${final%$'\t'*} fpos=${final#*$'\t'}
    while :; do
        cur=$(last_durable "$WORK/sidecar.log")
        cfile=${cur% *} cpos=${cur#* }
        if [[ -n $cur ]]; then
            [[ $cfile > $ffile ]] && break
            [[ $cfile == "$ffile" ]] && ((cpos >= fpos)) && break
        fi
        kill -0 "$SIDECAR_PID" 2>/dev/null || { tail -n 5 "$WORK/sidecar.log" >&2; die "the sidecar exited"; }
        ((SECONDS < deadline)) || die "the sidecar is at ${cur:-nothing durable}, the primary at $ffile:$fpos after ${CATCHUP_TIMEOUT}s"
        sleep 0.1
    done
    log "sidecar durable at $cfile:$cpos (primary: $ffile:$fpos)"
    # VmHWM counts the pages of the ring's memory-mapped segment the
    # process touched; RssAnon / RssFile (now, not peak) split the two.
    local hwm rss_split
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SIDECAR_PID/status")
    rss_split=$(awk '/^(RssAnon|RssFile):/ { printf "%s%s %.1f MiB", sep, $1, $2 / 1024; sep = ", " }' "/proc/$SIDECAR_PID/status")
    kill -TERM "$SIDECAR_PID"
    wait "$SIDECAR_PID" || die "the sidecar exited with status $? after SIGTERM: $(tail -n 3 "$WORK/sidecar.log")"
    SIDECAR_PID=""
    local stopped
    stopped=$(grep ' stopped ' "$WORK/sidecar.log" | tail -n 1 | sed 's/.*INFO //')
    [[ -n $stopped ]] || die "no 'stopped' line in the sidecar log"
    grep -q 'connections=1 ' <<<"$stopped" || echo "NOTE: the sidecar reconnected during the run: $stopped"

    # The probes as the ring holds them.
    "$GAPLESS" decode --ring "$LAG_RING" --format jsonl --table probe >"$WORK/probes.jsonl"

    # Results.
    local secs tps txns lat_avg lat_95 errs su ss
    secs=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')
    txns=$(sed -n 's/^ *transactions: *\([0-9]*\) *(\([0-9.]*\) per sec.*/\1/p' "$WORK/sysbench.log")
    tps=$(sed -n 's/^ *transactions: *\([0-9]*\) *(\([0-9.]*\) per sec.*/\2/p' "$WORK/sysbench.log")
    errs=$(sed -n 's/^ *ignored errors: *\([0-9]*\).*/\1/p' "$WORK/sysbench.log")
    lat_avg=$(sed -n 's/^ *avg: *\([0-9.]*\).*/\1/p' "$WORK/sysbench.log")
    lat_95=$(sed -n 's/^ *95th percentile: *\([0-9.]*\).*/\1/p' "$WORK/sysbench.log")
    [[ -n $tps ]] || { tail -n 30 "$WORK/sysbench.log" >&2; die "no transactions line in sysbench's output"; }
    read -r su ss <"$WORK/sysbench.time"

    echo
    echo "== sidecar lag: sysbench oltp_write_only, $THREADS threads, ${DURATION}s; gapless stream --ring --fsync commit"
    echo "date: $(date -u '+%F %T UTC')"
    echo "sidecar:  GAPLESS_LOG=info,gapless::ring=debug gapless stream --source mysql://$REPL_USER@127.0.0.1:$port --ring $LAG_RING --fsync commit --ring-size $RING_SIZE --ssl-mode DISABLED"
    echo "load:     ${sb[*]} --threads=$THREADS --time=$DURATION --report-interval=10 --rand-seed=1 oltp_write_only run"
    echo "probes:   one session, every $PROBE_MS ms: INSERT INTO bench_probe.probe (t) VALUES (NOW(6)); SELECT LAST_INSERT_ID(), NOW(6)"
    echo "sysbench: $txns transactions, $tps per s; latency avg $lat_avg ms, 95th percentile $lat_95 ms; ignored errors ${errs:-?}"
    grep '^\[ ' "$WORK/sysbench.log" | sed 's/^/  /' || true
    echo "sidecar: peak RSS (VmHWM) $(awk -v k="$hwm" 'BEGIN { printf "%.1f MiB", k / 1024 }') (at the end: $rss_split);" \
        "CPU during the load $(awk -v t="$((g1 - g0))" -v hz="$HZ" -v s="$secs" 'BEGIN { printf "%.2f s (%.0f%% of one CPU)", t / hz, 100 * t / hz / s }');" \
        "durable lines logged: $(grep -c ' durable ' "$WORK/sidecar.log"); $stopped"
    echo "CPU during the load (${secs} s, $(nproc) CPUs): primary $(awk -v t="$((s1 - s0))" -v hz="$HZ" 'BEGIN { printf "%.1f", t / hz }') s," \
        "sysbench $(awk -v u="$su" -v s="$ss" 'BEGIN { printf "%.1f", u + s }') s," \
        "sidecar $(awk -v t="$((g1 - g0))" -v hz="$HZ" 'BEGIN { printf "%.1f", t / hz }') s," \
        "everything else (probe, other processes) $(awk -v b="$((b1 - b0 - (s1 - s0) - (g1 - g0)))" -v hz="$HZ" -v u="$su" -v s="$ss" 'BEGIN { printf "%.1f", b / hz - u - s }') s"
    echo
    python3 "$WORK/analyse.py" "$WORK/sidecar.log" "$WORK/probes.jsonl" "$WORK/probe.tsv" "$ffile" "$fpos" \
        "$(awk -v t="$t_end" 'BEGIN { printf "%.0f", t * 1e6 }')"
    echo
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); CPU busy now: $(cpu_busy)%"
}

main
