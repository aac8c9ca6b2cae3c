//! Every policy behaviour of the core, one test each, driven through the fixture harness.
//! Policy in all tests unless said otherwise: `fixture::small_policy()` — soft 1000, hard
//! 2000, grace 5, deadline 3, 2 kills per 10 ticks, 4 frames per sender per tick.

use memstat::{Frame, SubjectId, MAX_FRAME_LEN};
use oomd::{
    EventKind, EventTag, InputError, KillReason, KillState, Limits, Policy, PolicyError,
    RefusalReason, RegistrationError, Rejection, SubjectClass, TerminationMode, Tick,
};
use oomd_host::fixture::{small_policy, Harness};

fn harness() -> Harness {
    Harness::new(small_policy())
}

/// A harness at tick 1 with one registered subject `hog` whose frame has just put it over
/// hard: the kill was decided in that input.
fn hog_over_hard() -> Harness {
    let mut h = harness();
    h.register("hog");
    h.tick().expect("forward tick");
    h.report("hog", 2_500).expect("accepted");
    h
}

fn count_lines(h: &Harness, needle: &str) -> usize {
    h.lines().iter().filter(|l| l.contains(needle)).count()
}

// ----- the kill path ---------------------------------------------------------------------

#[test]
fn hard_limit_triggers_exactly_one_kill_decision() {
    let mut h = hog_over_hard(); // decided at tick 1; the deadline (3) is not reached below
    for bytes in [3_000, 9_000] {
        h.report("hog", bytes).unwrap();
        h.tick().unwrap();
    }
    assert_eq!(h.count(EventTag::KillDecided), 1);
    assert_eq!(h.requests().len(), 1);
    assert_eq!(h.last_request().mode, TerminationMode::Graceful);
    assert_eq!(
        count_lines(
            &h,
            "oomd: kill decided app=hog bytes=2500 reason=hard-limit"
        ),
        1
    );
}

#[test]
fn the_decision_is_audited_before_the_authority_is_called() {
    let h = hog_over_hard();
    let request = h.last_request();
    let events = h.events();
    let audit = events
        .iter()
        .find(|e| e.seq == request.audit_seq)
        .expect("audit record kept");
    assert_eq!(
        audit.kind,
        EventKind::KillRequested {
            subject: request.subject,
            ticket: request.ticket,
            mode: request.mode
        }
    );
    let decided = events
        .iter()
        .position(|e| matches!(e.kind, EventKind::KillDecided { subject, .. } if subject == request.subject))
        .expect("a decision");
    assert!(
        events[decided].seq < audit.seq,
        "the decision is logged before the request"
    );
}

#[test]
fn kill_is_confirmed_only_after_acknowledgement_and_observed_exit() {
    let mut h = hog_over_hard();
    let ticket = h.last_request().ticket;
    assert_eq!(
        h.count(EventTag::KillConfirmed),
        0,
        "no confirmation on request"
    );
    h.accept(ticket).unwrap();
    assert_eq!(
        h.count(EventTag::KillConfirmed),
        0,
        "no confirmation on acknowledgement"
    );
    h.tick().unwrap();
    h.exited("hog").unwrap();
    assert_eq!(h.lines().last().unwrap(), "oomd: kill app=hog bytes=2500");
    assert!(!h.status("hog").running);
}

#[test]
fn an_exit_before_acknowledgement_is_not_claimed_as_a_kill() {
    let mut h = hog_over_hard();
    h.exited("hog").unwrap();
    assert_eq!(h.count(EventTag::KillConfirmed), 0);
    assert_eq!(
        h.lines().last().unwrap(),
        "oomd: exited app=hog (kill not acknowledged)"
    );
    // The late acknowledgement is stale and cannot confirm anything either.
    assert_eq!(
        h.accept(h.last_request().ticket),
        Err(InputError::StaleAnswer)
    );
    assert_eq!(h.count(EventTag::KillConfirmed), 0);
}

#[test]
fn frames_during_a_pending_kill_do_not_retrigger() {
    let mut h = hog_over_hard();
    h.accept(h.last_request().ticket).unwrap();
    for bytes in [5_000, 50_000] {
        h.report("hog", bytes).unwrap();
        h.tick().unwrap();
    }
    assert_eq!(h.requests().len(), 1);
    assert!(matches!(
        h.status("hog").kill,
        KillState::Pending {
            acknowledged: true,
            ..
        }
    ));
    assert_eq!(
        h.status("hog").reported_bytes,
        Some(50_000),
        "observations still update"
    );
}

#[test]
fn no_exit_escalates_once_to_forced_then_reports_failure() {
    let mut h = hog_over_hard(); // decided at tick 1, deadline 3 → escalation at tick 4
    h.accept(h.last_request().ticket).unwrap();
    h.ticks(2);
    assert_eq!(h.requests().len(), 1, "no escalation before the deadline");
    h.tick().unwrap(); // tick 4
    let modes: Vec<_> = h.requests().iter().map(|r| r.mode).collect();
    assert_eq!(modes, [TerminationMode::Graceful, TerminationMode::Forced]);
    assert_ne!(h.requests()[0].ticket, h.requests()[1].ticket);
    h.accept(h.last_request().ticket).unwrap();
    h.ticks(3); // tick 7: forced deadline passes
    assert_eq!(h.count(EventTag::KillFailed), 1);
    assert_eq!(
        h.lines().last().unwrap(),
        "oomd: kill failed app=hog bytes=2500"
    );
    h.ticks(30);
    assert_eq!(
        h.requests().len(),
        2,
        "a failed kill is not retried in the same incident"
    );
    assert_eq!(
        h.count(EventTag::KillConfirmed),
        0,
        "never confirmed without an exit"
    );
}

#[test]
fn an_unanswered_request_escalates_too() {
    let mut h = hog_over_hard();
    h.ticks(3);
    assert_eq!(h.requests().len(), 2);
    assert_eq!(h.last_request().mode, TerminationMode::Forced);
    h.accept(h.last_request().ticket).unwrap();
    h.exited("hog").unwrap();
    assert_eq!(h.lines().last().unwrap(), "oomd: kill app=hog bytes=2500");
}

