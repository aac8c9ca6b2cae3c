//! The protocol's messages round-trip, fit their bound, and travel with their descriptors.

use std::io::{Read, Write};
use std::os::fd::AsFd;

use memstat::SubjectId;
use oomd::{
    Answer, Event, EventKind, KillState, Limits, Policy, PolicyUpdate, RefusalReason, SubjectClass,
    TerminationMode, TerminationRequest, Tick, Ticket,
};
use oomd_proto::*;

fn long_name() -> Name {
    name(&"n".repeat(MAX_NAME_LEN)).expect("fits")
}

fn round_trip<T>(msg: &T)
where
    T: serde::Serialize + for<'a> serde::Deserialize<'a> + PartialEq + std::fmt::Debug + Message,
{
    let mut buf = [0; MAX_MESSAGE_LEN];
    let bytes = encode(msg, &mut buf).expect("fits in MAX_MESSAGE_LEN");
    assert_eq!(bytes[..2], T::PROTOCOL.magic());
    assert_eq!(bytes[2], VERSION);
    let back: T = decode(bytes).expect("decodes");
    assert_eq!(&back, msg);
}

#[test]
fn the_largest_messages_round_trip_within_the_bound() {
    let subject = SubjectId(u64::MAX);
    round_trip(&FromAuthority::Started {
        subject,
        name: long_name(),
        class: SubjectClass::Foreground,
        critical: true,
        pid: i32::MAX,
        cgroup: Some(long_name()),
    });
    round_trip(&FromAuthority::Answer {
        ticket: Ticket(u32::MAX),
        answer: Answer::Refused(RefusalReason::Critical),
    });
    round_trip(&FromAuthority::Exited {
        subject,
        status: ExitStatus::Signal(9),
    });
    round_trip(&ToAuthority::Terminate(TerminationRequest {
        ticket: Ticket(u32::MAX),
        subject,
        mode: TerminationMode::Forced,
        audit_seq: u64::MAX,
        bytes: u64::MAX,
    }));
    round_trip(&ExecdRequest::Spawn { name: long_name() });
    round_trip(&ExecdReply::Exited {
        subject,
        name: long_name(),
        status: ExitStatus::Code(-1),
    });
    round_trip(&ExecdReply::Service(ServiceInfo {
        subject,
        name: long_name(),
        critical: true,
        pid: Some(1),
    }));
    round_trip(&ControlRequest::SetPolicy(PolicyUpdate::SubjectLimits {
        subject,
        limits: Some(Limits {
            soft_bytes: u64::MAX,
            hard_bytes: u64::MAX,
            soft_grace_ticks: u64::MAX,
            exit_deadline_ticks: u64::MAX,
        }),
    }));
    round_trip(&ControlReply::Policy(Policy::default()));
    let line = Line::try_from("x".repeat(MAX_LINE_LEN).as_str()).expect("fits");
    round_trip(&ControlReply::Event(EventView {
        event: Event {
            seq: u64::MAX,
            tick: Tick(u64::MAX),
            kind: EventKind::UnderReport {
                subject,
                reported: u64::MAX,
                kernel: u64::MAX,
            },
        },
        line,
    }));
    // The largest kill report, with the longest name: it fits, and its line is its words.
    round_trip(&ControlReply::KillReport(oomd_proto::KillReportView {
        report: oomd_proto::KillReport {
            seq: u64::MAX,
            subject,
            reason: oomd::KillReason::SoftGrace,
            bytes: u64::MAX,
            peak: u64::MAX,
            hard: 0,
            crossing_to_request: oomd_proto::Span {
                ticks: u64::MAX,
                micros: u64::MAX,
            },
            request_to_exit: oomd_proto::Span {
                ticks: 0,
                micros: 1_234,
            },
            escalated: true,
        },
        app: oomd_proto::Name::try_from("h".repeat(oomd_proto::MAX_NAME_LEN).as_str())
            .expect("fits"),
    }));
    let view = oomd_proto::KillReportView {
        report: oomd_proto::KillReport {
            seq: 7,
            subject,
            reason: oomd::KillReason::HardLimit,
            bytes: 33_554_432,
            peak: 34_603_008,
            hard: 33_554_432,
            crossing_to_request: oomd_proto::Span {
                ticks: 0,
                micros: 412,
            },
            request_to_exit: oomd_proto::Span {
                ticks: 1,
                micros: 12_030,
            },
            escalated: false,
        },
        app: oomd_proto::name("hog").expect("short"),
    };
    assert_eq!(
        view.to_string(),
        "oomd: kill report app=hog reason=hard-limit bytes=33554432 peak=34603008 \
         hard=33554432 overshoot=1048576 cross_to_request=0t/0.412ms \
         request_to_exit=1t/12.030ms escalated=no"
    );
    let mut wd: oomd::Watchdog<4, 4> = oomd::Watchdog::new(Policy::default()).expect("valid");
    struct Nobody;
    impl oomd::Authority for Nobody {
        fn request_termination(&mut self, _: TerminationRequest) {}
        fn request_reclaim(&mut self, _: oomd::ReclaimRequest) {}
    }
    let reg = oomd::Registration {
        subject,
        class: SubjectClass::Background,
        critical: false,
        reports: true,
    };
    wd.handle(oomd::Input::Register(reg), &mut Nobody)
        .expect("registered");
    let mut status = wd.subject(subject).expect("registered");
    status.kill = KillState::Pending {
        ticket: Ticket(u32::MAX),
        mode: TerminationMode::Forced,
        acknowledged: true,
        escalated_from_acknowledged: true,
        deadline: Tick(u64::MAX),
        bytes: u64::MAX,
    };
    round_trip(&ControlReply::Subject(SubjectView {
        name: long_name(),
        status,
        frame_age_ticks: Some(u64::MAX),
    }));
    let mut counters = CountersView {
        rejected: [u64::MAX; oomd::Rejection::COUNT],
        ..CountersView::default()
    };
    counters.events_logged = u64::MAX;
    round_trip(&ControlReply::Counters(counters));
}

