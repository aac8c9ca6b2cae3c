//! The publisher's behaviour, written once and run against every transport.
//!
//! Each test is generic over a [`Harness`]: a publisher plus the receiving end of its channel,
//! with time driven by hand as offsets from the harness's start. `behaviour_tests!(H)`
//! instantiates every one of them as a `#[test]`; `tests/publisher_core.rs` runs them on the
//! core over a fake transport, `tests/publisher.rs` on `Publisher` over real
//! `SOCK_SEQPACKET` sockets (fd mode and path mode). No test sleeps, and no assertion depends
//! on how fast the machine is.

use std::time::Duration;

use memstat::publish::{DropReason, PublishOutcome, PublisherConfig, PublisherStats};
use memstat::{Frame, SubjectId};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

/// A publisher, the receiver of its frames, and a clock driven by hand.
pub(crate) trait Harness: Sized {
    /// Connected over a channel that is never replaced once closed (an inherited fd).
    fn connected(config: PublisherConfig) -> Self;
    /// Connected over a channel the transport reopens once the backoff allows (a path).
    fn reconnecting(config: PublisherConfig) -> Self;
    /// `publish_at` the moment `at` after the harness started.
    fn publish_at(&mut self, at: Duration, current: u64, peak: u64) -> PublishOutcome;
    /// `next_due` at the moment `at` after the harness started.
    fn next_due(&self, at: Duration) -> Duration;
    fn stats(&self) -> PublisherStats;
    fn next_seq(&self) -> u64;
    fn is_connected(&self) -> bool;
    /// Every frame that reached the receiver since the last call, decoded, in order. Never
    /// blocks.
    fn received(&mut self) -> Vec<Frame>;
    /// The receiver closes its end (having read what was sent) and, for a reconnecting
    /// channel, stops listening.
    fn peer_goes_away(&mut self);
    /// A reconnecting channel's receiver listens again; nothing for the other kind.
    fn peer_returns(&mut self);
}

/// Instantiates every behaviour test for the harness `$h`, in the module it is called in.
/// A behaviour missing from this list is dead code, which the lints refuse.
#[macro_export]
macro_rules! behaviour_tests {
    ($h:ty) => {
        $crate::behaviour_tests!(@each $h;
            first_frame_is_sent_and_decodes,
            small_growth_within_the_interval_is_suppressed,
            growth_of_a_quantum_is_sent_at_once,
            after_the_interval_a_frame_is_sent_without_growth,
            unchanged_figures_are_sent_again_at_the_heartbeat_and_not_before,
            a_new_publisher_is_due_at_once,
            a_zero_heartbeat_resends_unchanged_figures_every_interval,
            a_heartbeat_below_the_interval_waits_for_the_interval,
            slow_growth_accumulates_across_suppressed_calls,
            time_going_backwards_counts_as_no_time,
            receiver_sees_strictly_increasing_sequence_numbers_and_the_claim,
            peak_below_current_is_raised_to_current,
            full_peer_buffer_drops_frames_as_would_block_instead_of_blocking,
            closed_peer_without_reconnection_drops_as_disconnected_for_good,
            reconnecting_channel_backs_off_then_reconnects_when_the_peer_returns,
            backoff_doubles_up_to_its_bound,
            time_going_backwards_does_not_end_a_backoff,
            random_runs_follow_the_rules_and_count_every_call_once,
        );
    };
    (@each $h:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::behaviour::$name::<$h>();
            }
        )*
    };
}

const KIB: u64 = 1024;

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Defaults, spelled out so the tests read without looking them up.
pub(crate) fn config() -> PublisherConfig {
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
pub(crate) fn unlimited() -> PublisherConfig {
    PublisherConfig {
        min_interval: Duration::ZERO,
        quantum: 0,
        ..config()
    }
}

pub(crate) fn assert_seq_strictly_increasing(frames: &[Frame]) {
    for pair in frames.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "{pair:?}");
    }
}