#[test]
fn a_refusal_is_logged_and_retried_only_after_a_kill_window() {
    let mut h = hog_over_hard(); // tick 1
    h.refuse(h.last_request().ticket, RefusalReason::Unavailable)
        .unwrap();
    assert_eq!(count_lines(&h, "reason=unavailable"), 1);
    h.ticks(9); // ticks 2..=10
    assert_eq!(h.requests().len(), 1, "no retry storm");
    h.tick().unwrap(); // tick 11 = refusal tick + window
    assert_eq!(h.requests().len(), 2);
    assert_eq!(h.count(EventTag::KillDecided), 2);
}

#[test]
fn a_throttled_subject_that_recovers_is_not_killed() {
    let mut h = harness();
    for name in ["a", "b", "c"] {
        h.register(name);
        h.report(name, 3_000).unwrap();
    }
    h.tick().unwrap();
    assert_eq!(h.requests().len(), 2);
    let throttled = ["a", "b", "c"]
        .into_iter()
        .find(|n| matches!(h.status(n).kill, KillState::Throttled { .. }))
        .unwrap();
    h.report(throttled, 100).unwrap();
    h.ticks(20);
    assert!(h.requests_for(throttled).is_empty());
    assert_eq!(h.count(EventTag::KillDecided), 2);
    assert_eq!(h.status(throttled).kill, KillState::Idle);
}

// ----- soft limit ------------------------------------------------------------------------

#[test]
fn soft_crossing_is_reported_once_per_crossing_with_hysteresis() {
    let mut h = Harness::new(Policy {
        limits: Limits {
            soft_grace_ticks: 0,
            ..small_policy().limits
        },
        ..small_policy()
    });
    h.register("svc");
    // soft 1000 re-arms below 1000 - 1000/16 = 938.
    for bytes in [1_200, 1_500, 1_100, 950, 1_300, 900, 1_001] {
        h.report("svc", bytes).unwrap();
        h.tick().unwrap();
    }
    assert_eq!(h.count(EventTag::SoftExceeded), 2);
    let soft: Vec<_> = h
        .lines()
        .into_iter()
        .filter(|l| l.contains("soft limit"))
        .collect();
    assert_eq!(
        soft,
        [
            "oomd: soft limit app=svc bytes=1200 soft=1000",
            "oomd: soft limit app=svc bytes=1001 soft=1000"
        ]
    );
    assert!(h.requests().is_empty(), "grace 0 only warns");
}

#[test]
fn staying_over_soft_for_the_grace_requests_a_graceful_kill() {
    let mut h = harness(); // grace 5
    h.register("svc");
    h.report("svc", 1_500).unwrap();
    h.ticks(5); // over soft since tick 1; ticks 2..=5
    assert!(h.requests().is_empty());
    h.tick().unwrap(); // tick 6: 5 ticks over soft
    assert_eq!(h.requests().len(), 1);
    assert_eq!(count_lines(&h, "reason=soft-grace"), 1);
}

#[test]
fn a_subject_override_replaces_the_global_limits() {
    let mut h = harness();
    h.register("big");
    h.set_limits(
        "big",
        Some(Limits {
            soft_bytes: 10_000,
            hard_bytes: 20_000,
            ..small_policy().limits
        }),
    )
    .unwrap();
    h.report("big", 5_000).unwrap();
    h.ticks(10);
    assert!(h.requests().is_empty());
    assert!(h.status("big").has_override);
    h.set_limits("big", None).unwrap();
    h.tick().unwrap();
    assert_eq!(h.requests().len(), 1, "back on the global hard limit");
}

// ----- critical subjects -----------------------------------------------------------------

#[test]
fn a_critical_subject_is_denied_once_per_incident() {
    let mut h = harness();
    h.register_critical("db");
    h.report("db", 5_000).unwrap();
    h.ticks(10);
    assert_eq!(h.count(EventTag::KillDenied), 1);
    h.report("db", 100).unwrap(); // below re-arm: incident over
    h.tick().unwrap();
    h.report("db", 5_000).unwrap();
    h.tick().unwrap();
    assert_eq!(h.count(EventTag::KillDenied), 2);
    assert!(h.requests().is_empty());
    assert_eq!(
        count_lines(&h, "oomd: kill denied (subject=db reason=critical)"),
        2
    );
}

#[test]
fn well_known_system_services_are_critical_by_name() {
    for name in oomd::bounds::ALWAYS_CRITICAL {
        let mut h = harness();
        h.register(name); // registered as non-critical
        assert!(h.status(name).critical, "{name}");
        h.report(name, 1 << 30).unwrap();
        h.ticks(3);
        assert!(h.requests().is_empty(), "{name} was requested");
    }
}

#[test]
fn a_critical_subject_does_not_spend_the_kill_budget() {
    let mut h = harness();
    h.register_critical("db");
    h.register("a");
    h.register("b");
    h.report("db", 9_000).unwrap();
    h.report("a", 3_000).unwrap();
    h.report("b", 3_000).unwrap();
    h.tick().unwrap();
    assert_eq!(h.requests().len(), 2);
}

// ----- observe-only ----------------------------------------------------------------------

#[test]
fn observe_only_logs_would_kill_and_never_calls_the_authority() {
    let mut h = Harness::new(Policy {
        observe_only: true,
        ..small_policy()
    });
    h.register("hog");
    h.report("hog", 3_000).unwrap();
    h.ticks(20);
    assert!(h.requests().is_empty());
    assert_eq!(h.count(EventTag::WouldKill), 1);
    assert_eq!(
        count_lines(&h, "oomd: would kill app=hog bytes=3000 reason=hard-limit"),
        1
    );
    // Turning enforcement on acts on the standing incident at the next tick.
    h.set_policy(small_policy()).unwrap();
    h.tick().unwrap();
    assert_eq!(h.requests().len(), 1);
}

// ----- kernel readings -------------------------------------------------------------------