#[test]
fn names_past_the_bound_are_refused() {
    assert_eq!(
        name(&"n".repeat(MAX_NAME_LEN + 1)),
        Err(NameTooLong {
            len: MAX_NAME_LEN + 1
        })
    );
}

#[test]
fn other_versions_and_trailing_bytes_are_refused() {
    let mut buf = [0; MAX_MESSAGE_LEN];
    let bytes = encode(&ExecdRequest::List, &mut buf)
        .expect("fits")
        .to_vec();
    assert_eq!(&bytes[..3], b"EC\x01");
    let mut other = bytes.clone();
    other[2] = 2;
    assert!(matches!(
        decode::<ExecdRequest>(&other),
        Err(WireError::Peer(PeerFault::UnsupportedVersion(2)))
    ));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        decode::<ExecdRequest>(&trailing),
        Err(WireError::Peer(PeerFault::Malformed))
    ));
    assert!(matches!(
        decode::<ExecdRequest>(&[]),
        Err(WireError::Peer(PeerFault::Malformed))
    ));
    assert!(matches!(
        decode::<ExecdRequest>(b"EC\x01\xc8"),
        Err(WireError::Peer(PeerFault::Malformed))
    ));
}

#[test]
fn a_message_of_another_protocol_is_named_as_such() {
    let mut buf = [0; MAX_MESSAGE_LEN];
    // oomctl pointed at execd's socket: execd reads an oomd control request.
    let status = encode(&ControlRequest::Status { from: 0 }, &mut buf)
        .expect("fits")
        .to_vec();
    let e = decode::<ExecdRequest>(&status).expect_err("not an execd request");
    assert!(matches!(
        e,
        WireError::Peer(PeerFault::WrongProtocol {
            expected: Protocol::ExecdControl,
            found: Some(Protocol::OomdControl)
        })
    ));
    assert_eq!(
        e.to_string(),
        "not an execd socket: the peer speaks oomd's control protocol, not execd's control protocol"
    );
    // ... and its answer, read by oomctl.
    let answer = encode(&ExecdReply::Error(ExecdError::WrongProtocol), &mut buf)
        .expect("fits")
        .to_vec();
    assert!(matches!(
        decode::<ControlReply>(&answer),
        Err(WireError::Peer(PeerFault::WrongProtocol {
            expected: Protocol::OomdControl,
            found: Some(Protocol::ExecdControl)
        }))
    ));
    // Bytes of no protocol of ours (a memstat frame, the old headerless format).
    for junk in [&b"MS\x01\x00\x00\x00\x00"[..], b"\x01\x00", b"X"] {
        assert!(
            matches!(
                decode::<ControlRequest>(junk),
                Err(WireError::Peer(PeerFault::WrongProtocol {
                    found: None,
                    ..
                }))
            ),
            "{junk:?}"
        );
    }
    // The authority channel's messages carry their own magic too.
    let exited = FromAuthority::Exited {
        subject: SubjectId(1),
        status: ExitStatus::Code(0),
    };
    assert_eq!(&encode(&exited, &mut buf).expect("fits")[..2], b"OA");
}

