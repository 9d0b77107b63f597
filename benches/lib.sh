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
