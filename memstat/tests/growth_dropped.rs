//! Publish on growth, when the channel is full: the frame that showed a crossing was dropped,
//! and the figure it carried still reaches oomd soon after the channel drains, not at the next
//! quantum or heartbeat. (Its own test binary: one growth publisher per allocator.)

use std::alloc::System;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use memstat::publish::GrowthPublisher;
use memstat::{CountingAlloc, Frame, MAX_FRAME_LEN};

mod growth_rig;

#[global_allocator]
static ALLOC: CountingAlloc<System, GrowthPublisher> =
    CountingAlloc::with_signal(System, GrowthPublisher::new());

const QUANTUM: u64 = 64 * 1024;
const PACING: Duration = Duration::from_millis(20);

#[test]
fn a_frame_dropped_on_a_full_socket_is_sent_again_with_the_newest_figure() {
    let (tx, rx) = UnixDatagram::pair().expect("socketpair");
    // A second handle on the publisher's socket, to fill its queue.
    let filler = tx.try_clone().expect("dup");
    filler.set_nonblocking(true).expect("nonblocking");
    rx.set_nonblocking(true).expect("nonblocking");
    // No heartbeat within the test, and growth far below a quantum after the burst: only a
    // retry of the dropped frame can bring its figure.
    growth_rig::start(&ALLOC, tx, QUANTUM, PACING);
    let mut buf = [0u8; MAX_FRAME_LEN + 1];
    // The first frame.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no first frame");
        if let Ok(n) = rx.recv(&mut buf) {
            Frame::decode(&buf[..n]).expect("a valid frame");
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // The receiver stops keeping up: its queue is full.
    let mut queued = 0u32;
    loop {
        match filler.send(b"not a frame") {
            Ok(_) => queued += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the socket: {e}"),
        }
    }
    assert!(queued > 0, "the socket took nothing");
    // A burst of sixteen quanta at once: the frame that shows it finds the socket full.
    let burst = vec![1u8; 16 * QUANTUM as usize];
    let reached = ALLOC.live_bytes();
    std::thread::sleep(PACING * 5);
    // The receiver catches up; the figure of the burst arrives within a few pacing
    // intervals, not an hour later at the heartbeat.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut junk = 0u32;
    let frame = loop {
        assert!(
            Instant::now() < deadline,
            "the dropped figure ({reached} bytes) was never sent again"
        );
        match rx.recv(&mut buf) {
            Ok(n) => match Frame::decode(&buf[..n]) {
                Ok(frame) if frame.current_bytes + QUANTUM > reached => break frame,
                Ok(_) => {}
                Err(_) => junk += 1,
            },
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    assert_eq!(junk, queued, "every queued datagram came first");
    assert!(frame.current_bytes + QUANTUM > reached);
    drop(burst);
}
