//! Benchmarks of the core's two hot paths: one frame, and one tick.
//!
//! `cargo bench -p oomd`. Figures and the machine are recorded in `docs/perf.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use memstat::{Frame, SubjectId, MAX_FRAME_LEN};
use oomd::{
    Authority, Input, Limits, Payload, Policy, Registration, SubjectClass, TerminationRequest,
    Tick, Watchdog,
};

/// Never called in these benchmarks: every subject stays below its soft limit.
struct Unreachable;

impl Authority for Unreachable {
    fn request_termination(&mut self, request: TerminationRequest) {
        black_box(request);
    }
    fn request_reclaim(&mut self, request: oomd::ReclaimRequest) {
        black_box(request);
    }
}

const MIB: u64 = 1 << 20;

fn policy(frame_budget: u16) -> Policy {
    Policy {
        limits: Limits {
            soft_bytes: 512 * MIB,
            hard_bytes: 1024 * MIB,
            soft_grace_ticks: 0,
            exit_deadline_ticks: 10,
        },
        frame_budget_per_tick: frame_budget,
        ..Policy::default()
    }
}

fn payload(seq: u64, bytes: u64) -> Payload {
    let frame = Frame {
        seq,
        current_bytes: bytes,
        peak_bytes: bytes,
        claimed_subject: None,
    };
    let mut buf = [0; MAX_FRAME_LEN];
    let n = frame.encode(&mut buf).expect("valid frame");
    Payload::new(&buf[..n])
}

fn ids(n: usize) -> Vec<SubjectId> {
    (0..n)
        .map(|i| SubjectId::from_name(&format!("svc-{i}")))
        .collect()
}

fn register_all<const S: usize, const E: usize>(wd: &mut Watchdog<S, E>, ids: &[SubjectId]) {
    for &subject in ids {
        let reg = Registration {
            subject,
            class: SubjectClass::Standard,
            critical: false,
            reports: true,
        };
        wd.handle(Input::Register(reg), &mut Unreachable)
            .expect("registered");
    }
}

/// One frame through the whole path (copy, lookup, budget, decode, checks, update), against
/// the bare memstat decode of a frame of the same length, at three table sizes.
fn frame(c: &mut Criterion) {
    let probe = payload(600, 300 * MIB);
    let mut group = c.benchmark_group("frame");
    group.bench_function("memstat_decode", |b| {
        b.iter(|| memstat::Frame::decode(black_box(probe.kept())))
    });
    group.bench_function("watchdog_handle/64", |b| b.iter_custom(handle_frames::<64>));
    group.bench_function("watchdog_handle/256", |b| {
        b.iter_custom(handle_frames::<256>)
    });
    group.bench_function("watchdog_handle/1024", |b| {
        b.iter_custom(handle_frames::<1024>)
    });
    group.finish();
}

/// Feeds `iters` frames: each subject in turn, each with its next sequence number. After
/// `SEQS` rounds the subjects restart (exit + register) so sequence numbers start over; that
/// reset (a tick and two inputs per subject per `SEQS` frames each) is included in the time.
fn handle_frames<const S: usize>(iters: u64) -> Duration {
    const SEQS: u64 = 1024;
    let ids = ids(S);
    let payloads: Vec<Payload> = (1..=SEQS).map(|seq| payload(seq, 300 * MIB)).collect();
    let mut wd: Box<Watchdog<S, 1024>> = Box::new(Watchdog::new(policy(1024)).expect("valid"));
    register_all(&mut wd, &ids);
    let mut now = 0;
    let start = Instant::now();
    for i in 0..iters {
        let who = (i % S as u64) as usize;
        let round = (i / S as u64) % SEQS;
        if who == 0 && round == 0 && i > 0 {
            now += 1;
            let _ = wd.handle(Input::Tick(Tick(now)), &mut Unreachable);
            for &id in &ids {
                let _ = wd.handle(Input::Exited(id), &mut Unreachable);
            }
            register_all(&mut wd, &ids);
        }
        let input = Input::Frame {
            sender: ids[who],
            payload: payloads[round as usize],
        };
        let r = wd.handle(black_box(input), &mut Unreachable);
        debug_assert!(r.is_ok());
    }
    start.elapsed()
}

/// One tick over a table of N subjects: steady state (all below soft: nothing to do) and the
/// worst steady state (all over soft with grace 0: every subject sorted and evaluated).
fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick");
    for n in [64usize, 1024] {
        for (label, bytes) in [("below_soft", 100 * MIB), ("all_over_soft", 600 * MIB)] {
            let ids = ids(n);
            let mut wd: Box<Watchdog<1024, 1024>> =
                Box::new(Watchdog::new(policy(8)).expect("valid"));
            register_all(&mut wd, &ids);
            for &sender in &ids {
                let input = Input::Frame {
                    sender,
                    payload: payload(1, bytes),
                };
                wd.handle(input, &mut Unreachable).expect("accepted");
            }
            let mut now = 0;
            group.bench_with_input(BenchmarkId::new(label, n), &n, |b, _| {
                b.iter(|| {
                    now += 1;
                    wd.handle(black_box(Input::Tick(Tick(now))), &mut Unreachable)
                })
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = frame, tick }
criterion_main!(benches);
