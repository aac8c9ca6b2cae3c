//! A restart of the oomd service forgets nothing: in-process, with real sockets, a real
//! timer and the durable audit log; the test plays execd, which announces on the new channel
//! what runs, what it is terminating, and the exits oomd did not acknowledge.

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::{policy, Rig};
use oomd::{Answer, Policy, TerminationMode};
use oomd_proto::{ExitStatus, FromAuthority, ToAuthority};
use oomd_service::LogFormat;

const WAIT: Duration = Duration::from_secs(5);

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// Every message the service sent to execd during `d`.
fn messages_for(rig: &mut Rig, d: Duration) -> Vec<ToAuthority> {
    oomd_proto::set_nonblocking(&rig.execd).expect("nonblocking");
    let mut out = Vec::new();
    let end = Instant::now() + d;
    while Instant::now() < end {
        rig.step();
        while let Ok((msg, _)) = rig.rx.recv_msg::<ToAuthority>(rig.execd.as_fd()) {
            out.push(msg);
        }
    }
    out
}

#[test]
fn a_kill_in_flight_at_a_crash_is_confirmed_exactly_once_after_the_restart() {
    let mut rig = Rig::recording("restart-inflight", policy(), LogFormat::None);
    let hog = rig.start("hog", false);
    rig.publish(hog, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    // An event that is not audited (a rejected frame) is the old run's last: its number must
    // not be issued again either.
    rig.send_raw(hog, b"junk");
    rig.pump_for(Duration::from_millis(20));
    let before = rig.lines();
    assert!(
        before.last().is_some_and(|l| l.contains("frame rejected")),
        "{before:#?}"
    );
    let next_seq_before = before.len() as u64;

    // oomd dies after execd accepted the request, before the exit.
    rig.crash_and_restart();
    rig.announce("hog");
    rig.tell(&FromAuthority::Terminating {
        subject: hog,
        ticket: request.ticket,
        mode: TerminationMode::Graceful,
        accepted: true,
        bytes: request.bytes,
    });
    let lines = rig.lines();
    assert_eq!(
        count(
            &lines,
            &format!(
                "oomd: kill adopted app=hog ticket={} mode=graceful (acknowledged)",
                request.ticket.0
            )
        ),
        1,
        "{lines:#?}"
    );
    assert_eq!(
        count(&lines, &format!("next_ticket={}", request.ticket.0 + 1)),
        1,
        "tickets never repeat: {lines:#?}"
    );
    // Still over its limit, hog is not requested again: the kill is under way.
    rig.publish(hog, 9_000, None);
    let more = messages_for(&mut rig, Duration::from_millis(100));
    assert!(
        !more.iter().any(|m| matches!(m, ToAuthority::Terminate(_))),
        "{more:?}"
    );
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });
    let lines = rig.lines();
    assert_eq!(
        count(&lines, "oomd: kill app=hog bytes=5000"),
        1,
        "{lines:#?}"
    );
    // Event numbers go on from the previous run's.
    let events = rig.control(&oomd_proto::ControlRequest::Events {
        since: 0,
        limit: 64,
    });
    let first_new = events.iter().find_map(|r| match r {
        oomd_proto::ControlReply::Event(e) => Some(e.event.seq),
        _ => None,
    });
    assert_eq!(first_new, Some(next_seq_before), "numbers go on exactly");
    // execd is told the exit was taken, after it was written down.
    let acks = messages_for(&mut rig, Duration::from_millis(50));
    assert!(
        acks.contains(&ToAuthority::ExitSeen { subject: hog }),
        "{acks:?}"
    );
}

#[test]
fn a_kill_confirmed_before_the_crash_is_not_confirmed_again() {
    let mut rig = Rig::recording("restart-confirmed", policy(), LogFormat::None);
    let hog = rig.start("hog", false);
    rig.publish(hog, 5_000, None);
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
    assert_eq!(count(&rig.lines(), "oomd: kill app=hog bytes=5000"), 1);

    // oomd dies before execd read its acknowledgement: execd tells the new one again.
    rig.crash_and_restart();
    rig.announce("hog");
    rig.tell(&FromAuthority::Terminating {
        subject: hog,
        ticket: request.ticket,
        mode: TerminationMode::Graceful,
        accepted: true,
        bytes: request.bytes,
    });
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });
    let lines = rig.lines();
    assert_eq!(count(&lines, "oomd: kill app=hog"), 0, "{lines:#?}");
    assert_eq!(count(&lines, "oomd: kill adopted"), 0, "{lines:#?}");
    let acks = messages_for(&mut rig, Duration::from_millis(50));
    assert!(acks.contains(&ToAuthority::ExitSeen { subject: hog }));
}

