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
pub struct CountingAlloc<A> {
    inner: A,
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl<A> CountingAlloc<A> {
    /// Wraps `inner`, starting with zero live and zero peak bytes.
    pub const fn new(inner: A) -> Self {
        Self {
            inner,
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
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

    fn grow(&self, bytes: usize) {
        let live = self
            .live
            .fetch_add(bytes, Ordering::Relaxed)
            .wrapping_add(bytes);
        self.peak.fetch_max(live, Ordering::Relaxed);
    }

    fn shrink(&self, bytes: usize) {
        // Cannot go below zero unless a caller frees a block this wrapper never handed out,
        // which `GlobalAlloc::dealloc`'s contract forbids; atomics wrap rather than panic.
        self.live.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl<A> fmt::Debug for CountingAlloc<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingAlloc")
            .field("live_bytes", &self.live_bytes())
            .field("peak_bytes", &self.peak_bytes())
            .finish_non_exhaustive()
    }
}

// SAFETY: every method forwards to `A`, which implements `GlobalAlloc`, with the caller's
// arguments unchanged, and returns `A`'s result unchanged. The wrapper only updates two
// atomic counters, which neither allocates nor touches the memory handed out, so `A`'s
// guarantees (alignment, size, validity of returned blocks) carry over as they are.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
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

    #[test]
    fn debug_shows_the_counters() {
        let alloc = CountingAlloc::new(Refuses);
        assert_eq!(
            format!("{alloc:?}"),
            "CountingAlloc { live_bytes: 0, peak_bytes: 0, .. }"
        );
    }
}
