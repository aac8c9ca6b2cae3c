//! The publisher against real `SOCK_SEQPACKET` sockets, with time driven by hand.
//!
//! The behaviour tests (`tests/behaviour/`) run here on `Publisher` over a socketpair (fd
//! mode, `connected`) and over a listening socket at a path (path mode, `reconnecting`);
//! `tests/publisher_core.rs` runs the same tests on the core over a fake transport. Below
//! them are the tests only a `Publisher` has (its clock, `publish_from`, `connect`).
//!
//! Every `Instant` here is `start + offset`: no test sleeps, and no assertion depends on how
//! fast the machine is.
#![allow(clippy::unwrap_used)]

mod behaviour;

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use behaviour::{config, ms, Harness};
use memstat::publish::{PublishOutcome, PublisherConfig, PublisherStats};
use memstat::{CountingAlloc, Frame, Publisher, MAX_FRAME_LEN};
use rustix::io::Errno;
use rustix::net::{
    self as socket, AddressFamily, RecvFlags, SocketAddrUnix, SocketFlags, SocketType,
};

behaviour_tests!(Sockets);

/// A `Publisher` and oomd's end of its socket.
struct Sockets {
    publisher: Publisher,
    t0: Instant,
    /// The receiving end: the other half of the pair (fd mode), or the connection accepted
    /// from the listener (path mode).
    peer: Option<OwnedFd>,
    /// Path mode: where oomd listens, while it does.
    listener: Option<Listener>,
    /// Path mode: the socket's path, in a directory removed on drop.
    path: Option<(PathBuf, TempDir)>,
    /// Frames read before the receiver went away, not yet returned by `received`.
    unread: Vec<Frame>,
}

impl Harness for Sockets {
    fn connected(config: PublisherConfig) -> Self {
        let (publisher, peer) = connected_pair(config);
        Self {
            publisher,
            t0: Instant::now(),
            peer: Some(peer),
            listener: None,
            path: None,
            unread: Vec::new(),
        }
    }

    fn reconnecting(config: PublisherConfig) -> Self {
        let dir = TempDir::new();
        let path = dir.0.join("oomd.sock");
        let listener = Listener::bind(&path);
        let publisher = Publisher::connect(&path, config).unwrap();
        Self {
            publisher,
            t0: Instant::now(),
            peer: None,
            listener: Some(listener),
            path: Some((path, dir)),
            unread: Vec::new(),
        }
    }

    fn publish_at(&mut self, at: Duration, current: u64, peak: u64) -> PublishOutcome {
        self.publisher.publish_at(self.t0 + at, current, peak)
    }

    fn next_due(&self, at: Duration) -> Duration {
        self.publisher.next_due(self.t0 + at)
    }

    fn stats(&self) -> PublisherStats {
        self.publisher.stats()
    }

    fn next_seq(&self) -> u64 {
        self.publisher.next_seq()
    }

    fn is_connected(&self) -> bool {
        self.publisher.is_connected()
    }

    fn received(&mut self) -> Vec<Frame> {
        let mut frames = std::mem::take(&mut self.unread);
        if let Some(peer) = &self.peer {
            frames.extend(drain(peer));
        }
        // A reconnection waits in the backlog until accepted; its frames are already in it.
        while let Some(conn) = self.listener.as_ref().and_then(Listener::try_accept) {
            frames.extend(drain(&conn));
            self.peer = Some(conn);
        }
        frames
    }

    fn peer_goes_away(&mut self) {
        self.unread = self.received();
        self.peer = None;
        if let Some(listener) = self.listener.take() {
            listener.shut_down();
        }
    }

    fn peer_returns(&mut self) {
        if let (None, Some((path, _))) = (&self.listener, &self.path) {
            self.listener = Some(Listener::bind(path));
        }
    }
}

/// A publisher over one end of a fresh blocking socketpair, and the other end. The sockets
/// are left blocking on purpose: only `MSG_DONTWAIT` keeps the publisher from waiting.
fn connected_pair(config: PublisherConfig) -> (Publisher, OwnedFd) {
    let (ours, theirs) = socket::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    (Publisher::from_fd(ours, config), theirs)
}

