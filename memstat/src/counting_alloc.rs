//! `CountingAlloc`: a `GlobalAlloc` wrapper that counts the bytes its inner allocator holds.
//!
//! The figures are **allocator bytes**: the sum of the `Layout::size()` of every block handed
//! out through this wrapper and not yet returned. They are not the kernel's resident set size:
//! they leave out allocator overhead and fragmentation, memory the program maps without the
//! allocator (`mmap`, thread stacks, the binary itself), pages never touched (a fresh
//! `Vec::with_capacity` counts in full although the kernel may not have backed it yet), and
//! anything a C library allocates with its own `malloc`.
//!
//! This module holds the only `unsafe` of the crate besides adopting an inherited file
//! descriptor in `UnixTransport::from_env`; each block states why it is sound.

use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A [`GlobalAlloc`] that forwards to `A` and counts live and peak **allocator bytes**.
///
/// Install it as the global allocator to measure a whole program:
///
/// ```
/// use std::alloc::System;
/// use memstat::CountingAlloc;
///
/// #[global_allocator]
/// static ALLOC: CountingAlloc<System> = CountingAlloc::new(System);
///
/// let v = vec![0u8; 4096];
/// assert!(ALLOC.live_bytes() >= 4096);
/// # drop(v);
/// ```
///
/// Only allocations that succeed are counted: a null return from the inner allocator changes
/// nothing, and a failed `realloc` leaves the old block (and its count) in place. Sizes are the
/// requested `Layout::size()`, so this is what the program asked for, not what the allocator
/// or the kernel spends on it.
///
/// # Allocator bytes, not RSS
///
/// These figures are not the kernel's resident set size. They leave out allocator overhead
/// and fragmentation; memory mapped without the allocator (`mmap`, thread stacks, the binary
/// itself); anything a C library allocates with its own `malloc`; and they count in full
/// pages the kernel has not backed yet (a fresh `Vec::with_capacity` is counted whole).
///
/// The counters are `AtomicUsize` with relaxed ordering: cheap enough for every allocation,
/// exact for the values they hold, and available on 32-bit targets without 64-bit atomics.
///
/// # Growth signal
///
/// A service stuck in a runaway allocation loop never calls its publisher. With a
/// [`GrowthSignal`] (`S`, see [`with_signal`](Self::with_signal)) the allocator itself says
/// when the live bytes reach a threshold the publisher armed
/// ([`arm_growth`](Self::arm_growth)): the allocation that reaches it calls
/// [`GrowthSignal::signal`] once, and the threshold is disarmed until armed again. The check
/// is one relaxed load per growing allocation; the signal runs at most once per arming.
/// With `std`, `memstat::publish::GrowthPublisher` is the signal (an `eventfd`) and the
/// thread that publishes on it.
pub struct CountingAlloc<A, S = NoSignal> {
    inner: A,
    live: AtomicUsize,
    peak: AtomicUsize,
    /// Live bytes at which `signal` runs next; `usize::MAX`: disarmed.
    armed_at: AtomicUsize,
    signal: S,
}

/// What a [`CountingAlloc`] calls when its live bytes reach the armed threshold.
///
/// It runs inside the global allocator, on the allocating thread: it must not allocate, block,
/// panic or take a lock an allocating thread may hold. Writing to an `eventfd` (non-blocking)
/// or setting an atomic flag is the intended use.
pub trait GrowthSignal {
    /// The live bytes reached the armed threshold.
    fn signal(&self);
}

/// No growth signal: [`CountingAlloc::arm_growth`] has no effect but to be disarmed again.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSignal;

impl GrowthSignal for NoSignal {
    #[inline]
    fn signal(&self) {}
}

impl<A> CountingAlloc<A> {
    /// Wraps `inner`, starting with zero live and zero peak bytes, with no growth signal.
    pub const fn new(inner: A) -> Self {
        Self::with_signal(inner, NoSignal)
    }
}

