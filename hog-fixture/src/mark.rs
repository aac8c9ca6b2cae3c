//! `--mark-bytes`: the moment the hog's charge reaches a byte count, on `CLOCK_MONOTONIC`.
//!
//! A [`Probe`] on the arena. Before each chunk it takes the charge at the chunk's start (what
//! `--mark-base` says, or the arena's held bytes), and when the mark falls inside the chunk it
//! asks for the chunk to be written up to the mark's byte; then it reads the clock and logs
//! one `crossed …` line. It fires once; a `--mark-base` that cannot be read or parsed is
//! logged once and disarms it (the run goes on: a measurement lost, not a hog failed).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::arena::Probe;
use crate::log::Logger;

/// Longest `--mark-base` content read: a decimal `u64` and a newline fit in 21 bytes.
const MAX_BASE_LEN: usize = 32;

/// `CLOCK_MONOTONIC` in nanoseconds: the clock every process of the machine shares.
#[must_use]
pub(crate) fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The armed mark. See the module documentation.
#[derive(Debug)]
pub(crate) struct CrossingMark {
    mark: u64,
    base: Option<(File, PathBuf)>,
    started_ns: u64,
    log: Logger,
    /// The charge at the start of the chunk being split; `None` once fired or disarmed.
    armed: Option<u64>,
}

impl CrossingMark {
    /// A mark at `mark` bytes of charge; `base` is the `--mark-base` file, opened now;
    /// `started_ns` is the hog's start on [`monotonic_ns`].
    pub(crate) fn new(
        mark: u64,
        base: Option<&Path>,
        started_ns: u64,
        log: Logger,
    ) -> std::io::Result<Self> {
        let base = match base {
            Some(path) => Some((File::open(path)?, path.to_owned())),
            None => None,
        };
        Ok(Self {
            mark,
            base,
            started_ns,
            log,
            armed: Some(0),
        })
    }

    /// What `--mark-base` says now, or `held` without it; `None` (logged) when unreadable.
    fn charge(&self, held: u64) -> Option<u64> {
        let Some((file, path)) = &self.base else {
            return Some(held);
        };
        let mut buf = [0u8; MAX_BASE_LEN];
        let read = file.read_at(&mut buf, 0).map_err(|e| e.to_string());
        let parsed = read.and_then(|n| {
            std::str::from_utf8(&buf[..n])
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| "not a byte count".to_owned())
        });
        match parsed {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.log.line(format_args!(
                    "mark: cannot read {}: {e}; no crossing will be marked",
                    path.display()
                ));
                None
            }
        }
    }
}

impl Probe for CrossingMark {
    fn split(&mut self, held: u64, len: u64) -> Option<u64> {
        self.armed?;
        let Some(charge) = self.charge(held) else {
            self.armed = None;
            return None;
        };
        let split = self.mark.saturating_sub(charge);
        if split > len {
            return None;
        }
        self.armed = Some(charge);
        Some(split)
    }

    fn reached(&mut self, held: u64, written: u64) {
        let at_ns = monotonic_ns();
        let Some(charge) = self.armed.take() else {
            return;
        };
        self.log.line(format_args!(
            "crossed mark={} held={} charge={} at_ns={at_ns} grow_ns={}",
            self.mark,
            held + written,
            charge + written,
            at_ns.saturating_sub(self.started_ns),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(at: u64, base: Option<&Path>) -> CrossingMark {
        CrossingMark::new(at, base, monotonic_ns(), Logger::new(0)).unwrap()
    }

    #[test]
    fn without_a_base_the_mark_splits_the_chunk_that_holds_its_byte_once() {
        let mut m = mark(3 * 4096 + 10, None);
        assert_eq!(m.split(0, 8192), None);
        assert_eq!(m.split(8192, 8192), Some(4096 + 10));
        m.reached(8192, 4096 + 10);
        assert_eq!(m.split(16384, 8192), None, "fires once");
    }

    #[test]
    fn a_base_file_sets_the_charge_at_the_chunk_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.current");
        std::fs::write(&path, "1048576\n").unwrap();
        let mut m = mark(1 << 21, Some(&path));
        // Held is ignored: the file says 1 MiB is charged, so the mark is 1 MiB further.
        assert_eq!(m.split(0, 1 << 19), None);
        std::fs::write(&path, "1835008\n").unwrap();
        assert_eq!(m.split(1 << 19, 1 << 19), Some(1 << 18));
    }

    #[test]
    fn a_charge_already_past_the_mark_fires_at_the_chunk_start() {
        let mut m = mark(100, None);
        assert_eq!(m.split(4096, 4096), Some(0));
    }

    #[test]
    fn an_unreadable_base_disarms_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.current");
        std::fs::write(&path, "max\n").unwrap();
        let mut m = mark(10, Some(&path));
        assert_eq!(m.split(0, 4096), None);
        std::fs::write(&path, "0\n").unwrap();
        assert_eq!(m.split(0, 4096), None, "stays disarmed");
    }
}