/// Every frame waiting on `fd`, decoded, without blocking.
fn drain(fd: &OwnedFd) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut buf = [0u8; 2 * MAX_FRAME_LEN];
    loop {
        match socket::recv(fd, &mut buf, RecvFlags::DONTWAIT) {
            Ok((0, _)) | Err(Errno::AGAIN) => return frames,
            Ok((n, _)) => frames.push(Frame::decode(&buf[..n]).unwrap()),
            Err(e) => panic!("recv: {e}"),
        }
    }
}

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

/// oomd's side in path mode: a listening, non-blocking `SOCK_SEQPACKET` socket at a path.
struct Listener {
    fd: OwnedFd,
    path: PathBuf,
}

impl Listener {
    fn bind(path: &Path) -> Self {
        let fd = socket::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        socket::bind(&fd, &SocketAddrUnix::new(path).unwrap()).unwrap();
        socket::listen(&fd, 8).unwrap();
        Self {
            fd,
            path: path.to_owned(),
        }
    }

    /// The next pending connection, if there is one.
    fn try_accept(&self) -> Option<OwnedFd> {
        match socket::accept(&self.fd) {
            Ok(fd) => Some(fd),
            Err(Errno::AGAIN) => None,
            Err(e) => panic!("accept: {e}"),
        }
    }

    /// The listener goes away: socket closed and its path removed.
    fn shut_down(self) {
        drop(self.fd);
        std::fs::remove_file(&self.path).unwrap();
    }
}

// ---- what only `Publisher` has --------------------------------------------------------------

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

#[test]
fn connect_fails_when_nobody_listens() {
    let dir = TempDir::new();
    let err = Publisher::connect(dir.0.join("absent.sock"), config()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn an_instant_before_the_publisher_was_built_counts_as_its_construction() {
    let earlier = Instant::now();
    let (mut publisher, peer) = connected_pair(config());
    assert_eq!(publisher.publish_at(earlier, 1, 1), PublishOutcome::Sent);
    assert_eq!(publisher.next_due(earlier), ms(1000));
    assert_eq!(publisher.stats().time_went_backwards, 0);
    assert_eq!(drain(&peer).len(), 1);
}

// ---- reclaim requests over a real socket ----------------------------------------------------

use memstat::publish::{DropReason, SendError};
use memstat::{ReclaimAck, ReclaimRequest, MAX_REQUEST_LEN};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::SendFlags;
use std::os::fd::{AsFd, BorrowedFd};

fn request_bytes(id: u64, target_bytes: u64, deadline_ms: u32) -> Vec<u8> {
    let mut buf = [0u8; MAX_REQUEST_LEN];
    let r = ReclaimRequest {
        id,
        target_bytes,
        deadline_ms,
    };
    let len = r.encode(&mut buf).unwrap();
    buf[..len].to_vec()
}

fn peer_sends(peer: &OwnedFd, message: &[u8]) {
    assert_eq!(
        socket::send(peer, message, SendFlags::DONTWAIT).unwrap(),
        message.len()
    );
}

/// Whether `fd` is readable now (a zero-timeout `poll`).
fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).unwrap() == 1 && fds[0].revents().contains(PollFlags::IN)
}

/// The next message on `fd`, as bytes, without blocking.
fn recv_message(fd: &OwnedFd) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2 * MAX_FRAME_LEN];
    match socket::recv(fd, &mut buf, RecvFlags::DONTWAIT) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(Errno::AGAIN) => None,
        Err(e) => panic!("recv: {e}"),
    }
}

