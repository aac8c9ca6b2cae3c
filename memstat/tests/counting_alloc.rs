//! `CountingAlloc` driven directly through the `GlobalAlloc` trait, with known layouts.
#![allow(clippy::unwrap_used, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

use memstat::CountingAlloc;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn counts<A>(alloc: &CountingAlloc<A>) -> (u64, u64) {
    (alloc.live_bytes(), alloc.peak_bytes())
}

#[test]
fn live_and_peak_follow_alloc_realloc_and_dealloc_exactly() {
    let alloc = CountingAlloc::new(System);
    assert_eq!(counts(&alloc), (0, 0));

    // SAFETY (whole test): every layout has a non-zero size and alignment 8; every block is
    // freed or reallocated once, with the layout it currently has.
    unsafe {
        let a = alloc.alloc(layout(100));
        let b = alloc.alloc(layout(50));
        assert!(!a.is_null() && !b.is_null());
        assert_eq!(counts(&alloc), (150, 150));

        alloc.dealloc(a, layout(100));
        assert_eq!(counts(&alloc), (50, 150));

        // Growing 50 -> 200 adds 150.
        let b = alloc.realloc(b, layout(50), 200);
        assert!(!b.is_null());
        assert_eq!(counts(&alloc), (200, 200));

        let c = alloc.alloc(layout(50));
        assert_eq!(counts(&alloc), (250, 250));
        alloc.dealloc(c, layout(50));
        assert_eq!(counts(&alloc), (200, 250));

        // Shrinking 200 -> 20 removes 180; the peak stays.
        let b = alloc.realloc(b, layout(200), 20);
        assert!(!b.is_null());
        assert_eq!(counts(&alloc), (20, 250));

        let z = alloc.alloc_zeroed(layout(30));
        assert!(!z.is_null());
        assert!(std::slice::from_raw_parts(z, 30).iter().all(|&x| x == 0));
        assert_eq!(counts(&alloc), (50, 250));

        alloc.reset_peak();
        assert_eq!(counts(&alloc), (50, 50));

        alloc.dealloc(z, layout(30));
        alloc.dealloc(b, layout(20));
    }
    assert_eq!(counts(&alloc), (0, 50));
}

/// `System`, except that it refuses any block above 1 MiB.
struct Small;

const LIMIT: usize = 1 << 20;

unsafe impl GlobalAlloc for Small {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: every block of ours came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[test]
fn failed_alloc_and_realloc_change_nothing() {
    let alloc = CountingAlloc::new(Small);
    // SAFETY: non-zero sizes; `a` is freed once with the layout it has after the failed
    // realloc (which leaves the block as it was).
    unsafe {
        assert!(alloc.alloc(layout(LIMIT + 1)).is_null());
        assert!(alloc.alloc_zeroed(layout(LIMIT + 1)).is_null());
        assert_eq!(counts(&alloc), (0, 0));

        let a = alloc.alloc(layout(64));
        assert!(alloc.realloc(a, layout(64), LIMIT + 1).is_null());
        assert_eq!(counts(&alloc), (64, 64));
        alloc.dealloc(a, layout(64));
    }
    assert_eq!(counts(&alloc), (0, 64));
}

#[test]
fn usable_in_a_static_initialiser() {
    static ALLOC: CountingAlloc<System> = CountingAlloc::new(System);
    assert_eq!(counts(&ALLOC), (0, 0));
}
