//! The control socket: spawn, list, subscribe, and termination that is always denied.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{alive_in_group, request, wait_for_tree, Harness, PATIENCE};
use memstat::SubjectId;
use oomd::{RefusalReason, TerminationMode};
use oomd_proto::{ExecdError, ExecdReply, ExecdRequest, ExitStatus, ServiceInfo, TerminateOutcome};

const MANIFEST: &str = r#"
[[service]]
name = "family"
argv = ["/bin/sh", "-c", "sleep 30 & sleep 30 & wait"]
start = false

[[service]]
name = "vital"
argv = ["sleep", "30"]
critical = true
start = false

[[service]]
name = "brief"
argv = ["/bin/sh", "-c", "exit 3"]
start = false
"#;

fn name(s: &str) -> oomd_proto::Name {
    oomd_proto::name(s).unwrap()
}

fn spawn(client: &std::os::fd::OwnedFd, service: &str) -> i32 {
    match request(
        client,
        &ExecdRequest::Spawn {
            name: name(service),
        },
    )
    .as_slice()
    {
        [ExecdReply::Spawned { subject, pid }] => {
            assert_eq!(*subject, SubjectId::from_name(service));
            *pid
        }
        other => panic!("spawn {service}: {other:?}"),
    }
}

#[test]
fn a_spawned_service_is_listed_with_its_pid() {
    let h = Harness::start(MANIFEST, false);
    let client = h.client();
    let pid = spawn(&client, "family");
    wait_for_tree(pid, 3); // sh and its two sleeps, under the shim

    let listed = request(&client, &ExecdRequest::List);
    let info = |n: &str, critical, pid| {
        ExecdReply::Service(ServiceInfo {
            subject: SubjectId::from_name(n),
            name: name(n),
            critical,
            pid,
        })
    };
    assert_eq!(
        listed,
        vec![
            info("family", false, Some(pid)),
            info("vital", true, None),
            info("brief", false, None),
            ExecdReply::End,
        ]
    );
    assert!(h.log.contains(&format!("execd: started family pid={pid}")));
}

#[test]
fn spawn_refuses_unknown_and_running_services() {
    let h = Harness::start(MANIFEST, false);
    let client = h.client();
    spawn(&client, "vital");
    let again = request(
        &client,
        &ExecdRequest::Spawn {
            name: name("vital"),
        },
    );
    assert_eq!(again, vec![ExecdReply::Error(ExecdError::AlreadyRunning)]);
    let unknown = request(
        &client,
        &ExecdRequest::Spawn {
            name: name("ghost"),
        },
    );
    assert_eq!(unknown, vec![ExecdReply::Error(ExecdError::UnknownService)]);
}

#[test]
fn a_program_that_cannot_be_executed_is_a_spawn_failure() {
    let h = Harness::start(
        r#"
        [[service]]
        name = "missing"
        argv = ["/nonexistent/program"]
        start = false
        "#,
        false,
    );
    let client = h.client();
    let reply = request(
        &client,
        &ExecdRequest::Spawn {
            name: name("missing"),
        },
    );
    assert_eq!(reply, vec![ExecdReply::Error(ExecdError::SpawnFailed(2))]); // ENOENT
    assert!(h.log.contains("execd: spawn missing failed"));
}

#[test]
fn termination_over_the_control_socket_is_denied_and_nothing_is_signalled() {
    let h = Harness::start(MANIFEST, false);
    let client = h.client();
    let family = spawn(&client, "family");
    let vital = spawn(&client, "vital");
    let mut members = wait_for_tree(family, 3);
    members.push(family); // and the shim itself

    for mode in [TerminationMode::Graceful, TerminationMode::Forced] {
        let denied = request(
            &client,
            &ExecdRequest::Terminate {
                subject: SubjectId::from_name("family"),
                mode,
            },
        );
        assert_eq!(
            denied,
            vec![ExecdReply::Terminate(TerminateOutcome::Denied(
                RefusalReason::NotPermitted
            ))]
        );
        let critical = request(
            &client,
            &ExecdRequest::Terminate {
                subject: SubjectId::from_name("vital"),
                mode,
            },
        );
        assert_eq!(
            critical,
            vec![ExecdReply::Terminate(TerminateOutcome::Denied(
                RefusalReason::Critical
            ))]
        );
    }

    // Still running: execd still lists them, and every process is alive in its group.
    let listed = request(&client, &ExecdRequest::List);
    assert!(listed.iter().any(
        |r| matches!(r, ExecdReply::Service(s) if s.name == "family" && s.pid == Some(family))
    ));
    assert!(listed
        .iter()
        .any(|r| matches!(r, ExecdReply::Service(s) if s.name == "vital" && s.pid == Some(vital))));
    for pid in members {
        assert!(alive_in_group(pid, family), "{pid} of family was ended");
    }
    assert!(alive_in_group(vital, vital));
    assert!(wait_for_tree(vital, 1)
        .iter()
        .all(|&p| alive_in_group(p, vital)));
    assert!(h
        .log
        .contains("execd: terminate family mode=graceful denied (not-permitted) by=control pid="));
    assert!(h
        .log
        .contains("execd: terminate vital mode=forced denied (critical) by=control pid="));
}

