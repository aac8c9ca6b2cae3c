//! The authority channel, with the test playing the oomd service on a ready channel.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::os::fd::AsFd;
use std::time::Duration;

use common::{
    alive_in_group, assert_all_gone, pin, still_running, tree_of, wait_for_tree, wait_until,
    Harness, PATIENCE,
};
use memstat::SubjectId;
use oomd::{Answer, RefusalReason, SubjectClass, TerminationMode, TerminationRequest, Ticket};
use oomd_proto::{ExitStatus, FromAuthority, ToAuthority};

/// Waits for the `Started` of `name`; returns its pid (the root of its tree: on a host, its
/// shim) and its memstat channel (oomd's end).
fn started(h: &Harness, name: &str) -> (i32, Option<std::os::fd::OwnedFd>) {
    let (msg, [fd, _]) = h.recv_from_execd_until(
        |m| matches!(m, FromAuthority::Started { name: n, .. } if n == name),
    );
    let FromAuthority::Started {
        subject,
        pid,
        cgroup,
        ..
    } = msg
    else {
        unreachable!()
    };
    assert_eq!(subject, SubjectId::from_name(name));
    assert_eq!(cgroup, None, "no cgroups on a host");
    (pid, fd)
}

fn terminate(h: &Harness, ticket: u32, name: &str, mode: TerminationMode) -> Answer {
    h.send_to_execd(&ToAuthority::Terminate(TerminationRequest {
        ticket: Ticket(ticket),
        subject: SubjectId::from_name(name),
        mode,
        audit_seq: u64::from(ticket) * 10,
        bytes: 1 << 20,
    }));
    match h
        .recv_from_execd_until(|m| matches!(m, FromAuthority::Answer { .. }))
        .0
    {
        FromAuthority::Answer { ticket: t, answer } => {
            assert_eq!(t, Ticket(ticket));
            answer
        }
        _ => unreachable!(),
    }
}

fn exited(h: &Harness, name: &str) -> ExitStatus {
    let subject = SubjectId::from_name(name);
    match h
        .recv_from_execd_until(
            |m| matches!(m, FromAuthority::Exited { subject: s, .. } if *s == subject),
        )
        .0
    {
        FromAuthority::Exited { status, .. } => status,
        _ => unreachable!(),
    }
}

#[test]
fn started_carries_the_memstat_channel_the_service_writes_to() {
    let h = Harness::start(
        r#"
        [[service]]
        name = "talker"
        argv = ["bash", "-c", "printf x >&$OOMD_MEMSTAT_FD; exec sleep 30"]
        class = "background"
        "#,
        true,
    );
    let (msg, [fd, none]) = h.recv_from_execd();
    let FromAuthority::Started {
        subject,
        name,
        class,
        critical,
        pid,
        cgroup,
    } = msg
    else {
        panic!("expected Started, got {msg:?}")
    };
    assert_eq!(
        (subject, name.as_str(), class, critical, cgroup),
        (
            SubjectId::from_name("talker"),
            "talker",
            SubjectClass::Background,
            false,
            None
        )
    );
    assert!(pid > 1);
    assert!(none.is_none());
    let channel = fd.expect("the memstat channel comes with Started");
    assert!(
        common::readable(&channel, PATIENCE),
        "no packet from the service"
    );
    let mut receiver = oomd_proto::Receiver::new();
    let got = receiver.recv(channel.as_fd()).expect("a packet");
    assert_eq!(receiver.bytes(&got), b"x");
}

#[test]
fn a_service_without_memstat_gets_no_channel() {
    let h = Harness::start(
        r#"
        [[service]]
        name = "quiet"
        argv = ["/bin/sh", "-c", "test -z \"$OOMD_MEMSTAT_FD\" && exec sleep 30"]
        memstat = false
        "#,
        true,
    );
    let (pid, fd) = started(&h, "quiet");
    assert!(fd.is_none());
    // `test` succeeded (no variable), so sh became sleep rather than exiting.
    let [main] = wait_for_tree(pid, 1)[..] else {
        panic!("quiet is not one process: {:?}", tree_of(pid))
    };
    wait_until("quiet execs sleep", || {
        std::fs::read_to_string(format!("/proc/{main}/comm")).is_ok_and(|c| c == "sleep\n")
    });
}

