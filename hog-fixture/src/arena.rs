//! The arena: the memory the hog holds, grown in chunks and never beyond its maximum.

use std::fmt;

use crate::bounds::{FILL, PAGE_SIZE};

/// The arena could not get memory from the allocator (or a size does not fit this target's
/// address space). Not a bug of the caller: the machine is out of memory, or a limit
/// (`RLIMIT_AS`, a cgroup) refused the growth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError {
    /// The size of the chunk that could not be allocated.
    pub bytes: u64,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not allocate a chunk of {} bytes", self.bytes)
    }
}

impl std::error::Error for AllocError {}

/// Memory held in chunks of at most `chunk` bytes, `max` bytes in all at most.
///
/// Every chunk is a `Vec<u8>` of exactly its length, allocated through the global allocator
/// (so a `CountingAlloc` counts it in full) and **written in full** with [`FILL`] before it is
/// kept, so the kernel backs (and charges) every page of it: the resident set really grows.
/// It shrinks only when asked ([`Arena::pop_chunk`], a reclaim), and is freed when dropped.
///
/// A [`Probe`] ([`Arena::set_probe`]) may split the writing of a chunk in two and be called
/// back in between: how `--mark-bytes` logs the moment a byte count is reached to the page.
pub struct Arena {
    chunks: Vec<Vec<u8>>,
    held: u64,
    chunk: u64,
    max: u64,
    probe: Option<Box<dyn Probe>>,
}

/// Asked before each chunk is written whether to be called back part of the way through it.
pub trait Probe {
    /// Before a chunk of `len` bytes is written, `held` bytes being held already: how many of
    /// its bytes to write before [`Probe::reached`] is called (at most `len`; `Some(0)`: before
    /// any), or `None` for no call in this chunk.
    fn split(&mut self, held: u64, len: u64) -> Option<u64>;
    /// The first `written` bytes of the chunk `split` was asked about are written (every page
    /// of them touched), `held` bytes being held before it.
    fn reached(&mut self, held: u64, written: u64);
}

impl Arena {
    /// An empty arena. A `chunk` of 0 is taken as 1 so that growth always progresses.
    #[must_use]
    pub fn new(chunk: u64, max: u64) -> Self {
        Self {
            chunks: Vec::new(),
            held: 0,
            chunk: chunk.max(1),
            max,
            probe: None,
        }
    }

    /// Asks `probe` before every later chunk (replacing any probe set before).
    pub fn set_probe(&mut self, probe: Box<dyn Probe>) {
        self.probe = Some(probe);
    }

    /// Bytes held: the sum of the chunk lengths. Never above [`max`](Self::max).
    #[must_use]
    pub fn held(&self) -> u64 {
        self.held
    }

    /// The cap.
    #[must_use]
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The size of a full chunk.
    #[must_use]
    pub fn chunk(&self) -> u64 {
        self.chunk
    }

    /// Bytes that may still be added.
    #[must_use]
    pub fn room(&self) -> u64 {
        self.max.saturating_sub(self.held)
    }

