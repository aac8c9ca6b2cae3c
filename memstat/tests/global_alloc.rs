//! `CountingAlloc` installed as the real global allocator of this test binary.
//!
//! The test harness allocates on other threads too, so the assertions leave room for that
//! noise: a 1 MiB block must show up as at least 1 MiB, and go away again.

use std::alloc::System;
use std::hint::black_box;

use memstat::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc<System> = CountingAlloc::new(System);

const MIB: u64 = 1 << 20;

#[test]
fn a_mebibyte_vec_raises_live_bytes_and_dropping_it_lowers_them() {
    let before = ALLOC.live_bytes();
    let v = black_box(Vec::<u8>::with_capacity(1 << 20));
    let during = ALLOC.live_bytes();
    assert!(during >= before + MIB, "before {before}, during {during}");
    assert!(ALLOC.peak_bytes() >= during);

    drop(v);
    let after = ALLOC.live_bytes();
    assert!(after + MIB <= during, "during {during}, after {after}");
}
