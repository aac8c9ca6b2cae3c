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

// ---- reclaim requests and acknowledgements ---------------------------------------------------

use memstat::publish::{RecvError, MAX_RECLAIM_READS_PER_POLL};
use memstat::{ReclaimAck, ReclaimRequest, MAX_ACK_LEN, MAX_REQUEST_LEN};

fn request(id: u64, target_bytes: u64, deadline_ms: u32) -> ReclaimRequest {
    ReclaimRequest {
        id,
        target_bytes,
        deadline_ms,
    }
}

fn request_bytes(r: ReclaimRequest) -> Vec<u8> {
    let mut buf = [0u8; MAX_REQUEST_LEN];
    let len = r.encode(&mut buf).unwrap();
    buf[..len].to_vec()
}

#[test]
fn nothing_received_is_no_request_and_counts_nothing() {
    let mut p = Fake::connected(unlimited());
    assert_eq!(p.0.poll_reclaim(), None);
    assert_eq!(p.0.pending_reclaim(), None);
    assert_eq!(p.transport().try_recvs, 1, "one look, then it stops");
    assert_eq!(p.stats(), PublisherStats::default());
}

#[test]
fn the_latest_reclaim_request_wins() {
    let mut p = Fake::connected(unlimited());
    let (first, second) = (request(1, 1 << 20, 2000), request(2, 1 << 19, 500));
    p.transport().peer_sends(&request_bytes(first));
    p.transport().peer_sends(&request_bytes(second));
    assert_eq!(p.0.poll_reclaim(), Some(second));
    assert_eq!(p.stats().reclaim_requests, 2);
    // A newer one replaces a pending one in a later poll too, even with an older id.
    let third = request(1, 1 << 18, 100);
    p.transport().peer_sends(&request_bytes(third));
    assert_eq!(p.0.poll_reclaim(), Some(third));
    assert_eq!(p.stats().reclaim_requests, 3);
    assert_eq!(p.stats().reclaim_malformed, 0);
}

#[test]
fn messages_that_are_not_requests_are_counted_and_ignored() {
    let mut p = Fake::connected(unlimited());
    let valid = request(7, 4096, 1000);
    let mut frame = [0u8; memstat::MAX_FRAME_LEN];
    let frame_len = Frame {
        seq: 0,
        current_bytes: 1,
        peak_bytes: 1,
        claimed_subject: None,
    }
    .encode(&mut frame)
    .unwrap();
    let mut oversize = request_bytes(request(u64::MAX, u64::MAX, u32::MAX));
    oversize.push(0);
    let mut trailing = request_bytes(valid);
    trailing.push(0);
    let junk: [&[u8]; 8] = [
        b"",
        b"garbage",
        &frame[..frame_len],
        b"MA\x01\x07",                 // an acknowledgement, echoed back
        b"MR\x02\x07\x80\x20\xe8\x07", // a version this crate does not know
        b"MR\x01\x07",                 // truncated
        &oversize,
        &trailing,
    ];
    p.transport().peer_sends(&request_bytes(valid));
    for bytes in junk {
        p.transport().peer_sends(bytes);
    }
    p.transport().peer_sends(&[0xaa; 200]); // longer than the buffer: cut short, still junk
    assert_eq!(p.0.poll_reclaim(), Some(valid), "junk replaces nothing");
    let stats = p.stats();
    assert_eq!((stats.reclaim_requests, stats.reclaim_malformed), (1, 9));
    assert_eq!(stats.calls(), 0, "reclaim messages are not publish calls");
}

#[test]
fn a_request_stays_pending_until_its_id_is_acknowledged() {
    let mut p = Fake::connected(unlimited());
    let r = request(42, 1 << 20, 2000);
    p.transport().peer_sends(&request_bytes(r));
    assert_eq!(p.0.poll_reclaim(), Some(r));
    assert_eq!(p.0.poll_reclaim(), Some(r), "still pending, nothing new");
    assert_eq!(p.0.pending_reclaim(), Some(r));
    assert_eq!(p.stats().reclaim_requests, 1, "counted once");
    // Acknowledging another id sends it but leaves the pending one alone.
    assert_eq!(p.0.acknowledge(41), Ok(()));
    assert_eq!(p.0.pending_reclaim(), Some(r));
    assert_eq!(p.0.acknowledge(42), Ok(()));
    assert_eq!(p.0.pending_reclaim(), None);
    assert_eq!(p.0.poll_reclaim(), None);
    assert_eq!(p.stats().acks_sent, 2);
}

