//! What every growth-publisher test binary (and `benches/growth.rs`) starts the same way: a
//! [`GrowthPublisher`] on the binary's own allocator (one per allocator, so one per binary),
//! sending over `tx`, with no heartbeat within a test: every frame after the first is the
//! growth signal's.

use std::alloc::System;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use memstat::publish::{GrowthPublisher, PublisherConfig};
use memstat::{CountingAlloc, Publisher};

/// Starts the growth publisher of `alloc` on `tx` with `quantum` and `pacing`, its heartbeat
/// an hour away.
pub(crate) fn start(
    alloc: &'static CountingAlloc<System, GrowthPublisher>,
    tx: UnixDatagram,
    quantum: u64,
    pacing: Duration,
) {
    let config = PublisherConfig {
        quantum,
        heartbeat: Duration::from_secs(3600),
        ..PublisherConfig::default()
    };
    GrowthPublisher::start_paced(alloc, Publisher::from_fd(OwnedFd::from(tx), config), pacing)
        .expect("started");
}
