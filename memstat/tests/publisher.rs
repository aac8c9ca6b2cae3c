//! The publisher against real `SOCK_SEQPACKET` sockets, with time driven by hand.
//!
//! Every `Instant` here is `start + offset`: no test sleeps, and no assertion depends on how
//! fast the machine is.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use memstat::publish::{DropReason, PublishOutcome, PublisherConfig};
use memstat::{CountingAlloc, Frame, Publisher, SubjectId, MAX_FRAME_LEN};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, UnixAddr};

const KIB: u64 = 1024;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Defaults, spelled out so the tests read without looking them up.
fn config() -> PublisherConfig {
    PublisherConfig {
        min_interval: ms(100),
        heartbeat: ms(1000),
        quantum: 64 * KIB,
        backoff_initial: ms(50),
        backoff_max: ms(5000),
        claimed_subject: None,
    }
}

/// Every call is due: for tests about the transport, not the rate limit.
fn unlimited() -> PublisherConfig {
    PublisherConfig {
        min_interval: Duration::ZERO,
        quantum: 0,
        ..config()
    }
}

/// A publisher over one end of a fresh blocking socketpair, and the other end. The sockets
/// are left blocking on purpose: only `MSG_DONTWAIT` keeps the publisher from waiting.
fn connected_pair(config: PublisherConfig) -> (Publisher, OwnedFd) {
    let (ours, theirs) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    (Publisher::from_fd(ours, config), theirs)
}

/// Every frame waiting on `fd`, decoded, without blocking.
fn drain(fd: &OwnedFd) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut buf = [0u8; 2 * MAX_FRAME_LEN];
    loop {
        match socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) | Err(Errno::EAGAIN) => return frames,
            Ok(n) => frames.push(Frame::decode(&buf[..n]).unwrap()),
            Err(e) => panic!("recv: {e}"),
        }
    }
}

fn assert_seq_strictly_increasing(frames: &[Frame]) {
    for pair in frames.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "{pair:?}");
    }
}

#[test]
fn first_frame_is_sent_and_decodes() {
    let (mut publisher, peer) = connected_pair(config());
    let t0 = Instant::now();
    assert_eq!(publisher.publish_at(t0, 1000, 2000), PublishOutcome::Sent);
    assert_eq!(
        drain(&peer),
        [Frame {
            seq: 0,
            current_bytes: 1000,
            peak_bytes: 2000,
            claimed_subject: None
        }]
    );
    assert_eq!(publisher.stats().sent, 1);
}

#[test]
fn small_growth_within_the_interval_is_suppressed() {
    let (mut publisher, peer) = connected_pair(config());
    let t0 = Instant::now();
    assert_eq!(publisher.publish_at(t0, 1000, 1000), PublishOutcome::Sent);
    assert_eq!(
        publisher.publish_at(t0 + ms(50), 1000 + 64 * KIB - 1, 1000 + 64 * KIB - 1),
        PublishOutcome::Suppressed
    );
    assert_eq!(drain(&peer).len(), 1);
    assert_eq!(publisher.stats().suppressed, 1);
    assert_eq!(
        publisher.next_seq(),
        1,
        "a suppressed call uses no sequence number"
    );
}

#[test]
fn growth_of_a_quantum_is_sent_at_once() {
    let (mut publisher, peer) = connected_pair(config());
    let t0 = Instant::now();
    assert_eq!(publisher.publish_at(t0, 1000, 1000), PublishOutcome::Sent);
    let grown = 1000 + 64 * KIB;
    assert_eq!(
        publisher.publish_at(t0 + ms(1), grown, grown),
        PublishOutcome::Sent
    );
    assert_eq!(drain(&peer)[1].current_bytes, grown);
}

#[test]
fn after_the_interval_a_frame_is_sent_without_growth() {
    let (mut publisher, peer) = connected_pair(config());
    let t0 = Instant::now();
    assert_eq!(publisher.publish_at(t0, 1000, 1000), PublishOutcome::Sent);
    assert_eq!(
        publisher.publish_at(t0 + ms(99), 900, 1000),
        PublishOutcome::Suppressed
    );
    assert_eq!(
        publisher.publish_at(t0 + ms(100), 900, 1000),
        PublishOutcome::Sent
    );
    let frames = drain(&peer);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].current_bytes, 900);
}