#[test]
fn an_under_report_is_flagged_once_and_enforced_only_when_asked() {
    let mut h = harness(); // margin 500, kernel readings not enforced
    h.register("liar");
    h.report("liar", 100).unwrap();
    for _ in 0..5 {
        h.kernel("liar", 5_000).unwrap();
        h.tick().unwrap();
    }
    assert_eq!(h.count(EventTag::UnderReport), 1);
    assert_eq!(
        count_lines(&h, "oomd: under-report app=liar reported=100 kernel=5000"),
        1
    );
    assert!(h.requests().is_empty(), "not enforced: shown only");

    h.set_policy(Policy {
        enforce_kernel: true,
        ..small_policy()
    })
    .unwrap();
    h.tick().unwrap();
    assert_eq!(h.requests().len(), 1);
    assert_eq!(
        count_lines(
            &h,
            "oomd: kill decided app=liar bytes=5000 reason=hard-limit"
        ),
        1
    );
}

#[test]
fn a_silent_subject_is_caught_by_its_kernel_figure() {
    let mut h = Harness::new(Policy {
        enforce_kernel: true,
        ..small_policy()
    });
    h.register("mute");
    h.kernel("mute", 4_000).unwrap();
    h.tick().unwrap();
    assert_eq!(
        count_lines(&h, "oomd: under-report app=mute reported=0 kernel=4000"),
        1
    );
    assert_eq!(h.requests().len(), 1);
}

#[test]
fn the_enforced_figure_is_the_larger_of_report_and_kernel() {
    let mut h = Harness::new(Policy {
        enforce_kernel: true,
        ..small_policy()
    });
    h.register("svc");
    h.report("svc", 1_500).unwrap();
    h.kernel("svc", 1_200).unwrap();
    assert_eq!(h.status("svc").enforced_bytes, 1_500);
    h.kernel("svc", 1_900).unwrap();
    assert_eq!(h.status("svc").enforced_bytes, 1_900);
}

// ----- ordering --------------------------------------------------------------------------

#[test]
fn a_frame_over_hard_is_decided_in_that_input() {
    let mut h = harness();
    h.register("hog");
    h.tick().unwrap();
    h.report("hog", 1_999).unwrap();
    assert!(h.requests().is_empty(), "below hard: the tick decides");
    h.report("hog", 2_000).unwrap();
    assert_eq!(
        h.requests().len(),
        1,
        "at hard: decided in the frame's input"
    );
    let lines = h.lines();
    let tail: Vec<&str> = lines
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "oomd: soft limit app=hog bytes=2000 soft=1000",
            "oomd: kill decided app=hog bytes=2000 reason=hard-limit",
            "oomd: kill requested app=hog ticket=1 mode=graceful",
        ]
    );
    assert_eq!(
        h.events().last().unwrap().tick,
        Tick(1),
        "at the current tick"
    );
}

#[test]
fn a_frame_over_a_lowered_hard_limit_is_decided_in_that_input() {
    // The frame path skips its check below the lowest hard limit of any subject: an override
    // below the global limit, and a global limit lowered, must move that floor.
    let mut h = harness();
    h.register("a");
    h.register("b");
    h.tick().unwrap();
    let own = Limits {
        soft_bytes: 100,
        hard_bytes: 500,
        ..small_policy().limits
    };
    h.set_limits("a", Some(own)).unwrap();
    h.report("a", 499).unwrap();
    assert!(h.requests().is_empty());
    h.report("a", 500).unwrap();
    assert_eq!(
        h.requests().len(),
        1,
        "at its own hard: decided in the frame's input"
    );

    let lower = Policy {
        limits: Limits {
            soft_bytes: 100,
            hard_bytes: 300,
            ..small_policy().limits
        },
        ..small_policy()
    };
    h.set_policy(lower).unwrap();
    h.report("b", 300).unwrap();
    assert_eq!(
        h.requests().len(),
        2,
        "at the lowered global hard: decided in that input"
    );
}

#[test]
fn a_kernel_reading_over_hard_is_decided_in_that_input() {
    let mut h = Harness::new(Policy {
        enforce_kernel: true,
        ..small_policy()
    });
    h.register("hog");
    h.report("hog", 100).unwrap();
    h.kernel("hog", 2_500).unwrap();
    assert_eq!(h.requests().len(), 1);
    assert_eq!(
        h.lines()
            .iter()
            .filter(|l| l.contains("kill decided app=hog bytes=2500"))
            .count(),
        1
    );
}

#[test]
fn crossings_at_frames_are_critical_and_budget_checked_in_input_order() {
    let mut h = harness(); // 2 kills per 10 ticks
    h.register_with("db", SubjectClass::Standard, true).unwrap();
    for n in ["a", "b", "c", "db"] {
        if n != "db" {
            h.register(n);
        }
        h.report(n, 3_000).unwrap();
    }
    let order: Vec<SubjectId> = h.requests().iter().map(|r| r.subject).collect();
    assert_eq!(order, ["a", "b"].map(SubjectId::from_name).to_vec());
    assert_eq!(h.status("c").kill, KillState::Throttled { since: Tick(0) });
    assert_eq!(h.status("db").kill, KillState::Denied { since: Tick(0) });
}

#[test]
fn several_kills_in_one_tick_follow_class_then_bytes_then_id() {
    // Kills due at a tick (here: soft grace, over soft for 5 ticks) are taken in the
    // documented order.
    let mut h = Harness::new(Policy {
        kill_budget: 4,
        ..small_policy()
    });
    let subjects = [
        ("fg", SubjectClass::Foreground, 1_900),
        ("std-small", SubjectClass::Standard, 1_200),
        ("std-big", SubjectClass::Standard, 1_800),
        ("bg", SubjectClass::Background, 1_100),
    ];
    for (name, class, bytes) in subjects {
        h.register_with(name, class, false).unwrap();
        h.report(name, bytes).unwrap();
    }
    h.ticks(5);
    assert!(h.requests().is_empty(), "the grace is not over");
    h.tick().unwrap();
    let order: Vec<SubjectId> = h.requests().iter().map(|r| r.subject).collect();
    let expected: Vec<SubjectId> = ["bg", "std-big", "std-small", "fg"]
        .map(SubjectId::from_name)
        .to_vec();
    assert_eq!(order, expected);
}

