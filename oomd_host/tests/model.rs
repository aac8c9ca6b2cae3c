//! Model-based property test: random sequences of every kind of input, with the core's
//! invariants checked after every single step.
//!
//! The invariants and their checker are in `oomd_host::invariants` (numbered 1 to 10 there),
//! shared with the `watchdog` fuzz target: this file is the generator (a proptest strategy of
//! [`Op`]s) and the runs.

use std::collections::BTreeSet;

use oomd_host::fixture::RecordingAuthority;
use oomd_host::invariants::{policy, Checker, Op, Violation, Wd, NAMES};
use proptest::prelude::*;

fn failed(v: Violation) -> TestCaseError {
    TestCaseError::fail(v.0)
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..NAMES.len();
    let bytes = prop_oneof![0..900u64, 900..2_100u64, 2_000..6_000u64];
    prop_oneof![
        3 => (who.clone(), any::<bool>(), 0..3u8, prop::bool::weighted(0.8))
            .prop_map(|(who, critical, class, reports)| Op::Register { who, critical, class, reports }),
        1 => who.clone().prop_map(|who| Op::Unregister { who }),
        8 => (who.clone(), bytes.clone()).prop_map(|(who, bytes)| Op::Report { who, bytes }),
        1 => (who.clone(), bytes.clone()).prop_map(|(who, bytes)| Op::Stale { who, bytes }),
        2 => (who.clone(), bytes.clone(), 0..40u16)
            .prop_map(|(who, bytes, discarded)| Op::Latest { who, bytes, discarded }),
        1 => who.clone().prop_map(|who| Op::Jump { who }),
        1 => (who.clone(), who.clone(), bytes.clone())
            .prop_map(|(who, victim, bytes)| Op::Spoof { who, victim, bytes }),
        1 => (who.clone(), proptest::collection::vec(any::<u8>(), 0..50))
            .prop_map(|(who, bytes)| Op::Garbage { who, bytes }),
        2 => (who.clone(), bytes).prop_map(|(who, bytes)| Op::Kernel { who, bytes }),
        8 => (0..4u64).prop_map(|advance| Op::Tick { advance }),
        1 => (1..3u64).prop_map(|by| Op::TickBack { by }),
        4 => any::<usize>().prop_map(|pick| Op::Accept { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Refuse { pick }),
        3 => who.clone().prop_map(|who| Op::Exit { who }),
        1 => any::<bool>().prop_map(Op::Observe),
        1 => (1..4u16, 1..15u32).prop_map(|(budget, window)| Op::Budget { budget, window }),
        1 => any::<bool>().prop_map(Op::EnforceKernel),
        1 => (any::<bool>(), 1..12u32)
            .prop_map(|(judge_on_kernel, stale_ticks)| Op::Silence { judge_on_kernel, stale_ticks }),
        2 => (prop_oneof![Just(0u8), 50..90u8], 1..6u32)
            .prop_map(|(percent, deadline)| Op::Reclaim { percent, deadline }),
        3 => (who.clone(), prop::bool::weighted(0.8))
            .prop_map(|(who, quote_pending)| Op::Ack { who, quote_pending }),
        1 => Just(Op::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step(ops in proptest::collection::vec(op(), 1..250)) {
        let mut wd = Wd::new(policy()).expect("valid policy");
        let mut authority = RecordingAuthority::default();
        let mut model = Checker::default();
        for op in &ops {
            if let Op::Crash = op {
                model.crash(&mut wd, &mut authority).map_err(failed)?;
            } else if let Some(input) = model.input(op, &wd, &authority.requests) {
                model.step(&mut wd, &mut authority, input).map_err(failed)?;
            }
        }

        // 8. Replay: the same inputs give the same log and the same requests, run by run.
        model.check_replay(&authority).map_err(failed)?;
    }
}

#[test]
fn the_model_reaches_the_interesting_states() {
    // Guard against a generator that never gets anywhere: run a fixed sample of cases and
    // require that kills, denials, throttles, escalations and confirmations all occur.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let mut seen = BTreeSet::new();
    for _ in 0..300 {
        let ops = proptest::collection::vec(op(), 100..250)
            .new_tree(&mut runner)
            .expect("tree")
            .current();
        let mut wd = Wd::new(policy()).expect("valid policy");
        let mut authority = RecordingAuthority::default();
        let mut model = Checker::default();
        for op in &ops {
            if let Op::Crash = op {
                model.crash(&mut wd, &mut authority).expect("invariants");
            } else if let Some(input) = model.input(op, &wd, &authority.requests) {
                model
                    .step(&mut wd, &mut authority, input)
                    .expect("invariants");
            }
        }
        seen.extend(model.log().iter().map(|e| e.kind.tag()));
    }
    for tag in [
        oomd::EventTag::KillDecided,
        oomd::EventTag::KillConfirmed,
        oomd::EventTag::KillDenied,
        oomd::EventTag::KillThrottled,
        oomd::EventTag::KillEscalated,
        oomd::EventTag::KillFailed,
        oomd::EventTag::KillRefused,
        oomd::EventTag::WouldKill,
        oomd::EventTag::UnderReport,
        oomd::EventTag::FrameRejected,
        oomd::EventTag::ReportStale,
        oomd::EventTag::Resumed,
        oomd::EventTag::KillAdopted,
        oomd::EventTag::ReclaimRequested,
        oomd::EventTag::ReclaimWouldRequest,
        oomd::EventTag::ReclaimAcknowledged,
        oomd::EventTag::ReclaimMet,
        oomd::EventTag::ReclaimMissed,
    ] {
        assert!(seen.contains(&tag), "the generator never produced {tag:?}");
    }
}

/// Runs `ops` through the checker, every invariant after every step, and the replay check.
fn check_ops(ops: &[Op]) -> Result<Checker, Violation> {
    let mut wd = Wd::new(policy()).expect("valid policy");
    let mut authority = RecordingAuthority::default();
    let mut model = Checker::default();
    for op in ops {
        if let Op::Crash = op {
            model.crash(&mut wd, &mut authority)?;
        } else if let Some(input) = model.input(op, &wd, &authority.requests) {
            model.step(&mut wd, &mut authority, input)?;
        }
    }
    model.check_replay(&authority)?;
    Ok(model)
}

/// Found by the `watchdog` fuzz target: a tick at the end of time (`u64::MAX`) escalated a
/// pending kill with a deadline that saturated to `now` itself, a kill pending past its
/// deadline (invariant 10). The core's clock now stops at `bounds::MAX_TICK`, where every
/// deadline it computes still lies ahead.
#[test]
fn fuzz_regression_a_kill_escalated_at_the_end_of_time_has_its_deadline_ahead() {
    let ops = [
        Op::Register {
            who: 0,
            critical: false,
            class: 1,
            reports: true,
        },
        Op::Report {
            who: 0,
            bytes: 2_503,
        },
        Op::Tick { advance: u64::MAX },
        Op::Tick { advance: 5 },
        Op::Crash,
        Op::Report {
            who: 0,
            bytes: 2_503,
        },
        Op::Tick { advance: 1 },
    ];
    let model = check_ops(&ops).unwrap_or_else(|v| panic!("{v}"));
    let escalated = model
        .log()
        .iter()
        .filter(|e| e.kind.tag() == oomd::EventTag::KillEscalated)
        .count();
    assert_eq!(
        escalated,
        1,
        "the graceful request escalated once: {:?}",
        model.log()
    );
}

/// Found by the `watchdog` fuzz target: an exit and a restart within one tick gave the sender
/// a fresh frame budget, and five of its frames (the budget is three) were taken in one tick
/// (invariant 9). A restart now keeps the tick's frame account.
#[test]
fn fuzz_regression_a_restart_within_a_tick_keeps_the_frame_budget_used() {
    let register = Op::Register {
        who: 2,
        critical: false,
        class: 2,
        reports: true,
    };
    let report = Op::Report { who: 2, bytes: 424 };
    let ops = [
        register.clone(),
        report.clone(),
        report.clone(),
        Op::Exit { who: 2 },
        register,
        report.clone(),
        report.clone(),
        Op::Jump { who: 2 },
        Op::Tick { advance: 1 },
        report,
    ];
    let model = check_ops(&ops).unwrap_or_else(|v| panic!("{v}"));
    let rejected = model
        .log()
        .iter()
        .filter(|e| e.kind.tag() == oomd::EventTag::FrameRejected)
        .count();
    assert!(
        rejected >= 1,
        "a frame over the budget was rejected: {:?}",
        model.log()
    );
}

/// The same through an unregistration: a subject unregistered and registered again within
/// one tick keeps the tick's frame account too (found by reading the case above).
#[test]
fn fuzz_regression_unregistered_and_registered_again_within_a_tick_keeps_the_frame_budget_used() {
    let register = Op::Register {
        who: 2,
        critical: false,
        class: 2,
        reports: true,
    };
    let report = Op::Report { who: 2, bytes: 424 };
    let mut ops = vec![
        register.clone(),
        report.clone(),
        report.clone(),
        report.clone(),
    ];
    ops.extend([Op::Unregister { who: 2 }, register, report.clone(), report]);
    check_ops(&ops).unwrap_or_else(|v| panic!("{v}"));
}