use PublishOutcome::{Dropped, Sent, Suppressed};

pub(crate) fn first_frame_is_sent_and_decodes<H: Harness>() {
    let mut p = H::connected(config());
    assert_eq!(p.publish_at(ms(0), 1000, 2000), Sent);
    assert_eq!(
        p.received(),
        [Frame {
            seq: 0,
            current_bytes: 1000,
            peak_bytes: 2000,
            claimed_subject: None
        }]
    );
    assert_eq!(p.stats().sent, 1);
}

pub(crate) fn small_growth_within_the_interval_is_suppressed<H: Harness>() {
    let mut p = H::connected(config());
    assert_eq!(p.publish_at(ms(0), 1000, 1000), Sent);
    let below_a_quantum = 1000 + 64 * KIB - 1;
    assert_eq!(
        p.publish_at(ms(50), below_a_quantum, below_a_quantum),
        Suppressed
    );
    assert_eq!(p.received().len(), 1);
    assert_eq!(p.stats().suppressed, 1);
    assert_eq!(p.next_seq(), 1, "a suppressed call uses no sequence number");
}

pub(crate) fn growth_of_a_quantum_is_sent_at_once<H: Harness>() {
    let mut p = H::connected(config());
    assert_eq!(p.publish_at(ms(0), 1000, 1000), Sent);
    let grown = 1000 + 64 * KIB;
    assert_eq!(p.publish_at(ms(1), grown, grown), Sent);
    assert_eq!(p.received()[1].current_bytes, grown);
}

pub(crate) fn after_the_interval_a_frame_is_sent_without_growth<H: Harness>() {
    let mut p = H::connected(config());
    assert_eq!(p.publish_at(ms(0), 1000, 1000), Sent);
    assert_eq!(p.publish_at(ms(99), 900, 1000), Suppressed);
    assert_eq!(p.publish_at(ms(100), 900, 1000), Sent);
    let frames = p.received();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].current_bytes, 900);
}

pub(crate) fn unchanged_figures_are_sent_again_at_the_heartbeat_and_not_before<H: Harness>() {
    let mut p = H::connected(config()); // 100 ms interval, 1 s heartbeat
    assert_eq!(p.publish_at(ms(0), 1000, 1000), Sent);
    for at in [100, 500, 999] {
        assert_eq!(p.publish_at(ms(at), 1000, 1000), Suppressed, "{at} ms");
    }
    assert_eq!(p.next_due(ms(999)), ms(1));
    assert_eq!(p.next_due(ms(1000)), Duration::ZERO);
    assert_eq!(p.publish_at(ms(1000), 1000, 1000), Sent);
    assert_eq!(p.next_due(ms(1000)), ms(1000));
    let frames = p.received();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].seq, 1);
    assert_eq!(frames[1].current_bytes, 1000);
}

pub(crate) fn a_new_publisher_is_due_at_once<H: Harness>() {
    let p = H::connected(config());
    assert_eq!(p.next_due(ms(0)), Duration::ZERO);
}

pub(crate) fn a_zero_heartbeat_resends_unchanged_figures_every_interval<H: Harness>() {
    let mut p = H::connected(PublisherConfig {
        heartbeat: Duration::ZERO,
        ..config()
    });
    assert_eq!(p.publish_at(ms(0), 7, 7), Sent);
    assert_eq!(p.publish_at(ms(99), 7, 7), Suppressed);
    assert_eq!(p.publish_at(ms(100), 7, 7), Sent);
    assert_eq!(p.received().len(), 2);
}