#[test]
fn a_restarted_oomd_adopting_a_kill_in_flight_brakes_its_service_again() {
    // Judged on its report alone, even while silent (a silent service is otherwise braked at
    // hard from its start, and the new oomd's brake would not show the adoption): braked only
    // because its kill is decided.
    let reports_only = Policy {
        enforce_kernel_when_silent: false,
        ..policy()
    };
    let mut rig = Rig::recording("restart-brake", reports_only, LogFormat::None);
    let hog = rig.start_in_cgroup("hog", false);
    let high = |rig: &Rig| {
        std::fs::read_to_string(rig.cgroup("hog").join("memory.high")).expect("memory.high")
    };
    rig.publish(hog, 5_000, None);
    let Some(ToAuthority::Terminate(request)) = rig.next_request(WAIT) else {
        panic!("no termination request");
    };
    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Accepted,
    });
    assert_eq!(high(&rig), "2000\n");

    // oomd dies with the kill in flight; the new one finds the group with no brake (the
    // stand-in is made again) and learns from execd that the termination goes on.
    rig.crash_and_restart();
    rig.start_in_cgroup("hog", false);
    assert_eq!(
        high(&rig),
        "max\n",
        "judged on its report, nothing decided yet"
    );
    rig.tell(&FromAuthority::Terminating {
        subject: hog,
        ticket: request.ticket,
        mode: TerminationMode::Graceful,
        accepted: true,
        bytes: request.bytes,
    });
    rig.pump_for(Duration::from_millis(20));
    let lines = rig.lines();
    assert_eq!(count(&lines, "oomd: kill adopted"), 1, "{lines:#?}");
    assert_eq!(high(&rig), "2000\n", "the adopted kill brakes it again");
    // Its exit ends the kill; nothing is written to the group after it.
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });
    rig.pump_for(Duration::from_millis(20));
    assert_eq!(count(&rig.lines(), "oomd: kill app=hog bytes=5000"), 1);
}

#[test]
fn the_kill_budget_counts_the_kills_before_the_crash() {
    let budget = Policy {
        kill_budget: 1,
        kill_window_ticks: 10_000,
        ..policy()
    };
    let mut rig = Rig::recording("restart-budget", budget, LogFormat::None);
    let first = rig.start("first", false);
    rig.publish(first, 5_000, None);
    assert!(matches!(
        rig.next_request(WAIT),
        Some(ToAuthority::Terminate(_))
    ));
    rig.crash_and_restart();
    let second = rig.announce("second");
    rig.publish(second, 5_000, None);
    assert_eq!(rig.next_request(Duration::from_millis(300)), None);
    let lines = rig.lines();
    assert_eq!(
        count(&lines, "oomd: kill throttled app=second"),
        1,
        "{lines:#?}"
    );
}

#[test]
fn the_service_proves_its_loop_is_alive_at_least_every_100_ms() {
    let mut rig = Rig::new("heartbeat", policy());
    let start = Instant::now();
    let messages = messages_for(&mut rig, Duration::from_millis(550));
    let heartbeats = messages
        .iter()
        .filter(|m| matches!(m, ToAuthority::Heartbeat { .. }))
        .count();
    let elapsed = start.elapsed().as_millis() as usize;
    assert!(
        heartbeats + 1 >= elapsed / 100,
        "{heartbeats} heartbeats in {elapsed} ms"
    );
}

#[test]
fn a_restart_keeps_the_previous_runs_recording_and_it_replays_to_that_run() {
    let mut rig = Rig::recording("restart-recording", policy(), LogFormat::None);
    let hog = rig.start("hog", false);
    rig.publish(hog, 1_500, None); // over soft: an event
    rig.pump_for(Duration::from_millis(30)); // ticks flush the recording
    let live: Vec<oomd::Event> = rig
        .control(&oomd_proto::ControlRequest::Events {
            since: 0,
            limit: 256,
        })
        .into_iter()
        .filter_map(|r| match r {
            oomd_proto::ControlReply::Event(e) => Some(e.event),
            _ => None,
        })
        .collect();
    assert!(live.len() >= 2, "{live:?}");
    rig.crash_and_restart();
    rig.announce("hog");
    rig.pump_for(Duration::from_millis(30));

    let previous = rig.dir.join("inputs.jsonl.1");
    let file = std::fs::File::open(&previous).expect("the first run's recording is kept");
    let log =
        oomd_host::record::InputLog::read_from(std::io::BufReader::new(file)).expect("a valid log");
    let replayed = oomd_host::record::replay(&log).expect("replays");
    assert_eq!(
        replayed.events[..live.len()],
        live[..],
        "the replay diverged"
    );
    // And the new run records afresh, from its own start: a resumed run, whose events are
    // numbered on from the first run's, replays to the new run's events.
    let current = std::fs::read_to_string(rig.dir.join("inputs.jsonl")).expect("new recording");
    assert!(current.contains("\"Resume\""), "{current}");
    let log = oomd_host::record::InputLog::read_from(current.as_bytes()).expect("a valid log");
    let replayed = oomd_host::record::replay(&log).expect("a resumed run replays");
    let since = live.last().map_or(0, |e| e.seq + 1);
    let live_after: Vec<oomd::Event> = rig
        .control(&oomd_proto::ControlRequest::Events { since, limit: 256 })
        .into_iter()
        .filter_map(|r| match r {
            oomd_proto::ControlReply::Event(e) => Some(e.event),
            _ => None,
        })
        .collect();
    assert!(!live_after.is_empty());
    assert_eq!(replayed.events.first().map(|e| e.seq), Some(since));
    assert_eq!(replayed.events[..live_after.len()], live_after[..]);
}