#[test]
fn equal_bytes_in_one_class_are_ordered_by_id() {
    let mut h = Harness::new(Policy {
        kill_budget: 4,
        ..small_policy()
    });
    let names = ["p", "q", "r", "s"];
    for n in names {
        h.register(n);
        h.report(n, 1_500).unwrap();
    }
    h.ticks(6); // over soft from tick 1; the grace of 5 ends at tick 6
    let order: Vec<SubjectId> = h.requests().iter().map(|r| r.subject).collect();
    let mut by_id: Vec<SubjectId> = names.map(SubjectId::from_name).to_vec();
    by_id.sort();
    assert_eq!(order, by_id);
}

// ----- frames ----------------------------------------------------------------------------

/// Raw bytes of a v1 frame, built by hand (the encoder refuses inconsistent frames).
fn raw(seq: u8, current: u8, peak: u8) -> Vec<u8> {
    vec![b'M', b'S', 1, seq, current, peak, 0]
}

#[test]
fn every_kind_of_bad_frame_is_rejected_counted_and_changes_nothing() {
    let mut h = harness();
    h.register("svc");
    h.register("other");
    h.report("svc", 500).unwrap(); // seq 1
    let before = h.status("svc");
    let frame = |seq, claim: &str| Frame {
        seq,
        current_bytes: 1 << 30,
        peak_bytes: 1 << 30,
        claimed_subject: Some(SubjectId::from_name(claim)),
    };
    let encoded = |f: Frame| {
        let mut buf = [0; MAX_FRAME_LEN];
        let n = f.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    };
    let mut trailing = encoded(frame(7, "svc"));
    trailing.push(0);
    let cases: Vec<(Vec<u8>, Rejection)> = vec![
        (encoded(frame(8, "other")), Rejection::ClaimMismatch),
        (encoded(frame(1, "svc")), Rejection::StaleSequence),
        (vec![b'M'; MAX_FRAME_LEN + 1], Rejection::Oversize),
        (b"XS\x01\x01\x01\x01\x00".to_vec(), Rejection::MagicMismatch),
        (
            b"MS\x02\x01\x01\x01\x00".to_vec(),
            Rejection::UnsupportedVersion,
        ),
        (b"MS\x01\x01".to_vec(), Rejection::Truncated),
        (b"MS\x01\x01\x01\x01\x02".to_vec(), Rejection::Malformed),
        (trailing, Rejection::TrailingBytes),
    ];
    for (bytes, reason) in &cases {
        h.tick().unwrap(); // a fresh frame budget for each case
        assert_eq!(
            h.send_bytes("svc", bytes),
            Err(InputError::Frame(*reason)),
            "{reason:?}"
        );
    }
    h.tick().unwrap();
    assert_eq!(
        h.send_bytes("svc", &raw(9, 50, 40)),
        Err(InputError::Frame(Rejection::Inconsistent))
    );
    assert_eq!(
        h.send_bytes("ghost", &raw(1, 1, 1)),
        Err(InputError::Frame(Rejection::UnknownSender))
    );

    let after = h.status("svc");
    assert_eq!(
        (
            after.reported_bytes,
            after.last_frame_at,
            after.last_seq,
            after.kill,
            after.over_soft_since
        ),
        (
            before.reported_bytes,
            before.last_frame_at,
            before.last_seq,
            before.kill,
            before.over_soft_since
        )
    );
    assert!(h.requests().is_empty());
    for (_, reason) in &cases {
        assert_eq!(h.wd.counters().rejected(*reason), 1, "{reason:?}");
    }
    assert_eq!(h.wd.counters().rejected_total(), cases.len() as u64 + 2);
    assert_eq!(h.count(EventTag::FrameRejected), cases.len() as u64 + 2);
}

#[test]
fn a_sender_over_its_frame_budget_is_rejected_until_the_next_tick() {
    let mut h = harness(); // 4 frames per tick
    h.register("chatty");
    for _ in 0..4 {
        h.report("chatty", 10).unwrap();
    }
    for _ in 0..100 {
        assert_eq!(
            h.report("chatty", 1 << 40),
            Err(InputError::Frame(Rejection::OverBudget))
        );
    }
    assert_eq!(h.status("chatty").reported_bytes, Some(10));
    assert_eq!(h.wd.counters().rejected(Rejection::OverBudget), 100);
    assert_eq!(
        h.count(EventTag::FrameRejected),
        1,
        "one event per reason per tick, all counted"
    );
    h.tick().unwrap();
    assert_eq!(h.report("chatty", 20), Ok(()));
}

#[test]
fn frames_from_an_exited_subject_are_rejected_and_a_restart_starts_a_fresh_sequence() {
    let mut h = harness();
    h.register("svc");
    h.report("svc", 10).unwrap();
    h.report("svc", 20).unwrap(); // seq 2
    h.exited("svc").unwrap();
    let late = Frame {
        seq: 3,
        current_bytes: 30,
        peak_bytes: 30,
        claimed_subject: None,
    };
    assert_eq!(
        h.send_frame("svc", late),
        Err(InputError::Frame(Rejection::NotRunning))
    );
    h.register("svc"); // respawned: its sequence starts over
    let fresh = Frame {
        seq: 1,
        current_bytes: 5,
        peak_bytes: 5,
        claimed_subject: None,
    };
    assert_eq!(h.send_frame("svc", fresh), Ok(()));
    assert_eq!(h.status("svc").reported_bytes, Some(5));
}

// ----- time, tables, the log -------------------------------------------------------------

#[test]
fn a_tick_that_goes_backwards_is_clamped_and_counted() {
    let mut h = harness();
    h.ticks(5);
    assert_eq!(
        h.feed(oomd::Input::Tick(Tick(2))),
        Err(InputError::TickWentBackwards)
    );
    assert_eq!(h.wd.now(), Tick(5));
    assert_eq!(h.count(EventTag::TickClamped), 1);
    assert_eq!(h.lines().last().unwrap(), "oomd: tick clamped got=2");
}

