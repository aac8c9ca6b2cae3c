//! The simulator, the scenario format and the `oomd-sim` command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use oomd::{EventKind, Input, Rejection, Tick};
use oomd_host::scenario::{ExpectFailure, Scenario};
use oomd_host::sim::{self, ReclaimMode, Run};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn shipped() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

fn load(name: &str) -> Scenario {
    Scenario::load(scenarios_dir().join(name)).expect("shipped scenario loads")
}

fn run_text(text: &str) -> Run {
    let scenario = Scenario::parse(text).expect("test scenario is valid");
    let outcome = scenario.run().expect("runs");
    assert!(outcome.failures.is_empty(), "{:#?}", outcome.failures);
    outcome.run
}

fn parse_err(text: &str) -> oomd_config::ConfigError {
    Scenario::parse(text).expect_err("scenario must be refused")
}

const MINIMAL: &str = r#"
name = "t"
ticks = 3
[[subject]]
name = "a"
"#;

// ----- shipped scenarios ----------------------------------------------------------------------

#[test]
fn every_shipped_scenario_parses_and_meets_its_expectations() {
    let paths = shipped();
    for required in [
        "hog-hard-kill.toml",
        "critical-denied.toml",
        "rate-limit.toml",
        "spoof-and-flood.toml",
        "underreport.toml",
        "escalation.toml",
        "observe-only.toml",
        "reclaim.toml",
    ] {
        assert!(
            paths.iter().any(|p| p.ends_with(required)),
            "{required} is missing"
        );
    }
    for path in paths {
        let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !scenario.expect.lines.is_empty(),
            "{}: a shipped scenario must expect something",
            path.display()
        );
        let outcome = scenario.run().expect("runs");
        assert!(
            outcome.failures.is_empty(),
            "{}:\n{}\n{}",
            path.display(),
            outcome
                .failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            outcome.run.trace()
        );
    }
}

#[test]
fn a_scenario_run_twice_gives_byte_identical_traces_and_inputs() {
    for path in shipped() {
        let scenario = Scenario::load(&path).expect("loads");
        let first = scenario.run().expect("runs").run;
        let second = scenario.run().expect("runs").run;
        assert_eq!(first.trace(), second.trace(), "{}", path.display());
        assert_eq!(first.inputs, second.inputs, "{}", path.display());
        assert_eq!(first.events, second.events, "{}", path.display());
        assert_eq!(first.requests, second.requests, "{}", path.display());
        assert_eq!(first.reclaims, second.reclaims, "{}", path.display());
    }
}

#[test]
fn the_seed_is_used_when_there_is_jitter() {
    let with_seed = |seed: u64| {
        run_text(&format!(
            r#"
            name = "jitter"
            seed = {seed}
            ticks = 40
            [policy]
            soft_bytes = 5000
            hard_bytes = 20000
            soft_grace_ticks = 0
            [[subject]]
            name = "hog"
            growth_per_tick = 100
            jitter = 1000
            "#
        ))
        .trace()
    };
    assert_eq!(with_seed(1), with_seed(1));
    assert_ne!(with_seed(1), with_seed(2));
    assert_ne!(with_seed(2), with_seed(3));
}

#[test]
fn hog_hard_kill_trace_is_stable() {
    let run = load("hog-hard-kill.toml").run().expect("runs").run;
    insta::assert_snapshot!("hog_hard_kill", run.trace());
}

#[test]
fn rate_limit_trace_is_stable() {
    let run = load("rate-limit.toml").run().expect("runs").run;
    insta::assert_snapshot!("rate_limit", run.trace());
}

#[test]
fn reclaim_trace_is_stable() {
    let run = load("reclaim.toml").run().expect("runs").run;
    insta::assert_snapshot!("reclaim", run.trace());
}

