//! Publish on growth: a program that never calls `publish` still gets a frame out for every
//! quantum it grows, because its allocator wakes the growth publisher.
//!
//! Run with `--nocapture` to see the allocation → frame received latency (median and max of
//! 300 growths); `benches/growth.rs` measures it with criterion for `docs/perf.md`.

use std::alloc::System;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use memstat::publish::{GrowthPublisher, PublisherConfig};
use memstat::{CountingAlloc, Frame, Publisher, MAX_FRAME_LEN};

#[global_allocator]
static ALLOC: CountingAlloc<System, GrowthPublisher> =
    CountingAlloc::with_signal(System, GrowthPublisher::new());

const QUANTUM: u64 = 64 * 1024;

/// The next frame, waiting at most 5 s.
fn next_frame(rx: &UnixDatagram) -> Frame {
    let mut buf = [0u8; MAX_FRAME_LEN + 1];
    let n = rx.recv(&mut buf).expect("a frame within 5 s");
    Frame::decode(&buf[..n]).expect("a valid frame")
}

#[test]
fn every_quantum_of_growth_is_published_without_a_call_and_a_second_start_is_refused() {
    let (tx, rx) = UnixDatagram::pair().expect("socketpair");
    rx.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // No heartbeat within the test: every frame after the first is the growth signal's.
    let config = PublisherConfig {
        quantum: QUANTUM,
        heartbeat: Duration::from_secs(3600),
        ..PublisherConfig::default()
    };
    let publisher = Publisher::from_fd(OwnedFd::from(tx), config);
    GrowthPublisher::start_paced(&ALLOC, publisher, Duration::ZERO).expect("started");
    let first = next_frame(&rx);
    assert_eq!(first.seq, 0);

    let (tx2, _rx2) = UnixDatagram::pair().expect("socketpair");
    let again = GrowthPublisher::start(&ALLOC, Publisher::from_fd(OwnedFd::from(tx2), config));
    assert_eq!(
        again.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::AlreadyExists)
    );

    // Grow to the armed threshold (one quantum above the figure last offered) with one
    // allocation at a time, and never publish: each crossing brings a frame that shows it.
    // Other threads (the test harness) allocate and free too, so the check is "a frame at or
    // above the threshold arrives", never "exactly one".
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(300);
    let mut latencies = Vec::new();
    for _ in 0..300 {
        // The publisher arms again right after each frame it sends.
        let threshold = loop {
            if let Some(t) = ALLOC.armed_at() {
                break t;
            }
            std::hint::spin_loop();
        };
        let need =
            usize::try_from(threshold.saturating_sub(ALLOC.live_bytes()).max(1)).expect("fits");
        let at = Instant::now();
        held.push(vec![1u8; need]);
        loop {
            let frame = next_frame(&rx);
            if frame.current_bytes >= threshold {
                latencies.push(at.elapsed());
                break;
            }
        }
    }
    latencies.sort();
    println!(
        "allocation -> frame received: median {:?}, max {:?} (300 crossings of a {} KiB quantum)",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        QUANTUM / 1024
    );
    assert_eq!(latencies.len(), 300);
    drop(held);
}
