//! The service end to end in-process: real sockets and a real timer; the test plays execd and
//! the services.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{policy, Rig};
use memstat::SubjectId;
use oomd::{Answer, Policy, PolicyError, PolicyUpdate, RefusalReason, TerminationMode};
use oomd_proto::{
    ControlError, ControlReply, ControlRequest, ExitStatus, FromAuthority, ToAuthority,
};
use oomd_service::LogFormat;

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn a_service_over_hard_is_requested_and_its_kill_confirmed_only_after_its_exit() {
    let mut rig = Rig::new("kill", policy());
    let hog = rig.start("hog", false);
    rig.publish(hog, 5_000, Some(hog));
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    assert_eq!(
        (request.subject, request.mode),
        (hog, TerminationMode::Graceful)
    );
    assert!(
        !rig.lines().iter().any(|l| l.starts_with("oomd: kill app=")),
        "no kill line before the exit"
    );

    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Accepted,
    });
    assert!(
        !rig.lines().iter().any(|l| l.starts_with("oomd: kill app=")),
        "nor after the acknowledgement"
    );
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });
    let lines = rig.lines();
    assert!(
        lines.contains(&"oomd: kill app=hog bytes=5000".to_string()),
        "{lines:#?}"
    );
}

#[test]
fn a_confirmed_kill_is_reported_with_its_overshoot_and_timings_in_events_and_the_audit_log() {
    let mut rig = Rig::recording("report", policy(), LogFormat::None);
    let hog = rig.start("hog", false);
    rig.publish(hog, 1_500, None);
    // Over hard (2000): decided and requested in the input that crossed.
    rig.publish(hog, 2_600, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    // It goes on growing while the authority works: the peak is what oomd saw last.
    rig.publish(hog, 3_100, None);
    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Accepted,
    });
    std::thread::sleep(Duration::from_millis(30));
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });

    let replies = rig.control(&ControlRequest::Events {
        since: 0,
        limit: 64,
    });
    let confirmed = replies
        .iter()
        .position(
            |r| matches!(r, ControlReply::Event(v) if v.line.starts_with("oomd: kill app=hog")),
        )
        .expect("a kill confirmed");
    let ControlReply::Event(event) = &replies[confirmed] else {
        unreachable!()
    };
    let Some(ControlReply::KillReport(view)) = replies.get(confirmed + 1) else {
        panic!("no report after the kill: {replies:#?}");
    };
    let r = view.report;
    assert_eq!(view.app.as_str(), "hog");
    assert_eq!(r.seq, event.event.seq);
    assert_eq!(r.subject, hog);
    assert_eq!(
        (r.bytes, r.peak, r.hard, r.overshoot()),
        (2_600, 3_100, 2_000, 1_100)
    );
    assert_eq!(r.crossing_to_request.ticks, 0, "decided at the crossing");
    assert!(r.crossing_to_request.micros < 1_000_000, "{r:?}");
    assert!(r.request_to_exit.micros >= 30_000, "{r:?}");
    assert!(r.request_to_exit.ticks >= 1, "{r:?}");
    assert!(!r.escalated);
    let line = view.to_string();
    assert!(
        line.starts_with(
            "oomd: kill report app=hog reason=hard-limit bytes=2600 peak=3100 hard=2000 \
             overshoot=1100 cross_to_request=0t/"
        ),
        "{line}"
    );
    assert!(line.ends_with("ms escalated=no"), "{line}");

    // The audit trail has it after the confirmed kill, and recovery reads past it.
    let audit = std::fs::read_to_string(rig.dir.join("audit.jsonl")).expect("audit log");
    let at_kill = audit
        .lines()
        .position(|l| l.contains("\"line\":\"oomd: kill app=hog"))
        .expect("the kill in the audit log");
    let next = audit
        .lines()
        .nth(at_kill + 1)
        .expect("a line after the kill");
    let record: serde_json::Value = serde_json::from_str(next).expect("JSON");
    assert_eq!(record["seq"], event.event.seq);
    assert_eq!(record["report"]["peak"], 3_100);
    assert_eq!(record["line"], line.as_str());
    let copy = rig.dir.join("audit-copy.jsonl");
    std::fs::write(&copy, &audit).expect("copy");
    let (_, recovered) = oomd_service::audit::AuditLog::open(&copy, 1 << 20).expect("reopened");
    assert_eq!(recovered.skipped, 0, "a report line is not a torn line");
    assert!(recovered.confirmed.contains(&request.ticket.0));
    assert_eq!(recovered.next_event_seq, event.event.seq + 1);
}

#[test]
fn a_client_reads_a_page_with_a_kill_report_whole_and_its_next_request_gets_its_own_replies() {
    let mut rig = Rig::new("report-client", policy());
    let hog = rig.start("hog", false);
    rig.publish(hog, 2_600, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Accepted,
    });
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });
    // The blocking client oomctl and the selftest use, on its own thread while this one
    // runs the service: events (a page holding the report), then status.
    let socket = rig.dir.join("oomd.sock");
    let client = std::thread::spawn(move || {
        let mut c = oomd_proto::client::Client::connect(&socket, WAIT).expect("connect");
        let page = c.events(0).expect("events");
        let status = c.status().expect("status");
        (page, status)
    });
    while !client.is_finished() {
        rig.pump_for(Duration::from_millis(5));
    }
    let (page, status) = client.join().expect("client");
    assert_eq!(page.reports.len(), 1, "{page:?}");
    assert_eq!(page.reports[0].app.as_str(), "hog");
    assert!(page
        .events
        .iter()
        .any(|e| e.event.seq == page.reports[0].report.seq));
    assert_eq!(
        status.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["hog"]
    );
}

const MIB: u64 = 1 << 20;
/// How far above its unseen charge the brake of a service judged on its report sits
/// (`brake::MARGIN`).
const MARGIN: u64 = 512 * 1024;

/// The `memory.high` of `name`'s stand-in cgroup.
fn memory_high(rig: &Rig, name: &str) -> String {
    std::fs::read_to_string(rig.cgroup(name).join("memory.high")).expect("memory.high")
}