/// `next_due` and the rule it predicts agree: a heartbeat shorter than the interval is the
/// interval.
pub(crate) fn a_heartbeat_below_the_interval_waits_for_the_interval<H: Harness>() {
    let mut p = H::connected(PublisherConfig {
        heartbeat: ms(30),
        ..config()
    });
    assert_eq!(p.publish_at(ms(0), 7, 7), Sent);
    assert_eq!(p.next_due(ms(0)), ms(100));
    assert_eq!(p.publish_at(ms(30), 7, 7), Suppressed);
    assert_eq!(p.next_due(ms(99)), ms(1));
    assert_eq!(p.publish_at(ms(99), 7, 7), Suppressed);
    assert_eq!(p.next_due(ms(100)), Duration::ZERO);
    assert_eq!(p.publish_at(ms(100), 7, 7), Sent);
    assert_eq!(p.received().len(), 2);
}

pub(crate) fn slow_growth_accumulates_across_suppressed_calls<H: Harness>() {
    let mut p = H::connected(config());
    assert_eq!(p.publish_at(ms(0), 0, 0), Sent);
    // 16 KiB per millisecond: the fourth step is a quantum above the last frame *sent*.
    for step in 1..=3 {
        let bytes = step * 16 * KIB;
        assert_eq!(p.publish_at(ms(step), bytes, bytes), Suppressed);
    }
    assert_eq!(p.publish_at(ms(4), 64 * KIB, 64 * KIB), Sent);
    assert_eq!(p.received().len(), 2);
}

pub(crate) fn time_going_backwards_counts_as_no_time<H: Harness>() {
    let mut p = H::connected(config());
    let t0 = ms(1000);
    assert_eq!(p.publish_at(t0, 0, 0), Sent);
    assert_eq!(p.publish_at(t0 - ms(1000), 1, 1), Suppressed);
    assert_eq!(
        p.next_due(t0 - ms(1000)),
        ms(1000),
        "the whole heartbeat remains"
    );
    assert_eq!(p.stats().time_went_backwards, 1);
    assert_eq!(p.publish_at(t0 + ms(100), 1, 1), Sent);
    assert_eq!(p.stats().time_went_backwards, 1);
}

pub(crate) fn receiver_sees_strictly_increasing_sequence_numbers_and_the_claim<H: Harness>() {
    let hog = SubjectId::from_name("hog");
    let mut p = H::connected(PublisherConfig {
        claimed_subject: Some(hog),
        ..config()
    });
    let mut sent = 0;
    for i in 0..50u64 {
        // Every 10 ms, growing 20 KiB each time: a mix of suppressed and sent calls.
        let bytes = i * 20 * KIB;
        if p.publish_at(ms(10 * i), bytes, bytes) == Sent {
            sent += 1;
        }
    }
    let frames = p.received();
    assert_eq!(frames.len(), sent);
    assert!(sent > 1 && sent < 50, "sent {sent}");
    assert_seq_strictly_increasing(&frames);
    assert!(frames.iter().all(|f| f.claimed_subject == Some(hog)));
    assert_eq!(p.stats().sent, sent as u64);
    assert_eq!(p.stats().suppressed, 50 - sent as u64);
}

pub(crate) fn peak_below_current_is_raised_to_current<H: Harness>() {
    let mut p = H::connected(config());
    assert_eq!(p.publish_at(ms(0), 5000, 10), Sent);
    let frame = p.received()[0];
    assert_eq!((frame.current_bytes, frame.peak_bytes), (5000, 5000));
    assert_eq!(p.stats().peak_clamped, 1);
}

pub(crate) fn full_peer_buffer_drops_frames_as_would_block_instead_of_blocking<H: Harness>() {
    let mut p = H::connected(unlimited());
    let mut calls = 0u64;
    // Nobody reads. A blocking send would hang this test; a full channel must drop.
    let first_drop = (0..100_000u64).find_map(|i| {
        calls += 1;
        match p.publish_at(ms(i), i, i) {
            Sent => None,
            other => Some(other),
        }
    });
    assert_eq!(first_drop, Some(Dropped(DropReason::WouldBlock)));
    // Still full: the next ones are dropped too, and counted.
    for i in 0..10 {
        assert_eq!(
            p.publish_at(ms(calls + i), calls + i, calls + i),
            Dropped(DropReason::WouldBlock)
        );
    }
    let stats = p.stats();
    assert_eq!(stats.dropped_would_block, 11);
    assert_eq!(stats.sent + stats.dropped(), calls + 10);
    assert!(p.is_connected());

    // The receiver catches up: it sees exactly the sent frames, and the drops as one gap.
    let frames = p.received();
    assert_eq!(frames.len() as u64, stats.sent);
    assert_seq_strictly_increasing(&frames);
    assert_eq!(p.publish_at(ms(calls + 10), 0, 0), Sent);
    let after = p.received();
    assert_eq!(after[0].seq, frames.last().unwrap().seq + 12);
}

