//! Publish on growth without the service's help: a [`CountingAlloc`] whose growth signal is an
//! `eventfd`, and a thread that publishes when it fires.
//!
//! A frame is otherwise sent only when the service calls [`Publisher::publish`]; a service
//! stuck in a runaway allocation loop (the very case a watchdog is for) never does. With a
//! [`GrowthPublisher`], the allocation that takes the live bytes one `quantum` past the last
//! frame sent writes to an `eventfd` (non-blocking, no allocation: safe inside the allocator),
//! and the publisher's own thread wakes, publishes and arms the next threshold. It also sends
//! the heartbeat when the figures do not change, so the service never looks silent.
//!
//! **Latest wins.** A fast grower crosses a quantum far more often than a watchdog reads a
//! sender (oomd reads at most `frame_budget_per_tick` frames of a sender per tick, 8 per 100 ms
//! by default, and decides the rest at the next tick). So the thread sends at most one frame
//! per [`DEFAULT_PACING`] (13 ms: never more than 8 per 100 ms), and a frame it holds back is
//! not lost: at the end of the interval it sends the *newest* figures. An isolated crossing
//! still goes out at once; a burst is seen at most one interval late, with its latest figure,
//! and every frame of it is read and decided when it arrives.
//!
//! ```no_run
//! use std::alloc::System;
//! use memstat::publish::{GrowthPublisher, PublisherConfig};
//! use memstat::{CountingAlloc, Publisher};
//!
//! #[global_allocator]
//! static ALLOC: CountingAlloc<System, GrowthPublisher> =
//!     CountingAlloc::with_signal(System, GrowthPublisher::new());
//!
//! let publisher = Publisher::from_env(PublisherConfig::default())?;
//! GrowthPublisher::start(&ALLOC, publisher)?;
//! // From here on, growth is published by itself.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! One per allocator: a second [`start`](GrowthPublisher::start) is refused.
//!
//! A frame the channel did not take (a full socket, a lost peer) is owed: the thread offers
//! the newest figures again one pacing interval later (after a full socket) or after the first
//! reconnection backoff (after a lost peer), without waiting for the next quantum or the
//! heartbeat.
//!
//! What it does not do:
//! - It never reads oomd's reclaim requests ([`Publisher::poll_reclaim`]): the thread owns
//!   the publisher. A service that answers them publishes itself.
//! - After `fork()` without `exec`, the child's allocator keeps the parent's eventfd and
//!   threshold: its first crossing wakes the parent's thread once (which publishes the
//!   parent's figures), and the child can start no publisher of its own (its allocator has
//!   one already). A child that publishes must `exec` (or not use a growth publisher).
#![forbid(unsafe_code)]

use std::alloc::GlobalAlloc;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};

use super::{DropReason, PublishOutcome, Publisher};
use crate::{CountingAlloc, GrowthSignal};

/// The growth signal of a [`CountingAlloc`] that publishes by itself: an `eventfd` the
/// allocator writes to and the publishing thread waits on.
#[derive(Debug)]
pub struct GrowthPublisher {
    eventfd: OnceLock<OwnedFd>,
}

impl GrowthPublisher {
    /// Not started: the allocator's signal does nothing until [`start`](Self::start).
    #[must_use]
    pub const fn new() -> Self {
        GrowthPublisher {
            eventfd: OnceLock::new(),
        }
    }

    /// Starts the publishing thread for `alloc` with `publisher` (its `quantum` is the growth
    /// that wakes it, at least one byte), paced at [`DEFAULT_PACING`]. The thread publishes
    /// at once, then whenever the live bytes grew by `quantum` since the last frame sent (at
    /// most one frame per pacing interval, the newest figures), and when the heartbeat is
    /// due. It never allocates after it started. Refused ([`io::ErrorKind::AlreadyExists`])
    /// if `alloc` already has a publishing thread.
    pub fn start<A: GlobalAlloc + Sync>(
        alloc: &'static CountingAlloc<A, GrowthPublisher>,
        publisher: Publisher,
    ) -> io::Result<std::thread::JoinHandle<()>> {
        Self::start_paced(alloc, publisher, DEFAULT_PACING)
    }