#[test]
fn a_service_in_a_cgroup_is_braked_at_hard_and_the_brake_follows_the_policy() {
    // The kernel figure decides (enforce_kernel): the brake holds a runaway until its kill.
    let kernel = Policy {
        enforce_kernel: true,
        ..policy()
    };
    let mut rig = Rig::new("brake", kernel);
    let hog = rig.start_in_cgroup("hog", false);
    // At the hard limit itself (2000 bytes): where the kernel figure is killed.
    assert_eq!(memory_high(&rig, "hog"), "2000\n");

    let set = |rig: &mut Rig, update| {
        assert_eq!(
            rig.control(&ControlRequest::SetPolicy(update)),
            [ControlReply::Done]
        );
    };
    let limits = |soft, hard| oomd::Limits {
        soft_bytes: soft,
        hard_bytes: hard,
        ..policy().limits
    };
    // The global limits move: hard 64 MiB.
    let global = Policy {
        limits: limits(32 * MIB, 64 * MIB),
        ..kernel
    };
    set(&mut rig, PolicyUpdate::Global(global));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 64 * MIB));
    // Its own limits win.
    let own = PolicyUpdate::SubjectLimits {
        subject: hog,
        limits: Some(limits(8 * MIB, 16 * MIB)),
    };
    set(&mut rig, own);
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 16 * MIB));
    // No hard limit: no brake.
    let unlimited = PolicyUpdate::SubjectLimits {
        subject: hog,
        limits: Some(limits(8 * MIB, u64::MAX)),
    };
    set(&mut rig, unlimited);
    assert_eq!(memory_high(&rig, "hog"), "max\n");
    set(&mut rig, own);
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 16 * MIB));
    // Observe-only acts on nothing, the kernel's brake included.
    let observe = Policy {
        observe_only: true,
        ..global
    };
    set(&mut rig, PolicyUpdate::Global(observe));
    assert_eq!(memory_high(&rig, "hog"), "max\n");
    set(&mut rig, PolicyUpdate::Global(global));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 16 * MIB));
    // Judged on its report: one that has not reported yet is judged on its kernel figure
    // (enforce_kernel_when_silent, the default), so braked at hard...
    let reports = Policy {
        enforce_kernel: false,
        ..global
    };
    set(&mut rig, PolicyUpdate::Global(reports));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 16 * MIB));
    // ... and judged on its report alone, it has no brake until oomd knows how much of its
    // charge its report does not show: at hard, it could be throttled before its report
    // reached hard and never be killed.
    let reports_only = Policy {
        enforce_kernel_when_silent: false,
        ..reports
    };
    set(&mut rig, PolicyUpdate::Global(reports_only));
    assert_eq!(memory_high(&rig, "hog"), "max\n");
}

/// The kernel figure oomd holds for `subject`.
fn kernel_bytes(rig: &mut Rig, subject: SubjectId) -> Option<u64> {
    rig.control(&ControlRequest::Status { from: 0 })
        .into_iter()
        .find_map(|r| match r {
            ControlReply::Subject(v) if v.status.subject == subject => v.status.kernel_bytes,
            _ => None,
        })
}

/// `memory.events` with `high` at `n`.
fn memory_events(high: u64) -> String {
    format!("low 0\nhigh {high}\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n")
}

#[test]
fn a_storm_of_high_events_brings_one_kernel_reading_per_tick_and_garbage_brings_none() {
    // Ticks a minute apart, nothing over hard: only the push reads memory.current.
    let slow = Policy {
        sample_period_ms: 60_000,
        ..policy()
    };
    let mut rig = Rig::new("push-storm", slow);
    let hog = rig.start_in_cgroup("hog", false);
    let group = rig.cgroup("hog");
    let write = |file: &str, text: &str| std::fs::write(group.join(file), text).expect("write");
    write("memory.current", "100\n");
    write("memory.events", &memory_events(1));
    rig.svc.memory_events_changed();
    assert_eq!(kernel_bytes(&mut rig, hog), Some(100));
    // A thousand more events in the same tick: no more readings.
    for n in 2..1_000 {
        write("memory.current", &format!("{n}00\n"));
        write("memory.events", &memory_events(n));
        rig.svc.memory_events_changed();
    }
    assert_eq!(
        kernel_bytes(&mut rig, hog),
        Some(100),
        "one reading per tick"
    );
    // A file that lies or is torn reads as no event, and nothing breaks.
    for junk in [
        "",
        "high\n",
        "high -1\n",
        "high 18446744073709551616\n",
        "\u{0}\u{0}",
    ] {
        write("memory.events", junk);
        rig.svc.memory_events_changed();
    }
    assert_eq!(kernel_bytes(&mut rig, hog), Some(100));
    assert_eq!(rig.next_request(Duration::from_millis(50)), None);
}

#[test]
fn a_brake_is_never_written_below_what_the_group_holds() {
    // A memory.high below the group's charge would have oomd, the writer, reclaim the group
    // in its write: a service holding reclaimable memory could stall its watchdog. Ticks a
    // minute apart, so that only the policy moves the brake here.
    let slow = Policy {
        sample_period_ms: 60_000,
        enforce_kernel: true,
        limits: limits_64_mib(),
        ..policy()
    };
    let mut rig = Rig::new("brake-charge", slow);
    rig.start_in_cgroup("hog", false);
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 64 * MIB));
    let hard = |rig: &mut Rig, hard_bytes| {
        let update = PolicyUpdate::Global(Policy {
            limits: oomd::Limits {
                soft_bytes: hard_bytes / 2,
                hard_bytes,
                ..limits_64_mib()
            },
            ..slow
        });
        assert_eq!(
            rig.control(&ControlRequest::SetPolicy(update)),
            [ControlReply::Done]
        );
    };
    // The group holds 40 MiB when hard drops to 16 MiB: braked at its charge.
    set_current(&rig, 40 * MIB);
    hard(&mut rig, 16 * MIB);
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 40 * MIB));
    // Below the brake wanted, the brake is written where it is wanted.
    set_current(&rig, 10 * MIB);
    hard(&mut rig, 20 * MIB);
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 20 * MIB));
}

#[test]
fn a_brake_written_at_the_charge_comes_down_with_the_charge() {
    // Its kernel figure decides (enforce_kernel), so the brake wanted is hard all along: only
    // the tick's readings can bring a brake written at the charge back down to it.
    let kernel = Policy {
        enforce_kernel: true,
        limits: limits_64_mib(),
        ..policy()
    };
    let mut rig = Rig::new("brake-charge-down", kernel);
    rig.start_in_cgroup("hog", false);
    // Its hard limit is lowered under what it holds: braked at its charge, and killed.
    set_current(&rig, 40 * MIB);
    let lowered = PolicyUpdate::Global(Policy {
        limits: oomd::Limits {
            soft_bytes: 8 * MIB,
            hard_bytes: 16 * MIB,
            ..limits_64_mib()
        },
        ..kernel
    });
    assert_eq!(
        rig.control(&ControlRequest::SetPolicy(lowered)),
        [ControlReply::Done]
    );
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 40 * MIB));
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    // The kill is refused, and the group shrinks: its brake follows it down, to its charge...
    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Refused(RefusalReason::NotPermitted),
    });
    set_current(&rig, 30 * MIB);
    rig.pump_for(Duration::from_millis(30));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 30 * MIB));
    // ... by LOWER_BY (256 KiB) at least: a smaller step writes nothing...
    set_current(&rig, 30 * MIB - 128 * 1024);
    rig.pump_for(Duration::from_millis(30));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 30 * MIB));
    // ... and under hard, to hard, where its kernel figure is killed and the push fires.
    set_current(&rig, 10 * MIB);
    rig.pump_for(Duration::from_millis(30));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 16 * MIB));
}