#[test]
fn kill_events_come_in_audit_order() {
    let run = load("hog-hard-kill.toml").run().expect("runs").run;
    let position = |want: fn(&EventKind) -> bool| {
        run.events
            .iter()
            .position(|e| want(&e.kind))
            .expect("event present")
    };
    let decided = position(|k| matches!(k, EventKind::KillDecided { .. }));
    let requested = position(|k| matches!(k, EventKind::KillRequested { .. }));
    let acknowledged = position(|k| matches!(k, EventKind::KillAcknowledged { .. }));
    let confirmed = position(|k| matches!(k, EventKind::KillConfirmed { .. }));
    assert!(decided < requested && requested < acknowledged && acknowledged < confirmed);
    assert_eq!(run.requests.len(), 1);
    assert_eq!(run.requests[0].audit_seq, run.events[requested].seq);
}

// ----- the simulation itself ------------------------------------------------------------------

#[test]
fn each_tick_publishes_then_delivers_then_ticks() {
    let run = run_text(
        r#"
        name = "order"
        ticks = 4
        [policy]
        soft_bytes = 100
        hard_bytes = 200
        [authority]
        ack_delay = 1
        exit_delay = 0
        [[subject]]
        name = "hog"
        start_bytes = 500
        "#,
    );
    let kinds: Vec<&str> = run
        .inputs
        .iter()
        .map(|i| match i {
            Input::Register(_) => "register",
            Input::Frame { .. } => "frame",
            Input::Answer { .. } => "answer",
            Input::Exited(_) => "exited",
            Input::Tick(_) => "tick",
            _ => "other",
        })
        .collect();
    // Tick 1: start and publish, then the tick (which requests the kill). Tick 2: publish,
    // the answer and (exit_delay 0) the exit, then the tick. After that the hog is gone.
    assert_eq!(
        kinds,
        ["register", "frame", "tick", "frame", "answer", "exited", "tick", "tick", "tick"]
    );
    assert!(run.trace().contains("oomd: kill app=hog bytes=500"));
}

#[test]
fn an_exited_subject_stops_publishing_until_it_restarts() {
    let run = run_text(
        r#"
        name = "restart"
        ticks = 12
        [policy]
        soft_bytes = 1000
        hard_bytes = 2000
        soft_grace_ticks = 0
        [[subject]]
        name = "hog"
        start_bytes = 1500
        growth_per_tick = 500
        restart_after = 5
        [expect]
        lines = [
            "oomd: register app=hog",
            "oomd: kill app=hog bytes=2000",
            "oomd: register app=hog",
            "oomd: kill decided app=hog bytes=2000",
        ]
        "#,
    );
    let exited_at = run
        .inputs
        .iter()
        .position(|i| matches!(i, Input::Exited(_)))
        .expect("the hog exits");
    let registered_again = run
        .inputs
        .iter()
        .rposition(|i| matches!(i, Input::Register(_)))
        .expect("and comes back");
    assert!(registered_again > exited_at);
    let between = &run.inputs[exited_at + 1..registered_again];
    assert!(
        between.iter().all(|i| matches!(i, Input::Tick(_))),
        "{between:?}"
    );
    assert_eq!(between.len(), 5, "restart_after = 5 ticks");
}

#[test]
fn a_refused_kill_is_logged_and_retried_one_window_later() {
    run_text(
        r#"
        name = "refuse"
        ticks = 30
        [policy]
        soft_bytes = 1000
        hard_bytes = 2000
        soft_grace_ticks = 0
        kill_window_ticks = 10
        [authority]
        refuse = ["hog"]
        refuse_reason = "unavailable"
        [[subject]]
        name = "hog"
        start_bytes = 3000
        [expect]
        lines = [
            "t=0 #3 oomd: kill requested app=hog ticket=1",
            "oomd: kill refused app=hog ticket=1 reason=unavailable",
            "t=11 #6 oomd: kill requested app=hog ticket=2",
            "oomd: kill refused app=hog ticket=2 reason=unavailable",
        ]
        absent = ["oomd: kill app=hog"]
        "#,
    );
}