#[test]
fn acknowledge_sends_exactly_the_ack_bytes_at_once() {
    let mut p = Fake::connected(behaviour::config());
    assert_eq!(p.publish_at(ms(0), 1, 1), Sent);
    let seq = p.next_seq();
    // At once, twice in the same millisecond: not rate-limited.
    assert_eq!(p.0.acknowledge(1), Ok(()));
    assert_eq!(p.0.acknowledge(u64::MAX), Ok(()));
    let messages = p.transport().take_messages();
    assert_eq!(messages.len(), 3);
    assert!(Frame::decode(&messages[0]).is_ok());
    assert_eq!(messages[1], [0x4d, 0x41, 0x01, 0x01]);
    assert_eq!(ReclaimAck::decode(&messages[1]), Ok(ReclaimAck { id: 1 }));
    assert_eq!(messages[2].len(), MAX_ACK_LEN);
    assert_eq!(
        ReclaimAck::decode(&messages[2]),
        Ok(ReclaimAck { id: u64::MAX })
    );
    // No sequence number used, and the frame schedule did not move.
    assert_eq!(p.next_seq(), seq);
    let stats = p.stats();
    assert_eq!((stats.sent, stats.acks_sent, stats.acks_dropped), (1, 2, 0));
    assert_eq!(p.publish_at(ms(1), 1, 1), PublishOutcome::Suppressed);
}

#[test]
fn a_failed_acknowledgement_keeps_the_request_pending_to_retry() {
    let mut p = Fake::connected(unlimited());
    let r = request(3, 0, 10);
    p.transport().peer_sends(&request_bytes(r));
    assert_eq!(p.0.poll_reclaim(), Some(r));
    p.transport().fail_next_send(SendError::Full);
    assert_eq!(p.0.acknowledge(3), Err(SendError::Full));
    assert_eq!(p.0.pending_reclaim(), Some(r));
    p.transport().fail_next_send(SendError::Other);
    assert_eq!(p.0.acknowledge(3), Err(SendError::Other));
    assert_eq!(p.0.acknowledge(3), Ok(()));
    assert_eq!(p.0.pending_reclaim(), None);
    let stats = p.stats();
    assert_eq!((stats.acks_sent, stats.acks_dropped), (1, 2));
    assert!(
        p.is_connected(),
        "an acknowledgement does not change the channel"
    );
}

#[test]
fn a_closed_channel_is_not_read_nor_written_for_reclaim() {
    for mut p in [
        Fake::connected(unlimited()),
        Fake::reconnecting(unlimited()),
    ] {
        let r = request(9, 100, 100);
        p.transport().peer_sends(&request_bytes(r));
        assert_eq!(p.0.poll_reclaim(), Some(r));
        p.peer_goes_away();
        assert_eq!(p.publish_at(ms(0), 1, 1), Dropped(DropReason::Disconnected));
        p.transport().peer_sends(&request_bytes(request(10, 0, 0)));
        let (sends, recvs) = (p.transport().try_sends, p.transport().try_recvs);
        assert_eq!(p.0.acknowledge(9), Err(SendError::Closed));
        assert_eq!(p.0.poll_reclaim(), Some(r), "pending stays, nothing read");
        assert_eq!(p.transport().try_sends, sends);
        assert_eq!(p.transport().try_recvs, recvs);
        assert_eq!(p.transport().unread_by_publisher(), 1);
        assert_eq!(p.0.pending_reclaim(), Some(r));
        assert_eq!(p.stats().acks_dropped, 1);
    }
}

#[test]
fn a_closure_seen_by_a_poll_is_left_to_the_next_frame() {
    let mut p = Fake::reconnecting(unlimited());
    p.peer_goes_away();
    assert_eq!(p.0.poll_reclaim(), None);
    assert_eq!(p.transport().try_recvs, 1);
    assert!(p.is_connected(), "the core only learns from a frame");
    assert_eq!(p.publish_at(ms(0), 1, 1), Dropped(DropReason::Disconnected));
    assert!(!p.is_connected());
}

#[test]
fn a_poll_takes_at_most_its_bound_of_messages() {
    let mut p = Fake::connected(unlimited());
    let extra = 4;
    for id in 0..(MAX_RECLAIM_READS_PER_POLL + extra) as u64 {
        p.transport().peer_sends(&request_bytes(request(id, id, 0)));
    }
    let bound = MAX_RECLAIM_READS_PER_POLL as u64;
    assert_eq!(p.0.poll_reclaim().map(|r| r.id), Some(bound - 1));
    assert_eq!(p.transport().try_recvs, bound);
    assert_eq!(p.transport().unread_by_publisher(), extra);
    assert_eq!(
        p.0.poll_reclaim().map(|r| r.id),
        Some(bound + extra as u64 - 1)
    );
    assert_eq!(p.stats().reclaim_requests, bound + extra as u64);
}

#[test]
fn a_receive_error_ends_the_poll_and_loses_nothing() {
    let mut p = Fake::connected(unlimited());
    let r = request(5, 5, 5);
    p.transport().peer_sends(&request_bytes(r));
    p.transport().fail_next_recv(RecvError::Other);
    assert_eq!(p.0.poll_reclaim(), None);
    assert_eq!(p.transport().unread_by_publisher(), 1);
    assert_eq!(p.0.poll_reclaim(), Some(r));
    assert!(p.is_connected());
}