#[test]
fn a_high_event_brings_the_kernel_figure_at_once_and_the_kill_before_any_tick() {
    // Ticks a minute apart: only the push can bring the kernel figure within the test.
    let slow = Policy {
        sample_period_ms: 60_000,
        enforce_kernel: true,
        ..policy()
    };
    let mut rig = Rig::new("push", slow);
    let hog = rig.start_in_cgroup("hog", false);
    let group = rig.cgroup("hog");
    std::fs::write(group.join("memory.current"), "5000\n").expect("memory.current");
    // The counter did not move: nothing is read.
    rig.svc.memory_events_changed();
    assert_eq!(rig.next_request(Duration::from_millis(100)), None);
    std::fs::write(
        group.join("memory.events"),
        "low 0\nhigh 3\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    )
    .expect("memory.events");
    rig.svc.memory_events_changed();
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the high event brought no kill");
    };
    assert_eq!(request.subject, hog);
    assert!(rig
        .lines()
        .contains(&"oomd: kill decided app=hog bytes=5000 reason=hard-limit".to_string()));
}

#[test]
fn each_tick_reads_the_memory_current_of_a_service_in_a_cgroup() {
    let kernel = Policy {
        enforce_kernel: true,
        ..policy()
    };
    let mut rig = Rig::new("cgroup-current", kernel);
    let hog = rig.start_in_cgroup("hog", false);
    rig.pump_for(Duration::from_millis(30));
    assert_eq!(rig.next_request(Duration::from_millis(50)), None);
    // The file kept open since the start is read again at the next tick.
    std::fs::write(rig.cgroup("hog").join("memory.current"), "7000\n").expect("write");
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the tick did not see the kernel figure");
    };
    assert_eq!(request.subject, hog);
    assert!(rig
        .lines()
        .contains(&"oomd: kill decided app=hog bytes=7000 reason=hard-limit".to_string()));
}

#[test]
fn a_reporting_service_is_braked_at_hard_from_its_kill_decision_and_a_refusal_lifts_it() {
    // Judged on its kernel figure until its first frame (a silent service): at hard.
    let mut rig = Rig::new("brake-kill", policy());
    let hog = rig.start_in_cgroup("hog", false);
    assert_eq!(memory_high(&rig, "hog"), "2000\n");
    rig.publish(hog, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    // From the request on, the kernel holds it at its hard limit until it exits.
    assert_eq!(memory_high(&rig, "hog"), "2000\n");
    // A refused kill lifts the brake again: the kill is no longer decided, and with its
    // report over hard, hard plus its headroom could be below what it holds (writing that
    // would have oomd reclaim its group).
    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Refused(RefusalReason::NotPermitted),
    });
    rig.pump_for(Duration::from_millis(20));
    assert_eq!(memory_high(&rig, "hog"), "max\n");
    // Below hard again, it is braked above hard by its unseen charge: its kernel readings
    // (0 bytes) show none, so by the margin alone.
    rig.publish(hog, 1_500, None);
    rig.pump_for(Duration::from_millis(20));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 2_000 + MARGIN));
}

/// Soft 48 MiB, hard 64 MiB: room for a service's charge beside its report.
fn limits_64_mib() -> oomd::Limits {
    oomd::Limits {
        soft_bytes: 48 * MIB,
        hard_bytes: 64 * MIB,
        ..policy().limits
    }
}

/// Writes `bytes` into the `memory.current` of the hog's stand-in cgroup.
fn set_current(rig: &Rig, bytes: u64) {
    std::fs::write(
        rig.cgroup("hog").join("memory.current"),
        format!("{bytes}\n"),
    )
    .expect("memory.current");
}

#[test]
fn a_reporting_service_is_braked_above_hard_by_the_charge_its_report_does_not_show() {
    let limits = limits_64_mib();
    let mut rig = Rig::new("brake-unseen", Policy { limits, ..policy() });
    let hog = rig.start_in_cgroup("hog", false);
    let high = |rig: &Rig| -> u64 {
        memory_high(rig, "hog")
            .trim()
            .parse()
            .expect("a number, not max")
    };
    // Its kernel figure is 1.5 MiB over its report: the brake is that much over hard, and
    // the margin. The kernel holds it when its report is about at hard, not before.
    set_current(&rig, 11 * MIB + MIB / 2);
    rig.publish(hog, 10 * MIB, None);
    rig.pump_for(Duration::from_millis(30));
    let brake = 64 * MIB + MIB + MIB / 2 + MARGIN;
    assert_eq!(high(&rig), brake);
    // A runaway whose frames trail its charge does not raise its own brake.
    set_current(&rig, 40 * MIB);
    rig.pump_for(Duration::from_millis(30));
    assert_eq!(high(&rig), brake);
    // Its unseen charge grew (a thread's stack, a mapping outside the allocator): held at
    // the brake with its report below hard, it is let through, not held for good.
    rig.publish(hog, 60 * MIB, None);
    set_current(&rig, brake);
    rig.pump_for(Duration::from_millis(40));
    let raised = high(&rig);
    assert!(raised > brake, "held with its report below hard: {raised}");
    // Over what the kernel holds by its gap to hard, and the margin twice.
    assert_eq!(raised, 64 * MIB + (brake - 60 * MIB) + 2 * MARGIN);
    assert_eq!(
        rig.next_request(Duration::from_millis(20)),
        None,
        "not over hard"
    );
    // Its report reaches hard: the kill, and the brake at the kill, at hard but never below
    // what the group holds (written lower, it would have oomd reclaim the group in its write).
    rig.publish(hog, 64 * MIB, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    assert_eq!(request.subject, hog);
    // (Its charge is still the `set_current(&rig, brake)` above.)
    assert_eq!(high(&rig), brake, "at its charge, over hard");
}

#[test]
fn the_charge_a_report_does_not_show_is_read_at_its_frame_not_only_at_the_tick() {
    // Ticks a minute apart: nothing but the frame reads memory.current.
    let limits = limits_64_mib();
    let slow = Policy {
        limits,
        sample_period_ms: 60_000,
        ..policy()
    };
    let mut rig = Rig::new("brake-at-frame", slow);
    let hog = rig.start_in_cgroup("hog", false);
    set_current(&rig, 12 * MIB);
    rig.publish(hog, 10 * MIB, None);
    rig.pump_for(Duration::from_millis(20));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 66 * MIB + MARGIN));
    // Read when the report is newest, the gap is the charge it does not show: a runaway's
    // frame and its charge together keep it; a smaller gap lowers the brake.
    set_current(&rig, 41 * MIB);
    rig.publish(hog, 39 * MIB, None);
    rig.pump_for(Duration::from_millis(20));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 66 * MIB + MARGIN));
    set_current(&rig, 41 * MIB);
    rig.publish(hog, 40 * MIB, None);
    rig.pump_for(Duration::from_millis(20));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 65 * MIB + MARGIN));
    // Not fed to the core: its kernel figure is still none (no tick has read one).
    assert_eq!(kernel_bytes(&mut rig, hog), None);
}