pub(crate) fn closed_peer_without_reconnection_drops_as_disconnected_for_good<H: Harness>() {
    let mut p = H::connected(unlimited());
    assert_eq!(p.publish_at(ms(0), 1, 1), Sent);
    p.peer_goes_away();
    p.peer_returns();
    for i in 1..=3 {
        assert_eq!(
            p.publish_at(Duration::from_secs(i * 60), 1, 1),
            Dropped(DropReason::Disconnected)
        );
    }
    let stats = p.stats();
    assert_eq!(stats.dropped_disconnected, 3);
    assert_eq!(stats.connect_attempts, 0, "nothing to reconnect to");
    assert!(!p.is_connected());
}

pub(crate) fn reconnecting_channel_backs_off_then_reconnects_when_the_peer_returns<H: Harness>() {
    let mut p = H::reconnecting(unlimited());

    // Connected: frames flow.
    assert_eq!(p.publish_at(ms(0), 1, 1), Sent);
    assert_eq!(p.received()[0].seq, 0);

    // The receiver goes away. The first send finds out.
    p.peer_goes_away();
    let t1 = ms(10);
    assert_eq!(p.publish_at(t1, 2, 2), Dropped(DropReason::Disconnected));
    assert!(!p.is_connected());

    // Within the first backoff (50 ms): no connection attempt at all.
    for offset in [0, 1, 25, 49] {
        assert_eq!(
            p.publish_at(t1 + ms(offset), 3, 3),
            Dropped(DropReason::BackingOff)
        );
    }
    assert_eq!(p.stats().connect_attempts, 0);

    // At 50 ms one attempt, which fails (nobody listens); the wait doubles to 100 ms.
    let t2 = t1 + ms(50);
    assert_eq!(p.publish_at(t2, 4, 4), Dropped(DropReason::Disconnected));
    assert_eq!(p.stats().connect_attempts, 1);
    assert_eq!(
        p.publish_at(t2 + ms(99), 5, 5),
        Dropped(DropReason::BackingOff)
    );
    assert_eq!(p.stats().connect_attempts, 1);

    // The receiver is back. The publisher does not notice before its backoff is over...
    p.peer_returns();
    assert_eq!(
        p.publish_at(t2 + ms(99), 6, 6),
        Dropped(DropReason::BackingOff)
    );
    // ...and then reconnects and sends in the same call.
    let t3 = t2 + ms(100);
    assert_eq!(p.publish_at(t3, 7, 7), Sent);
    assert!(p.is_connected());
    let stats = p.stats();
    assert_eq!((stats.connect_attempts, stats.reconnects), (2, 1));
    assert_eq!(stats.dropped_disconnected, 2);
    assert_eq!(stats.dropped_backing_off, 6);

    // Frames flow again; the gap in seq is exactly the dropped frames.
    assert_eq!(p.publish_at(t3 + ms(1), 8, 8), Sent);
    let frames = p.received();
    assert_eq!(
        frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
        [1 + stats.dropped(), 2 + stats.dropped()]
    );
    assert_eq!(frames[0].current_bytes, 7);

    // A successful send reset the backoff: the next outage waits 50 ms again, not 200.
    p.peer_goes_away();
    let t4 = t3 + ms(10);
    assert_eq!(p.publish_at(t4, 9, 9), Dropped(DropReason::Disconnected));
    assert_eq!(
        p.publish_at(t4 + ms(49), 9, 9),
        Dropped(DropReason::BackingOff)
    );
    assert_eq!(
        p.publish_at(t4 + ms(50), 9, 9),
        Dropped(DropReason::Disconnected)
    );
    assert_eq!(p.stats().connect_attempts, 3);
}

