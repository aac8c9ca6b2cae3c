//! The portable publisher core over a fake transport, with time driven by hand.
//!
//! The behaviour tests (`tests/behaviour/`) run here on `PublisherCore<FakeTransport>`, as
//! they run on `Publisher` over real sockets in `tests/publisher.rs`. Below them are the
//! tests that need a transport a socket cannot imitate on demand: `SendError::Other`, a peer
//! that accepts and at once hangs up, and proof that the core leaves the transport alone
//! while it backs off.
#![allow(clippy::unwrap_used)]

mod behaviour;
mod fake_transport;

use std::time::Duration;

use behaviour::{ms, unlimited, Harness};
use fake_transport::FakeTransport;
use memstat::publish::{
    DropReason, PublishOutcome, PublisherConfig, PublisherCore, PublisherStats, SendError,
    Timestamp,
};
use memstat::Frame;

behaviour_tests!(Fake);

/// The core over a fake channel; `connected` cannot reconnect, `reconnecting` can.
struct Fake(PublisherCore<FakeTransport>);

impl Fake {
    fn transport(&mut self) -> &mut FakeTransport {
        self.0.transport_mut()
    }
}

impl Harness for Fake {
    fn connected(config: PublisherConfig) -> Self {
        Self(PublisherCore::new(FakeTransport::new(false), config))
    }

    fn reconnecting(config: PublisherConfig) -> Self {
        Self(PublisherCore::new(FakeTransport::new(true), config))
    }

    fn publish_at(&mut self, at: Duration, current: u64, peak: u64) -> PublishOutcome {
        self.0
            .publish_at(Timestamp::from_duration(at), current, peak)
    }

    fn next_due(&self, at: Duration) -> Duration {
        self.0.next_due(Timestamp::from_duration(at))
    }

    fn stats(&self) -> PublisherStats {
        self.0.stats()
    }

    fn next_seq(&self) -> u64 {
        self.0.next_seq()
    }

    fn is_connected(&self) -> bool {
        self.0.is_connected()
    }

    fn received(&mut self) -> Vec<Frame> {
        self.transport().take_frames()
    }

    fn peer_goes_away(&mut self) {
        self.transport().peer_goes_away();
    }

    fn peer_returns(&mut self) {
        self.transport().peer_returns();
    }
}

use PublishOutcome::{Dropped, Sent};

#[test]
fn other_send_error_drops_as_error_and_keeps_the_channel() {
    let mut p = Fake::connected(unlimited());
    assert_eq!(p.publish_at(ms(0), 1, 1), Sent);
    p.transport().fail_next_send(SendError::Other);
    assert_eq!(p.publish_at(ms(1), 2, 2), Dropped(DropReason::Error));
    assert!(p.is_connected());
    assert_eq!(p.publish_at(ms(2), 3, 3), Sent);
    let stats = p.stats();
    assert_eq!(
        (stats.sent, stats.dropped_error, stats.dropped()),
        (2, 1, 1)
    );
    assert_eq!(stats.connect_attempts, 0);
    let seqs: Vec<u64> = p.received().iter().map(|f| f.seq).collect();
    assert_eq!(seqs, [0, 2], "the dropped frame is a gap");
}

#[test]
fn other_send_error_does_not_start_a_backoff() {
    let mut p = Fake::reconnecting(unlimited());
    p.transport().fail_next_send(SendError::Other);
    assert_eq!(p.publish_at(ms(0), 1, 1), Dropped(DropReason::Error));
    assert_eq!(p.publish_at(ms(0), 2, 2), Sent);
    assert_eq!(p.transport().reconnect_calls, 0);
}