/// Found by the `watchdog` fuzz target (see `tests/model.rs`): the clock stops at
/// `bounds::MAX_TICK`, so a deadline reckoned there still lies ahead of it.
#[test]
fn a_tick_past_the_end_of_time_is_clamped_and_a_deadline_there_lies_ahead() {
    let mut h = harness();
    h.register("svc");
    let frame = Frame {
        seq: 1,
        current_bytes: u64::MAX,
        peak_bytes: u64::MAX,
        claimed_subject: None,
    };
    assert_eq!(h.send_frame("svc", frame), Ok(()));
    assert_eq!(
        h.feed(oomd::Input::Tick(Tick(u64::MAX))),
        Err(InputError::TickBeyondEnd)
    );
    let end = Tick(oomd::bounds::MAX_TICK);
    assert_eq!(h.wd.now(), end);
    assert_eq!(h.count(EventTag::TickClamped), 1);
    // The graceful request's deadline passed: the forced one's is ahead of the end of time.
    assert_eq!(h.count(EventTag::KillEscalated), 1);
    match h.status("svc").kill {
        oomd::KillState::Pending { deadline, .. } => assert!(deadline > end, "{deadline:?}"),
        other => panic!("no kill pending: {other:?}"),
    }
    assert_eq!(h.feed(oomd::Input::Tick(end)), Ok(()));
}

/// Found by the `watchdog` fuzz target (see `tests/model.rs`): an exit and a restart within
/// one tick gave the sender a fresh frame budget, five frames taken in one tick (invariant 9).
#[test]
fn a_restart_within_a_tick_does_not_refill_the_frame_budget() {
    let mut h = harness();
    h.register("svc");
    let budget = h.wd.policy().frame_budget_per_tick;
    let frame = |seq| Frame {
        seq,
        current_bytes: 5,
        peak_bytes: 5,
        claimed_subject: None,
    };
    for seq in 1..=u64::from(budget) {
        assert_eq!(h.send_frame("svc", frame(seq)), Ok(()));
    }
    assert_eq!(h.exited("svc"), Ok(()));
    h.register("svc");
    assert_eq!(
        h.send_frame("svc", frame(1)),
        Err(InputError::Frame(Rejection::OverBudget))
    );
    h.ticks(1);
    assert_eq!(
        h.send_frame("svc", frame(2)),
        Ok(()),
        "the next tick refills it"
    );
}

#[test]
fn unregistering_and_registering_again_within_a_tick_does_not_refill_the_frame_budget() {
    let mut h = harness();
    let svc = h.register("svc");
    let budget = h.wd.policy().frame_budget_per_tick;
    let frame = |seq| Frame {
        seq,
        current_bytes: 5,
        peak_bytes: 5,
        claimed_subject: None,
    };
    for seq in 1..=u64::from(budget) {
        assert_eq!(h.send_frame("svc", frame(seq)), Ok(()));
    }
    assert_eq!(h.feed(oomd::Input::Unregister(svc)), Ok(()));
    h.register("svc");
    assert_eq!(
        h.send_frame("svc", frame(1)),
        Err(InputError::Frame(Rejection::OverBudget))
    );
    h.ticks(1);
    assert_eq!(h.send_frame("svc", frame(2)), Ok(()));
}

/// Past the four frame accounts a tick remembers of unregistered subjects, a subject
/// registered anew in that tick starts with its budget used: no sender's budget is refilled
/// within a tick, however many come and go.
#[test]
fn past_four_unregistrations_in_a_tick_a_new_registration_starts_with_its_budget_used() {
    let mut h = harness();
    let frame = Frame {
        seq: 1,
        current_bytes: 5,
        peak_bytes: 5,
        claimed_subject: None,
    };
    let names = ["a", "b", "c", "d", "e"];
    for name in names {
        let id = h.register(name);
        assert_eq!(h.send_frame(name, frame), Ok(()));
        assert_eq!(h.feed(oomd::Input::Unregister(id)), Ok(()));
    }
    h.register("e");
    assert_eq!(
        h.send_frame("e", frame),
        Err(InputError::Frame(Rejection::OverBudget))
    );
    h.register("fresh");
    assert_eq!(
        h.send_frame("fresh", frame),
        Err(InputError::Frame(Rejection::OverBudget))
    );
    h.ticks(1);
    assert_eq!(h.send_frame("fresh", frame), Ok(()));
}

#[test]
fn a_full_subject_table_refuses_visibly() {
    let mut h = Harness::<2, 64>::with_capacity(small_policy());
    h.register("a");
    h.register("b");
    assert_eq!(
        h.register_with("c", SubjectClass::Standard, false),
        Err(InputError::Registration(RegistrationError::TableFull))
    );
    assert_eq!(
        h.lines().last().unwrap(),
        "oomd: register refused (subject=c reason=table-full)"
    );
    assert_eq!(h.wd.subject_count(), 2);
    assert_eq!(
        h.register_with("a", SubjectClass::Standard, false),
        Err(InputError::Registration(RegistrationError::Duplicate))
    );
}

#[test]
fn a_reader_is_told_how_many_events_it_lost() {
    let mut h = Harness::<4, 8>::with_capacity(small_policy());
    h.ticks(2);
    for _ in 0..20 {
        let _ = h.feed(oomd::Input::Tick(Tick(1))); // 20 clamp events into an 8-slot ring
    }
    let page = h.wd.events(0, 100);
    assert_eq!(page.lost(), 12);
    assert_eq!(page.count(), 8);
    assert_eq!(
        h.count(EventTag::TickClamped),
        20,
        "counters survive the overwrite"
    );
    let tail = h.wd.events(18, 100);
    assert_eq!((tail.lost(), tail.count()), (0, 2));
}

#[test]
fn answers_for_unknown_tickets_are_ignored_and_logged() {
    let mut h = harness();
    assert_eq!(h.accept(oomd::Ticket(99)), Err(InputError::StaleAnswer));
    assert_eq!(h.lines().last().unwrap(), "oomd: answer ignored ticket=99");
}

#[test]
fn invalid_policies_are_refused_with_the_key_at_fault() {
    let mut h = harness();
    let bad = Policy {
        limits: Limits {
            soft_bytes: 3_000,
            ..small_policy().limits
        },
        ..small_policy()
    };
    assert_eq!(
        h.set_policy(bad),
        Err(InputError::Policy(PolicyError::SoftAboveHard))
    );
    assert_eq!(PolicyError::SoftAboveHard.key(), "soft_bytes");
    assert_eq!(h.wd.policy(), &small_policy());
    assert_eq!(
        h.set_limits("nobody", None),
        Err(InputError::Policy(PolicyError::UnknownSubject))
    );
    assert_eq!(h.wd.counters().policies_refused, 2);
}