#[test]
fn a_subscriber_receives_exited_for_a_service_that_exits_by_itself() {
    let h = Harness::start(MANIFEST, false);
    let client = h.client();
    common::send(&client, &ExecdRequest::Subscribe);
    spawn(&client, "brief");
    let (exited, _) = common::recv::<ExecdReply>(&client, PATIENCE).expect("Exited in time");
    assert_eq!(
        exited,
        ExecdReply::Exited {
            subject: SubjectId::from_name("brief"),
            name: name("brief"),
            status: ExitStatus::Code(3),
        }
    );
    assert!(h.log.contains("execd: brief exited (exit 3)"));
}

#[test]
fn when_the_table_is_full_the_longest_idle_connection_gives_way() {
    let h = Harness::start(MANIFEST, false);
    let clients: Vec<_> = (0..execd::bounds::MAX_CLIENTS)
        .map(|_| {
            let c = h.client();
            // A round trip proves execd accepted it.
            assert_eq!(
                request(&c, &ExecdRequest::List).last(),
                Some(&ExecdReply::End)
            );
            c
        })
        .collect();
    // The table is full; the newcomer is served...
    let extra = h.client();
    assert_eq!(
        request(&extra, &ExecdRequest::List).last(),
        Some(&ExecdReply::End)
    );
    // ... and the longest idle one, the first, was told why it was closed.
    let (notice, _) =
        common::recv::<ExecdReply>(&clients[0], PATIENCE).expect("an eviction notice");
    assert_eq!(notice, ExecdReply::Error(ExecdError::Evicted));
    assert!(h.log.contains("execd: control: closed 1 idle connections"));
    // The others still work.
    assert_eq!(
        request(&clients[1], &ExecdRequest::List).last(),
        Some(&ExecdReply::End)
    );
}

#[test]
fn a_table_full_of_subscribers_that_may_not_be_displaced_answers_busy() {
    // Privileged subscribers (this test runs as execd's own user) are never displaced: with
    // every slot one, a newcomer is told Busy instead of getting a bare reset.
    let h = Harness::start(MANIFEST, false);
    let _subscribers: Vec<_> = (0..execd::bounds::MAX_CLIENTS)
        .map(|_| {
            let c = h.client();
            common::send(&c, &ExecdRequest::Subscribe);
            assert_eq!(
                request(&c, &ExecdRequest::List).last(),
                Some(&ExecdReply::End)
            );
            c
        })
        .collect();
    let extra = h.client();
    let (reply, _) = common::recv::<ExecdReply>(&extra, PATIENCE).expect("a busy reply");
    assert_eq!(reply, ExecdReply::Error(ExecdError::Busy));
    assert!(h
        .log
        .contains("execd: control: refused 1 connections (busy"));
}

#[test]
fn a_bad_request_gets_an_error_reply() {
    let h = Harness::start(MANIFEST, false);
    let client = h.client();
    oomd_proto::send(std::os::fd::AsFd::as_fd(&client), b"EC\x01\xff", &[]).unwrap();
    let (reply, _) = common::recv::<ExecdReply>(&client, PATIENCE).expect("a reply");
    assert_eq!(reply, ExecdReply::Error(ExecdError::BadRequest));
}

#[test]
fn a_request_of_another_protocol_is_told_this_is_not_its_socket() {
    // oomctl pointed at execd's socket: its Status request is not read as a Spawn.
    let h = Harness::start(MANIFEST, false);
    let client = h.client();
    common::send(&client, &oomd_proto::ControlRequest::Status { from: 0 });
    let mut receiver = oomd_proto::Receiver::new();
    assert!(common::readable(&client, PATIENCE));
    let got = receiver.recv_msg::<oomd_proto::ControlReply>(std::os::fd::AsFd::as_fd(&client));
    assert!(
        matches!(
            got,
            Err(oomd_proto::WireError::Peer(
                oomd_proto::PeerFault::WrongProtocol {
                    expected: oomd_proto::Protocol::OomdControl,
                    found: Some(oomd_proto::Protocol::ExecdControl),
                }
            ))
        ),
        "{got:?}"
    );
    assert!(h
        .log
        .contains("speaks oomd's control protocol: not an execd socket for it"));
    let listed = request(&h.client(), &ExecdRequest::List);
    assert!(
        listed
            .iter()
            .all(|r| !matches!(r, ExecdReply::Service(info) if info.pid.is_some())),
        "nothing was spawned: {listed:?}"
    );
}

#[test]
fn spawns_and_subscriptions_get_through_while_100_idle_connections_are_held() {
    let h = Harness::start(MANIFEST, false);
    let subscriber = h.client();
    common::send(&subscriber, &ExecdRequest::Subscribe);
    assert_eq!(
        request(&subscriber, &ExecdRequest::List).last(),
        Some(&ExecdReply::End)
    );
    let held: Vec<_> = (0..100).map(|_| h.client()).collect();
    // A newcomer is served, the subscription survives, and the spawned service's exit reaches
    // the subscriber.
    let spawner = h.client();
    spawn(&spawner, "brief");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (reply, _) =
            common::recv::<ExecdReply>(&subscriber, PATIENCE).expect("the subscription lives");
        if matches!(reply, ExecdReply::Exited { subject, .. } if subject == SubjectId::from_name("brief"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no exit pushed");
    }
    assert!(h.log.contains("idle connections"));
    drop(held);
}
