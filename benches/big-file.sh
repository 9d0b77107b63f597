#!/usr/bin/env bash
# benches/big-file.sh — peak memory of `gapless decode` on a binlog over 4 GiB.
#
# Builds BENCH_DATA/big-4x.bin from the sysbench data set of compare.sh (run
# that first): the file's FORMAT_DESCRIPTION followed by its events four times
# over. Positions in the copies repeat, which the decoder does not check, and
# every event keeps its valid checksum, so the whole file decodes. Then runs
# each output format over it and prints wall time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${BENCH_DATA:-benches/data}
SRC=$DATA/sysbench/mariadb-bin.000001
OUT=$DATA/big-4x.bin
[[ -r $SRC ]] || { echo "big-file: $SRC missing; run benches/compare.sh --data-only first" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null

if [[ ! -s $OUT ]]; then
    python3 - "$SRC" "$OUT.tmp" <<'PY'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
data = open(src, 'rb').read()
fde_end = 4 + struct.unpack('<I', data[13:17])[0]
# End of the last event before the closing ROTATE/STOP: the repeated body
# must end on an event boundary.
pos = fde_end
while pos + 19 <= len(data):
    ty, size = data[pos + 4], struct.unpack('<I', data[pos + 9:pos + 13])[0]
    if ty in (3, 4) or size < 19:
        break
    pos += size
with open(out, 'wb') as f:
    f.write(data[:fde_end])
    for _ in range(4):
        f.write(data[fde_end:pos])
PY
    mv "$OUT.tmp" "$OUT"
fi
cargo build --release --quiet
echo "input: $OUT, $(stat -c %s "$OUT") bytes"
for format in jsonl text sql; do
    /usr/bin/time -f "$format: %e s, peak RSS %M KiB" target/release/gapless decode --format "$format" "$OUT" >/dev/null
done