#[test]
fn unregistering_forgets_the_subject_and_its_pending_kill() {
    let mut h = hog_over_hard();
    let ticket = h.last_request().ticket;
    h.feed(oomd::Input::Unregister(SubjectId::from_name("hog")))
        .unwrap();
    assert!(h.wd.subject(SubjectId::from_name("hog")).is_none());
    assert_eq!(h.accept(ticket), Err(InputError::StaleAnswer));
    assert_eq!(h.count(EventTag::KillConfirmed), 0);
}

#[test]
fn the_kill_reason_is_part_of_the_decision() {
    let h = hog_over_hard();
    assert!(h.events().iter().any(|e| matches!(
        e.kind,
        EventKind::KillDecided {
            bytes: 2_500,
            reason: KillReason::HardLimit,
            ..
        }
    )));
}

#[test]
fn the_override_table_is_bounded_and_slots_are_freed() {
    let mut h = Harness::<64, 512>::with_capacity(small_policy());
    let own = Limits {
        hard_bytes: 50_000,
        ..small_policy().limits
    };
    for n in 0..oomd::bounds::MAX_OVERRIDES {
        let name = format!("svc{n}");
        h.register(&name);
        h.set_limits(&name, Some(own)).unwrap();
    }
    h.register("one-too-many");
    assert_eq!(
        h.set_limits("one-too-many", Some(own)),
        Err(InputError::Policy(PolicyError::TooManyOverrides))
    );
    h.feed(oomd::Input::Unregister(SubjectId::from_name("svc0")))
        .unwrap();
    assert_eq!(h.set_limits("one-too-many", Some(own)), Ok(()));
    assert_eq!(h.status("one-too-many").limits, own);
    assert_eq!(h.status("svc1").limits, own, "other overrides untouched");
}

#[test]
fn an_acknowledged_kill_that_ends_after_escalation_is_still_confirmed() {
    let mut h = hog_over_hard(); // tick 1: graceful request, deadline 3
    h.accept(h.last_request().ticket).unwrap();
    h.ticks(3); // tick 4: escalated to forced, not yet acknowledged
    assert_eq!(h.last_request().mode, TerminationMode::Forced);
    h.exited("hog").unwrap();
    assert_eq!(h.lines().last().unwrap(), "oomd: kill app=hog bytes=2500");
}

#[test]
fn a_refused_policy_change_is_logged() {
    let mut h = harness();
    h.register("svc");
    let bad = Limits {
        soft_bytes: 9,
        hard_bytes: 1,
        ..small_policy().limits
    };
    assert!(h.set_limits("svc", Some(bad)).is_err());
    assert_eq!(
        h.lines().last().unwrap(),
        "oomd: policy refused (subject=svc): soft_bytes must not exceed hard_bytes"
    );
    assert!(h
        .set_policy(Policy {
            kill_budget: 0,
            ..small_policy()
        })
        .is_err());
    assert_eq!(
        h.lines().last().unwrap(),
        "oomd: policy refused (global): kill_budget is out of range"
    );
    assert_eq!(h.count(EventTag::PolicyRefused), 2);
}

// ----- silence, the end of the sequence space, coalesced frames ----------------------------

#[test]
fn a_silent_reporter_gets_one_stale_event_and_another_only_after_it_reports_again() {
    let mut h = harness(); // report_stale_ticks = 20
    h.register("svc");
    h.report("svc", 100).unwrap();
    h.tick().unwrap(); // tick 1: its last frame
    h.ticks(18);
    assert_eq!(
        h.count(EventTag::ReportStale),
        0,
        "19 ticks is not stale yet"
    );
    assert!(!h.status("svc").report_stale);
    h.tick().unwrap(); // tick 20 ... the frame was accepted at tick 0
    h.ticks(30);
    assert_eq!(h.count(EventTag::ReportStale), 1, "one event per silence");
    assert!(h.status("svc").report_stale);
    assert_eq!(count_lines(&h, "oomd: report stale app=svc since=0"), 1);

    h.report("svc", 100).unwrap(); // it recovers
    assert!(!h.status("svc").report_stale);
    assert_eq!(h.status("svc").last_frame_at, Some(Tick(h.now())));
    h.ticks(19);
    assert_eq!(h.count(EventTag::ReportStale), 1);
    h.tick().unwrap();
    assert_eq!(
        h.count(EventTag::ReportStale),
        2,
        "a new silence, a new event"
    );
}

#[test]
fn a_reporter_that_never_reports_goes_stale_from_its_registration() {
    let mut h = harness();
    h.ticks(5);
    h.register("mute");
    h.ticks(19);
    assert_eq!(h.count(EventTag::ReportStale), 0);
    h.tick().unwrap();
    assert_eq!(count_lines(&h, "oomd: report stale app=mute since=5"), 1);
    assert_eq!(h.status("mute").last_frame_at, None);
}

#[test]
fn a_service_without_a_memstat_channel_never_goes_stale() {
    let mut h = harness();
    h.register_silent("batch");
    h.ticks(100);
    assert_eq!(h.count(EventTag::ReportStale), 0);
    assert!(!h.status("batch").report_stale);
    assert!(!h.status("batch").reports);
}

#[test]
fn a_subject_that_never_reported_is_judged_on_its_kernel_figure() {
    // enforce_kernel is off: a reporter is judged on its reports, a subject that never had a
    // frame accepted on what the kernel charges it.
    let mut h = harness();
    h.register_silent("batch");
    h.register("reporter");
    h.report("reporter", 10).unwrap();
    h.kernel("batch", 2_500).unwrap();
    h.kernel("reporter", 2_500).unwrap();
    h.tick().unwrap();
    assert_eq!(h.status("batch").enforced_bytes, 2_500);
    assert_eq!(h.status("reporter").enforced_bytes, 10);
    assert_eq!(
        count_lines(
            &h,
            "oomd: kill decided app=batch bytes=2500 reason=hard-limit"
        ),
        1
    );
    assert!(h.requests_for("reporter").is_empty());
}