#[test]
fn unchanged_figures_are_sent_again_at_the_heartbeat_and_not_before() {
    let (mut publisher, peer) = connected_pair(config()); // 100 ms interval, 1 s heartbeat
    let t0 = Instant::now();
    assert_eq!(publisher.publish_at(t0, 1000, 1000), PublishOutcome::Sent);
    for at in [100, 500, 999] {
        assert_eq!(
            publisher.publish_at(t0 + ms(at), 1000, 1000),
            PublishOutcome::Suppressed,
            "{at} ms"
        );
    }
    assert_eq!(publisher.next_due(t0 + ms(999)), ms(1));
    assert_eq!(publisher.next_due(t0 + ms(1000)), Duration::ZERO);
    assert_eq!(
        publisher.publish_at(t0 + ms(1000), 1000, 1000),
        PublishOutcome::Sent
    );
    assert_eq!(publisher.next_due(t0 + ms(1000)), ms(1000));
    let frames = drain(&peer);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].seq, 1);
    assert_eq!(frames[1].current_bytes, 1000);
}

#[test]
fn a_new_publisher_is_due_at_once() {
    let (publisher, _peer) = connected_pair(config());
    assert_eq!(publisher.next_due(Instant::now()), Duration::ZERO);
}

#[test]
fn a_zero_heartbeat_resends_unchanged_figures_every_interval() {
    let (mut publisher, peer) = connected_pair(PublisherConfig {
        heartbeat: Duration::ZERO,
        ..config()
    });
    let t0 = Instant::now();
    assert_eq!(publisher.publish_at(t0, 7, 7), PublishOutcome::Sent);
    assert_eq!(
        publisher.publish_at(t0 + ms(99), 7, 7),
        PublishOutcome::Suppressed
    );
    assert_eq!(
        publisher.publish_at(t0 + ms(100), 7, 7),
        PublishOutcome::Sent
    );
    assert_eq!(drain(&peer).len(), 2);
}

#[test]
fn slow_growth_accumulates_across_suppressed_calls() {
    let (mut publisher, peer) = connected_pair(config());
    let t0 = Instant::now();
    assert_eq!(publisher.publish_at(t0, 0, 0), PublishOutcome::Sent);
    // 16 KiB per millisecond: the fourth step is a quantum above the last frame *sent*.
    for step in 1..=3 {
        let now = t0 + ms(step);
        let bytes = step * 16 * KIB;
        assert_eq!(
            publisher.publish_at(now, bytes, bytes),
            PublishOutcome::Suppressed
        );
    }
    assert_eq!(
        publisher.publish_at(t0 + ms(4), 64 * KIB, 64 * KIB),
        PublishOutcome::Sent
    );
    assert_eq!(drain(&peer).len(), 2);
}

#[test]
fn time_going_backwards_counts_as_no_time() {
    let (mut publisher, _peer) = connected_pair(config());
    let t0 = Instant::now() + ms(1000);
    assert_eq!(publisher.publish_at(t0, 0, 0), PublishOutcome::Sent);
    assert_eq!(
        publisher.publish_at(t0 - ms(1000), 1, 1),
        PublishOutcome::Suppressed
    );
    assert_eq!(
        publisher.publish_at(t0 + ms(100), 1, 1),
        PublishOutcome::Sent
    );
}

#[test]
fn receiver_sees_strictly_increasing_sequence_numbers_and_the_claim() {
    let hog = SubjectId::from_name("hog");
    let (mut publisher, peer) = connected_pair(PublisherConfig {
        claimed_subject: Some(hog),
        ..config()
    });
    let t0 = Instant::now();
    let mut sent = 0;
    for i in 0..50u64 {
        // Every 10 ms, growing 20 KiB each time: a mix of suppressed and sent calls.
        let bytes = i * 20 * KIB;
        if publisher.publish_at(t0 + ms(10 * i), bytes, bytes) == PublishOutcome::Sent {
            sent += 1;
        }
    }
    let frames = drain(&peer);
    assert_eq!(frames.len(), sent);
    assert!(sent > 1 && sent < 50, "sent {sent}");
    assert_seq_strictly_increasing(&frames);
    assert!(frames.iter().all(|f| f.claimed_subject == Some(hog)));
    assert_eq!(publisher.stats().sent, sent as u64);
    assert_eq!(publisher.stats().suppressed, 50 - sent as u64);
}

#[test]
fn peak_below_current_is_raised_to_current() {
    let (mut publisher, peer) = connected_pair(config());
    assert_eq!(
        publisher.publish_at(Instant::now(), 5000, 10),
        PublishOutcome::Sent
    );
    let frame = drain(&peer)[0];
    assert_eq!((frame.current_bytes, frame.peak_bytes), (5000, 5000));
    assert_eq!(publisher.stats().peak_clamped, 1);
}