#[test]
fn a_memory_current_that_lies_or_is_torn_moves_no_brake_and_the_frame_still_decides() {
    let slow = Policy {
        limits: limits_64_mib(),
        sample_period_ms: 60_000,
        ..policy()
    };
    let mut rig = Rig::new("brake-junk", slow);
    let hog = rig.start_in_cgroup("hog", false);
    set_current(&rig, 12 * MIB);
    rig.publish(hog, 10 * MIB, None);
    rig.pump_for(Duration::from_millis(20));
    let brake = format!("{}\n", 66 * MIB + MARGIN);
    assert_eq!(memory_high(&rig, "hog"), brake);
    let file = rig.cgroup("hog").join("memory.current");
    for junk in [
        "",
        "max\n",
        "-1\n",
        "12x\n",
        "\u{fffd}\n",
        "99999999999999999999999\n",
    ] {
        std::fs::write(&file, junk).expect("memory.current");
        rig.publish(hog, 20 * MIB, None);
        rig.pump_for(Duration::from_millis(5));
        assert_eq!(memory_high(&rig, "hog"), brake, "{junk:?}");
    }
    // A frame over hard still decides the kill, with a torn file beside it.
    rig.publish(hog, 64 * MIB, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    assert_eq!(request.subject, hog);
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 64 * MIB));
}

#[test]
fn a_reporting_service_whose_report_goes_stale_is_braked_at_hard_until_its_next_frame() {
    // Judged on its kernel figure while silent (enforce_kernel_when_silent, the default):
    // braked where that figure is killed, and back above hard by its unseen charge once it
    // reports again.
    let stale_soon = Policy {
        report_stale_ticks: 4,
        ..policy()
    };
    let mut rig = Rig::new("brake-stale", stale_soon);
    let hog = rig.start_in_cgroup("hog", false);
    assert_eq!(memory_high(&rig, "hog"), "2000\n", "silent from its start");
    rig.publish(hog, 1_500, None);
    rig.pump_for(Duration::from_millis(3));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 2_000 + MARGIN));
    // Four ticks (20 ms) without a frame: stale, judged on its kernel figure again.
    rig.pump_for(Duration::from_millis(60));
    assert!(
        rig.lines()
            .iter()
            .any(|l| l.starts_with("oomd: report stale app=hog")),
        "{:#?}",
        rig.lines()
    );
    assert_eq!(memory_high(&rig, "hog"), "2000\n");
    rig.publish(hog, 1_500, None);
    rig.pump_for(Duration::from_millis(3));
    assert_eq!(memory_high(&rig, "hog"), format!("{}\n", 2_000 + MARGIN));
}

#[test]
fn a_brake_that_cannot_be_written_does_not_stop_the_kill() {
    let mut rig = Rig::new("brake-unwritable", policy());
    let hog = rig.start_in_cgroup("hog", false);
    // The group's memory.high is gone (the cgroup went away, or was never ours to write).
    std::fs::remove_file(rig.cgroup("hog").join("memory.high")).expect("remove");
    rig.publish(hog, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the kill waits for no brake");
    };
    assert_eq!(request.subject, hog);
    // Nothing made the file: oomd writes, it never creates.
    assert!(!rig.cgroup("hog").join("memory.high").exists());
    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Accepted,
    });
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(9),
    });
    assert!(rig
        .lines()
        .contains(&"oomd: kill app=hog bytes=5000".to_string()));
}

