//! The invariant the `ring_recovery` fuzz target asserts, kept in the crate
//! so that the fuzz target (`fuzz/fuzz_targets/ring_recovery.rs`) and the
//! corpus replay test (`tests/run_all_fuzz_files.rs`) run the same checks.
//! Not part of the public API.
//!
//! [`check_recovery`] writes a valid ring into a fresh scratch directory,
//! damages one of its files with the input's bytes, and checks that
//! recovery and reading cope: they may refuse the damage with an error,
//! never panic, never hand out a broken unit, and a ring that recovers
//! keeps what it held when it is written to again.
//!
//! # Input layout
//!
//! ```text
//! 0    flags
//!        & 3         the file damaged: 0 the newest segment, 1 the oldest,
//!                    2 the one before the newest (the newest when alone),
//!                    3 state.json
//!        & 4         crash-like stop: state.json is put back as it was
//!                    before the writer was dropped (no final checkpoint)
//!        >> 3 & 3    the ring written (see `build`): 0 a few small units
//!                    in one segment, 1 a unit spanning two segments, 2 a
//!                    full ring whose oldest files were reused, 3 two
//!                    writer runs (the first one stopped crash-like)
//!        & 0x20      XOR the payload into the file instead of overwriting
//!        & 0x40      the offset counts back from the end of the data (where
//!                    a walk over the segment's records stops; for
//!                    state.json, its end) instead of from the file's start
//!        & 0x80      segment: also delete its sparse index (`.idx`);
//!                    state.json: cut the file just after the payload
//! 1..3 offset, u16 little endian
//! 3..  payload: the bytes written (or XORed) at the offset. A segment file
//!      keeps its size (the payload is cut at its end); state.json may grow.
//! ```
//!
//! Missing bytes count as zeros: an empty input checks an undamaged ring.
//!
//! Each of the 8 valid rings (4 rings, 2 kinds of stop) is written with
//! [`RingWriter`] once per process and its files copied into a fresh scratch
//! directory per call: in `/dev/shm` when there is one, since the ring syncs
//! its files, which on a disk costs milliseconds per call.
//!
//! # Invariants
//!
//! - `RingReader::open` and iterating its units never panic, on the damaged
//!   directory, after recovery and after a refused recovery.
//! - Every unit a reader yields is whole (its first record has UNIT_START,
//!   its last UNIT_END, none in between either, no SEGMENT_END, RESENT only
//!   in a one-record unit) and is one of the units written (or a copy of a
//!   FORMAT_DESCRIPTION written, as the writer puts at a segment's start),
//!   and the units read (up to an error) are consecutive units of what was
//!   written.
//! - `RingWriter::open` returns `Ok` or `Err`, never panics. When `Ok`:
//!   every unit a reader could read before recovery is still read after it;
//!   one more unit can be appended; after a normal drop the ring opens
//!   again, and a reader yields exactly what it yielded after recovery
//!   (less the units of segments reused for the new unit) plus the new unit
//!   at the end, or, when reading stopped at damage, the same units and the
//!   same damage.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::index::SegmentIndex;
use super::made_up::MadeUpBinlog;
use super::record::{CRC32, RESENT, SEGMENT_END, SEGMENT_HEADER, UNIT_END, UNIT_START};
use super::{segment, state, Location, RingConfig, RingReader, RingWriter, SyncPolicy, Unit};
use crate::stream::Received;

const SEGMENT_BYTES: u64 = 64 << 10;
const SEGMENTS: u64 = 4;

fn config() -> RingConfig {
    RingConfig {
        ring_bytes: SEGMENT_BYTES * SEGMENTS,
        segment_bytes: Some(SEGMENT_BYTES),
        sync: SyncPolicy::Never,
        source: "fuzz".into(),
    }
}

/// Writes a valid ring into a scratch directory, damages it as `data`
/// says (see the module docs for the layout), and checks recovery and
/// reading; panics when an invariant breaks.
pub fn check_recovery(data: &[u8]) {
    check(data);
    // The writer's status is freed through epoch-based reclamation: collect
    // it now, so that each call frees what it allocates (libFuzzer looks
    // for leaks, slowly, after calls that do not).
    for _ in 0..4 {
        crossbeam_epoch::pin().flush();
    }
}