#[test]
fn graceful_termination_ends_the_whole_group_before_exited() {
    let h = Harness::start(
        r#"
        [[service]]
        name = "family"
        argv = ["/bin/sh", "-c", "sleep 30 & sleep 30 & wait"]
        "#,
        true,
    );
    let (pid, _) = started(&h, "family");
    let members = wait_for_tree(pid, 3); // sh and its two sleeps
    let pinned = pin(&members);
    assert_eq!(
        terminate(&h, 1, "family", TerminationMode::Graceful),
        Answer::Accepted
    );
    assert_eq!(exited(&h, "family"), ExitStatus::Signal(15));
    assert_eq!(still_running(&pinned), Vec::<i32>::new());
    assert_all_gone(&members, pid);
    assert!(h.log.contains(
        "execd: terminate family mode=graceful accepted by=authority ticket=1 audit_seq=10"
    ));
    assert!(h.log.contains("execd: family exited (signal 15)"));
}

#[test]
fn children_that_outlive_the_main_process_delay_exited() {
    // The main process exits at once; its child lives on (reparented to the service's shim,
    // the subreaper) until a forced termination ends it.
    let h = Harness::start(
        r#"
        [[service]]
        name = "leaver"
        argv = ["/bin/sh", "-c", "sleep 30 & exit 7"]
        "#,
        true,
    );
    let (pid, _) = started(&h, "leaver");
    let deadline = std::time::Instant::now() + PATIENCE;
    let child = loop {
        // Only the orphaned sleep is left under the shim, adopted by it, still in the group.
        let live = tree_of(pid);
        if let [child] = live[..] {
            let adopted = proctree::read_stat(child).is_ok_and(|s| s.ppid == pid);
            let is_sleep = std::fs::read_to_string(format!("/proc/{child}/comm"))
                .is_ok_and(|c| c == "sleep\n");
            if adopted && is_sleep && alive_in_group(child, pid) {
                break child;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tree under {pid}: {live:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(alive_in_group(pid, pid), "the shim waits for the orphan");
    // The main process is gone, the service is not: no Exited yet.
    assert!(
        common::recv::<FromAuthority>(h.oomd.as_ref().unwrap(), Duration::from_millis(200))
            .is_none()
    );
    assert_eq!(
        terminate(&h, 2, "leaver", TerminationMode::Forced),
        Answer::Accepted
    );
    assert_eq!(exited(&h, "leaver"), ExitStatus::Code(7));
    assert_all_gone(&[pid, child], pid);
    assert!(h.log.contains("execd: leaver exited (exit 7)"));
}

#[test]
fn a_service_ignoring_sigterm_survives_graceful_and_forced_ends_it() {
    let h = Harness::start(
        r#"
        [[service]]
        name = "stubborn"
        argv = ["/bin/sh", "-c", "trap '' TERM; sleep 30"]
        "#,
        true,
    );
    let (pid, _) = started(&h, "stubborn");
    // sleep exists only once the trap is set.
    let members = wait_for_tree(pid, 2);
    assert_eq!(
        terminate(&h, 1, "stubborn", TerminationMode::Graceful),
        Answer::Accepted
    );
    // No Exited within a generous moment, and every process is still alive.
    let quiet = common::recv::<FromAuthority>(h.oomd.as_ref().unwrap(), Duration::from_millis(300));
    assert!(quiet.is_none(), "unexpected {quiet:?}");
    for &m in &members {
        assert!(alive_in_group(m, pid), "{m} ended by SIGTERM it ignores");
    }
    assert_eq!(
        terminate(&h, 2, "stubborn", TerminationMode::Forced),
        Answer::Accepted
    );
    assert_eq!(exited(&h, "stubborn"), ExitStatus::Signal(9));
    assert_all_gone(&members, pid);
}

/// Waits until the tree under `root` has a live `sleep` that leads a session of its own (its
/// `setsid` is done); returns it, and every process of the service: `root` and its tree.
fn escaped_sleep(root: i32) -> (i32, Vec<i32>) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let live = tree_of(root);
        let escaped = live.iter().copied().find(|&p| {
            let own_session = proctree::read_stat(p).is_ok_and(|s| s.session == p);
            let is_sleep =
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n");
            own_session && is_sleep
        });
        if let Some(escaped) = escaped {
            return (escaped, std::iter::once(root).chain(live).collect());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no escaped sleep under {root}: {live:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts that `pid` left the service's process group and session (the group is the
/// root's; so is the session the root is in).
fn assert_escaped(pid: i32, root: i32) {
    let stat = proctree::read_stat(pid).unwrap();
    let service = proctree::read_stat(root).unwrap();
    assert_ne!(stat.pgrp, root, "{pid} is still in the service's group");
    assert_ne!(
        stat.session, service.session,
        "{pid} is still in its session"
    );
}

#[test]
fn a_child_in_a_session_of_its_own_is_ended_before_exited() {
    let h = Harness::start(
        r#"
        [[service]]
        name = "setsid"
        argv = ["/bin/sh", "-c", "setsid sleep 30 & wait"]
        "#,
        true,
    );
    let (pid, _) = started(&h, "setsid");
    let (escaped, members) = escaped_sleep(pid);
    assert_escaped(escaped, pid);
    let pinned = pin(&members);
    assert_eq!(
        terminate(&h, 1, "setsid", TerminationMode::Graceful),
        Answer::Accepted
    );
    let status = exited(&h, "setsid");
    // Honest only if every process of the service was gone when execd said so.
    assert_eq!(
        still_running(&pinned),
        Vec::<i32>::new(),
        "Exited while processes of the service still ran"
    );
    assert_eq!(status, ExitStatus::Signal(15));
}

#[test]
fn a_double_forked_child_in_a_session_of_its_own_is_ended_before_exited() {
    // The subshell starts the escaping sleep and exits: it is orphaned, and adopted by the
    // service's shim.
    let h = Harness::start(
        r#"
        [[service]]
        name = "daemon"
        argv = ["/bin/sh", "-c", "(setsid sleep 30 &); exec sleep 30"]
        "#,
        true,
    );
    let (pid, _) = started(&h, "daemon");
    let (escaped, members) = escaped_sleep(pid);
    wait_until("the orphan is adopted by the shim", || {
        proctree::read_stat(escaped).is_ok_and(|s| s.ppid == pid)
    });
    assert_escaped(escaped, pid);
    let pinned = pin(&members);
    assert_eq!(
        terminate(&h, 1, "daemon", TerminationMode::Forced),
        Answer::Accepted
    );
    let status = exited(&h, "daemon");
    assert_eq!(
        still_running(&pinned),
        Vec::<i32>::new(),
        "Exited while processes of the service still ran"
    );
    assert_eq!(status, ExitStatus::Signal(9));
}

#[test]
fn a_service_that_signals_its_own_group_does_not_take_its_shim_down() {
    // The script waits until its background sleep leads its own session (field 6 of its
    // stat), then sends SIGHUP to its whole group: itself and the shim, not the sleep.
    let h = Harness::start(
        r#"
        [[service]]
        name = "hangup"
        argv = ["/bin/sh", "-c", "setsid sleep 30 & p=$!; until [ \"$(cut -d' ' -f6 /proc/$p/stat)\" = \"$p\" ]; do :; done; kill -HUP 0; wait"]
        "#,
        true,
    );
    let (pid, _) = started(&h, "hangup");
    let shim = pin(&[pid]);
    let (escaped, _) = escaped_sleep(pid);
    wait_until("the shell died of its SIGHUP", || tree_of(pid) == [escaped]);
    // The shim ignored it and still waits for the escaped sleep: no Exited can have been
    // sent (execd sends it only once the shim has exited), and none is queued.
    assert_eq!(still_running(&shim), [pid]);
    assert!(common::recv::<FromAuthority>(h.oomd.as_ref().unwrap(), Duration::ZERO).is_none());
    let pinned = pin(&[escaped]);
    assert_eq!(
        terminate(&h, 1, "hangup", TerminationMode::Forced),
        Answer::Accepted
    );
    assert_eq!(exited(&h, "hangup"), ExitStatus::Signal(1));
    assert_eq!(still_running(&pinned), Vec::<i32>::new());
}

/// Live processes whose command line holds `needle` (zombies are not counted).
fn running_with(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    let _ = proctree::scan(|s| {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.pid)).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) && !s.has_exited() {
            pids.push(s.pid);
        }
        std::ops::ControlFlow::Continue(())
    });
    pids
}

#[test]
fn a_service_forking_escaped_children_while_it_is_killed_is_ended_entirely_before_exited() {
    // A storm of up to 300 children, each in a session of its own; the odd duration names
    // them (no other test sleeps 29.123 s).
    let h = Harness::start(
        r#"
        [[service]]
        name = "storm"
        argv = ["/bin/sh", "-c", "i=0; while [ $i -lt 300 ]; do setsid sleep 29.123 & i=$((i+1)); done; wait"]
        "#,
        true,
    );
    let (pid, _) = started(&h, "storm");
    wait_for_tree(pid, 20); // the storm is under way
    assert_eq!(
        terminate(&h, 1, "storm", TerminationMode::Forced),
        Answer::Accepted
    );
    let status = exited(&h, "storm");
    // At once, no waiting: nothing of the storm may still run.
    assert_eq!(
        running_with("29.123"),
        Vec::<i32>::new(),
        "survivors of the storm"
    );
    assert_eq!(status, ExitStatus::Signal(9));
}

/// The real uid of `pid`, from `/proc/<pid>/status`.
fn uid_of(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_service_under_another_uid_runs_as_it_and_cannot_kill_its_shim() {
    let h = Harness::start(
        r#"
        [[service]]
        name = "nobody"
        argv = ["/bin/sh", "-c", "kill -KILL $PPID 2>/dev/null; exec sleep 30"]
        uid = 65534
        "#,
        true,
    );
    let (pid, _) = started(&h, "nobody");
    let shim = pin(&[pid]);
    let [main] = wait_for_tree(pid, 1)[..] else {
        panic!("nobody is not one process: {:?}", tree_of(pid))
    };
    wait_until("the service tried its kill and exec'd sleep", || {
        std::fs::read_to_string(format!("/proc/{main}/comm")).is_ok_and(|c| c == "sleep\n")
    });
    assert_eq!(uid_of(main), 65534);
    assert_eq!(
        uid_of(pid),
        rustix::process::getuid().as_raw(),
        "the shim keeps execd's uid"
    );
    assert_eq!(still_running(&shim), [pid], "the service killed its shim");
    assert_eq!(
        terminate(&h, 1, "nobody", TerminationMode::Graceful),
        Answer::Accepted
    );
    assert_eq!(exited(&h, "nobody"), ExitStatus::Signal(15));
}

#[test]
fn a_critical_service_is_refused_and_keeps_running() {
    let h = Harness::start(
        r#"
        [[service]]
        name = "vital"
        argv = ["sleep", "30"]
        critical = true
        "#,
        true,
    );
    let (pid, _) = started(&h, "vital");
    for (ticket, mode) in [(1, TerminationMode::Graceful), (2, TerminationMode::Forced)] {
        assert_eq!(
            terminate(&h, ticket, "vital", mode),
            Answer::Refused(RefusalReason::Critical)
        );
    }
    assert!(alive_in_group(pid, pid));
    assert!(h
        .log
        .contains("execd: terminate vital mode=forced denied (critical) by=authority"));
}

#[test]
fn an_unknown_or_stopped_subject_is_refused() {
    let h = Harness::start(
        r#"
        [[service]]
        name = "idle"
        argv = ["sleep", "30"]
        start = false
        "#,
        true,
    );
    assert_eq!(
        terminate(&h, 1, "nobody", TerminationMode::Forced),
        Answer::Refused(RefusalReason::UnknownSubject)
    );
    assert_eq!(
        terminate(&h, 2, "idle", TerminationMode::Forced),
        Answer::Refused(RefusalReason::UnknownSubject)
    );
    let nobody = SubjectId::from_name("nobody");
    assert!(h.log.contains(&format!(
        "execd: terminate subject={nobody} mode=forced denied (unknown-subject)"
    )));
}

#[test]
fn the_watchdog_gets_the_channel_and_the_started_messages_that_waited_for_it() {
    // The watchdog is this test binary re-run as `relay_helper`: it relays its authority
    // channel to a socket the test listens on, descriptors included. It starts last, so the
    // services before it are announced on its channel, in manifest order, before itself.
    let relay_dir = tempfile::tempdir().unwrap();
    let relay_path = relay_dir.path().join("relay.sock");
    let relay = oomd_proto::listen(&relay_path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let manifest = format!(
        r#"
        [[service]]
        name = "first"
        argv = ["sleep", "30"]

        [[service]]
        name = "second"
        argv = ["sleep", "30"]
        memstat = false

        [[service]]
        name = "watchdog"
        role = "watchdog"
        argv = ["{exe}", "--exact", "relay_helper", "--test-threads", "1", "-q"]
        env = {{ {RELAY_ENV} = "{relay}" }}
        "#,
        exe = exe.display(),
        relay = relay_path.display(),
    );
    let h = Harness::start(&manifest, false);
    assert!(
        common::readable(&relay, PATIENCE),
        "the watchdog did not connect"
    );
    let oomd = oomd_proto::accept(&relay).unwrap();

    let mut announced = Vec::new();
    for _ in 0..3 {
        let (msg, [fd, _]) = common::recv::<FromAuthority>(&oomd, PATIENCE).expect("Started");
        match msg {
            FromAuthority::Started { name, critical, .. } => {
                announced.push((name.to_string(), critical, fd.is_some()));
            }
            other => panic!("expected Started, got {other:?}"),
        }
    }
    assert_eq!(
        announced,
        [
            ("first".to_owned(), false, true),
            ("second".to_owned(), false, false),
            ("watchdog".to_owned(), true, true),
        ]
    );

    let ask = |ticket: u32, name: &str| {
        common::send(
            &oomd,
            &ToAuthority::Terminate(TerminationRequest {
                ticket: Ticket(ticket),
                subject: SubjectId::from_name(name),
                mode: TerminationMode::Graceful,
                audit_seq: 0,
                bytes: 0,
            }),
        );
        common::recv::<FromAuthority>(&oomd, PATIENCE)
            .expect("an answer")
            .0
    };
    assert_eq!(
        ask(1, "watchdog"),
        FromAuthority::Answer {
            ticket: Ticket(1),
            answer: Answer::Refused(RefusalReason::Critical)
        }
    );
    assert_eq!(
        ask(2, "first"),
        FromAuthority::Answer {
            ticket: Ticket(2),
            answer: Answer::Accepted
        }
    );
    let (msg, _) = common::recv::<FromAuthority>(&oomd, PATIENCE).expect("Exited");
    assert_eq!(
        msg,
        FromAuthority::Exited {
            subject: SubjectId::from_name("first"),
            status: ExitStatus::Signal(15)
        }
    );
    drop(h);
}

const RELAY_ENV: &str = "EXECD_TEST_RELAY";

/// Not a test of its own: the watchdog program of the test above (a no-op when run by the
/// harness). Relays every packet, with its descriptors, between the authority channel it
/// inherited and the socket in `EXECD_TEST_RELAY`, until either side closes.
#[test]
fn relay_helper() {
    use rustix::event::{poll, PollFd, PollFlags};
    use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

    let Ok(path) = std::env::var(RELAY_ENV) else {
        return;
    };
    let raw: RawFd = std::env::var(oomd_proto::ENV_AUTHORITY_FD)
        .expect("execd sets OOMD_AUTHORITY_FD for the watchdog")
        .parse()
        .unwrap();
    // SAFETY: execd made this descriptor inheritable for exactly this process; nothing else
    // in this process owns it.
    let execd = unsafe { OwnedFd::from_raw_fd(raw) };
    let test = oomd_proto::connect(std::path::Path::new(&path)).unwrap();
    let mut receiver = oomd_proto::Receiver::new();
    loop {
        let mut fds = [
            PollFd::new(&execd, PollFlags::IN),
            PollFd::new(&test, PollFlags::IN),
        ];
        poll(&mut fds, None).unwrap();
        let ready = [!fds[0].revents().is_empty(), !fds[1].revents().is_empty()];
        for (from, to, is_ready) in [(&execd, &test, ready[0]), (&test, &execd, ready[1])] {
            if !is_ready {
                continue;
            }
            let Ok(got) = receiver.recv(from.as_fd()) else {
                return; // closed
            };
            let passed: Vec<BorrowedFd<'_>> = got.fds.iter().flatten().map(AsFd::as_fd).collect();
            if oomd_proto::send(to.as_fd(), receiver.bytes(&got), &passed).is_err() {
                return;
            }
        }
    }
}