#[test]
fn a_kill_held_back_by_the_budget_brakes_its_service_meanwhile() {
    let one = Policy {
        kill_budget: 1,
        ..policy()
    };
    let mut rig = Rig::new("brake-throttled", one);
    let first = rig.start_in_cgroup("first", false);
    let second = rig.start_in_cgroup("second", false);
    rig.publish(first, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    assert_eq!(request.subject, first);
    rig.publish(second, 5_000, None);
    rig.pump_for(Duration::from_millis(30));
    assert!(
        rig.lines()
            .iter()
            .any(|l| l.starts_with("oomd: kill throttled app=second")),
        "{:#?}",
        rig.lines()
    );
    // Its kill is due and waits for the budget: the kernel holds it at hard until then.
    assert_eq!(memory_high(&rig, "second"), "2000\n");
    assert_eq!(memory_high(&rig, "first"), "2000\n");
}

#[test]
fn a_critical_service_in_a_cgroup_is_never_braked() {
    let mut rig = Rig::new("brake-critical", policy());
    rig.start_in_cgroup("db", true);
    assert_eq!(memory_high(&rig, "db"), "max\n");
    // And a service outside a cgroup (the host) is watched as before, with no file written.
    let hog = rig.start("hog", false);
    assert!(!rig.cgroup("hog").exists());
    rig.publish(hog, 5_000, None);
    assert!(matches!(
        rig.next_request(WAIT),
        Some(ToAuthority::Terminate(_))
    ));
}

#[test]
fn a_critical_service_is_denied_and_never_requested() {
    let mut rig = Rig::new("critical", policy());
    let db = rig.start("db", true);
    rig.publish(db, 50_000, None);
    assert_eq!(rig.next_request(Duration::from_millis(200)), None);
    assert!(rig
        .lines()
        .contains(&"oomd: kill denied (subject=db reason=critical)".to_string()));
}

#[test]
fn a_frame_claiming_another_service_is_rejected() {
    let mut rig = Rig::new("spoof", policy());
    let victim = rig.start("victim", false);
    let spoofer = rig.start("spoofer", false);
    rig.publish(spoofer, 50_000, Some(victim));
    assert_eq!(rig.next_request(Duration::from_millis(200)), None);
    let lines = rig.lines();
    assert!(
        lines.contains(&"oomd: frame rejected (sender=spoofer reason=claim-mismatch)".to_string()),
        "{lines:#?}"
    );
}

#[test]
fn status_lists_every_service_with_its_figures() {
    let mut rig = Rig::new("status", policy());
    let a = rig.start("a", false);
    rig.publish(a, 500, None);
    rig.pump_for(Duration::from_millis(20));
    let replies = rig.control(&ControlRequest::Status { from: 0 });
    let [ControlReply::Subject(view), ControlReply::End { .. }] = replies.as_slice() else {
        panic!("{replies:?}");
    };
    assert_eq!(view.name.as_str(), "a");
    assert_eq!(view.status.reported_bytes, Some(500));
}

#[test]
fn policy_can_be_read_and_changed_and_nonsense_is_refused_with_its_key() {
    let mut rig = Rig::new("policy", policy());
    assert_eq!(
        rig.control(&ControlRequest::GetPolicy),
        [ControlReply::Policy(policy())]
    );
    let bad = Policy {
        kill_budget: 0,
        ..policy()
    };
    assert_eq!(
        rig.control(&ControlRequest::SetPolicy(PolicyUpdate::Global(bad))),
        [ControlReply::Error(ControlError::Policy(
            PolicyError::KillBudgetOutOfRange
        ))]
    );
    let good = Policy {
        observe_only: true,
        ..policy()
    };
    assert_eq!(
        rig.control(&ControlRequest::SetPolicy(PolicyUpdate::Global(good))),
        [ControlReply::Done]
    );
    assert_eq!(
        rig.control(&ControlRequest::GetPolicy),
        [ControlReply::Policy(good)]
    );
}

#[cfg(not(feature = "selftest"))]
#[test]
fn inject_is_refused_outside_selftest_builds() {
    let mut rig = Rig::new("inject", policy());
    rig.start("hog", false);
    let app = oomd_proto::name("hog").expect("short");
    assert_eq!(
        rig.control(&ControlRequest::Inject { app, bytes: 1 }),
        [ControlReply::Error(ControlError::InjectUnavailable)]
    );
}

#[test]
fn events_report_what_a_late_reader_lost() {
    let mut rig = Rig::new("events", policy());
    let s = rig.start("s", false);
    rig.publish(s, 10, None);
    rig.pump_for(Duration::from_millis(20));
    let replies = rig.control(&ControlRequest::Events { since: 0, limit: 1 });
    let [ControlReply::Event(first), ControlReply::End { lost: 0, next: 1 }] = replies.as_slice()
    else {
        panic!("{replies:?}");
    };
    assert_eq!(first.event.seq, 0);
    assert_eq!(
        first.line.as_str(),
        "oomd: register app=s class=standard critical=no"
    );
    let _ = SubjectId::from_name("s");
}

#[test]
fn a_recorded_run_replays_to_the_same_event_log() {
    let mut rig = Rig::recording("record", policy(), oomd_service::LogFormat::None);
    let hog = rig.start("hog", false);
    let db = rig.start("db", true);
    rig.publish(db, 9_000, None);
    rig.publish(hog, 5_000, Some(hog));
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Accepted,
    });
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });
    rig.pump_for(Duration::from_millis(30)); // a tick after the exit flushes the recording
    let live: Vec<oomd::Event> = rig
        .control(&ControlRequest::Events {
            since: 0,
            limit: 256,
        })
        .into_iter()
        .filter_map(|r| match r {
            ControlReply::Event(e) => Some(e.event),
            _ => None,
        })
        .collect();

    let file = std::fs::File::open(rig.dir.join("inputs.jsonl")).expect("recording exists");
    let log =
        oomd_host::record::InputLog::read_from(std::io::BufReader::new(file)).expect("a valid log");
    assert_eq!(
        log.header.subjects.get(&hog).map(String::as_str),
        Some("hog"),
        "names are recorded"
    );
    let replayed = oomd_host::record::replay(&log).expect("replays");
    let n = live.len();
    assert!(n >= 8, "{live:?}");
    assert_eq!(
        replayed.events[..n],
        live[..],
        "the replay diverged from the live run"
    );
}

#[test]
fn status_is_paged_so_that_a_reply_never_outgrows_the_socket() {
    let mut rig = Rig::new("paged", policy());
    for i in 0..70 {
        rig.start(&format!("svc-{i:02}"), false);
    }
    let first = rig.control(&ControlRequest::Status { from: 0 });
    assert_eq!(first.len(), usize::from(oomd_proto::MAX_PAGE) + 1);
    assert_eq!(first.last(), Some(&ControlReply::End { lost: 0, next: 64 }));
    let second = rig.control(&ControlRequest::Status { from: 64 });
    assert_eq!(second.len(), 7);
    assert_eq!(
        second.last(),
        Some(&ControlReply::End { lost: 0, next: 70 })
    );
    let events = rig.control(&ControlRequest::Events {
        since: 0,
        limit: u16::MAX,
    });
    assert_eq!(
        events.len(),
        usize::from(oomd_proto::MAX_PAGE) + 1,
        "events are capped per page too"
    );
}

// ----- hostile senders on real sockets -----------------------------------------------------

fn lines_with(rig: &mut Rig, needle: &str) -> usize {
    rig.lines().iter().filter(|l| l.contains(needle)).count()
}

#[test]
fn an_empty_packet_is_rejected_and_the_channel_stays_open() {
    let mut rig = Rig::new("empty", policy());
    let hog = rig.start("hog", false);
    rig.publish(hog, 100, None);
    rig.send_raw(hog, &[]);
    rig.pump_for(Duration::from_millis(30));
    assert_eq!(
        lines_with(
            &mut rig,
            "oomd: frame rejected (sender=hog reason=truncated)"
        ),
        1
    );
    // The growth that follows is still seen: the channel was not taken for a hang-up.
    rig.publish(hog, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the growth after an empty packet was not seen");
    };
    assert_eq!(request.subject, hog);
}