#[test]
fn full_peer_buffer_drops_frames_as_would_block_instead_of_blocking() {
    let (mut publisher, peer) = connected_pair(unlimited());
    let t0 = Instant::now();
    let mut calls = 0u64;
    // Nobody reads `peer`. A blocking send would hang this test; a full buffer must drop.
    let first_drop = (0..100_000u64).find_map(|i| {
        calls += 1;
        match publisher.publish_at(t0 + ms(i), i, i) {
            PublishOutcome::Sent => None,
            other => Some(other),
        }
    });
    assert_eq!(
        first_drop,
        Some(PublishOutcome::Dropped(DropReason::WouldBlock))
    );
    // Still full: the next ones are dropped too, and counted.
    for i in 0..10 {
        let now = t0 + ms(calls + i);
        assert_eq!(
            publisher.publish_at(now, calls + i, calls + i),
            PublishOutcome::Dropped(DropReason::WouldBlock)
        );
    }
    let stats = publisher.stats();
    assert_eq!(stats.dropped_would_block, 11);
    assert_eq!(stats.sent + stats.dropped(), calls + 10);
    assert!(publisher.is_connected());

    // The receiver catches up: it sees exactly the sent frames, and the drops as one gap.
    let frames = drain(&peer);
    assert_eq!(frames.len() as u64, stats.sent);
    assert_seq_strictly_increasing(&frames);
    let resumed = t0 + ms(calls + 10);
    assert_eq!(publisher.publish_at(resumed, 0, 0), PublishOutcome::Sent);
    let after = drain(&peer);
    assert_eq!(after[0].seq, frames.last().unwrap().seq + 12);
}

#[test]
fn closed_peer_in_fd_mode_drops_as_disconnected_for_good() {
    let (mut publisher, peer) = connected_pair(unlimited());
    let t0 = Instant::now();
    assert_eq!(publisher.publish_at(t0, 1, 1), PublishOutcome::Sent);
    drop(peer);
    for i in 1..=3 {
        assert_eq!(
            publisher.publish_at(t0 + Duration::from_secs(i * 60), 1, 1),
            PublishOutcome::Dropped(DropReason::Disconnected)
        );
    }
    let stats = publisher.stats();
    assert_eq!(stats.dropped_disconnected, 3);
    assert_eq!(
        stats.connect_attempts, 0,
        "fd mode has nothing to reconnect to"
    );
    assert!(!publisher.is_connected());
}

#[test]
fn publish_reads_the_clock_itself() {
    let (mut publisher, peer) = connected_pair(config());
    assert_eq!(publisher.publish(10, 20), PublishOutcome::Sent);
    assert_eq!(publisher.publish(10, 20), PublishOutcome::Suppressed);
    assert_eq!(drain(&peer).len(), 1);
}

#[test]
#[allow(unsafe_code)]
fn publish_from_reports_what_the_counting_allocator_holds() {
    let alloc = CountingAlloc::new(System);
    let layout = Layout::from_size_align(4096, 16).unwrap();
    // SAFETY: non-zero size; freed below with the same layout.
    let block = unsafe { alloc.alloc(layout) };
    assert!(!block.is_null());

    let (mut publisher, peer) = connected_pair(config());
    assert_eq!(publisher.publish_from(&alloc), PublishOutcome::Sent);
    let frame = drain(&peer)[0];
    assert_eq!((frame.current_bytes, frame.peak_bytes), (4096, 4096));
    // SAFETY: `block` came from `alloc` with `layout` and is freed once.
    unsafe { alloc.dealloc(block, layout) };
}

// ---- path mode ------------------------------------------------------------------------------

/// A unique, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "memstat-publisher-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// oomd's side in path mode: a listening `SOCK_SEQPACKET` socket bound at a path.
struct Listener {
    fd: OwnedFd,
    path: PathBuf,
}