#[test]
fn delays_drawn_from_a_range_stay_in_it() {
    for seed in 0..20 {
        let run = run_text(&format!(
            r#"
            name = "ranges"
            seed = {seed}
            ticks = 30
            [policy]
            soft_bytes = 1000
            hard_bytes = 2000
            exit_deadline_ticks = 100
            [authority]
            ack_delay = [2, 4]
            exit_delay = [0, 3]
            [[subject]]
            name = "hog"
            start_bytes = 3000
            "#
        ));
        let tick_of = |want: fn(&EventKind) -> bool| {
            run.events
                .iter()
                .find(|e| want(&e.kind))
                .map(|e| e.tick.0)
                .expect("event present")
        };
        // The request is made at the hog's first frame, and answers and exits are delivered
        // before the tick: the events of all three in simulated tick t carry the core's
        // time, t - 1.
        let requested = tick_of(|k| matches!(k, EventKind::KillRequested { .. })) + 1;
        let acked = tick_of(|k| matches!(k, EventKind::KillAcknowledged { .. })) + 1;
        let exited = tick_of(|k| matches!(k, EventKind::KillConfirmed { .. })) + 1;
        assert!((2..=4).contains(&(acked - requested)), "seed {seed}");
        assert!((0..=3).contains(&(exited - acked)), "seed {seed}");
    }
}

#[test]
fn flooding_and_spoofing_are_counted_per_frame() {
    let run = load("spoof-and-flood.toml").run().expect("runs").run;
    assert_eq!(run.counters.rejected(Rejection::ClaimMismatch), 10);
    // 20 frames a tick, budget 4: 4 taken, the newest of the other 16 taken as the latest
    // frame, 15 dropped unread.
    assert_eq!(run.counters.rejected(Rejection::OverBudget), 10 * 15);
    assert_eq!(run.counters.latest_frames, 10);
    let summary = run.summary().to_string();
    assert!(summary.contains("claim-mismatch=10"), "{summary}");
    assert!(summary.contains("over-budget=150"), "{summary}");
}

#[test]
fn kernel_readings_are_held_bytes_plus_overhead() {
    let run = run_text(
        r#"
        name = "kernel"
        ticks = 2
        kernel_readings = true
        [[subject]]
        name = "svc"
        start_bytes = 1000
        growth_per_tick = 10
        kernel_overhead = 7
        report = { mode = "under", fixed = 1 }
        "#,
    );
    let readings: Vec<u64> = run
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::KernelReading { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .collect();
    assert_eq!(readings, [1007, 1017]);
}

#[test]
fn a_table_too_small_refuses_registration_visibly() {
    run_text(
        r#"
        name = "full"
        ticks = 2
        subject_capacity = 1
        [[subject]]
        name = "first"
        [[subject]]
        name = "second"
        [expect]
        lines = ["oomd: register app=first", "oomd: register refused (subject=second reason=table-full)"]
        "#,
    );
}

#[test]
fn unmet_expectations_are_reported_with_the_trace_line() {
    let scenario = Scenario::parse(
        r#"
        name = "wrong"
        ticks = 3
        [[subject]]
        name = "a"
        [expect]
        lines = ["oomd: register app=a", "oomd: kill app=a"]
        absent = ["register app=a"]
        "#,
    )
    .expect("valid");
    let failures = scenario.run().expect("runs").failures;
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(matches!(
        &failures[0],
        ExpectFailure::Missing { index: 1, .. }
    ));
    assert!(matches!(
        &failures[1],
        ExpectFailure::Present { line_no: 1, .. }
    ));
    let text = failures[0].to_string();
    assert!(
        text.contains("expect.lines[1]") && text.contains("after line 1"),
        "{text}"
    );
}

#[test]
fn setup_can_be_built_in_code_too() {
    let mut setup = Scenario::parse(MINIMAL).expect("valid").setup;
    setup.subjects[0].start_bytes = 1 << 40;
    let run = sim::run(&setup).expect("runs");
    assert!(run.trace().contains("oomd: kill decided app=a"));
}

// ----- reclaim requests -------------------------------------------------------------------------

/// One subject between soft and hard with kernel readings (held bytes, no overhead): asked for
/// `percent` of soft (50: 500 bytes) by tick 1 + 5, with a soft grace of 2 ticks, so that a
/// kill not waiting for an answer would come at tick 3.
fn one_asked(subject_keys: &str, percent: u8, enforce_kernel: bool) -> String {
    format!(
        r#"
        name = "reclaim-one"
        ticks = 12
        kernel_readings = true
        [policy]
        soft_bytes = 1000
        hard_bytes = 4000
        soft_grace_ticks = 2
        underreport_margin_bytes = 100
        reclaim_target_percent = {percent}
        reclaim_deadline_ticks = 5
        enforce_kernel = {enforce_kernel}
        [[subject]]
        name = "svc"
        start_bytes = 2000
        {subject_keys}
        "#
    )
}

fn acks(run: &Run) -> Vec<u64> {
    run.inputs
        .iter()
        .filter_map(|i| match i {
            Input::ReclaimAck { payload, .. } => Some(payload.decode_ack().expect("valid ack").id),
            _ => None,
        })
        .collect()
}

fn line_with<'a>(trace: &'a str, text: &str) -> Option<&'a str> {
    trace.lines().find(|l| l.contains(text))
}