#[test]
fn empty_packets_inside_one_batch_are_frames_and_frames_before_a_hang_up_all_count() {
    // All queued before oomd reads: one batch receive gets them together with the end of the
    // channel. The empty packets in the middle are rejected, the frame after them decides,
    // and only then is the channel closed.
    let mut rig = Rig::new("batch-edges", policy());
    let hog = rig.start("hog", false);
    rig.publish(hog, 100, None);
    rig.send_raw(hog, &[]);
    rig.send_raw(hog, &[]);
    rig.publish(hog, 5_000, None);
    rig.close_channel(hog);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the frame after the empty packets, before the hang-up, was not seen");
    };
    assert_eq!(request.subject, hog);
    // Both empty packets were rejected (the event is told once per tick, the counter counts).
    let counters = rig.control(&ControlRequest::Counters);
    let (truncated, hangups) = match counters.as_slice() {
        [ControlReply::Counters(c)] => (
            c.rejected[oomd::Rejection::Truncated as usize],
            c.memstat_hangups,
        ),
        other => panic!("{other:#?}"),
    };
    assert_eq!((truncated, hangups), (2, 1));
}

#[test]
fn an_oversized_packet_in_a_batch_is_rejected_by_its_real_length_and_the_next_frame_decides() {
    // Queued together, so one batch receive reads both. The first is cut to a frame and one
    // byte (so a longer packet shows) and rejected as oversize; it neither ends the channel
    // nor hides the frame behind it.
    let mut rig = Rig::new("oversized", policy());
    let hog = rig.start("hog", false);
    rig.send_raw(hog, &[0xAB; 4000]);
    rig.publish(hog, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the frame after an oversized packet was not seen");
    };
    assert_eq!(request.subject, hog);
    let counters = rig.control(&ControlRequest::Counters);
    let (oversize, hangups) = match counters.as_slice() {
        [ControlReply::Counters(c)] => (
            c.rejected[oomd::Rejection::Oversize as usize],
            c.memstat_hangups,
        ),
        other => panic!("{other:#?}"),
    };
    assert_eq!((oversize, hangups), (1, 0));
}

#[test]
fn a_burst_far_past_the_frame_budget_is_judged_on_its_newest_frame() {
    // Budget 8 frames per tick; 200 frames arrive before oomd reads any: 199 below hard, the
    // newest far above it. Reading stops at the budget, the rest is drained before the tick,
    // and the newest counts.
    let mut rig = Rig::new("burst", policy());
    let hog = rig.start("hog", false);
    for i in 1..200 {
        rig.publish(hog, i * 5, None);
    }
    rig.publish(hog, 50_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the burst past the hard limit was never killed");
    };
    assert_eq!(request.subject, hog);
    let lines = rig.lines();
    assert!(
        lines.contains(&"oomd: kill decided app=hog bytes=50000 reason=hard-limit".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"oomd: frame rejected (sender=hog reason=over-budget)".to_string()),
        "{lines:#?}"
    );
}

/// Steps of the loop while nothing is ready: each `step(50)` waits up to 50 ms, so a loop that
/// waits for nothing makes about 6 steps in 300 ms, and one that some descriptor keeps waking
/// (level-triggered) makes thousands.
fn steps_while_idle(rig: &mut Rig, counter: &'static AtomicUsize, for_: Duration) -> usize {
    let before = counter.load(Ordering::Relaxed);
    rig.pump_for(for_);
    counter.load(Ordering::Relaxed) - before
}

#[test]
fn a_paused_sender_wakes_nobody_until_the_tick_and_then_its_newest_frame_counts() {
    static STEPS: AtomicUsize = AtomicUsize::new(0);
    let mut rig = Rig::new(
        "paused",
        Policy {
            sample_period_ms: 600,
            ..policy()
        },
    );
    rig.stepper = |svc| {
        STEPS.fetch_add(1, Ordering::Relaxed);
        svc.step(50)
    };
    let hog = rig.start("hog", false);
    rig.pump_for(Duration::from_millis(650)); // past the first tick
                                              // 20 frames against a budget of 8: the sender is paused with 12 still queued.
    for i in 1..=20 {
        rig.publish(hog, 100 + i, None);
    }
    let steps = steps_while_idle(&mut rig, &STEPS, Duration::from_millis(300));
    assert!(
        steps < 40,
        "a paused channel kept waking the loop: {steps} steps in 300 ms"
    );
    rig.pump_for(Duration::from_millis(600)); // the next tick: the drain
    let status = rig.control(&ControlRequest::Status { from: 0 });
    let reported = status.iter().find_map(|r| match r {
        ControlReply::Subject(v) if v.status.subject == hog => v.status.reported_bytes,
        _ => None,
    });
    assert_eq!(reported, Some(120), "{status:#?}");
}

#[test]
fn a_restarted_service_s_old_channel_no_longer_wakes_the_loop() {
    // execd holds a copy of the old channel, so oomd closing its own does not take it out of
    // an epoll set: oomd must. The old channel's peer is gone (a hang-up is always ready).
    static STEPS: AtomicUsize = AtomicUsize::new(0);
    let mut rig = Rig::new(
        "restarted",
        Policy {
            sample_period_ms: 600,
            ..policy()
        },
    );
    rig.stepper = |svc| {
        STEPS.fetch_add(1, Ordering::Relaxed);
        svc.step(50)
    };
    let hog = rig.start("hog", false);
    rig.publish(hog, 100, None);
    let again = rig.start("hog", false); // the same service, started again: a new channel
    assert_eq!(again, hog);
    let steps = steps_while_idle(&mut rig, &STEPS, Duration::from_millis(300));
    assert!(
        steps < 40,
        "the old channel kept waking the loop: {steps} steps in 300 ms"
    );
    rig.publish(hog, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the new channel's frame was not read");
    };
    assert_eq!(request.subject, hog);
}

#[test]
fn the_end_of_the_sequence_space_wraps() {
    let mut rig = Rig::new("wrap", policy());
    let hog = rig.start("hog", false);
    rig.set_seq(hog, u64::MAX - 1);
    rig.publish(hog, 100, None); // MAX - 1
    rig.publish(hog, 200, None); // MAX
    rig.publish(hog, 5_000, None); // 0: follows MAX
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the frame after u64::MAX was not taken");
    };
    assert_eq!(request.subject, hog);
    assert_eq!(lines_with(&mut rig, "reason=stale-sequence"), 0);
}

#[test]
fn a_service_that_closes_its_channel_goes_stale_and_is_not_forgotten() {
    let mut rig = Rig::new(
        "closed",
        Policy {
            report_stale_ticks: 10, // 50 ms at the rig's 5 ms tick
            ..policy()
        },
    );
    let hog = rig.start("hog", false);
    rig.publish(hog, 100, None);
    rig.pump_for(Duration::from_millis(20));
    rig.close_channel(hog);
    rig.pump_for(Duration::from_millis(150));
    assert_eq!(lines_with(&mut rig, "oomd: report stale app=hog"), 1);
    let status = rig.control(&ControlRequest::Status { from: 0 });
    let running = status.iter().any(|r| {
        matches!(r, ControlReply::Subject(v) if v.status.subject == hog && v.status.running && v.status.report_stale)
    });
    assert!(running, "{status:#?}");
}