#[test]
fn the_transport_is_left_alone_while_backing_off() {
    let mut p = Fake::reconnecting(unlimited());
    p.peer_goes_away();
    assert_eq!(p.publish_at(ms(0), 1, 1), Dropped(DropReason::Disconnected));
    let sends = p.transport().try_sends;
    for at in 1..50 {
        assert_eq!(p.publish_at(ms(at), 1, 1), Dropped(DropReason::BackingOff));
    }
    assert_eq!(p.transport().try_sends, sends);
    assert_eq!(p.transport().reconnect_calls, 0);
    assert_eq!(
        p.publish_at(ms(50), 1, 1),
        Dropped(DropReason::Disconnected)
    );
    assert_eq!(p.transport().reconnect_calls, 1);
    assert_eq!(
        p.transport().try_sends,
        sends,
        "a failed reconnection sends nothing"
    );
}

#[test]
fn a_transport_that_cannot_reconnect_is_never_called_again() {
    let mut p = Fake::connected(unlimited());
    p.peer_goes_away();
    assert_eq!(p.publish_at(ms(0), 1, 1), Dropped(DropReason::Disconnected));
    let sends = p.transport().try_sends;
    for at in [1, 1000, 60_000] {
        assert_eq!(
            p.publish_at(ms(at), 1, 1),
            Dropped(DropReason::Disconnected)
        );
    }
    assert_eq!(p.transport().try_sends, sends);
    assert_eq!(p.transport().reconnect_calls, 0);
}

#[test]
fn a_peer_that_hangs_up_at_once_cannot_make_the_publisher_spin() {
    let mut p = Fake::reconnecting(PublisherConfig {
        backoff_initial: ms(50),
        backoff_max: ms(1000),
        ..unlimited()
    });
    p.transport().hang_up_at_once();
    p.peer_goes_away();
    p.peer_returns();
    let mut now = ms(0);
    assert_eq!(p.publish_at(now, 0, 0), Dropped(DropReason::Disconnected));
    // Every attempt reconnects, and the send on the new channel finds it closed: the waits
    // keep doubling, because only a frame actually sent resets them.
    for (attempt, wait) in [50, 100, 200, 400, 800, 1000, 1000].into_iter().enumerate() {
        assert_eq!(
            p.publish_at(now + ms(wait - 1), 0, 0),
            Dropped(DropReason::BackingOff),
            "wait {wait}"
        );
        now += ms(wait);
        assert_eq!(p.publish_at(now, 0, 0), Dropped(DropReason::Disconnected));
        assert_eq!(p.stats().reconnects, attempt as u64 + 1);
    }
}

#[test]
fn a_closed_channel_is_not_connected_until_it_reconnects() {
    let mut p = Fake::reconnecting(unlimited());
    assert!(p.is_connected());
    p.peer_goes_away();
    assert!(p.is_connected(), "the core only learns from a send");
    assert_eq!(p.publish_at(ms(0), 1, 1), Dropped(DropReason::Disconnected));
    assert!(!p.is_connected());
    p.peer_returns();
    assert!(!p.is_connected(), "nor from the peer returning");
    assert_eq!(p.publish_at(ms(50), 1, 1), Sent);
    assert!(p.is_connected());
}

#[cfg(feature = "counting-alloc")]
#[test]
#[allow(unsafe_code)]
fn publish_from_at_reports_what_the_counting_allocator_holds() {
    use std::alloc::{GlobalAlloc, Layout, System};

    let alloc = memstat::CountingAlloc::new(System);
    let layout = Layout::from_size_align(4096, 16).unwrap();
    // SAFETY: non-zero size; freed below with the same layout.
    let block = unsafe { alloc.alloc(layout) };
    assert!(!block.is_null());

    let mut p = Fake::connected(behaviour::config());
    assert_eq!(p.0.publish_from_at(Timestamp::ZERO, &alloc), Sent);
    let frame = p.received()[0];
    assert_eq!((frame.current_bytes, frame.peak_bytes), (4096, 4096));
    // SAFETY: `block` came from `alloc` with `layout` and is freed once.
    unsafe { alloc.dealloc(block, layout) };
}