impl<A, S> CountingAlloc<A, S> {
    /// Wraps `inner` with the growth signal `signal` (disarmed until
    /// [`arm_growth`](Self::arm_growth)), starting with zero live and zero peak bytes.
    pub const fn with_signal(inner: A, signal: S) -> Self {
        Self {
            inner,
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            armed_at: AtomicUsize::new(usize::MAX),
            signal,
        }
    }

    /// The growth signal.
    pub const fn signal(&self) -> &S {
        &self.signal
    }

    /// Arms the growth signal: the first allocation after which the live bytes are at or
    /// above `at_bytes` calls [`GrowthSignal::signal`] once. Replaces an earlier arming.
    /// Returns false (and stays disarmed) if the live bytes already are at or above it: the
    /// caller should act now, then arm again.
    pub fn arm_growth(&self, at_bytes: u64) -> bool {
        let at = usize::try_from(at_bytes).unwrap_or(usize::MAX);
        // SeqCst on this store and the load after it, and on `grow`'s add and its load of
        // the threshold: of an arming and an allocation that race, at least one sees the
        // other (the threshold armed, or the live bytes grown). With weaker orderings both
        // may read the old value (a store may pass a later load, on x86 too): the arming
        // succeeds below the new figure and the allocation does not signal, so the crossing
        // waited for the next allocation or the heartbeat. The store also publishes the
        // signal's state (the eventfd) to the allocating thread that loads the threshold.
        self.armed_at.store(at, Ordering::SeqCst);
        if self.live.load(Ordering::SeqCst) >= at {
            self.armed_at.store(usize::MAX, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The armed threshold, or `None` when disarmed (after it fired, or never armed).
    #[must_use]
    pub fn armed_at(&self) -> Option<u64> {
        match self.armed_at.load(Ordering::Relaxed) {
            usize::MAX => None,
            at => Some(at as u64),
        }
    }

    /// Bytes allocated through this wrapper and not yet freed (allocator bytes, not RSS).
    #[must_use]
    pub fn live_bytes(&self) -> u64 {
        // usize is at most 64 bits on every target Rust supports: the cast is lossless.
        self.live.load(Ordering::Relaxed) as u64
    }

    /// The most [`live_bytes`](Self::live_bytes) has been since construction or the last
    /// [`reset_peak`](Self::reset_peak).
    ///
    /// Read separately from `live_bytes`, so a pair read while other threads allocate can show
    /// `peak < live` for an instant; the publisher
    /// ([`PublisherCore`](crate::publish::PublisherCore)) clamps such a pair.
    #[must_use]
    pub fn peak_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed) as u64
    }

    /// Lowers the peak to the current live bytes, starting a new measuring window.
    ///
    /// Exact when no other thread allocates meanwhile; an allocation racing with the reset is
    /// folded back in, but the peak may then trail `live_bytes` until the next allocation.
    pub fn reset_peak(&self) {
        self.peak
            .store(self.live.load(Ordering::Relaxed), Ordering::Relaxed);
        self.peak
            .fetch_max(self.live.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }

    fn shrink(&self, bytes: usize) {
        // Cannot go below zero unless a caller frees a block this wrapper never handed out,
        // which `GlobalAlloc::dealloc`'s contract forbids; atomics wrap rather than panic.
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl<A, S: GrowthSignal> CountingAlloc<A, S> {
    fn grow(&self, bytes: usize) {
        // SeqCst: see `arm_growth`. (On x86 the add is a locked instruction and the load a
        // plain one whatever the ordering.)
        let live = self
            .live
            .fetch_add(bytes, Ordering::SeqCst)
            .wrapping_add(bytes);
        self.peak.fetch_max(live, Ordering::Relaxed);
        let at = self.armed_at.load(Ordering::SeqCst);
        // Of the allocations that see the threshold reached, the one that disarms it signals:
        // once per arming, even when threads race.
        if live >= at
            && self
                .armed_at
                .compare_exchange(at, usize::MAX, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.signal.signal();
        }
    }
}

impl<A, S> fmt::Debug for CountingAlloc<A, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingAlloc")
            .field("live_bytes", &self.live_bytes())
            .field("peak_bytes", &self.peak_bytes())
            .finish_non_exhaustive()
    }
}

// SAFETY: every method forwards to `A`, which implements `GlobalAlloc`, with the caller's
// arguments unchanged, and returns `A`'s result unchanged. The wrapper only updates atomic
// counters (and may call the growth signal, which by `GrowthSignal`'s contract neither
// allocates nor touches the memory handed out), so `A`'s guarantees (alignment, size,
// validity of returned blocks) carry over as they are.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc, S: GrowthSignal> GlobalAlloc for CountingAlloc<A, S> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract (non-zero size), which
        // is all `A::alloc` requires.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            self.grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`; forwarded to `A` so its own (possibly faster) zeroing runs.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator (hence from `A`, since
        // every block we hand out is `A`'s) with this `layout`.
        unsafe { self.inner.dealloc(ptr, layout) };
        self.shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `ptr`/`layout` describe a live block of ours (so of
        // `A`) and that `new_size` is valid for `layout.align()`; forwarded unchanged.
        let new_ptr = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            let old_size = layout.size();
            if new_size >= old_size {
                self.grow(new_size - old_size);
            } else {
                self.shrink(old_size - new_size);
            }
        }
        new_ptr
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An allocator that always fails, to prove failures are not counted.
    struct Refuses;

    // SAFETY: returning null from every allocation is always allowed by `GlobalAlloc`.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Refuses {
        unsafe fn alloc(&self, _: Layout) -> *mut u8 {
            core::ptr::null_mut()
        }
        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
    }