#[test]
fn a_message_of_another_protocol_is_told_this_is_not_an_oomd_socket() {
    use std::os::fd::AsFd;
    let mut rig = Rig::new("stranger", policy());
    let stranger = oomd_proto::connect(&rig.dir.join("oomd.sock")).expect("connect");
    let mut buf = [0; oomd_proto::MAX_MESSAGE_LEN];
    // execd's "spawn" sent to oomd: never read as one of oomd's requests.
    let spawn = oomd_proto::ExecdRequest::Spawn {
        name: oomd_proto::name("hog").expect("short"),
    };
    let bytes = oomd_proto::encode(&spawn, &mut buf).expect("fits");
    oomd_proto::send(stranger.as_fd(), bytes, &[]).expect("sent");
    rig.pump_for(Duration::from_millis(30));
    let mut rx = oomd_proto::Receiver::new();
    oomd_proto::set_nonblocking(&stranger).expect("nonblocking");
    // The stranger, reading with execd's protocol, learns it is at oomd's socket...
    let got = rx.recv_msg::<oomd_proto::ExecdReply>(stranger.as_fd());
    assert!(
        matches!(
            got,
            Err(oomd_proto::WireError::Peer(
                oomd_proto::PeerFault::WrongProtocol {
                    expected: oomd_proto::Protocol::ExecdControl,
                    found: Some(oomd_proto::Protocol::OomdControl),
                }
            ))
        ),
        "{got:?}"
    );
    // ... and oomd counted it, and stays usable for everyone else.
    let counters = rig.control(&ControlRequest::Counters);
    assert!(
        matches!(counters.as_slice(), [ControlReply::Counters(c)] if c.wrong_protocol == 1),
        "{counters:?}"
    );
}

#[test]
fn a_policy_document_with_one_bad_table_changes_nothing() {
    let mut rig = Rig::new("atomic", policy());
    rig.start("db", false);
    let before = rig.control(&ControlRequest::GetPolicyDocument);
    let mut bad_limits = policy().limits;
    bad_limits.soft_bytes = bad_limits.hard_bytes + 1;
    let mut doc = oomd_proto::PolicyDocument {
        global: Some(Policy {
            kill_budget: 1,
            ..policy()
        }),
        services: heapless::Vec::new(),
    };
    for (name, limits) in [("db", policy().limits), ("web", bad_limits)] {
        doc.services
            .push(oomd_proto::ServiceLimits {
                name: oomd_proto::name(name).expect("short"),
                limits: Some(limits),
            })
            .expect("room");
    }
    let replies = rig.control(&ControlRequest::ApplyPolicy(doc));
    let [ControlReply::Error(e)] = replies.as_slice() else {
        panic!("{replies:?}");
    };
    assert_eq!(
        e.to_string(),
        "policy refused, nothing applied: service.web.soft_bytes: soft_bytes must not exceed hard_bytes"
    );
    assert_eq!(rig.control(&ControlRequest::GetPolicyDocument), before);
    assert!(!rig
        .lines()
        .iter()
        .any(|l| l.starts_with("oomd: policy changed")));
}

fn reclaim_policy() -> Policy {
    Policy {
        limits: oomd::Limits {
            soft_grace_ticks: 10, // 50 ms at the rig's 5 ms tick: far shorter than the deadline
            ..policy().limits
        },
        reclaim_target_percent: 50,
        reclaim_deadline_ticks: 40, // 200 ms
        ..policy()
    }
}

/// The reclaim request oomd sent `hog` on its memstat channel.
fn reclaim_request(rig: &mut Rig, hog: SubjectId) -> memstat::ReclaimRequest {
    let bytes = rig
        .recv_on_channel(hog, WAIT)
        .expect("a reclaim request on the memstat channel");
    memstat::ReclaimRequest::decode(&bytes).expect("a valid reclaim request")
}

fn ack(rig: &mut Rig, hog: SubjectId, id: u64) {
    let mut buf = [0; memstat::MAX_ACK_LEN];
    let n = memstat::ReclaimAck { id }.encode(&mut buf).expect("fits");
    rig.send_raw(hog, &buf[..n]);
}

#[test]
fn a_service_over_soft_is_asked_on_its_channel_and_spared_when_it_reclaims() {
    let mut rig = Rig::new("reclaim-met", reclaim_policy());
    let hog = rig.start("hog", false);
    rig.publish(hog, 1_500, None);
    let request = reclaim_request(&mut rig, hog);
    assert_eq!(request.target_bytes, 500, "50 % of soft");
    assert_eq!(request.deadline_ms, 200, "40 ticks of 5 ms");
    // The service frees memory, reports it, then acknowledges.
    rig.publish(hog, 400, None);
    ack(&mut rig, hog, request.id);
    // Past the deadline and the soft grace: nothing is asked of execd.
    assert_eq!(rig.next_request(Duration::from_millis(400)), None);
    let lines = rig.lines();
    for want in [
        "oomd: reclaim requested app=hog target=500 deadline=",
        "oomd: reclaim acknowledged app=hog",
        "oomd: reclaim met app=hog bytes=400",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "{want}: {lines:#?}"
        );
    }
    assert!(!lines.iter().any(|l| l.contains("kill")), "{lines:#?}");
}

#[test]
fn a_service_that_acknowledges_and_keeps_its_memory_is_killed_after_the_deadline() {
    let mut rig = Rig::new("reclaim-missed", reclaim_policy());
    let hog = rig.start("hog", false);
    rig.publish(hog, 1_500, None);
    let request = reclaim_request(&mut rig, hog);
    let asked = Instant::now();
    ack(&mut rig, hog, request.id);
    // Garbage and made-up acknowledgements change nothing and cost the sender only rejections.
    for id in 0..200u64 {
        ack(&mut rig, hog, request.id.wrapping_add(1 + id));
    }
    rig.send_raw(hog, b"MA\x01");
    let Some(ToAuthority::Terminate(kill)) = rig.next_request(WAIT) else {
        panic!("no kill after the missed reclaim");
    };
    assert!(
        asked.elapsed() >= Duration::from_millis(150),
        "killed {:?} after the request, before the 200 ms deadline",
        asked.elapsed()
    );
    assert_eq!(kill.subject, hog);
    let lines = rig.lines();
    let at = |want: &str| lines.iter().position(|l| l.starts_with(want));
    let missed = at("oomd: reclaim missed app=hog bytes=1500").expect("missed");
    let decided = at("oomd: kill decided app=hog bytes=1500 reason=soft-grace").expect("decided");
    assert!(missed < decided, "{lines:#?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("oomd: reclaim acknowledged"))
            .count(),
        1
    );
    assert!(
        lines.iter().any(|l| l.contains("reason=unexpected-ack")),
        "{lines:#?}"
    );
}