pub(crate) fn backoff_doubles_up_to_its_bound<H: Harness>() {
    let mut p = H::reconnecting(PublisherConfig {
        backoff_initial: ms(50),
        backoff_max: ms(120),
        ..unlimited()
    });
    p.peer_goes_away();

    let mut now = ms(0);
    assert_eq!(p.publish_at(now, 0, 0), Dropped(DropReason::Disconnected));
    // Waits: 50, 100, then capped at 120, 120.
    for wait in [50, 100, 120, 120] {
        let attempts = p.stats().connect_attempts;
        assert_eq!(
            p.publish_at(now + ms(wait - 1), 0, 0),
            Dropped(DropReason::BackingOff),
            "wait {wait}"
        );
        now += ms(wait);
        assert_eq!(p.publish_at(now, 0, 0), Dropped(DropReason::Disconnected));
        assert_eq!(p.stats().connect_attempts, attempts + 1);
    }
}

pub(crate) fn time_going_backwards_does_not_end_a_backoff<H: Harness>() {
    let mut p = H::reconnecting(unlimited());
    p.peer_goes_away();
    p.peer_returns();
    let t1 = ms(1000);
    assert_eq!(p.publish_at(t1, 1, 1), Dropped(DropReason::Disconnected));
    assert_eq!(
        p.publish_at(t1 - ms(1000), 1, 1),
        Dropped(DropReason::BackingOff)
    );
    assert_eq!(
        p.publish_at(t1 + ms(49), 1, 1),
        Dropped(DropReason::BackingOff)
    );
    assert_eq!(p.stats().connect_attempts, 0);
    assert_eq!(p.stats().time_went_backwards, 1);
    assert_eq!(p.publish_at(t1 + ms(50), 1, 1), Sent);
    assert_eq!(p.stats().reconnects, 1);
}

// ---- the model: random runs, invariants after every call ------------------------------------

/// One step of a random run.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// Move the clock by `step_ms` (backwards if negative, never before the start) and offer
    /// these figures.
    Publish {
        step_ms: i64,
        current: u64,
        peak: u64,
    },
    /// The receiver reads what is waiting.
    Receive,
    PeerGoesAway,
    PeerReturns,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (-50i64..=300, 0u64..300_000, 0u64..300_000)
            .prop_map(|(step_ms, current, peak)| Op::Publish { step_ms, current, peak }),
        2 => Just(Op::Receive),
        1 => Just(Op::PeerGoesAway),
        1 => Just(Op::PeerReturns),
    ]
}

fn any_config() -> impl Strategy<Value = PublisherConfig> {
    (
        0u64..=200,
        0u64..=1000,
        prop_oneof![Just(0u64), Just(1), 1u64..=128 * KIB],
        0u64..=100,
        0u64..=300,
        proptest::option::of(any::<u64>().prop_map(SubjectId)),
    )
        .prop_map(
            |(interval, heartbeat, quantum, initial, max, claim)| PublisherConfig {
                min_interval: ms(interval),
                heartbeat: ms(heartbeat),
                quantum,
                backoff_initial: ms(initial),
                backoff_max: ms(max),
                claimed_subject: claim,
            },
        )
}

/// The counter each outcome lands in, read from `stats`.
fn counter_of(stats: &PublisherStats, outcome: PublishOutcome) -> u64 {
    match outcome {
        Sent => stats.sent,
        Suppressed => stats.suppressed,
        Dropped(DropReason::WouldBlock) => stats.dropped_would_block,
        Dropped(DropReason::Disconnected) => stats.dropped_disconnected,
        Dropped(DropReason::BackingOff) => stats.dropped_backing_off,
        Dropped(DropReason::Error) => stats.dropped_error,
        other => panic!("a new outcome the model does not know: {other:?}"),
    }
}

