//! The publisher's hot path allocates nothing, on any path: sent, suppressed, would-block,
//! disconnected, backing off, failed and successful reconnection, and taking reclaim requests
//! (`poll_reclaim`: requests, junk, oversize and empty messages, a hang-up) and sending
//! acknowledgements (`acknowledge`: sent, refused, closed); for `Publisher` over real
//! sockets, and for the portable core over a fake transport (which adds `SendError::Other`,
//! receive errors, and a peer that hangs up at once).
//!
//! `harness = false`: no test threads allocate beside us, so the counting allocator's peak
//! sees every allocation this code makes, even one freed straight away.
#![allow(clippy::unwrap_used, unsafe_code)]

mod fake_transport;

use std::alloc::System;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use fake_transport::FakeTransport;
use memstat::publish::Timestamp;
use memstat::publish::{
    DropReason, PublishOutcome, PublisherConfig, PublisherCore, RecvError, SendError,
    MAX_RECLAIM_READS_PER_POLL,
};
use memstat::{CountingAlloc, Publisher, ReclaimAck, ReclaimRequest, MAX_REQUEST_LEN};
use rustix::net::{
    self as socket, AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

#[global_allocator]
static ALLOC: CountingAlloc<System> = CountingAlloc::new(System);

/// Runs `f` and fails if it allocated anything, even temporarily.
fn assert_no_allocation<T>(what: &str, f: impl FnOnce() -> T) -> T {
    ALLOC.reset_peak();
    let before = ALLOC.live_bytes();
    let out = f();
    assert_eq!(ALLOC.peak_bytes(), before, "{what} allocated");
    out
}

fn listen(path: &std::path::Path) -> OwnedFd {
    let fd = socket::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    socket::bind(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
    socket::listen(&fd, 8).unwrap();
    fd
}

fn main() {
    unix_publisher();
    core_over_a_fake_transport();
    reclaim_over_a_fake_transport();
    println!("publisher hot path: no allocation on any path");
}

/// A reclaim request's bytes, and the request.
fn request(id: u64) -> ([u8; MAX_REQUEST_LEN], usize, ReclaimRequest) {
    let r = ReclaimRequest {
        id,
        target_bytes: 1 << 20,
        deadline_ms: 2000,
    };
    let mut buf = [0u8; MAX_REQUEST_LEN];
    let len = r.encode(&mut buf).unwrap();
    (buf, len, r)
}

fn unix_publisher() {
    let dir = std::env::temp_dir().join(format!("memstat-no-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("oomd.sock");

    let config = PublisherConfig {
        min_interval: Duration::from_millis(100),
        ..PublisherConfig::default()
    };
    let listener = listen(&path);
    let mut publisher = Publisher::connect(&path, config).unwrap();
    let conn = socket::accept(&listener).unwrap();
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);

    let mut outcomes = Vec::with_capacity(100_000);
    assert_no_allocation("sent/suppressed/would-block", || {
        for i in 0..100_000 {
            outcomes.push(publisher.publish_at(at(i * 100), i, i));
            let _ = publisher.publish_at(at(i * 100 + 1), i, i);
        }
    });
    assert!(outcomes.contains(&PublishOutcome::Sent));
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, PublishOutcome::Dropped(_))));
    assert!(publisher.stats().suppressed > 0);

    drop(conn);
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    let t1 = at(100_000 * 100);
    let after = |ms: u64| t1 + Duration::from_millis(ms);
    assert_no_allocation("disconnect, backoff, failed reconnect", || {
        for i in 0..100 {
            let _ = publisher.publish_at(after(i * 100), 0, 0);
        }
    });
    assert!(publisher.stats().connect_attempts > 0);
    assert!(publisher.stats().dropped_backing_off > 0);

    let listener = listen(&path);
    let outcome = assert_no_allocation("successful reconnect", || {
        publisher.publish_at(after(1_000_000), 0, 0)
    });
    assert_eq!(outcome, PublishOutcome::Sent);
    assert_eq!(publisher.stats().reconnects, 1);

    // Reclaim requests on the new connection, beside junk, an oversize and an empty message.
    let conn = socket::accept(&listener).unwrap();
    let mut frame = [0u8; 64];
    assert!(socket::recv(&conn, &mut frame, RecvFlags::DONTWAIT).is_ok());
    let (first, first_len, _) = request(1);
    let (second, second_len, want) = request(2);
    for message in [
        &first[..first_len],
        &second[..second_len],
        b"junk",
        &[0xaa; 100],
        b"",
    ] {
        socket::send(&conn, message, SendFlags::DONTWAIT).unwrap();
    }
    let (got, acked, again) = assert_no_allocation("poll_reclaim and acknowledge", || {
        let got = publisher.poll_reclaim();
        let acked = publisher.acknowledge(2);
        (got, acked, publisher.poll_reclaim())
    });
    assert_eq!((got, acked, again), (Some(want), Ok(()), None));
    assert_eq!(publisher.stats().reclaim_malformed, 3);
    let (n, _) = socket::recv(&conn, &mut frame, RecvFlags::DONTWAIT).unwrap();
    assert_eq!(ReclaimAck::decode(&frame[..n]), Ok(ReclaimAck { id: 2 }));

    socket::send(&conn, &first[..first_len], SendFlags::DONTWAIT).unwrap();
    drop(conn);
    let (got, acked) = assert_no_allocation("poll_reclaim seeing a hang-up", || {
        let got = publisher.poll_reclaim();
        let _ = publisher.poll_reclaim();
        let _ = publisher.publish_at(after(2_000_000), 0, 0);
        (got, publisher.acknowledge(1))
    });
    assert_eq!(got.map(|r| r.id), Some(1));
    assert_eq!(acked, Err(SendError::Closed));
    assert!(publisher.reclaim_fd().is_none());

    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}