fn check(data: &[u8]) {
    let damage = Damage::parse(data);
    let scratch = Scratch::new();
    let dir = scratch.0.as_path();
    let ring = Template::get(damage.scenario, damage.crash);
    ring.copy_to(dir);
    damage.apply(dir);
    let what = damage.describe();
    let new_unit = MadeUpBinlog::new("mysql-bin.999999", 9).trx(1, 33);
    let new = expected(&new_unit);
    let known = Known { written: &ring.written, by_start: &ring.by_start, new: &new, what: &what };

    // Readers cope with whatever is on disk.
    let damaged = known.read(dir, "the damaged ring", false);

    let mut writer = match RingWriter::open(dir, &config()) {
        Ok(writer) => writer,
        Err(_) => {
            known.read(dir, "a ring whose recovery failed", false);
            return;
        }
    };
    let recovered = known.read(dir, "the recovered ring", false);
    if !recovered.units.starts_with(&damaged.units) {
        panic!(
            "recovery dropped units a reader could read before it: before {}, after {}; {what}",
            known.summary(&damaged),
            known.summary(&recovered)
        );
    }

    if let Err(e) = writer.append(&new_unit) {
        panic!("a recovered ring refuses a new unit: {e}; {what}");
    }
    drop(writer);
    match RingWriter::open(dir, &config()) {
        Ok(writer) => drop(writer),
        Err(e) => panic!("a recovered ring does not open again after a clean stop: {e}; {what}"),
    }
    let last = known.read(dir, "the ring with a new unit", true);

    // Units whose first record was in a segment reused for the new unit
    // are gone; every other unit read after recovery must still be there.
    let gone = recovered.units.iter().take_while(|(at, _)| at.seq < last.first_seq).count();
    let kept = &recovered.units[gone..];
    let new_index = ring.written.len();
    let ok = match &recovered.error {
        None => {
            last.error.is_none()
                && last.units.len() == kept.len() + 1
                && last.units.starts_with(kept)
                && last.units[kept.len()].1 == new_index
        }
        // Reading stopped at damage: it must stop there again, unless the
        // damaged segment was the one reused.
        Some(_) if gone == 0 && last.first_seq == recovered.first_seq => {
            last.error.is_some() && last.units == kept
        }
        Some(_) => last.units.starts_with(kept),
    };
    if !ok {
        panic!(
            "units lost or added after appending to a recovered ring: after recovery {}, \
             after appending one unit {}; {what}",
            known.summary(&recovered),
            known.summary(&last)
        );
    }
}

/// One record as written: flags, file, position, GTID, event.
type Seen = (u16, String, u64, String, Vec<u8>);

/// The FORMAT_DESCRIPTION event's type code.
const FORMAT_DESCRIPTION: u8 = gapless_decoder::EventType::FORMAT_DESCRIPTION.0;

/// What a reader yielded: whole units (where each starts, and which
/// written unit it is; the unit appended after recovery is number
/// `written.len()`), and the error that stopped it, if any. Copies of a
/// FORMAT_DESCRIPTION that the writer puts at the start of segments are
/// checked but not listed.
struct Readout {
    first_seq: u64,
    units: Vec<(Location, usize)>,
    error: Option<String>,
}

/// The units written to the ring and the one appended after recovery.
struct Known<'a> {
    written: &'a [Vec<Seen>],
    /// Written units by the file and position of their first event.
    by_start: &'a HashMap<(String, u64), usize>,
    new: &'a [Seen],
    /// The input, for messages.
    what: &'a str,
}