impl Listener {
    fn bind(path: &Path) -> Self {
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        socket::bind(fd.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
        socket::listen(&fd, Backlog::new(8).unwrap()).unwrap();
        Self {
            fd,
            path: path.to_owned(),
        }
    }

    /// The next pending connection (one must be pending: the listener is blocking).
    #[allow(unsafe_code)]
    fn accept(&self) -> OwnedFd {
        let raw = socket::accept(self.fd.as_raw_fd()).unwrap();
        // SAFETY: `accept` just returned this fd; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(raw) }
    }

    /// The listener goes away: socket closed and its path removed.
    fn shut_down(self) {
        drop(self.fd);
        std::fs::remove_file(&self.path).unwrap();
    }
}

#[test]
fn connect_fails_when_nobody_listens() {
    let dir = TempDir::new();
    let err = Publisher::connect(dir.0.join("absent.sock"), config()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn path_mode_backs_off_then_reconnects_when_the_listener_returns() {
    let dir = TempDir::new();
    let path = dir.0.join("oomd.sock");
    let listener = Listener::bind(&path);
    let mut publisher = Publisher::connect(&path, unlimited()).unwrap();
    let conn = listener.accept();
    let t0 = Instant::now();

    // Connected: frames flow.
    assert_eq!(publisher.publish_at(t0, 1, 1), PublishOutcome::Sent);
    assert_eq!(drain(&conn)[0].seq, 0);

    // oomd goes away. The first send finds out.
    drop(conn);
    listener.shut_down();
    let t1 = t0 + ms(10);
    assert_eq!(
        publisher.publish_at(t1, 2, 2),
        PublishOutcome::Dropped(DropReason::Disconnected)
    );
    assert!(!publisher.is_connected());

    // Within the first backoff (50 ms): no connection attempt at all.
    for offset in [0, 1, 25, 49] {
        assert_eq!(
            publisher.publish_at(t1 + ms(offset), 3, 3),
            PublishOutcome::Dropped(DropReason::BackingOff)
        );
    }
    assert_eq!(publisher.stats().connect_attempts, 0);

    // At 50 ms one attempt, which fails (nobody listens); the wait doubles to 100 ms.
    let t2 = t1 + ms(50);
    assert_eq!(
        publisher.publish_at(t2, 4, 4),
        PublishOutcome::Dropped(DropReason::Disconnected)
    );
    assert_eq!(publisher.stats().connect_attempts, 1);
    assert_eq!(
        publisher.publish_at(t2 + ms(99), 5, 5),
        PublishOutcome::Dropped(DropReason::BackingOff)
    );
    assert_eq!(publisher.stats().connect_attempts, 1);

    // oomd is back. The publisher does not notice before its backoff is over...
    let listener = Listener::bind(&path);
    assert_eq!(
        publisher.publish_at(t2 + ms(99), 6, 6),
        PublishOutcome::Dropped(DropReason::BackingOff)
    );
    // ...and then reconnects and sends in the same call.
    let t3 = t2 + ms(100);
    assert_eq!(publisher.publish_at(t3, 7, 7), PublishOutcome::Sent);
    let stats = publisher.stats();
    assert_eq!((stats.connect_attempts, stats.reconnects), (2, 1));
    assert_eq!(stats.dropped_disconnected, 2);
    assert_eq!(stats.dropped_backing_off, 6);

    // Frames flow again; the gap in seq is exactly the dropped frames.
    let conn = listener.accept();
    assert_eq!(publisher.publish_at(t3 + ms(1), 8, 8), PublishOutcome::Sent);
    let frames = drain(&conn);
    assert_eq!(
        frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
        [1 + stats.dropped(), 2 + stats.dropped()]
    );
    assert_eq!(frames[0].current_bytes, 7);

    // A successful send reset the backoff: the next outage waits 50 ms again, not 200.
    drop(conn);
    listener.shut_down();
    let t4 = t3 + ms(10);
    assert_eq!(
        publisher.publish_at(t4, 9, 9),
        PublishOutcome::Dropped(DropReason::Disconnected)
    );
    assert_eq!(
        publisher.publish_at(t4 + ms(49), 9, 9),
        PublishOutcome::Dropped(DropReason::BackingOff)
    );
    assert_eq!(
        publisher.publish_at(t4 + ms(50), 9, 9),
        PublishOutcome::Dropped(DropReason::Disconnected)
    );
    assert_eq!(publisher.stats().connect_attempts, 3);
}

#[test]
fn backoff_doubles_up_to_its_bound() {
    let dir = TempDir::new();
    let path = dir.0.join("oomd.sock");
    let listener = Listener::bind(&path);
    let mut publisher = Publisher::connect(
        &path,
        PublisherConfig {
            backoff_initial: ms(50),
            backoff_max: ms(120),
            ..unlimited()
        },
    )
    .unwrap();
    drop(listener.accept());
    listener.shut_down();

    let mut now = Instant::now();
    assert_eq!(
        publisher.publish_at(now, 0, 0),
        PublishOutcome::Dropped(DropReason::Disconnected)
    );
    // Waits: 50, 100, then capped at 120, 120.
    for wait in [50, 100, 120, 120] {
        let attempts = publisher.stats().connect_attempts;
        assert_eq!(
            publisher.publish_at(now + ms(wait - 1), 0, 0),
            PublishOutcome::Dropped(DropReason::BackingOff),
            "wait {wait}"
        );
        now += ms(wait);
        assert_eq!(
            publisher.publish_at(now, 0, 0),
            PublishOutcome::Dropped(DropReason::Disconnected)
        );
        assert_eq!(publisher.stats().connect_attempts, attempts + 1);
    }
}
