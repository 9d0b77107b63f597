//! What the ring holds, published by the writer for readers in the same
//! process (the status API) without locks.

use std::sync::atomic::Ordering;

use crossbeam_epoch::{self as epoch, Atomic, Owned};
use serde::Serialize;

/// A place in the primary's binlog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coordinates {
    /// Binlog file.
    pub file: String,
    /// Position in it.
    pub position: u64,
    /// GTID of the unit there, or "".
    pub gtid: String,
    /// Event timestamp (seconds since the epoch).
    pub timestamp: u32,
}

/// The ring's state for status pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RingStatus {
    /// The ring directory.
    pub dir: String,
    /// The start of the oldest whole unit held.
    pub first: Option<Coordinates>,
    /// The end of the last whole unit written.
    pub last_written: Option<Coordinates>,
    /// The end of the last whole unit known to be on disk.
    pub last_durable: Option<Coordinates>,
    /// Bytes of records held.
    pub used_bytes: u64,
    /// Bytes the ring may use on disk.
    pub capacity_bytes: u64,
    /// Segment files in use.
    pub segments: u64,
    /// Why writing is paused (a full disk, an I/O error), if it is.
    pub paused: Option<String>,
}

/// A value one thread replaces and others read, lock-free: readers get a
/// clone of the latest value; replaced values are freed once no reader can
/// still see them (epoch-based reclamation).
pub struct Published<T> {
    value: Atomic<T>,
}

impl<T: Clone + Send + Sync> Published<T> {
    /// Publishes `value`.
    pub fn new(value: T) -> Self {
        Published { value: Atomic::new(value) }
    }

    /// Replaces the value.
    pub fn store(&self, value: T) {
        let guard = epoch::pin();
        let old = self.value.swap(Owned::new(value), Ordering::AcqRel, &guard);
        // SAFETY: `old` was published by `new` or `store` and is now
        // unreachable from `self`; it is freed only after every thread
        // pinned now has unpinned.
        unsafe { guard.defer_destroy(old) };
    }

    /// A copy of the current value.
    pub fn load(&self) -> T {
        let guard = epoch::pin();
        let current = self.value.load(Ordering::Acquire, &guard);
        // SAFETY: never null (set in `new`, only swapped for non-null), and
        // kept alive while `guard` is pinned.
        unsafe { current.deref() }.clone()
    }
}

impl<T> Drop for Published<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can load it any more.
        unsafe {
            let guard = epoch::unprotected();
            drop(self.value.load(Ordering::Relaxed, guard).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_whole_values_while_a_writer_replaces_them() {
        let shared = std::sync::Arc::new(Published::new(vec![0u64; 64]));
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    let v = shared.load();
                    assert!(v.iter().all(|&x| x == v[0]), "torn value");
                }
            })
        };
        for i in 1..10_000u64 {
            shared.store(vec![i; 64]);
        }
        reader.join().unwrap();
        assert_eq!(shared.load()[0], 9_999);
    }
}