impl Known<'_> {
    fn unit(&self, i: usize) -> &[Seen] {
        self.written.get(i).map_or(self.new, |u| u.as_slice())
    }

    fn summary(&self, out: &Readout) -> String {
        let unit = |&(at, i): &(Location, usize)| {
            let gtid = &self.unit(i)[0].3;
            let gtid = if gtid.is_empty() { "-" } else { gtid };
            format!("{gtid}@{}:{}", at.seq, at.offset)
        };
        let n = out.units.len();
        let units: Vec<String> = if n <= 6 {
            out.units.iter().map(unit).collect()
        } else {
            let (head, tail) = (out.units[..3].iter().map(unit), out.units[n - 3..].iter().map(unit));
            head.chain(std::iter::once("..".to_string())).chain(tail).collect()
        };
        let end = out.error.as_deref().unwrap_or("the end");
        format!("{n} units (GTID@segment:offset) [{}] then {end}", units.join(" "))
    }

    /// Reads every unit of the ring in `dir` from its start, checking each
    /// is whole and a unit written, consecutive in the order written, or
    /// (`with_new`) the new unit, which may follow any of them and which
    /// nothing may follow.
    fn read(&self, dir: &Path, ring: &str, with_new: bool) -> Readout {
        let what = self.what;
        let reader = match RingReader::open(dir) {
            Ok(reader) => reader,
            Err(e) => return Readout { first_seq: 0, units: Vec::new(), error: Some(e.to_string()) },
        };
        let _ = (reader.first(), reader.last());
        let start = reader.start();
        let mut out = Readout { first_seq: start.seq, units: Vec::new(), error: None };
        let mut previous: Option<usize> = None;
        for unit in reader.units(start) {
            let unit = match unit {
                Ok(unit) => unit,
                Err(e) => {
                    out.error = Some(e.to_string());
                    break;
                }
            };
            if let Some(broken) = broken(&unit) {
                panic!(
                    "a reader of {ring} yielded a broken unit at {}:{}: {broken}; {what}",
                    unit.at.seq, unit.at.offset
                );
            }
            let first = &unit.records[0];
            let i = self.by_start.get(&(first.meta.file.to_string(), first.meta.start)).copied();
            let copy = first.meta.flags & RESENT != 0;
            let i = match i {
                Some(i) if copy && self.is_fde_copy(&unit, i) => continue,
                Some(i) if same(&unit, &self.written[i]) => i,
                _ if with_new && same(&unit, self.new) => self.written.len(),
                _ => panic!(
                    "a reader of {ring} yielded a unit that was never written, at {}:{} ({} {}:{}); {what}",
                    unit.at.seq, unit.at.offset, first.meta.gtid, first.meta.file, first.meta.start
                ),
            };
            let n = self.written.len();
            if let Some(p) = previous.filter(|&p| i != p + 1 && (i < n || p >= n)) {
                panic!(
                    "a reader of {ring} yielded units out of order or repeated: unit {i} of those written \
                     (the new one is {n}) after unit {p}, at {}:{}; {what}",
                    unit.at.seq, unit.at.offset
                );
            }
            previous = Some(i);
            out.units.push((unit.at, i));
        }
        out
    }

    /// A FORMAT_DESCRIPTION written as unit `i`, copied by the writer to the
    /// start of a segment (as a RESENT unit of its own).
    fn is_fde_copy(&self, unit: &Unit<'_>, i: usize) -> bool {
        let (r, w) = (&unit.records[0], &self.written[i]);
        w.len() == 1 && w[0].4.get(4) == Some(&FORMAT_DESCRIPTION) && r.event == w[0].4.as_slice()
    }
}

/// What makes `unit` not a whole unit, if anything.
fn broken(unit: &Unit<'_>) -> Option<String> {
    let n = unit.records.len();
    for (i, r) in unit.records.iter().enumerate() {
        let f = r.meta.flags;
        let broken = if f & SEGMENT_END != 0 {
            "a SEGMENT_END record"
        } else if (i == 0) != (f & UNIT_START != 0) {
            "UNIT_START on a record other than the first, or not on the first"
        } else if (i == n - 1) != (f & UNIT_END != 0) {
            "UNIT_END on a record other than the last, or not on the last"
        } else if f & RESENT != 0 && n > 1 {
            "a RESENT record in a unit of several records"
        } else {
            continue;
        };
        return Some(format!("{broken} (record {i} of {n}, flags {f:#06x})"));
    }
    None
}

/// The unit read is `written` record for record.
fn same(unit: &Unit<'_>, written: &[Seen]) -> bool {
    unit.records.len() == written.len()
        && unit.records.iter().zip(written).all(|(r, w)| {
            let m = &r.meta;
            (m.flags, m.file, m.start, m.gtid, r.event)
                == (w.0, w.1.as_str(), w.2, w.3.as_str(), w.4.as_slice())
        })
}