#[test]
fn a_cooperative_subject_is_spared_where_one_that_ignores_the_request_is_killed() {
    let spared = run_text(&one_asked("reclaim = \"cooperative\"", 50, true));
    let trace = spared.trace();
    assert_eq!(spared.reclaims.len(), 1, "{trace}");
    let request = spared.reclaims[0];
    assert_eq!(
        (request.id, request.target_bytes, request.deadline),
        (1, 500, Tick(6))
    );
    assert_eq!(acks(&spared), [1]);
    assert!(
        line_with(&trace, "t=1 #3 oomd: reclaim acknowledged app=svc").is_some(),
        "{trace}"
    );
    assert!(
        line_with(&trace, "t=2 #4 oomd: reclaim met app=svc bytes=500").is_some(),
        "{trace}"
    );
    assert!(spared.requests.is_empty(), "{trace}");
    assert!(!trace.contains("kill"), "{trace}");

    // The same subject, deaf to the request: the request is missed at its deadline, and the
    // soft grace (long over) kills at once.
    let deaf = run_text(&one_asked("reclaim = \"ignore\"", 50, true));
    let trace = deaf.trace();
    assert!(acks(&deaf).is_empty());
    assert!(!trace.contains("reclaim acknowledged"), "{trace}");
    assert!(
        line_with(&trace, "t=6 #3 oomd: reclaim missed app=svc bytes=2000").is_some(),
        "{trace}"
    );
    assert!(
        line_with(
            &trace,
            "t=6 #4 oomd: kill decided app=svc bytes=2000 reason=soft-grace"
        )
        .is_some(),
        "{trace}"
    );
    assert!(trace.contains("oomd: kill app=svc bytes=2000"), "{trace}");

    // And with reclaim off, the cooperative subject is never asked: killed at the end of its
    // soft grace.
    let unasked = run_text(&one_asked("reclaim = \"cooperative\"", 0, true));
    let trace = unasked.trace();
    assert!(unasked.reclaims.is_empty() && acks(&unasked).is_empty());
    assert!(!trace.contains("reclaim"), "{trace}");
    assert!(
        line_with(
            &trace,
            "t=3 #2 oomd: kill decided app=svc bytes=2000 reason=soft-grace"
        )
        .is_some(),
        "{trace}"
    );
    assert!(trace.contains("oomd: kill app=svc bytes=2000"), "{trace}");
}