#[test]
fn a_full_policy_document_fits_in_one_message() {
    let limits = Limits {
        soft_bytes: u64::MAX,
        hard_bytes: u64::MAX,
        soft_grace_ticks: u64::MAX,
        exit_deadline_ticks: u64::MAX,
    };
    let mut doc = PolicyDocument {
        global: Some(Policy {
            limits,
            kill_window_ticks: u32::MAX,
            reclaim_target_percent: u8::MAX,
            reclaim_deadline_ticks: u32::MAX,
            underreport_margin_bytes: u64::MAX,
            sample_period_ms: u32::MAX,
            report_stale_ticks: u32::MAX,
            ..Policy::default()
        }),
        services: heapless::Vec::new(),
    };
    for i in 0..MAX_POLICY_SERVICES {
        let mut n = long_name();
        n.truncate(MAX_NAME_LEN - 2);
        n.push_str(&format!("{i:02}")).expect("fits");
        doc.services
            .push(ServiceLimits {
                name: n,
                limits: Some(limits),
            })
            .expect("room");
    }
    round_trip(&ControlRequest::ApplyPolicy(doc.clone()));
    round_trip(&ControlReply::PolicyDocument(doc));
}

#[test]
fn a_message_travels_with_its_descriptor() {
    let (a, b) = seqpacket_pair().expect("socketpair");
    // The descriptor to pass: one end of a pipe; what is written to it is read at the other.
    let (pipe_r, pipe_w) = rustix::pipe::pipe().expect("pipe");
    let mut buf = [0; MAX_MESSAGE_LEN];
    let msg = FromAuthority::Exited {
        subject: SubjectId(7),
        status: ExitStatus::Code(0),
    };
    send(
        a.as_fd(),
        encode(&msg, &mut buf).expect("fits"),
        &[pipe_w.as_fd()],
    )
    .expect("sent");
    drop(pipe_w);

    let mut rx = Receiver::new();
    let (got, fds): (FromAuthority, _) = rx.recv_msg(b.as_fd()).expect("received");
    assert_eq!(got, msg);
    let [Some(w), None] = fds else {
        panic!("expected exactly one descriptor")
    };
    let mut w = std::fs::File::from(w);
    w.write_all(b"hello")
        .expect("write through the passed descriptor");
    drop(w);
    let mut r = std::fs::File::from(pipe_r);
    let mut s = String::new();
    r.read_to_string(&mut s).expect("read");
    assert_eq!(s, "hello");
}

#[test]
fn more_descriptors_than_max_fds_are_refused_and_nothing_is_sent() {
    let (a, b) = seqpacket_pair().expect("socketpair");
    let fds = [a.as_fd(); MAX_FDS + 1];
    let err = send(a.as_fd(), &[VERSION], &fds).expect_err("refused");
    assert!(
        matches!(&err, WireError::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput),
        "{err:?}"
    );
    oomd_proto::set_nonblocking(&b).expect("nonblocking");
    let mut rx = Receiver::new();
    assert!(rx
        .recv(b.as_fd())
        .expect_err("nothing sent")
        .is_would_block());
}

#[test]
fn an_oversize_packet_is_reported_as_truncated_and_a_closed_peer_as_closed() {
    let (a, b) = seqpacket_pair().expect("socketpair");
    send(a.as_fd(), &[VERSION; MAX_MESSAGE_LEN + 1], &[]).expect("sent");
    let mut rx = Receiver::new();
    assert!(matches!(
        rx.recv(b.as_fd()),
        Err(WireError::Peer(PeerFault::Truncated))
    ));
    drop(a);
    assert!(matches!(rx.recv(b.as_fd()), Err(WireError::Closed)));
    assert!(matches!(
        send(b.as_fd(), &[VERSION], &[]),
        Err(WireError::Closed)
    ));
}

#[test]
fn the_kernel_names_the_peer() {
    let (a, _b) = seqpacket_pair().expect("socketpair");
    assert_eq!(
        peer_pid(&a).expect("SO_PEERCRED"),
        std::process::id() as i32
    );
}

#[test]
fn listen_and_connect_by_path_replacing_a_stale_socket() {
    let dir = std::env::temp_dir().join(format!("oomd-proto-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("s.sock");
    let first = listen(&path).expect("listen");
    drop(first); // leaves a stale socket file behind
    let listener = listen(&path).expect("listen again over the stale file");
    let client = connect(&path).expect("connect");
    let server = accept(&listener).expect("accept");
    let mut buf = [0; MAX_MESSAGE_LEN];
    send(
        client.as_fd(),
        encode(&ControlRequest::Status { from: 0 }, &mut buf).expect("fits"),
        &[],
    )
    .expect("sent");
    let mut rx = Receiver::new();
    let (req, _): (ControlRequest, _) = rx.recv_msg(server.as_fd()).expect("received");
    assert_eq!(req, ControlRequest::Status { from: 0 });
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