#[test]
fn a_drained_burst_of_oversized_packets_hides_neither_the_acknowledgement_nor_the_newest_frame() {
    // Past the frame budget (8), so most of it is read by the drain before the tick, which
    // looks at every packet's magic (oversized ones are cut to a frame and one byte) and feeds
    // the newest acknowledgement-shaped packet and the newest other one. A sender that sends
    // garbage after its own acknowledgement or frame only hides those from itself.
    let mut rig = Rig::new("reclaim-burst", reclaim_policy());
    let hog = rig.start("hog", false);
    rig.publish(hog, 1_500, None);
    let request = reclaim_request(&mut rig, hog);
    for _ in 0..20 {
        rig.send_raw(hog, &[0xAB; 100]);
    }
    // A malformed acknowledgement (a varint past 64 bits) and an oversized one.
    rig.send_raw(hog, b"MA\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
    rig.send_raw(hog, &[b'M', b'A', 1, 0xAB].repeat(50));
    ack(&mut rig, hog, request.id);
    for _ in 0..10 {
        rig.send_raw(hog, &[0xAB; 100]);
    }
    rig.publish(hog, 400, None);
    assert_eq!(rig.next_request(Duration::from_millis(300)), None);
    let lines = rig.lines();
    for want in [
        "oomd: reclaim acknowledged app=hog",
        "oomd: reclaim met app=hog bytes=400",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:#?}");
    }
    let counters = rig.control(&ControlRequest::Counters);
    let [ControlReply::Counters(c)] = counters.as_slice() else {
        panic!("{counters:#?}");
    };
    assert!(c.rejected[oomd::Rejection::Oversize as usize] >= 1, "{c:?}");
    assert_eq!(c.memstat_hangups, 0, "the channel stays open");
}

#[test]
fn a_service_that_hung_up_before_its_request_is_still_judged_at_the_deadline() {
    // Its frame is read, then its end is closed: the request cannot be delivered (noted, not
    // retried, never blocking), and the core still settles it on the figures it has.
    let mut rig = Rig::new("reclaim-hung-up", reclaim_policy());
    let hog = rig.start("hog", false);
    rig.publish(hog, 1_500, None);
    rig.close_channel(hog);
    let asked = Instant::now();
    let Some(ToAuthority::Terminate(kill)) = rig.next_request(WAIT) else {
        panic!("no kill after the undeliverable request");
    };
    assert_eq!(kill.subject, hog);
    assert!(
        asked.elapsed() >= Duration::from_millis(150),
        "{:?}",
        asked.elapsed()
    );
    let lines = rig.lines();
    let at = |want: &str| lines.iter().position(|l| l.starts_with(want));
    let requested = at("oomd: reclaim requested app=hog").expect("requested");
    let missed = at("oomd: reclaim missed app=hog bytes=1500").expect("missed");
    let decided = at("oomd: kill decided app=hog bytes=1500 reason=soft-grace").expect("decided");
    assert!(requested < missed && missed < decided, "{lines:#?}");
}

/// Whether this kernel can refuse passed descriptors (`SO_PASSRIGHTS`, Linux 6.16).
fn kernel_refuses_descriptors() -> bool {
    let (probe, _peer) = oomd_proto::seqpacket_pair().expect("socketpair");
    memstat::publish::refuse_descriptors(std::os::fd::AsFd::as_fd(&probe)).expect("setsockopt")
}

/// Whether a send failed because the receiving socket refuses descriptors.
fn refused(sent: Result<(), oomd_proto::WireError>) -> bool {
    matches!(sent, Err(oomd_proto::WireError::Io(e)) if e.raw_os_error() == Some(1 /* EPERM */))
}

#[test]
fn a_descriptor_passed_on_a_memstat_channel_or_the_control_socket_is_refused() {
    // A descriptor oomd does not take is released in oomd's thread when the message that
    // carries it is read, and its release can block (a TCP socket with unsent data and
    // SO_LINGER waits out its linger time there): one packet would stall the watchdog.
    if !kernel_refuses_descriptors() {
        println!("skipped: this kernel has no SO_PASSRIGHTS (Linux 6.16)");
        return;
    }
    use std::os::fd::AsFd;
    let mut rig = Rig::new("descriptors", policy());
    let hog = rig.start("hog", false);
    let (passed, _other) = oomd_proto::seqpacket_pair().expect("socketpair");
    // A service, on its memstat channel.
    let sent = oomd_proto::send(rig.channel(hog), b"frame", &[passed.as_fd()]);
    assert!(refused(sent), "the channel took a descriptor");
    // Anyone local, on the control socket, before oomd accepted the connection: refused by
    // the listener's setting, which the connection inherits.
    let client = oomd_proto::connect(&rig.dir.join("oomd.sock")).expect("connect");
    let sent = oomd_proto::send(client.as_fd(), b"request", &[passed.as_fd()]);
    assert!(refused(sent), "the control socket took a descriptor");
    // Without one, both go on as before.
    rig.publish(hog, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("the frame after the refused packet decided nothing");
    };
    assert_eq!(request.subject, hog);
}

#[test]
fn a_service_restarted_within_a_tick_keeps_its_budget_and_its_newest_frame_still_counts() {
    // The core keeps a subject's frame count for the tick across a restart (a restart loop
    // buys no fresh budget). The new channel is read from that count: its frames past the
    // budget wait for the tick and the newest counts there. Read from zero, they were fed
    // over budget, rejected, and the frame over hard below was never decided.
    let slow = Policy {
        sample_period_ms: 1_000,
        ..policy()
    };
    let budget = slow.frame_budget_per_tick;
    let mut rig = Rig::new("restart-budget", slow);
    let hog = rig.start("hog", false);
    for _ in 0..budget {
        rig.publish(hog, 100, None);
    }
    rig.pump_for(Duration::from_millis(10));
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });
    assert_eq!(rig.start("hog", false), hog);
    rig.publish(hog, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(Duration::from_millis(2_500))
    else {
        panic!("the restarted service's frame over hard was never decided");
    };
    assert_eq!(request.subject, hog);
    assert!(
        !rig.lines()
            .iter()
            .any(|l| l.starts_with("oomd: frame rejected (over-budget")),
        "a frame of the restarted service was fed over budget: {:?}",
        rig.lines()
    );
}