    /// [`start`](Self::start) with another pacing: at most one frame per `pacing` (zero: a
    /// frame for every quantum crossed, as fast as the socket takes them).
    pub fn start_paced<A: GlobalAlloc + Sync>(
        alloc: &'static CountingAlloc<A, GrowthPublisher>,
        publisher: Publisher,
        pacing: Duration,
    ) -> io::Result<std::thread::JoinHandle<()>> {
        let already = || {
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this allocator already has a growth publisher",
            )
        };
        if alloc.signal().eventfd.get().is_some() {
            return Err(already());
        }
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        // The thread first, the eventfd after: a thread that cannot be spawned (a thread
        // limit) leaves the allocator without a publisher, so that `start` can be tried
        // again, instead of one that would refuse every later start.
        let (go, wait_go) = std::sync::mpsc::sync_channel::<bool>(1);
        let thread = std::thread::Builder::new()
            .name("memstat-growth".into())
            .spawn(move || {
                if wait_go.recv() == Ok(true) {
                    run(alloc, publisher, pacing);
                }
            })?;
        let set = alloc.signal().eventfd.set(fd).is_ok();
        let _ = go.send(set);
        if set {
            Ok(thread)
        } else {
            // Another start won the race: this thread ends without publishing.
            let _ = thread.join();
            Err(already())
        }
    }
}

/// How soon to offer the figures again after `outcome`, however little they grow: a frame
/// dropped (the figure it carried never arrived) is owed, so the newest figures go out as soon
/// as the channel may take them instead of at the next quantum or heartbeat: one pacing
/// interval (a millisecond at least) after a full socket, the first reconnection backoff after
/// a lost peer. Otherwise nothing is owed.
fn retry_after(outcome: PublishOutcome, pacing: Duration, publisher: &Publisher) -> Duration {
    match outcome {
        PublishOutcome::Sent | PublishOutcome::Suppressed => Duration::MAX,
        PublishOutcome::Dropped(DropReason::WouldBlock) => pacing,
        PublishOutcome::Dropped(_) => publisher.config().backoff_initial,
    }
}

/// The growth publisher's default pacing: at most one frame per 13 ms, so never more than 8
/// per 100 ms, oomd's default frame budget per tick at its default tick.
pub const DEFAULT_PACING: Duration = Duration::from_millis(13);

impl Default for GrowthPublisher {
    fn default() -> Self {
        Self::new()
    }
}

impl GrowthSignal for GrowthPublisher {
    fn signal(&self) {
        if let Some(fd) = self.eventfd.get() {
            // Non-blocking; a full counter (2^64 - 2 pending wakes) only means the thread has
            // not read yet, which is the same wake.
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }
}

fn run<A: GlobalAlloc + Sync>(
    alloc: &CountingAlloc<A, GrowthPublisher>,
    mut publisher: Publisher,
    pacing: Duration,
) {
    let Some(fd) = alloc.signal().eventfd.get() else {
        return;
    };
    let quantum = publisher.config().quantum.max(1);
    let mut last_sent: Option<Instant> = None;
    loop {
        // Latest wins: within the pacing interval of the last frame, wait for its end and
        // send the figures as they are then.
        if let Some(at) = last_sent {
            // A pacing too large to add (`Duration::MAX`) waits the pacing itself.
            let left = at
                .checked_add(pacing)
                .map_or(pacing, |end| end.saturating_duration_since(Instant::now()));
            if !left.is_zero() {
                std::thread::sleep(left);
            }
        }
        let (current, peak) = (alloc.live_bytes(), alloc.peak_bytes());
        let outcome = publisher.publish(current, peak);
        if matches!(outcome, PublishOutcome::Sent) {
            last_sent = Some(Instant::now());
        }
        // The next frame is due one quantum past the figure just offered; if the live bytes
        // are there already (they grew while it was sent), publish again: at once after a
        // frame went out, a millisecond later after one was dropped (a full socket is not
        // spun on).
        if !alloc.arm_growth(current.saturating_add(quantum)) {
            if !matches!(outcome, PublishOutcome::Sent) {
                std::thread::sleep(Duration::from_millis(1));
            }
            continue;
        }
        let wait = publisher
            .next_due(Instant::now())
            .min(retry_after(outcome, pacing, &publisher))
            .max(Duration::from_millis(1));
        let timeout = rustix::time::Timespec {
            tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        let _ = poll(&mut fds, Some(&timeout));
        let mut count = [0u8; 8];
        let _ = rustix::io::read(fd, &mut count);
    }
}