fn core_over_a_fake_transport() {
    let config = PublisherConfig {
        min_interval: Duration::from_millis(100),
        ..PublisherConfig::default()
    };
    let at = Timestamp::from_millis;
    let mut core = PublisherCore::new(FakeTransport::new(true), config);

    let mut outcomes = Vec::with_capacity(1000);
    assert_no_allocation("core: sent/suppressed/would-block/error", || {
        for i in 0..1000 {
            if i % 7 == 0 {
                core.transport_mut().fail_next_send(SendError::Other);
            }
            outcomes.push(core.publish_at(at(i * 100), i, i));
            let _ = core.publish_at(at(i * 100 + 1), i, i);
        }
    });
    assert!(outcomes.contains(&PublishOutcome::Sent));
    assert!(outcomes.contains(&PublishOutcome::Dropped(DropReason::WouldBlock)));
    assert!(outcomes.contains(&PublishOutcome::Dropped(DropReason::Error)));
    assert!(core.stats().suppressed > 0);

    let frames = core.transport_mut().take_frames();
    assert_eq!(frames.len(), fake_transport::CAPACITY);
    let t1 = 1000 * 100;
    assert_no_allocation(
        "core: disconnect, backoff, failed and hung-up reconnects",
        || {
            core.transport_mut().peer_goes_away();
            for i in 0..100 {
                let _ = core.publish_at(at(t1 + i * 100), 0, 0);
            }
            core.transport_mut().hang_up_at_once();
            core.transport_mut().peer_returns();
            for i in 100..200 {
                let _ = core.publish_at(at(t1 + i * 100), 0, 0);
            }
        },
    );
    let stats = core.stats();
    assert!(stats.dropped_backing_off > 0);
    assert!(stats.reconnects > 0 && stats.reconnects < stats.connect_attempts);
    assert!(core.transport_mut().take_frames().is_empty());

    let mut core = PublisherCore::new(FakeTransport::new(true), config);
    let outcome = assert_no_allocation("core: successful reconnect", || {
        let _ = core.publish_at(at(0), 1, 1);
        core.transport_mut().peer_goes_away();
        let _ = core.publish_at(at(1000), 1, 1);
        core.transport_mut().peer_returns();
        core.publish_at(at(2000), 1, 1)
    });
    assert_eq!(outcome, PublishOutcome::Sent);
    assert_eq!(core.stats().reconnects, 1);

    let mut core = PublisherCore::new(FakeTransport::new(false), config);
    let outcome = assert_no_allocation("core: a channel that cannot reconnect", || {
        let _ = core.publish_at(at(0), 1, 1);
        core.transport_mut().peer_goes_away();
        core.publish_at(at(60_000), 1, 1)
    });
    assert_eq!(outcome, PublishOutcome::Dropped(DropReason::Disconnected));
    assert_eq!(core.transport().try_sends, 2);
    assert_eq!(core.transport().reconnect_calls, 0);
}

fn reclaim_over_a_fake_transport() {
    let config = PublisherConfig::default();
    let mut core = PublisherCore::new(FakeTransport::new(false), config);
    let (bytes, len, _) = request(0);
    let messages = MAX_RECLAIM_READS_PER_POLL + 4;
    for _ in 0..messages {
        core.transport_mut().peer_sends(&bytes[..len]);
    }
    core.transport_mut().peer_sends(b"junk");
    core.transport_mut().peer_sends(&[0xaa; 200]);
    let (polls, acks) = assert_no_allocation("core: poll_reclaim and acknowledge", || {
        core.transport_mut().fail_next_recv(RecvError::Other);
        let polls = [
            core.poll_reclaim(),
            core.poll_reclaim(),
            core.poll_reclaim(),
            core.pending_reclaim(),
        ];
        core.transport_mut().fail_next_send(SendError::Full);
        let acks = [core.acknowledge(0), core.acknowledge(0)];
        (polls, acks)
    });
    assert_eq!(polls[0], None);
    assert!(polls[1..].iter().all(|r| r.map(|r| r.id) == Some(0)));
    assert_eq!(acks, [Err(SendError::Full), Ok(())]);
    assert_eq!(core.pending_reclaim(), None);
    assert_eq!(core.transport().unread_by_publisher(), 0);
    assert_eq!(core.transport().try_recvs, 1 + messages as u64 + 2 + 1);
    let stats = core.stats();
    assert_eq!(
        (stats.reclaim_requests, stats.reclaim_malformed),
        (messages as u64, 2)
    );
    assert_eq!(core.transport_mut().take_messages().len(), 1);

    core.transport_mut().peer_goes_away();
    let sends = core.transport().try_sends;
    let acked = assert_no_allocation("core: reclaim on a closed channel", || {
        let _ = core.poll_reclaim();
        let _ = core.publish_at(Timestamp::from_millis(0), 1, 1);
        let _ = core.poll_reclaim();
        core.acknowledge(0)
    });
    assert_eq!(acked, Err(SendError::Closed));
    assert_eq!(
        core.transport().try_sends,
        sends + 1,
        "only the frame was offered"
    );
}
