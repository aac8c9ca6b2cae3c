//! The publisher's hot path allocates nothing, on any path: sent, suppressed, would-block,
//! disconnected, backing off, failed and successful reconnection.
//!
//! `harness = false`: no test threads allocate beside us, so the counting allocator's peak
//! sees every allocation this code makes, even one freed straight away.
#![allow(clippy::unwrap_used, unsafe_code)]

use std::alloc::System;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use memstat::publish::{PublishOutcome, PublisherConfig};
use memstat::{CountingAlloc, Publisher};
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};

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
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
    socket::listen(&fd, Backlog::new(8).unwrap()).unwrap();
    fd
}

fn main() {
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
    // SAFETY: `accept` just returned this fd; nothing else owns it.
    let conn = unsafe { OwnedFd::from_raw_fd(socket::accept(listener.as_raw_fd()).unwrap()) };
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
    println!("publisher hot path: no allocation on any path");
}