#[test]
fn judging_silent_subjects_on_the_kernel_figure_can_be_turned_off() {
    let mut h = Harness::new(Policy {
        enforce_kernel_when_silent: false,
        ..small_policy()
    });
    h.register_silent("batch");
    h.kernel("batch", 2_500).unwrap();
    h.tick().unwrap();
    assert_eq!(h.status("batch").enforced_bytes, 0);
    assert!(h.requests().is_empty());
    assert_eq!(
        count_lines(&h, "oomd: under-report app=batch reported=0 kernel=2500"),
        1
    );
}

#[test]
fn sequence_numbers_wrap_at_the_end_of_the_sequence_space() {
    let mut h = harness();
    h.register("svc");
    h.set_next_seq("svc", u64::MAX - 1);
    for bytes in [10, 20, 30, 40] {
        h.report("svc", bytes).unwrap(); // seq MAX-1, MAX, 0, 1
    }
    assert_eq!(h.status("svc").last_seq, Some(1));
    assert_eq!(h.status("svc").reported_bytes, Some(40));
}

#[test]
fn a_frame_at_the_end_of_the_sequence_space_is_behind_a_small_one() {
    let mut h = harness();
    h.register("svc");
    h.report("svc", 100).unwrap(); // seq 1
    let end = Frame {
        seq: u64::MAX,
        current_bytes: 100,
        peak_bytes: 100,
        claimed_subject: None,
    };
    assert_eq!(
        h.send_frame("svc", end),
        Err(InputError::Frame(Rejection::StaleSequence))
    );
    h.report("svc", 2_500).unwrap(); // seq 2: the growth is seen
    h.tick().unwrap();
    assert_eq!(
        count_lines(
            &h,
            "oomd: kill decided app=svc bytes=2500 reason=hard-limit"
        ),
        1
    );
}

#[test]
fn a_service_that_freezes_its_own_report_goes_stale_and_is_judged_on_the_kernel() {
    // Half the sequence space ahead is still "newer": after that frame every frame the
    // service sends with its real sequence numbers is behind, and its report freezes. Not
    // silently: the rejections are counted and logged, the report turns stale, and from then
    // on the kernel figure decides (enforce_kernel is off).
    let mut h = harness(); // report_stale_ticks = 20
    h.register("svc");
    h.report("svc", 100).unwrap(); // seq 1
    let jump = Frame {
        seq: 1 << 63,
        current_bytes: 100,
        peak_bytes: 100,
        claimed_subject: None,
    };
    h.send_frame("svc", jump).unwrap();
    h.kernel("svc", 2_500).unwrap();
    for _ in 0..19 {
        h.tick().unwrap();
        assert_eq!(
            h.report("svc", 100),
            Err(InputError::Frame(Rejection::StaleSequence))
        );
    }
    assert!(h.requests().is_empty(), "fresh reports are trusted");
    h.tick().unwrap(); // tick 20: silent for 20 ticks
    assert_eq!(count_lines(&h, "oomd: report stale app=svc since=0"), 1);
    assert_eq!(h.status("svc").enforced_bytes, 2_500);
    assert_eq!(
        count_lines(
            &h,
            "oomd: kill decided app=svc bytes=2500 reason=hard-limit"
        ),
        1
    );
    assert!(h.wd.counters().rejected(Rejection::StaleSequence) >= 19);
}

#[test]
fn a_stale_report_is_not_judged_on_the_kernel_when_told_so() {
    let mut h = Harness::new(Policy {
        enforce_kernel_when_silent: false,
        ..small_policy()
    });
    h.register("svc");
    h.report("svc", 100).unwrap();
    h.kernel("svc", 2_500).unwrap();
    h.ticks(40);
    assert_eq!(h.count(EventTag::ReportStale), 1);
    assert_eq!(h.status("svc").enforced_bytes, 100);
    assert!(h.requests().is_empty());
}

#[test]
fn old_duplicated_and_ambiguous_sequence_numbers_are_stale() {
    let mut h = harness();
    h.register("svc");
    h.set_next_seq("svc", 1_000);
    h.report("svc", 100).unwrap();
    for seq in [1_000, 999, 0, 1_000 + (1 << 63)] {
        h.tick().unwrap();
        let frame = Frame {
            seq,
            current_bytes: 5_000,
            peak_bytes: 5_000,
            claimed_subject: None,
        };
        assert_eq!(
            h.send_frame("svc", frame),
            Err(InputError::Frame(Rejection::StaleSequence)),
            "seq {seq}"
        );
    }
    assert_eq!(h.status("svc").reported_bytes, Some(100));
}

#[test]
fn an_empty_frame_is_truncated_and_changes_nothing() {
    let mut h = harness();
    h.register("svc");
    h.report("svc", 100).unwrap();
    let before = h.status("svc");
    assert_eq!(
        h.send_bytes("svc", &[]),
        Err(InputError::Frame(Rejection::Truncated))
    );
    assert_eq!(h.status("svc").reported_bytes, before.reported_bytes);
    assert_eq!(h.wd.counters().rejected(Rejection::Truncated), 1);
    // ... and the growth that follows is still seen.
    h.report("svc", 2_500).unwrap();
    h.tick().unwrap();
    assert_eq!(h.count(EventTag::KillDecided), 1);
}

#[test]
fn the_newest_frame_counts_when_the_budget_is_spent() {
    let mut h = harness(); // 4 frames per sender per tick
    h.register("fast");
    for bytes in [100, 200, 300, 400] {
        h.report("fast", bytes).unwrap();
    }
    assert_eq!(
        h.report("fast", 500),
        Err(InputError::Frame(Rejection::OverBudget))
    );
    // The edge stopped reading; before the tick it feeds the newest of what queued.
    h.latest("fast", 2_600, 17).unwrap();
    assert_eq!(h.status("fast").reported_bytes, Some(2_600));
    assert_eq!(h.wd.counters().rejected(Rejection::OverBudget), 1 + 17);
    assert_eq!(h.wd.counters().latest_frames, 1);
    // One latest frame per tick: a second one is over budget.
    assert_eq!(
        h.latest("fast", 2_700, 0),
        Err(InputError::Frame(Rejection::OverBudget))
    );
    h.tick().unwrap();
    assert_eq!(
        count_lines(
            &h,
            "oomd: kill decided app=fast bytes=2600 reason=hard-limit"
        ),
        1
    );
    // A new tick, a new budget and a new latest frame.
    h.latest("fast", 2_800, 0).unwrap();
    assert_eq!(h.status("fast").reported_bytes, Some(2_800));
}