#[test]
fn a_liar_is_caught_by_the_kernel_figure_only() {
    // Not enforced: the report is judged, and the report is the lie.
    let believed = run_text(&one_asked("reclaim = \"liar\"", 50, false));
    let trace = believed.trace();
    assert_eq!(acks(&believed), [1]);
    assert!(
        trace.contains("oomd: under-report app=svc reported=500 kernel=2000"),
        "{trace}"
    );
    assert!(
        trace.contains("oomd: reclaim met app=svc bytes=500"),
        "{trace}"
    );
    assert!(believed.requests.is_empty(), "{trace}");
    assert!(!trace.contains("kill"), "{trace}");

    // Enforced: the kernel's figure (what it holds) stays over the target.
    let caught = run_text(&one_asked("reclaim = \"liar\"", 50, true));
    let trace = caught.trace();
    assert!(!trace.contains("reclaim met"), "{trace}");
    for text in [
        "oomd: reclaim acknowledged app=svc",
        "oomd: under-report app=svc reported=500 kernel=2000",
        "t=6 #5 oomd: reclaim missed app=svc bytes=2000",
        "oomd: kill decided app=svc bytes=2000 reason=soft-grace",
        "oomd: kill app=svc bytes=2000",
    ] {
        assert!(line_with(&trace, text).is_some(), "{text:?} in\n{trace}");
    }
    // It reported the target from the tick it answered, and its kernel reading never moved.
    let reported: Vec<u64> = caught
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Frame { payload, .. } => Some(payload.decode().expect("frame").current_bytes),
            _ => None,
        })
        .collect();
    assert_eq!(reported[..3], [2000, 500, 500]);
    assert!(caught.inputs.iter().all(|i| match i {
        Input::KernelReading { bytes, .. } => *bytes == 2000,
        _ => true,
    }));
}

#[test]
fn a_stubborn_subject_acknowledges_and_is_killed_at_the_deadline() {
    let run = run_text(&one_asked("reclaim = \"stubborn\"", 50, true));
    let trace = run.trace();
    assert_eq!(acks(&run), [1]);
    for text in [
        "t=1 #3 oomd: reclaim acknowledged app=svc",
        "t=6 #4 oomd: reclaim missed app=svc bytes=2000",
        "t=6 #5 oomd: kill decided app=svc bytes=2000 reason=soft-grace",
        "oomd: kill app=svc bytes=2000",
    ] {
        assert!(line_with(&trace, text).is_some(), "{text:?} in\n{trace}");
    }
}

#[test]
fn the_answer_comes_in_step_one_of_the_due_tick_after_the_subjects_own_inputs() {
    let run = run_text(&one_asked(
        "reclaim = \"cooperative\"\nreclaim_delay_ticks = 3",
        50,
        true,
    ));
    // Asked at tick 1: the inputs of tick 4, between Tick(3) and Tick(4).
    let from = run
        .inputs
        .iter()
        .position(|i| *i == Input::Tick(Tick(3)))
        .expect("tick 3");
    let to = run
        .inputs
        .iter()
        .position(|i| *i == Input::Tick(Tick(4)))
        .expect("tick 4");
    let step: Vec<String> = run.inputs[from + 1..to]
        .iter()
        .map(|i| match i {
            Input::Frame { payload, .. } => {
                format!("frame {}", payload.decode().expect("frame").current_bytes)
            }
            Input::KernelReading { bytes, .. } => format!("kernel {bytes}"),
            Input::ReclaimAck { payload, .. } => {
                format!("ack {}", payload.decode_ack().expect("ack").id)
            }
            other => format!("{other:?}"),
        })
        .collect();
    // Freed before publishing; the acknowledgement last.
    assert_eq!(step, ["frame 500", "kernel 500", "ack 1"]);
    assert_eq!(acks(&run), [1]);
    let trace = run.trace();
    assert!(
        line_with(&trace, "t=3 #3 oomd: reclaim acknowledged app=svc").is_some(),
        "{trace}"
    );
    assert!(
        line_with(&trace, "t=4 #4 oomd: reclaim met app=svc bytes=500").is_some(),
        "{trace}"
    );
}

