# shellcheck shell=bash
#
# benches/lib.sh — helpers the bench scripts share. Sourced; the caller
# defines log, die and BENCH_DATA.

# Installs the Debian packages named (root only); nothing when none is named.
install_missing() {
    (($#)) || return 0
    ((EUID == 0)) || die "need root to install $* (or install them first)"
    log "installing $* (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# True when data set $1 is complete in $BENCH_DATA (files.txt and every file it lists).
have_set() {
    local dir=$BENCH_DATA/$1 f
    [[ -s $dir/files.txt ]] || return 1
    while IFS= read -r f; do [[ -s $dir/$f ]] || return 1; done <"$dir/files.txt"
}

# Percent of all CPUs busy over one second (from /proc/stat).
cpu_busy() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        busy = y[1] - x[1]; idle = y[2] - x[2]; printf "%.0f", 100 * busy / (busy + idle + 1e-9) }'
}

# Waits (at most QUIET_WAIT s) until the machine has been under $1 % busy
# (default 10) for 3 s running; false if it never was.
wait_quiet() {
    local quiet=0 deadline=$((SECONDS + QUIET_WAIT)) most=${1:-10}
    while ((SECONDS < deadline)); do
        if (($(cpu_busy) <= most)); then
            quiet=$((quiet + 1))
            ((quiet < 3)) || return 0
        else
            quiet=0
        fi
    done
    return 1
}

# Busy CPU ticks of the whole machine (user + nice + system + irq + softirq).
sys_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# CPU ticks (user + system) a process has used.
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# Clock ticks per second, for the two above (used by the scripts).
# shellcheck disable=SC2034
HZ=$(getconf CLK_TCK)

# The file system a directory is on: "DEVICE TYPE, mounted on DIR".
where() { df --output=source,fstype,target -- "$1" | awk 'NR == 2 { print $1 " " $2 ", mounted on " $3 }'; }

# The last durable place a sidecar logged in $1: "FILE POSITION", or nothing.
last_durable() {
    tac "$1" | grep -m1 -o 'durable file=[^ ]* position=[0-9]*' |
        sed 's/durable file=\([^ ]*\) position=\([0-9]*\)/\1 \2/' || true
}

# Empties ring directory $1 for a new run ($2: the setting that names it,
# for the message); refuses a non-empty directory that is not a ring.
fresh_ring() {
    local dir=$1
    if [[ -d $dir ]] && [[ -n $(ls -A -- "$dir") ]]; then
        [[ -f $dir/state.json ]] || die "$dir is not empty and holds no ring (state.json); set $2 elsewhere"
        rm -rf -- "$dir"
    fi
    mkdir -p -- "$dir"
}