#[test]
fn a_latest_frame_is_checked_like_any_frame() {
    let mut h = harness();
    h.register("fast");
    h.register("other");
    h.report("fast", 100).unwrap();
    let spoof = Frame {
        seq: 99,
        current_bytes: 9_000,
        peak_bytes: 9_000,
        claimed_subject: Some(SubjectId::from_name("other")),
    };
    let mut buf = [0; MAX_FRAME_LEN];
    let n = spoof.encode(&mut buf).unwrap();
    let input = oomd::Input::LatestFrame {
        sender: SubjectId::from_name("fast"),
        payload: oomd::Payload::new(&buf[..n]),
        discarded: 3,
    };
    assert_eq!(
        h.feed(input),
        Err(InputError::Frame(Rejection::ClaimMismatch))
    );
    assert_eq!(h.status("fast").reported_bytes, Some(100));
    assert_eq!(h.wd.counters().rejected(Rejection::OverBudget), 3);
    let ghost = oomd::Input::LatestFrame {
        sender: SubjectId::from_name("ghost"),
        payload: oomd::Payload::new(&buf[..n]),
        discarded: 3,
    };
    assert_eq!(
        h.feed(ghost),
        Err(InputError::Frame(Rejection::UnknownSender))
    );
    assert_eq!(h.wd.counters().rejected(Rejection::UnknownSender), 4);
}

// ----- a restart --------------------------------------------------------------------------

fn resume(h: &mut Harness, tick: u64, next_event_seq: u64, next_ticket: u32) {
    h.feed(oomd::Input::Restore(oomd::Restore::Resume {
        tick: Tick(tick),
        next_event_seq,
        next_ticket,
    }))
    .expect("a fresh watchdog resumes");
    h.set_now(tick);
}

#[test]
fn a_restarted_watchdog_numbers_on_where_the_last_one_stopped() {
    let mut h = harness();
    resume(&mut h, 500, 9_000, 41);
    assert_eq!(h.wd.now(), Tick(500));
    assert_eq!(h.events()[0].seq, 9_000);
    assert_eq!(count_lines(&h, "oomd: resumed tick=500 next_ticket=41"), 1);
    h.register("hog");
    h.report("hog", 2_500).unwrap();
    h.tick().unwrap();
    assert_eq!(h.last_request().ticket, oomd::Ticket(41));
    assert!(h.events().iter().all(|e| e.seq >= 9_000));
    // Only a fresh watchdog resumes: a second Resume changes nothing.
    assert_eq!(
        h.feed(oomd::Input::Restore(oomd::Restore::Resume {
            tick: Tick(0),
            next_event_seq: 0,
            next_ticket: 1,
        })),
        Err(InputError::NotFresh)
    );
    assert_eq!(h.wd.now(), Tick(501));
}

#[test]
fn kills_decided_before_a_restart_count_against_the_budget() {
    let mut h = harness(); // 2 kills per 10 ticks
    resume(&mut h, 100, 0, 1);
    for at in [95, 97] {
        h.feed(oomd::Input::Restore(oomd::Restore::KillDecided {
            at: Tick(at),
        }))
        .unwrap();
    }
    h.register("hog");
    h.report("hog", 2_500).unwrap();
    h.tick().unwrap(); // tick 101: both earlier kills are in the window
    assert_eq!(count_lines(&h, "oomd: kill throttled app=hog"), 1);
    assert!(h.requests().is_empty());
    h.ticks(5); // tick 106: the kill of 95 has left the window
    assert_eq!(h.requests().len(), 1);
    assert_eq!(h.now(), 106);
}

#[test]
fn an_adopted_kill_is_confirmed_once_when_the_subject_exits() {
    let mut h = harness();
    resume(&mut h, 50, 300, 8);
    h.register("hog");
    h.feed(oomd::Input::Restore(oomd::Restore::KillInFlight {
        subject: SubjectId::from_name("hog"),
        ticket: oomd::Ticket(7),
        mode: TerminationMode::Graceful,
        accepted: true,
        bytes: 31_337,
    }))
    .unwrap();
    assert_eq!(
        count_lines(
            &h,
            "oomd: kill adopted app=hog ticket=7 mode=graceful (acknowledged)"
        ),
        1
    );
    // Still over its limit, it is not requested again: the kill is already under way.
    h.report("hog", 9_000).unwrap();
    h.tick().unwrap();
    assert!(h.requests().is_empty());
    h.exited("hog").unwrap();
    assert_eq!(count_lines(&h, "oomd: kill app=hog bytes=31337"), 1);
    assert_eq!(h.count(EventTag::KillConfirmed), 1);
    // An adopted kill that was never answered escalates at its deadline like any other.
    h.register("slow");
    h.feed(oomd::Input::Restore(oomd::Restore::KillInFlight {
        subject: SubjectId::from_name("slow"),
        ticket: oomd::Ticket(6),
        mode: TerminationMode::Graceful,
        accepted: false,
        bytes: 4_000,
    }))
    .unwrap();
    h.ticks(3); // the deadline (3)
    let forced = h.last_request();
    assert_eq!(forced.subject, SubjectId::from_name("slow"));
    assert_eq!(forced.mode, TerminationMode::Forced);
    assert_eq!(
        forced.ticket,
        oomd::Ticket(8),
        "tickets of the last run are not reused"
    );
    assert_eq!(count_lines(&h, "oomd: kill escalated app=slow ticket=6"), 1);
}

#[test]
fn a_kill_cannot_be_adopted_twice_or_for_a_stranger() {
    let mut h = harness();
    h.register("hog");
    let adopt = |subject: &str| {
        oomd::Input::Restore(oomd::Restore::KillInFlight {
            subject: SubjectId::from_name(subject),
            ticket: oomd::Ticket(3),
            mode: TerminationMode::Forced,
            accepted: true,
            bytes: 1,
        })
    };
    h.feed(adopt("hog")).unwrap();
    assert_eq!(h.feed(adopt("hog")), Err(InputError::KillAlreadyPending));
    assert_eq!(h.feed(adopt("ghost")), Err(InputError::UnknownSubject));
}
