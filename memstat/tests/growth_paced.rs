//! Publish on growth, paced (latest wins): a runaway that crosses a quantum every millisecond
//! gets at most one frame out per pacing interval, and the frame that follows a burst carries
//! the figure the burst ended at. (Its own test binary: one growth publisher per allocator.)

use std::alloc::System;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use memstat::publish::GrowthPublisher;
use memstat::{CountingAlloc, Frame, MAX_FRAME_LEN};

mod growth_rig;

#[global_allocator]
static ALLOC: CountingAlloc<System, GrowthPublisher> =
    CountingAlloc::with_signal(System, GrowthPublisher::new());

const QUANTUM: u64 = 4 * 1024;
const PACING: Duration = Duration::from_millis(50);

#[test]
fn a_burst_of_crossings_brings_one_frame_per_interval_and_then_its_latest_figure() {
    let (tx, rx) = UnixDatagram::pair().expect("socketpair");
    rx.set_nonblocking(true).expect("nonblocking");
    growth_rig::start(&ALLOC, tx, QUANTUM, PACING);
    let mut buf = [0u8; MAX_FRAME_LEN + 1];
    let mut frames = |until: Instant| -> Vec<Frame> {
        let mut got = Vec::new();
        while Instant::now() < until {
            match rx.recv(&mut buf) {
                Ok(n) => got.push(Frame::decode(&buf[..n]).expect("a valid frame")),
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        got
    };
    // The first frame, then quiet for longer than the pacing.
    let first = frames(Instant::now() + PACING * 3);
    assert!(!first.is_empty(), "no first frame");

    // 300 ms of a quantum a millisecond: unpaced, about 300 frames.
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(400);
    let start = Instant::now();
    let mut burst = Vec::new();
    while start.elapsed() < Duration::from_millis(300) {
        held.push(vec![1u8; QUANTUM as usize]);
        burst.extend(frames(Instant::now() + Duration::from_millis(1)));
    }
    let end_bytes = ALLOC.live_bytes();
    // At most one per interval, and one more for the phase: 300 / 50 + 1.
    assert!(
        (2..=7).contains(&burst.len()),
        "{} frames during 300 ms of growth at a {PACING:?} pacing",
        burst.len()
    );
    // Latest wins: the frame after the burst shows where it ended.
    let after = frames(Instant::now() + PACING * 4);
    let last = after
        .last()
        .or(burst.last())
        .expect("a frame after the burst");
    assert!(
        last.current_bytes + QUANTUM >= end_bytes,
        "last frame {} bytes, the burst ended at {end_bytes}",
        last.current_bytes
    );
    drop(held);
}