#[test]
fn a_request_is_answered_only_by_the_instance_it_was_made_to() {
    // The answer would come 10 ticks after each request; each instance is killed at its
    // deadline (5 ticks) and restarted, so every answer falls due for an instance that is gone.
    let run = run_text(&format!(
        "{}restart_after = 1\n",
        one_asked(
            "reclaim = \"cooperative\"\nreclaim_delay_ticks = 10",
            50,
            true
        )
        .replace("ticks = 12", "ticks = 20")
    ));
    let trace = run.trace();
    let ids: Vec<u64> = run.reclaims.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 9, 17], "{trace}");
    assert!(acks(&run).is_empty(), "{trace}");
    assert!(!trace.contains("reclaim acknowledged"), "{trace}");
    assert_eq!(run.summary().confirmed, 2, "{trace}");
}

#[test]
fn reclaim_keys_are_read_and_checked() {
    for (word, mode) in [
        ("ignore", ReclaimMode::Ignore),
        ("cooperative", ReclaimMode::Cooperative),
        ("stubborn", ReclaimMode::Stubborn),
        ("liar", ReclaimMode::Liar),
    ] {
        let scenario = Scenario::parse(&format!("{MINIMAL}reclaim = \"{word}\"\n")).expect("valid");
        let subject = &scenario.setup.subjects[0];
        assert_eq!(
            (subject.reclaim, subject.reclaim_delay),
            (mode, 1),
            "{word}"
        );
        assert_eq!(mode.as_str(), word);
    }
    let scenario = Scenario::parse(&format!(
        "{MINIMAL}reclaim = \"stubborn\"\nreclaim_delay_ticks = 4\n"
    ))
    .expect("valid");
    assert_eq!(scenario.setup.subjects[0].reclaim_delay, 4);
    let defaults = Scenario::parse(MINIMAL).expect("valid").setup.subjects[0].clone();
    assert_eq!(
        (defaults.reclaim, defaults.reclaim_delay),
        (ReclaimMode::Ignore, 1)
    );

    let cases: &[(&str, &str, &str)] = &[
        (
            "reclaim = \"maybe\"",
            "subject[0].reclaim",
            "unknown variant",
        ),
        ("reclaim = 1", "subject[0].reclaim", "wanted string"),
        (
            "reclaim = \"cooperative\"\nreport = \"silent\"",
            "subject[0].reclaim",
            "silent",
        ),
        (
            "reclaim_delay_ticks = 2",
            "subject[0].reclaim_delay_ticks",
            "has no effect",
        ),
        (
            "reclaim = \"ignore\"\nreclaim_delay_ticks = 2",
            "subject[0].reclaim_delay_ticks",
            "has no effect",
        ),
        (
            "reclaim = \"liar\"\nreclaim_delay_ticks = 0",
            "subject[0].reclaim_delay_ticks",
            "must be in 1..=",
        ),
        (
            "reclaim = \"liar\"\nreclaim_delay_ticks = 1000001",
            "subject[0].reclaim_delay_ticks",
            "must be in 1..=",
        ),
        (
            "reclaim = \"liar\"\nreclaim_delay_ticks = -1",
            "subject[0].reclaim_delay_ticks",
            "",
        ),
    ];
    for (extra, key, words) in cases {
        let e = parse_err(&format!("{MINIMAL}{extra}\n"));
        assert_eq!(e.key(), *key, "{extra:?}: {e}");
        assert!(e.to_string().contains(words), "{extra:?}: {e}");
    }
    // A silent subject that ignores requests is fine.
    Scenario::parse(&format!(
        "{MINIMAL}report = \"silent\"\nreclaim = \"ignore\"\n"
    ))
    .expect("valid");
}

// ----- bad scenario files -----------------------------------------------------------------------

