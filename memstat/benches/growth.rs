//! Publish on growth: from the allocation that crosses the quantum to the frame received on
//! the other end of the socket, with nobody calling `publish` (the allocator's growth signal
//! wakes `GrowthPublisher`'s thread, which sends). One iteration is one crossing: one
//! allocation that takes the live bytes to the armed threshold, then the frame that shows it.
//! What is allocated is kept, so the quantum is small: 1 KiB.

use std::alloc::System;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use memstat::publish::GrowthPublisher;
use memstat::{CountingAlloc, Frame, MAX_FRAME_LEN};

#[path = "../tests/growth_rig/mod.rs"]
mod growth_rig;

#[global_allocator]
static ALLOC: CountingAlloc<System, GrowthPublisher> =
    CountingAlloc::with_signal(System, GrowthPublisher::new());

const QUANTUM: u64 = 1024;

/// The threshold the publisher armed (one quantum above the figure it last offered: what is
/// freed meanwhile, by criterion itself, lowers the live bytes but not the threshold), and the
/// bytes one allocation needs to reach it. Waits for the arming, which follows each frame.
fn next_crossing() -> (u64, usize) {
    loop {
        if let Some(threshold) = ALLOC.armed_at() {
            let need = threshold.saturating_sub(ALLOC.live_bytes()).max(1);
            return (threshold, usize::try_from(need).expect("fits"));
        }
        std::hint::spin_loop();
    }
}

fn growth(c: &mut Criterion) {
    let (tx, rx) = UnixDatagram::pair().expect("socketpair");
    rx.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    growth_rig::start(&ALLOC, tx, QUANTUM, Duration::ZERO);
    let mut buf = [0u8; MAX_FRAME_LEN + 1];
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(1 << 20);
    c.bench_function("growth/allocation_to_frame_received/1KiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                assert!(held.len() < held.capacity(), "more crossings than expected");
                let (threshold, need) = next_crossing();
                let at = Instant::now();
                held.push(Vec::with_capacity(need));
                loop {
                    let n = rx.recv(&mut buf).expect("a frame within 5 s");
                    let frame = Frame::decode(&buf[..n]).expect("valid");
                    if frame.current_bytes >= threshold {
                        break;
                    }
                }
                total += at.elapsed();
            }
            total
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    targets = growth
}
criterion_main!(benches);
