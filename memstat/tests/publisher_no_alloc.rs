//! The publisher's hot path allocates nothing, on any path: sent, suppressed, would-block,
//! disconnected, backing off, failed and successful reconnection; for `Publisher` over real
//! sockets, and for the portable core over a fake transport (which adds `SendError::Other`
//! and a peer that hangs up at once).
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
use memstat::publish::{DropReason, PublishOutcome, PublisherConfig, PublisherCore, SendError};
use memstat::{CountingAlloc, Publisher};
use rustix::net::{self as socket, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

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
    println!("publisher hot path: no allocation on any path");
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