#[test]
fn an_unknown_key_is_named() {
    let e = parse_err("name = \"t\"\nticks = 3\ntiks = 4\n[[subject]]\nname = \"a\"\n");
    assert_eq!(e.key(), "tiks", "{e}");
    assert!(e.message().contains("unknown field `tiks`"), "{e}");
    assert_eq!(e.location().map(|l| l.0), Some(3), "{e}");

    let e = parse_err(&format!("{MINIMAL}grwoth_per_tick = 5\n"));
    assert_eq!(e.key(), "subject[0].grwoth_per_tick", "{e}");
    assert!(e.message().contains("expected one of"), "{e}");

    let e = parse_err(&format!("{MINIMAL}[policy]\nhard = 5\n"));
    assert_eq!(e.key(), "policy.hard", "{e}");
    assert!(e.to_string().contains("unknown field `hard`"), "{e}");
}

#[test]
fn soft_above_hard_is_refused_with_the_key() {
    let e = parse_err(&format!(
        "{MINIMAL}[policy]\nsoft_bytes = \"2 MiB\"\nhard_bytes = \"1 MiB\"\n"
    ));
    assert_eq!(e.key(), "policy.soft_bytes", "{e}");
    assert!(e.to_string().contains("must not exceed hard_bytes"), "{e}");

    let e = parse_err(&format!("{MINIMAL}limits = {{ soft_bytes = \"1 GiB\" }}\n"));
    assert_eq!(e.key(), "subject[0].limits.soft_bytes", "{e}");
}

#[test]
fn a_bad_size_is_refused_with_the_key_and_line() {
    let e = parse_err(&format!("{MINIMAL}growth_per_tick = \"12 parsecs\"\n"));
    assert_eq!(e.key(), "subject[0].growth_per_tick", "{e}");
    assert!(e.message().contains("invalid size \"12 parsecs\""), "{e}");
    assert_eq!(e.location().map(|l| l.0), Some(6), "{e}");

    let e = parse_err(&format!("{MINIMAL}[policy]\nhard_bytes = -5\n"));
    assert_eq!(e.key(), "policy.hard_bytes", "{e}");
}

#[test]
fn other_mistakes_name_their_key() {
    let cases: &[(&str, &str)] = &[
        ("report = \"sneaky\"", "subject[0].report"),
        ("report = { mode = \"under\" }", "subject[0].report"),
        (
            "report = { mode = \"honest\", factor = 2 }",
            "subject[0].report.factor",
        ),
        (
            "report = { mode = \"spoof\", claim = \"a\" }",
            "subject[0].report.claim",
        ),
        (
            "report = { mode = \"flood\", frames = 0 }",
            "subject[0].report.frames",
        ),
        ("class = \"vip\"", "subject[0].class"),
        ("start_tick = 9", "subject[0].start_tick"),
        ("kernel_overhead = 5", "subject[0].kernel_overhead"),
        ("max_bytes = 1\nstart_bytes = 2", "subject[0].max_bytes"),
        ("[authority]\nrefuse = [\"nobody\"]", "authority.refuse"),
        ("[authority]\nack_delay = 0", "authority.ack_delay"),
        ("[authority]\nexit_delay = [5, 2]", "authority.exit_delay"),
        ("[policy]\nkill_budget = 0", "policy.kill_budget"),
        (
            "[policy]\nframe_budget_per_tick = 70000",
            "policy.frame_budget_per_tick",
        ),
        (
            "[expect]\nrejected = { bogus = 1 }",
            "expect.rejected.bogus",
        ),
        ("[[subject]]\nname = \"a\"", "subject[1].name"),
    ];
    for (extra, key) in cases {
        let e = parse_err(&format!("{MINIMAL}{extra}\n"));
        assert_eq!(e.key(), *key, "{extra:?}: {e}");
    }
    assert_eq!(parse_err("name = \"t\"\nticks = 0\n").key(), "ticks");
    let huge = MINIMAL.replace("ticks = 3", "ticks = 1000000")
        + "report = { mode = \"flood\", frames = 10000 }\n";
    assert!(parse_err(&huge).message().contains("inputs"));
    assert_eq!(parse_err("name = \"t\"\nticks = 1\n").key(), "subject");
    assert!(parse_err("ticks = 1\n").message().contains("name"));
    assert_eq!(
        parse_err(&MINIMAL.replace("ticks = 3", "ticks = 3\nsubject_capacity = 3")).key(),
        "subject_capacity"
    );
}