    /// Whether the arena holds `max` bytes.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.room() == 0
    }

    /// How many chunks are held.
    #[must_use]
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Adds one chunk of `min(chunk, room)` bytes; returns the bytes added (0 when full).
    pub fn grow_chunk(&mut self) -> Result<u64, AllocError> {
        self.grow_by(self.chunk)
    }

    /// Adds exactly `min(bytes, room)` bytes, in chunks of at most `chunk` bytes (the last one
    /// may be shorter); returns the bytes added. On an allocation failure the chunks already
    /// added stay held.
    pub fn grow_by(&mut self, bytes: u64) -> Result<u64, AllocError> {
        let target = bytes.min(self.room());
        let mut added = 0;
        while added < target {
            let step = self.chunk.min(target - added);
            self.push_chunk(step)?;
            added += step;
        }
        Ok(added)
    }

    fn push_chunk(&mut self, bytes: u64) -> Result<(), AllocError> {
        let err = AllocError { bytes };
        let len = usize::try_from(bytes).map_err(|_| err)?;
        self.chunks.try_reserve(1).map_err(|_| err)?;
        let mut chunk = Vec::new();
        chunk.try_reserve_exact(len).map_err(|_| err)?;
        // Writes every byte, hence every page (PAGE_SIZE bytes) at least once; in two steps
        // when the probe asks for a call in between (no reallocation: the capacity is `len`).
        if let Some(probe) = self.probe.as_mut() {
            if let Some(split) = probe.split(self.held, bytes) {
                let split = split.min(bytes);
                chunk.resize(usize::try_from(split).map_err(|_| err)?, FILL);
                std::hint::black_box(chunk.as_mut_slice());
                probe.reached(self.held, split);
            }
        }
        chunk.resize(len, FILL);
        // Tell the optimizer the bytes are observed, so the writes cannot be elided.
        std::hint::black_box(chunk.as_mut_slice());
        self.chunks.push(chunk);
        self.held += bytes;
        Ok(())
    }

    /// Frees the newest chunk; returns its bytes (0 when empty). The bytes go back to the
    /// allocator (and, for chunks of a page or more, to the kernel: the system allocator
    /// maps such blocks on their own).
    pub fn pop_chunk(&mut self) -> u64 {
        let Some(chunk) = self.chunks.pop() else {
            return 0;
        };
        let bytes = chunk.len() as u64;
        drop(chunk);
        self.held -= bytes;
        bytes
    }

    /// Whether every page of every chunk holds [`FILL`] (one byte looked at per page): a
    /// self-check for tests.
    #[must_use]
    pub fn is_touched(&self) -> bool {
        self.chunks.iter().all(|c| {
            c.iter().step_by(PAGE_SIZE).all(|&b| b == FILL) && c.last().is_none_or(|&b| b == FILL)
        })
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("held", &self.held)
            .field("chunk", &self.chunk)
            .field("max", &self.max)
            .field("chunks", &self.chunks.len())
            .field("probe", &self.probe.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    #[test]
    fn a_chunk_at_a_time_reaches_max_exactly_and_stops() {
        let mut arena = Arena::new(64 * KIB, 200 * KIB);
        let mut steps = Vec::new();
        while !arena.is_full() {
            steps.push(arena.grow_chunk().unwrap());
        }
        assert_eq!(steps, [64 * KIB, 64 * KIB, 64 * KIB, 8 * KIB]);
        assert_eq!(arena.held(), 200 * KIB);
        assert_eq!(arena.grow_chunk(), Ok(0));
        assert_eq!(arena.grow_by(1), Ok(0));
        assert_eq!(arena.held(), 200 * KIB);
        assert!(arena.is_touched());
    }

    #[test]
    fn growth_by_an_amount_is_exact_and_split_in_chunks() {
        let mut arena = Arena::new(64 * KIB, 1024 * KIB);
        assert_eq!(arena.grow_by(300_000), Ok(300_000));
        assert_eq!(arena.held(), 300_000);
        // 4 full chunks of 65536 and one of 37856.
        assert_eq!(arena.chunk_count(), 5);
        assert_eq!(arena.grow_by(1), Ok(1));
        assert_eq!(arena.held(), 300_001);
        assert!(arena.is_touched());
    }

    #[test]
    fn growth_is_capped_at_max() {
        let mut arena = Arena::new(64 * KIB, 100 * KIB);
        assert_eq!(arena.grow_by(10 * 1024 * KIB), Ok(100 * KIB));
        assert!(arena.is_full());
        assert_eq!(arena.room(), 0);
        assert_eq!(arena.held(), arena.max());
    }

    #[test]
    fn zero_max_holds_nothing_and_zero_chunk_still_progresses() {
        let mut empty = Arena::new(4096, 0);
        assert!(empty.is_full());
        assert_eq!(empty.grow_chunk(), Ok(0));

        let mut tiny = Arena::new(0, 3);
        assert_eq!(tiny.chunk(), 1);
        assert_eq!(tiny.grow_chunk(), Ok(1));
        assert_eq!(tiny.grow_by(10), Ok(2));
        assert_eq!(tiny.chunk_count(), 3);
    }

    /// Records every question and call, and asks for a call 1000 bytes into the chunk that
    /// starts at `at`.
    struct Recorder {
        at: u64,
        calls: std::rc::Rc<std::cell::RefCell<Vec<(u64, u64)>>>,
    }

    impl Probe for Recorder {
        fn split(&mut self, held: u64, _len: u64) -> Option<u64> {
            (held == self.at).then_some(1000)
        }
        fn reached(&mut self, held: u64, written: u64) {
            self.calls.borrow_mut().push((held, written));
        }
    }

    #[test]
    fn a_probe_is_called_once_inside_the_chunk_it_asked_for_and_the_chunk_is_still_whole() {
        let calls = std::rc::Rc::default();
        let mut arena = Arena::new(64 * KIB, 256 * KIB);
        arena.set_probe(Box::new(Recorder {
            at: 128 * KIB,
            calls: std::rc::Rc::clone(&calls),
        }));
        assert_eq!(arena.grow_by(256 * KIB), Ok(256 * KIB));
        assert_eq!(*calls.borrow(), [(128 * KIB, 1000)]);
        assert_eq!(arena.chunk_count(), 4);
        assert!(arena.is_touched());
    }

    #[test]
    fn an_impossible_chunk_is_an_error_not_an_abort() {
        let mut arena = Arena::new(u64::MAX, u64::MAX);
        let err = arena.grow_chunk().unwrap_err();
        assert_eq!(err.bytes, u64::MAX);
        assert_eq!(arena.held(), 0);
        assert_eq!(
            err.to_string(),
            format!("could not allocate a chunk of {} bytes", u64::MAX)
        );
    }
}