const OUTCOMES: [PublishOutcome; 6] = [
    Sent,
    Suppressed,
    Dropped(DropReason::WouldBlock),
    Dropped(DropReason::Disconnected),
    Dropped(DropReason::BackingOff),
    Dropped(DropReason::Error),
];

/// The documented rules, written a second time and as plainly as possible, in whole
/// milliseconds: what the publisher must do, predicted before each call.
#[derive(Debug)]
struct Reference {
    config: PublisherConfig,
    /// The last frame built: when, and its `(current, peak)`.
    last_built: Option<(u64, (u64, u64))>,
    last_sent_current: u64,
    link: RefLink,
    /// The wait the next closure (or failed attempt) starts.
    next_wait: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefLink {
    Up,
    Dead,
    Down { since: u64, wait: u64 },
}

fn whole_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

impl Reference {
    fn new(config: PublisherConfig) -> Self {
        Self {
            config,
            last_built: None,
            last_sent_current: 0,
            link: RefLink::Up,
            next_wait: whole_ms(config.backoff_initial.min(config.backoff_max)),
        }
    }

    /// Rule 2 of the module docs, word for word.
    fn is_due(&self, now: u64, current: u64, peak: u64) -> bool {
        let Some((at, figures)) = self.last_built else {
            return true;
        };
        if current.saturating_sub(self.last_sent_current) >= self.config.quantum {
            return true;
        }
        let since = now.saturating_sub(at);
        let changed = (current, peak) != figures;
        since >= whole_ms(self.config.min_interval)
            && (changed || since >= whole_ms(self.config.heartbeat))
    }

