//! Publish on growth: from the allocation that crosses the quantum to the frame received on
//! the other end of the socket, with nobody calling `publish` (the allocator's growth signal
//! wakes `GrowthPublisher`'s thread, which sends). One iteration is one crossing: allocate a
//! quantum, receive the frame that shows it. What is allocated is kept (a free would lower
//! the figure below the armed threshold), so the quantum is small: 1 KiB.

use std::alloc::System;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use memstat::publish::{GrowthPublisher, PublisherConfig};
use memstat::{CountingAlloc, Frame, Publisher, MAX_FRAME_LEN};

#[global_allocator]
static ALLOC: CountingAlloc<System, GrowthPublisher> =
    CountingAlloc::with_signal(System, GrowthPublisher::new());

const QUANTUM: u64 = 1024;

fn growth(c: &mut Criterion) {
    let (tx, rx) = UnixDatagram::pair().expect("socketpair");
    rx.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let config = PublisherConfig {
        quantum: QUANTUM,
        heartbeat: Duration::from_secs(3600),
        ..PublisherConfig::default()
    };
    GrowthPublisher::start(&ALLOC, Publisher::from_fd(OwnedFd::from(tx), config)).expect("started");
    let mut buf = [0u8; MAX_FRAME_LEN + 1];
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(1 << 20);
    c.bench_function("growth/allocation_to_frame_received/1KiB", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                assert!(held.len() < held.capacity(), "more crossings than expected");
                let floor = ALLOC.live_bytes() + QUANTUM;
                let at = Instant::now();
                held.push(vec![1u8; QUANTUM as usize]);
                loop {
                    let n = rx.recv(&mut buf).expect("a frame within 5 s");
                    let frame = Frame::decode(&buf[..n]).expect("valid");
                    if frame.current_bytes >= floor {
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