    #[test]
    #[allow(unsafe_code)]
    fn failed_allocations_are_not_counted() {
        let alloc = CountingAlloc::new(Refuses);
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc.alloc(layout) };
        assert!(ptr.is_null());
        // SAFETY: as above.
        let ptr = unsafe { alloc.alloc_zeroed(layout) };
        assert!(ptr.is_null());
        assert_eq!((alloc.live_bytes(), alloc.peak_bytes()), (0, 0));
    }

    /// Counts its signals.
    #[derive(Default)]
    struct Counts(core::sync::atomic::AtomicU32);

    impl GrowthSignal for Counts {
        fn signal(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    #[allow(unsafe_code)]
    fn the_growth_signal_fires_once_per_arming_when_the_threshold_is_reached() {
        let alloc = CountingAlloc::with_signal(std::alloc::System, Counts::default());
        let signals = || alloc.signal().0.load(Ordering::Relaxed);
        let layout = Layout::from_size_align(1000, 8).unwrap();
        let mut blocks = std::vec::Vec::new();
        let mut take = |n: usize| {
            for _ in 0..n {
                // SAFETY: non-zero size; each block is freed below with the same layout.
                blocks.push(unsafe { alloc.alloc(layout) });
            }
        };
        take(1); // not armed: nothing
        assert_eq!(signals(), 0);
        assert!(alloc.arm_growth(3_000));
        take(1); // 2000
        assert_eq!(signals(), 0);
        take(1); // 3000: reached
        assert_eq!((signals(), alloc.armed_at()), (1, None));
        take(3); // disarmed: no more
        assert_eq!(signals(), 1);
        // Armed at or under what is live: refused, the caller acts now.
        assert!(!alloc.arm_growth(6_000));
        assert_eq!(alloc.armed_at(), None);
        assert!(alloc.arm_growth(6_001));
        take(1);
        assert_eq!(signals(), 2);
        for ptr in blocks {
            // SAFETY: every block came from `alloc` with `layout`.
            unsafe { alloc.dealloc(ptr, layout) };
        }
        assert_eq!(alloc.live_bytes(), 0);
    }

    #[test]
    fn debug_shows_the_counters() {
        let alloc = CountingAlloc::new(Refuses);
        assert_eq!(
            format!("{alloc:?}"),
            "CountingAlloc { live_bytes: 0, peak_bytes: 0, .. }"
        );
    }
}