#[test]
fn reclaim_requests_arrive_the_latest_wins_and_the_ack_goes_back() {
    let (mut publisher, peer) = connected_pair(config());
    let fd = publisher
        .reclaim_fd()
        .unwrap()
        .try_clone_to_owned()
        .unwrap();
    assert!(!readable(fd.as_fd()), "nothing sent yet");
    assert_eq!(publisher.poll_reclaim(), None);

    peer_sends(&peer, &request_bytes(1, 1 << 20, 2000));
    peer_sends(&peer, &request_bytes(2, 1 << 19, 500));
    peer_sends(&peer, b"garbage");
    assert!(
        readable(publisher.reclaim_fd().unwrap()),
        "a request is queued"
    );
    let second = ReclaimRequest {
        id: 2,
        target_bytes: 1 << 19,
        deadline_ms: 500,
    };
    assert_eq!(publisher.poll_reclaim(), Some(second));
    assert!(!readable(fd.as_fd()), "everything was taken");
    let stats = publisher.stats();
    assert_eq!((stats.reclaim_requests, stats.reclaim_malformed), (2, 1));
    assert_eq!(publisher.pending_reclaim(), Some(second));

    // Publish first, then acknowledge: the peer gets the frame, then exactly the ack.
    assert_eq!(publisher.publish(100, 200), PublishOutcome::Sent);
    assert_eq!(publisher.acknowledge(2), Ok(()));
    let frame = recv_message(&peer).unwrap();
    assert_eq!(Frame::decode(&frame).unwrap().current_bytes, 100);
    let ack = recv_message(&peer).unwrap();
    assert_eq!(ack, [0x4d, 0x41, 0x01, 0x02]);
    assert_eq!(ReclaimAck::decode(&ack), Ok(ReclaimAck { id: 2 }));
    assert_eq!(recv_message(&peer), None);
    assert_eq!(publisher.pending_reclaim(), None);
    assert_eq!(publisher.poll_reclaim(), None);
    assert_eq!(publisher.stats().acks_sent, 1);
}

#[test]
fn oversize_and_empty_messages_are_junk_and_keep_the_channel() {
    let (mut publisher, peer) = connected_pair(config());
    peer_sends(&peer, &[0x4d; 200]);
    peer_sends(&peer, b"");
    peer_sends(&peer, &request_bytes(7, 0, 0));
    assert_eq!(publisher.poll_reclaim().map(|r| r.id), Some(7));
    assert_eq!(publisher.stats().reclaim_malformed, 2);
    assert!(publisher.reclaim_fd().is_some());
    assert_eq!(publisher.publish(1, 1), PublishOutcome::Sent);
}

#[test]
fn a_hang_up_seen_by_a_poll_closes_the_socket_and_the_next_frame_is_dropped() {
    let (mut publisher, peer) = connected_pair(config());
    peer_sends(&peer, &request_bytes(1, 2, 3));
    drop(peer);
    // What was sent before the hang-up is still taken.
    assert_eq!(publisher.poll_reclaim().map(|r| r.id), Some(1));
    assert!(publisher.reclaim_fd().is_none(), "the socket was closed");
    assert_eq!(
        publisher.publish(1, 1),
        PublishOutcome::Dropped(DropReason::Disconnected)
    );
    assert_eq!(publisher.acknowledge(1), Err(SendError::Closed));
    assert_eq!(publisher.pending_reclaim().map(|r| r.id), Some(1));
}

#[test]
fn in_path_mode_the_reclaim_fd_is_replaced_by_a_reconnection() {
    let mut s = Sockets::reconnecting(config());
    assert!(s.publisher.reclaim_fd().is_some());
    s.peer_goes_away();
    assert_eq!(
        s.publish_at(ms(0), 1, 1),
        PublishOutcome::Dropped(DropReason::Disconnected)
    );
    assert!(s.publisher.reclaim_fd().is_none());
    s.peer_returns();
    assert_eq!(s.publish_at(ms(100), 2, 2), PublishOutcome::Sent);
    assert!(s.publisher.reclaim_fd().is_some());
    assert_eq!(s.received().len(), 1);
    // Requests now come on the new connection.
    peer_sends(s.peer.as_ref().unwrap(), &request_bytes(4, 4, 4));
    assert!(readable(s.publisher.reclaim_fd().unwrap()));
    assert_eq!(s.publisher.poll_reclaim().map(|r| r.id), Some(4));
}