/// The records a reader must yield for `unit`.
fn expected(unit: &[Received]) -> Vec<Seen> {
    let n = unit.len();
    unit.iter()
        .enumerate()
        .map(|(i, r)| {
            let flags = if i == 0 { UNIT_START } else { 0 }
                | if i == n - 1 { UNIT_END } else { 0 }
                | if r.resent { RESENT } else { 0 }
                | if r.crc32 { CRC32 } else { 0 };
            let gtid = r.gtid.as_deref().unwrap_or("").to_string();
            (flags, r.file.to_string(), r.offset, gtid, r.bytes.to_vec())
        })
        .collect()
}

/// A valid ring, written once per process for each scenario and kind of
/// stop: its files and its units in the order written.
struct Template {
    files: Vec<(String, Vec<u8>)>,
    written: Vec<Vec<Seen>>,
    by_start: HashMap<(String, u64), usize>,
}

impl Template {
    fn get(scenario: u8, crash: bool) -> &'static Template {
        static TEMPLATES: [OnceLock<Template>; 8] = [const { OnceLock::new() }; 8];
        TEMPLATES[scenario as usize * 2 + crash as usize].get_or_init(|| {
            let scratch = Scratch::new();
            let written = build(&scratch.0, scenario, crash);
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&scratch.0).expect("fuzz setup: listing the ring") {
                let path = entry.expect("fuzz setup: listing the ring").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
                if name != "lock" {
                    files.push((name, std::fs::read(&path).expect("fuzz setup: reading the ring")));
                }
            }
            let by_start = written.iter().enumerate().map(|(i, u)| ((u[0].1.clone(), u[0].2), i)).collect();
            Template { files, written, by_start }
        })
    }

    fn copy_to(&self, dir: &Path) {
        for (name, bytes) in &self.files {
            std::fs::write(dir.join(name), bytes).expect("fuzz setup: writing the ring");
        }
    }
}

/// Writes the ring of `scenario` into `dir`, returning its units in order.
fn build(dir: &Path, scenario: u8, crash: bool) -> Vec<Vec<Seen>> {
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 1);
    let mut written = Vec::new();
    let mut units = vec![log.format_description()];
    match scenario {
        // A few small units in the first segment; a ROTATE and the next
        // file's FORMAT_DESCRIPTION among them.
        0 => {
            units.extend([log.trx(2, 50), log.trx(1, 10), log.rotate(), log.format_description()]);
            units.extend([log.trx(3, 80), log.trx(0, 0), log.trx(2, 30)]);
            run(dir, &units, crash, &mut written);
        }
        // Three units, one bigger than a segment (it spans segments 1 and
        // 2), three small ones after it.
        1 => {
            units.extend((0..3).map(|_| log.trx(2, 5000)));
            units.push(log.trx(14, 5000));
            units.extend((0..3).map(|_| log.trx(2, 100)));
            run(dir, &units, crash, &mut written);
        }
        // More than the ring holds: its oldest segment files were reused.
        2 => {
            units.extend((0..36).map(|_| log.trx(2, 3800)));
            run(dir, &units, crash, &mut written);
        }
        // Two writer runs, the first stopped crash-like (no checkpoint).
        _ => {
            units.extend((0..6).map(|_| log.trx(2, 200)));
            run(dir, &units, true, &mut written);
            let units: Vec<_> = (0..6).map(|_| log.trx(3, 150)).collect();
            run(dir, &units, crash, &mut written);
        }
    }
    written
}

/// One writer run appending `units`. A crash-like stop puts state.json back
/// as it was before the drop: what a killed writer leaves (the records are
/// all in the page cache, the last checkpoint is older).
fn run(dir: &Path, units: &[Vec<Received>], crash: bool, written: &mut Vec<Vec<Seen>>) {
    let mut writer = RingWriter::open(dir, &config())
        .unwrap_or_else(|e| panic!("fuzz setup: opening a valid ring failed: {e}"));
    for unit in units {
        writer.append(unit).unwrap_or_else(|e| panic!("fuzz setup: appending failed: {e}"));
        written.push(expected(unit));
    }
    let state = std::fs::read(state::path(dir)).expect("fuzz setup: reading state.json");
    drop(writer);
    if crash {
        std::fs::write(state::path(dir), state).expect("fuzz setup: writing state.json");
    }
}

/// Which file is damaged.
#[derive(Debug, Clone, Copy)]
enum Target {
    Newest,
    Oldest,
    BeforeNewest,
    State,
}

/// What the input says to do.
struct Damage<'a> {
    flags: u8,
    target: Target,
    scenario: u8,
    crash: bool,
    xor: bool,
    from_end: bool,
    extra: bool,
    offset: usize,
    payload: &'a [u8],
}