#[test]
fn a_file_error_names_the_file() {
    let e = Scenario::load("/nonexistent/oomd/scenario.toml").expect_err("missing file");
    assert!(
        e.to_string()
            .starts_with("/nonexistent/oomd/scenario.toml: cannot read"),
        "{e}"
    );
}

// ----- the command line -------------------------------------------------------------------------

fn oomd_sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oomd-sim"))
        .args(args)
        .output()
        .expect("oomd-sim runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("oomd-sim-test-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("temp file");
    path
}

#[test]
fn cli_run_prints_the_trace_and_exits_zero_when_expectations_hold() {
    let path = scenarios_dir().join("hog-hard-kill.toml");
    let (code, out, err) = oomd_sim(&["run", path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("oomd: kill app=hog bytes="), "{out}");
    assert!(out.contains("kills: confirmed=1"), "{out}");

    let (code, out, _) = oomd_sim(&["run", "--json", path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0);
    for line in out.lines() {
        let _: oomd::Event = serde_json::from_str(line).expect("every stdout line is an event");
    }
}

#[test]
fn cli_run_exits_one_and_names_the_failed_expectation() {
    let path = temp_file(
        "fails.toml",
        &format!("{MINIMAL}[expect]\nlines = [\"oomd: kill app=a\"]\n"),
    );
    let (code, _, err) = oomd_sim(&["run", path.to_str().expect("utf-8 path")]);
    std::fs::remove_file(&path).ok();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("expect.lines[0]"), "{err}");
}

#[test]
fn cli_exits_two_on_bad_input_with_file_and_key() {
    let path = temp_file(
        "bad.toml",
        &format!("{MINIMAL}growth_per_tick = \"lots\"\n"),
    );
    let p = path.to_str().expect("utf-8 path");
    let (code, _, err) = oomd_sim(&["run", p]);
    assert_eq!(code, 2);
    assert!(
        err.contains(p) && err.contains("subject[0].growth_per_tick"),
        "{err}"
    );
    let (code, out, err) = oomd_sim(&["check", p]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("subject[0].growth_per_tick"), "{err}");
    let (code, _, err) = oomd_sim(&["replay", p]);
    assert_eq!(code, 2);
    assert!(err.contains("line 1"), "{err}");
    std::fs::remove_file(&path).ok();

    let (code, _, _) = oomd_sim(&["run", "/nonexistent.toml"]);
    assert_eq!(code, 2);
    let (code, _, _) = oomd_sim(&["frobnicate"]);
    assert_eq!(code, 2);
}

#[test]
fn cli_check_accepts_every_shipped_scenario_and_record_then_replay_agree() {
    let paths: Vec<String> = shipped()
        .iter()
        .map(|p| p.to_str().expect("utf-8 path").to_owned())
        .collect();
    let mut args = vec!["check"];
    args.extend(paths.iter().map(String::as_str));
    let (code, out, err) = oomd_sim(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), paths.len());

    let log = std::env::temp_dir().join(format!("oomd-sim-test-{}-rate.log", std::process::id()));
    let scenario = scenarios_dir().join("rate-limit.toml");
    let (code, ran, _) = oomd_sim(&[
        "run",
        scenario.to_str().expect("utf-8 path"),
        "--record",
        log.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 0);
    let (code, replayed, err) = oomd_sim(&["replay", log.to_str().expect("utf-8 path")]);
    std::fs::remove_file(&log).ok();
    assert_eq!(code, 0, "{err}");
    let trace = |s: &str| s.split("\n--\n").next().unwrap_or_default().to_owned();
    assert_eq!(trace(&ran), trace(&replayed));
}
