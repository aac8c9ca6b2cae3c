//! A reclaim request's round trip over a real socketpair, as oomd sees it: from sending the
//! request to reading the acknowledgement, with the service's side done by `Publisher`
//! (`poll_reclaim`, then `acknowledge`).
//!
//! - `reclaim/round_trip/same_thread`: both ends in one thread, no wake-up: the cost of the
//!   four socket calls and the codec.
//! - `reclaim/round_trip/service_thread`: the service is a thread blocked in `poll(2)` on
//!   `Publisher::reclaim_fd`, as a service's event loop would be: adds the wake-up.
//!
//! The service frees nothing here: what a real service does before acknowledging is its own
//! time, on top of this.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use memstat::publish::PublisherConfig;
use memstat::{Publisher, ReclaimAck, ReclaimRequest, MAX_FRAME_LEN};
use rustix::event::{poll, PollFd, PollFlags};

fn request_bytes(id: u64) -> ([u8; memstat::MAX_REQUEST_LEN], usize) {
    let mut buf = [0; memstat::MAX_REQUEST_LEN];
    let n = ReclaimRequest {
        id,
        target_bytes: 4 << 20,
        deadline_ms: 2000,
    }
    .encode(&mut buf)
    .expect("fits");
    (buf, n)
}

fn ack_of(oomd: &UnixDatagram, buf: &mut [u8]) -> u64 {
    let n = oomd.recv(buf).expect("the acknowledgement");
    ReclaimAck::decode(&buf[..n])
        .expect("an acknowledgement")
        .id
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("reclaim/round_trip");

    let (oomd, service) = UnixDatagram::pair().expect("socketpair");
    let mut publisher = Publisher::from_fd(OwnedFd::from(service), PublisherConfig::default());
    let mut buf = [0u8; MAX_FRAME_LEN + 1];
    let mut id = 0u64;
    group.bench_function("same_thread", |b| {
        b.iter(|| {
            id += 1;
            let (req, n) = request_bytes(id);
            oomd.send(&req[..n]).expect("sent");
            let got = publisher.poll_reclaim().expect("the request");
            publisher.acknowledge(got.id).expect("acknowledged");
            assert_eq!(ack_of(&oomd, &mut buf), id);
        });
    });

    let (oomd, service) = UnixDatagram::pair().expect("socketpair");
    oomd.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let service = std::thread::spawn(move || {
        let mut publisher = Publisher::from_fd(OwnedFd::from(service), PublisherConfig::default());
        loop {
            let readable = {
                let fd = publisher.reclaim_fd().expect("connected");
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                poll(&mut fds, None).expect("poll");
                fds[0].revents()
            };
            if readable.contains(PollFlags::HUP) {
                return;
            }
            if let Some(request) = publisher.poll_reclaim() {
                if request.id == u64::MAX {
                    return;
                }
                publisher.acknowledge(request.id).expect("acknowledged");
            }
        }
    });
    let mut id = 0u64;
    group.bench_function("service_thread", |b| {
        b.iter(|| {
            id += 1;
            let (req, n) = request_bytes(id);
            oomd.send(&req[..n]).expect("sent");
            assert_eq!(ack_of(&oomd, &mut buf), id);
        });
    });
    let (req, n) = request_bytes(u64::MAX);
    oomd.send(&req[..n]).expect("sent");
    service.join().expect("the service thread");
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