impl Damage<'_> {
    fn parse(data: &[u8]) -> Damage<'_> {
        let flags = data.first().copied().unwrap_or(0);
        let offset =
            u16::from_le_bytes([data.get(1).copied().unwrap_or(0), data.get(2).copied().unwrap_or(0)]);
        Damage {
            flags,
            target: [Target::Newest, Target::Oldest, Target::BeforeNewest, Target::State][flags as usize & 3],
            crash: flags & 4 != 0,
            scenario: (flags >> 3) & 3,
            xor: flags & 0x20 != 0,
            from_end: flags & 0x40 != 0,
            extra: flags & 0x80 != 0,
            offset: offset as usize,
            payload: data.get(3..).unwrap_or(&[]),
        }
    }

    fn describe(&self) -> String {
        format!(
            "input: flags {:#04x} (scenario {}, {:?}{}{}{}{}), offset {}, {} payload bytes",
            self.flags,
            self.scenario,
            self.target,
            if self.crash { ", crash-like stop" } else { "" },
            if self.xor { ", xor" } else { "" },
            if self.from_end { ", from the end of the data" } else { "" },
            if self.extra { ", extra" } else { "" },
            self.offset,
            self.payload.len()
        )
    }

    fn apply(&self, dir: &Path) {
        let files = segment::list(dir).expect("fuzz setup: listing segments");
        let pick = match self.target {
            Target::Newest => files.last(),
            Target::Oldest => files.first(),
            Target::BeforeNewest => files.get(files.len().saturating_sub(2)),
            Target::State => None,
        };
        match pick {
            Some((seq, path)) => self.damage_segment(dir, *seq, path),
            None => self.damage_state(dir),
        }
    }

    fn damage_segment(&self, dir: &Path, seq: u64, path: &Path) {
        if self.extra {
            let _ = std::fs::remove_file(SegmentIndex::path(dir, seq));
        }
        if self.payload.is_empty() {
            return;
        }
        let mut bytes = std::fs::read(path).expect("fuzz setup: reading a segment");
        let at = if self.from_end {
            let (end, _) = segment::walk(&bytes, seq, SEGMENT_HEADER, 0, |_| {});
            end.saturating_sub(self.offset)
        } else {
            self.offset
        }
        .min(bytes.len());
        let n = self.payload.len().min(bytes.len() - at);
        let range = &mut bytes[at..at + n];
        if self.xor {
            range.iter_mut().zip(self.payload).for_each(|(b, p)| *b ^= p);
        } else {
            range.copy_from_slice(&self.payload[..n]);
        }
        let file = std::fs::OpenOptions::new().write(true).open(path).expect("fuzz setup: opening a segment");
        file.write_all_at(range, at as u64).expect("fuzz setup: writing a segment");
    }

    fn damage_state(&self, dir: &Path) {
        let path = state::path(dir);
        let mut bytes = std::fs::read(&path).expect("fuzz setup: reading state.json");
        let at = if self.from_end { bytes.len().saturating_sub(self.offset) } else { self.offset }
            .min(bytes.len());
        let end = at + self.payload.len();
        if self.xor {
            let n = end.min(bytes.len()) - at;
            bytes[at..at + n].iter_mut().zip(self.payload).for_each(|(b, p)| *b ^= p);
        } else {
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[at..end].copy_from_slice(self.payload);
        }
        if self.extra {
            bytes.truncate(end);
        }
        std::fs::write(&path, bytes).expect("fuzz setup: writing state.json");
    }
}

/// A scratch ring directory, unique per call, removed on drop (also when
/// a check panics and unwinds). On tmpfs (`/dev/shm`) when there is one:
/// the ring syncs its files, which on a disk costs milliseconds per call.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name =
            format!("gapless-ring-fuzz-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let shm = Path::new("/dev/shm");
        for base in [shm.to_path_buf(), std::env::temp_dir()] {
            let dir = base.join(&name);
            let _ = std::fs::remove_dir_all(&dir);
            if (base != shm || shm.is_dir()) && std::fs::create_dir(&dir).is_ok() {
                return Scratch(dir);
            }
        }
        panic!("fuzz setup: cannot create a scratch directory {name} in /dev/shm or the temp dir");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