    /// Rule 2 for figures equal to the last frame's, without growth: whether the heartbeat
    /// (and the interval) have passed.
    fn is_heartbeat_due(&self, now: u64) -> bool {
        let Some((at, _)) = self.last_built else {
            return true;
        };
        let since = now.saturating_sub(at);
        since >= whole_ms(self.config.min_interval) && since >= whole_ms(self.config.heartbeat)
    }
}

/// Drives `ops` and checks after every call: the outcome is the one the [`Reference`]
/// predicts (suppressed exactly when not due; backing off exactly while the wait runs; a
/// connection attempt exactly when it ends; dead for good without reconnection); the call's
/// outcome grew its own counter by one and no other, and the counters add up to the calls;
/// a built frame took the next sequence number and a suppressed call none; a clamp was
/// counted when `peak < current`; `next_due` is the first moment unchanged figures are due.
/// At the end the receiver has seen exactly the frames whose calls said `Sent`, in order,
/// with the figures offered.
fn run_model<H: Harness>(config: PublisherConfig, reconnecting: bool, ops: &[Op]) {
    let mut p = if reconnecting {
        H::reconnecting(config)
    } else {
        H::connected(config)
    };
    let mut model = Reference::new(config);
    let mut now = 0u64;
    let mut calls = 0u64;
    let mut expected = Vec::new();
    let mut received = Vec::new();
    for &op in ops {
        let (step_ms, current, peak) = match op {
            Op::Publish {
                step_ms,
                current,
                peak,
            } => (step_ms, current, peak),
            Op::Receive => {
                received.extend(p.received());
                continue;
            }
            Op::PeerGoesAway => {
                p.peer_goes_away();
                continue;
            }
            Op::PeerReturns => {
                p.peer_returns();
                continue;
            }
        };
        now = now.saturating_add_signed(step_ms);
        let clamped = peak.max(current);
        let due = model.is_due(now, current, clamped);
        let (before, seq) = (p.stats(), p.next_seq());
        let outcome = p.publish_at(ms(now), current, peak);
        calls += 1;
        let after = p.stats();

        // Every call in exactly one counter.
        for other in OUTCOMES {
            let grew = counter_of(&after, other) - counter_of(&before, other);
            assert_eq!(
                grew,
                u64::from(other == outcome),
                "{other:?} after {outcome:?}"
            );
        }
        assert_eq!(after.calls(), calls);
        assert_eq!(
            after.peak_clamped - before.peak_clamped,
            u64::from(peak < current)
        );
        let backwards = model.last_built.is_some_and(|(at, _)| now < at);
        assert_eq!(
            after.time_went_backwards - before.time_went_backwards,
            u64::from(backwards)
        );

        // The rate limit, and the sequence numbers it hands out.
        assert_eq!(outcome != Suppressed, due, "{outcome:?} at {now} ms");
        assert_eq!(p.next_seq(), seq.wrapping_add(u64::from(due)));
        assert_eq!(p.next_seq(), after.sent + after.dropped());

        // The link and its backoff.
        let attempted = after.connect_attempts - before.connect_attempts;
        let reconnected = after.reconnects - before.reconnects;
        if due {
            match model.link {
                RefLink::Up => assert_eq!(attempted, 0),
                RefLink::Dead => {
                    assert_eq!(outcome, Dropped(DropReason::Disconnected));
                    assert_eq!(attempted, 0);
                }
                RefLink::Down { since, wait } if now.saturating_sub(since) < wait => {
                    assert_eq!(outcome, Dropped(DropReason::BackingOff));
                    assert_eq!(attempted, 0);
                }
                RefLink::Down { .. } => assert_eq!(attempted, 1, "{outcome:?} at {now} ms"),
            }
            if attempted == 1 && outcome != Dropped(DropReason::Disconnected) {
                assert_eq!(reconnected, 1, "{outcome:?} after an attempt");
            }
            match outcome {
                Sent => {
                    model.link = RefLink::Up;
                    model.last_sent_current = current;
                    model.next_wait = whole_ms(config.backoff_initial.min(config.backoff_max));
                }
                Dropped(DropReason::Disconnected) if reconnecting => {
                    model.link = RefLink::Down {
                        since: now,
                        wait: model.next_wait,
                    };
                    model.next_wait = (2 * model.next_wait).min(whole_ms(config.backoff_max));
                }
                Dropped(DropReason::Disconnected) => model.link = RefLink::Dead,
                Dropped(DropReason::BackingOff) => {}
                _ => model.link = RefLink::Up,
            }
            model.last_built = Some((now, (current, clamped)));
        } else {
            assert_eq!((attempted, reconnected), (0, 0));
        }
        assert_eq!(p.is_connected(), model.link == RefLink::Up);

        // `next_due`: the first moment unchanged figures are due; the whole wait when the
        // clock reads earlier than the last frame (no time has passed since it).
        let wait = whole_ms(p.next_due(ms(now)));
        match model.last_built {
            Some((at, _)) if now < at => {
                assert_eq!(wait, whole_ms(config.heartbeat.max(config.min_interval)));
            }
            _ => {
                assert!(
                    model.is_heartbeat_due(now + wait),
                    "next_due {wait} at {now}"
                );
                if wait > 0 {
                    assert!(
                        !model.is_heartbeat_due(now + wait - 1),
                        "next_due {wait} at {now}"
                    );
                }
            }
        }

        if outcome == Sent {
            expected.push(Frame {
                seq,
                current_bytes: current,
                peak_bytes: clamped,
                claimed_subject: config.claimed_subject,
            });
        }
    }
    received.extend(p.received());
    assert_eq!(received, expected);
}

/// Random runs, each checked call by call against the [`Reference`] (see [`run_model`]).
pub(crate) fn random_runs_follow_the_rules_and_count_every_call_once<H: Harness>() {
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let run = (
        any_config(),
        any::<bool>(),
        proptest::collection::vec(op(), 1..120),
    );
    runner
        .run(&run, |(config, reconnecting, ops)| {
            run_model::<H>(config, reconnecting, &ops);
            Ok(())
        })
        .unwrap();
}
