//! Ask before killing: the reclaim request, its acknowledgement, and how a request ends.

use memstat::{Frame, ReclaimAck, SubjectId};
use oomd::{
    Authority, EventKind, Input, InputError, KillReason, Limits, Payload, Policy, PolicyUpdate,
    ReclaimRequest, Registration, Rejection, SubjectClass, TerminationRequest, Tick, Watchdog,
};

const SOFT: u64 = 1000;
const HARD: u64 = 2000;
const TARGET: u64 = 750; // 75 % of soft
const DEADLINE: u32 = 5;

/// Every output, in order, with the number of events logged when it was handed out.
#[derive(Default)]
struct Outputs {
    kills: Vec<(TerminationRequest, u64)>,
    reclaims: Vec<(ReclaimRequest, u64)>,
    events_at_call: u64,
}

impl Authority for Outputs {
    fn request_termination(&mut self, r: TerminationRequest) {
        self.kills.push((r, self.events_at_call));
    }
    fn request_reclaim(&mut self, r: ReclaimRequest) {
        self.reclaims.push((r, self.events_at_call));
    }
}

struct Rig {
    wd: Watchdog<8, 256>,
    out: Outputs,
    seq: u64,
    now: u64,
}

fn hog() -> SubjectId {
    SubjectId::from_name("hog")
}

fn policy(grace: u64) -> Policy {
    Policy {
        limits: Limits {
            soft_bytes: SOFT,
            hard_bytes: HARD,
            soft_grace_ticks: grace,
            exit_deadline_ticks: 3,
        },
        reclaim_target_percent: 75,
        reclaim_deadline_ticks: DEADLINE,
        report_stale_ticks: 1000,
        ..Policy::default()
    }
}

impl Rig {
    fn new(policy: Policy, critical: bool) -> Rig {
        let mut rig = Rig {
            wd: Watchdog::new(policy).expect("valid"),
            out: Outputs::default(),
            seq: 0,
            now: 0,
        };
        let reg = Registration {
            subject: hog(),
            class: SubjectClass::Standard,
            critical,
            reports: true,
        };
        rig.feed(Input::Register(reg)).expect("registers");
        rig
    }

    fn feed(&mut self, input: Input) -> Result<(), InputError> {
        // Outputs are handed out during the call: this is how many events existed before it.
        self.out.events_at_call = self.wd.next_event_seq();
        self.wd.handle(input, &mut self.out)
    }

    fn report(&mut self, bytes: u64) {
        self.seq += 1;
        let frame = Frame {
            seq: self.seq,
            current_bytes: bytes,
            peak_bytes: bytes.max(HARD * 4),
            claimed_subject: None,
        };
        let mut buf = [0; memstat::MAX_FRAME_LEN];
        let n = frame.encode(&mut buf).expect("fits");
        let payload = Payload::new(&buf[..n]);
        self.feed(Input::Frame {
            sender: hog(),
            payload,
        })
        .expect("accepted");
    }

    fn ack(&mut self, id: u64) -> Result<(), InputError> {
        let mut buf = [0; memstat::MAX_ACK_LEN];
        let n = ReclaimAck { id }.encode(&mut buf).expect("fits");
        self.feed(Input::ReclaimAck {
            sender: hog(),
            payload: Payload::new(&buf[..n]),
        })
    }

    fn tick(&mut self) {
        self.now += 1;
        let _ = self.feed(Input::Tick(Tick(self.now)));
    }

    fn events(&self) -> Vec<(u64, EventKind)> {
        self.wd.events(0, 256).map(|e| (e.tick.0, e.kind)).collect()
    }

    /// A rig whose subject crossed soft (by 10 bytes) at tick 2 and was asked to reclaim then.
    fn asked(policy: Policy, critical: bool) -> Rig {
        let mut rig = Rig::new(policy, critical);
        rig.tick();
        rig.report(SOFT + 10);
        rig.tick();
        rig
    }

    /// Ticks until the clock reads `tick`.
    fn run_to(&mut self, tick: u64) {
        while self.now < tick {
            self.tick();
        }
    }

    /// The tags of [`reclaim_events`](Self::reclaim_events), with their ticks.
    fn tags(&self) -> Vec<(u64, oomd::EventTag)> {
        self.reclaim_events()
            .into_iter()
            .map(|(t, k)| (t, k.tag()))
            .collect()
    }

    fn reclaim_events(&self) -> Vec<(u64, EventKind)> {
        self.events()
            .into_iter()
            .filter(|(_, k)| {
                matches!(
                    k,
                    EventKind::ReclaimRequested { .. }
                        | EventKind::ReclaimWouldRequest { .. }
                        | EventKind::ReclaimAcknowledged { .. }
                        | EventKind::ReclaimMet { .. }
                        | EventKind::ReclaimMissed { .. }
                        | EventKind::KillDecided { .. }
                        | EventKind::KillDenied { .. }
                        | EventKind::WouldKill { .. }
                )
            })
            .collect()
    }
}

#[test]
fn a_crossing_asks_for_the_target_audited_before_the_request_goes_out() {
    let mut rig = Rig::new(policy(2), false);
    rig.tick(); // 1
    rig.report(SOFT + 10);
    assert!(
        rig.out.reclaims.is_empty(),
        "decided at the tick, not on the frame"
    );
    rig.tick(); // 2: the crossing
    let (request, events_before) = rig.out.reclaims[0];
    assert_eq!(
        request,
        ReclaimRequest {
            subject: hog(),
            id: 2,
            target_bytes: TARGET,
            deadline: Tick(2 + u64::from(DEADLINE)),
            audit_seq: request.audit_seq,
        }
    );
    let logged = rig
        .wd
        .events(request.audit_seq, 1)
        .next()
        .expect("the audit record exists");
    assert_eq!(
        logged.kind,
        EventKind::ReclaimRequested {
            subject: hog(),
            target: TARGET,
            deadline: Tick(7),
        }
    );
    assert!(
        request.audit_seq >= events_before,
        "logged in the same call"
    );
    let mut line = String::new();
    oomd::trace::write_line(&mut line, &logged.kind, &()).expect("writes");
    assert_eq!(
        line,
        format!(
            "oomd: reclaim requested app={} target=750 deadline=7",
            hog()
        )
    );
    assert_eq!(
        rig.wd.subject(hog()).expect("known").reclaim,
        Some((2, false))
    );
}

#[test]
fn a_cooperative_subject_meets_its_target_and_is_not_killed() {
    // The soft grace (2 ticks) is shorter than the deadline: without reclaim the kill would be
    // decided at tick 4.
    let mut rig = Rig::asked(policy(2), false); // requested at tick 2
    rig.ack(2).expect("the pending request");
    assert_eq!(
        rig.wd.subject(hog()).expect("known").reclaim,
        Some((2, true))
    );
    rig.tick(); // 3
    rig.tick(); // 4: grace over, reclaim still waiting: no kill
    rig.report(TARGET);
    rig.tick(); // 5: met
    for _ in 0..20 {
        rig.tick();
    }
    assert_eq!(
        rig.reclaim_events(),
        vec![
            (
                2,
                EventKind::ReclaimRequested {
                    subject: hog(),
                    target: TARGET,
                    deadline: Tick(7)
                }
            ),
            (2, EventKind::ReclaimAcknowledged { subject: hog() }),
            (
                5,
                EventKind::ReclaimMet {
                    subject: hog(),
                    bytes: TARGET
                }
            ),
        ]
    );
    assert!(rig.out.kills.is_empty());
    let status = rig.wd.subject(hog()).expect("known");
    assert_eq!((status.over_soft_since, status.reclaim), (None, None));

    // A crossing within a kill window of the met reclaim asks for nothing: the soft grace runs
    // as without reclaim (reclaiming just in time, then growing straight back, buys nothing).
    rig.report(SOFT);
    rig.tick(); // 26: crossing
    assert_eq!(rig.out.reclaims.len(), 1);
    rig.tick();
    rig.tick(); // 28: grace over
    assert!(matches!(
        rig.reclaim_events().last(),
        Some((
            28,
            EventKind::KillDecided {
                reason: KillReason::SoftGrace,
                ..
            }
        ))
    ));
}

/// A rig with a kill window of 10 ticks whose subject was asked at tick 2 and met at 3, then
/// crosses soft again at tick `cross_at`.
fn met_then_crossing_at(cross_at: u64) -> Rig {
    let mut p = policy(2);
    p.kill_window_ticks = 10;
    let mut rig = Rig::asked(p, false); // requested at tick 2
    rig.report(TARGET);
    rig.tick(); // 3: met
    rig.run_to(cross_at - 1);
    rig.report(SOFT);
    rig.tick(); // the crossing
    rig
}

#[test]
fn one_request_per_kill_window_counted_from_the_met_request() {
    // Asked at tick 2: a crossing at 11 is within the window, one at 12 is not.
    let rig = met_then_crossing_at(11);
    assert_eq!(rig.out.reclaims.len(), 1, "asked again within the window");
    let rig = met_then_crossing_at(12);
    assert_eq!(rig.out.reclaims.len(), 2);
    assert_eq!(rig.out.reclaims[1].0.id, 12);
    assert!(rig.out.kills.is_empty());

    // The crossing that was not asked forgets the met request: the one after it is asked.
    let mut rig = met_then_crossing_at(5);
    assert_eq!(rig.out.reclaims.len(), 1);
    rig.report(TARGET);
    rig.tick(); // 6: below the re-arm threshold: the incident ends
    rig.report(SOFT);
    rig.tick(); // 7: crossing
    assert_eq!(rig.out.reclaims.len(), 2);
}

#[test]
fn an_acknowledgement_that_comes_after_the_met_frame_is_taken_once() {
    let mut rig = Rig::asked(policy(2), false); // requested at tick 2
    rig.report(TARGET);
    rig.tick(); // 3: met, before the acknowledgement was read
    assert_eq!(rig.ack(2), Ok(()));
    assert_eq!(
        rig.ack(2),
        Err(InputError::Frame(Rejection::UnexpectedAck)),
        "once"
    );
    let kinds = rig.tags();
    use oomd::EventTag as T;
    assert_eq!(
        kinds,
        vec![
            (2, T::ReclaimRequested),
            (3, T::ReclaimMet),
            (3, T::ReclaimAcknowledged)
        ]
    );
}

#[test]
fn turning_observe_only_off_asks_for_real_with_a_fresh_deadline() {
    let mut p = policy(2);
    p.observe_only = true;
    let mut rig = Rig::new(p, false);
    rig.tick();
    rig.report(SOFT + 10);
    rig.tick(); // 2: would-request, deadline 7
    p.observe_only = false;
    rig.feed(Input::SetPolicy(PolicyUpdate::Global(p)))
        .expect("valid");
    rig.tick(); // 3: asked for real, deadline 8; the incident starts afresh
    assert_eq!(rig.out.reclaims.len(), 1);
    assert_eq!(rig.out.reclaims[0].0.id, 3);
    assert_eq!(
        rig.out.reclaims[0].0.deadline,
        Tick(3 + u64::from(DEADLINE))
    );
    rig.run_to(9);
    let kinds = rig.tags();
    use oomd::EventTag as T;
    assert_eq!(
        kinds,
        vec![
            (2, T::ReclaimWouldRequest),
            (3, T::ReclaimRequested),
            (8, T::ReclaimMissed),
            (8, T::KillDecided)
        ],
        "never killed before the deadline it was given"
    );
}

#[test]
fn a_restarted_subject_is_asked_afresh() {
    let mut rig = Rig::asked(policy(2), false); // requested at tick 2
    rig.report(TARGET);
    rig.tick(); // 3: met
    rig.feed(Input::Exited(hog())).expect("running");
    let reg = Registration {
        subject: hog(),
        class: SubjectClass::Standard,
        critical: false,
        reports: true,
    };
    rig.feed(Input::Register(reg)).expect("registers");
    rig.seq = 0;
    rig.report(SOFT + 10);
    rig.tick(); // 4: a new process, a new request
    assert_eq!(rig.out.reclaims.len(), 2);
}

#[test]
fn a_stubborn_subject_is_killed_once_the_deadline_passes() {
    for (grace, kill_at) in [(2, 7), (9, 11)] {
        let mut rig = Rig::asked(policy(grace), false); // requested at tick 2
        rig.ack(2).expect("acknowledges");
        rig.run_to(kill_at + 1);
        let events = rig.reclaim_events();
        assert_eq!(
            events[2],
            (
                7,
                EventKind::ReclaimMissed {
                    subject: hog(),
                    bytes: SOFT + 10
                }
            ),
            "grace {grace}: {events:?}"
        );
        assert_eq!(
            events[3],
            (
                kill_at,
                EventKind::KillDecided {
                    subject: hog(),
                    bytes: SOFT + 10,
                    reason: KillReason::SoftGrace
                }
            ),
            "grace {grace}: the later of the grace and the deadline"
        );
        assert_eq!(rig.out.kills.len(), 1);
    }
}

#[test]
fn a_liar_is_judged_on_the_kernel_figure_when_it_is_enforced() {
    let mut p = policy(2);
    p.enforce_kernel = true;
    let mut rig = Rig::new(p, false);
    rig.tick();
    rig.report(SOFT + 10);
    rig.feed(Input::KernelReading {
        subject: hog(),
        bytes: SOFT + 10,
    })
    .expect("running");
    rig.tick(); // 2: requested
    rig.ack(2).expect("acknowledges");
    rig.report(TARGET); // the claim
    rig.tick(); // 3: the kernel still charges it SOFT + 10: not met
    rig.run_to(8);
    let events = rig.reclaim_events();
    assert!(
        !events
            .iter()
            .any(|(_, k)| matches!(k, EventKind::ReclaimMet { .. })),
        "{events:?}"
    );
    assert!(events.contains(&(
        7,
        EventKind::ReclaimMissed {
            subject: hog(),
            bytes: SOFT + 10
        }
    )));
    assert_eq!(rig.out.kills.len(), 1, "killed at the deadline");

    // Without kernel enforcement the same lie is believed: this is what enforcement buys.
    let mut rig = Rig::new(policy(2), false);
    rig.tick();
    rig.report(SOFT + 10);
    rig.tick();
    rig.report(TARGET);
    rig.tick();
    assert!(matches!(
        rig.reclaim_events().last(),
        Some((3, EventKind::ReclaimMet { .. }))
    ));
}

#[test]
fn the_hard_limit_kills_at_once_while_a_reclaim_waits() {
    let mut rig = Rig::asked(policy(2), false); // requested at tick 2
    rig.ack(2).expect("acknowledges");
    rig.report(HARD); // decided in this input, before any tick
    let events = rig.reclaim_events();
    assert_eq!(
        &events[2..],
        &[
            (
                2,
                EventKind::ReclaimMissed {
                    subject: hog(),
                    bytes: HARD
                }
            ),
            (
                2,
                EventKind::KillDecided {
                    subject: hog(),
                    bytes: HARD,
                    reason: KillReason::HardLimit
                }
            ),
        ]
    );
    assert_eq!(rig.out.kills.len(), 1);

    // A crossing straight to hard asks for nothing: the kill is due at once.
    let mut rig = Rig::new(policy(2), false);
    rig.tick();
    rig.report(HARD);
    assert_eq!(rig.out.kills.len(), 1);
    assert!(rig.out.reclaims.is_empty());
}

#[test]
fn a_critical_subject_is_asked_and_never_killed() {
    let mut rig = Rig::new(policy(2), true);
    rig.tick();
    rig.report(SOFT + 10);
    rig.run_to(10);
    let kinds = rig.tags();
    use oomd::EventTag as T;
    assert_eq!(
        kinds,
        vec![
            (2, T::ReclaimRequested),
            (7, T::ReclaimMissed),
            (7, T::KillDenied)
        ]
    );
    assert_eq!(rig.out.reclaims.len(), 1);
    assert!(rig.out.kills.is_empty());
}

#[test]
fn observe_only_logs_the_would_request_and_sends_nothing() {
    let mut p = policy(2);
    p.observe_only = true;
    let mut rig = Rig::new(p, false);
    rig.tick();
    rig.report(SOFT + 10);
    rig.run_to(8);
    let kinds = rig.tags();
    use oomd::EventTag as T;
    assert_eq!(
        kinds,
        vec![
            (2, T::ReclaimWouldRequest),
            (7, T::ReclaimMissed),
            (7, T::WouldKill)
        ]
    );
    assert!(rig.out.reclaims.is_empty() && rig.out.kills.is_empty());
}

#[test]
fn acknowledgements_that_quote_no_pending_request_are_rejected() {
    let mut rig = Rig::new(policy(2), false);
    rig.tick();
    let unexpected = Err(InputError::Frame(Rejection::UnexpectedAck));
    assert_eq!(rig.ack(1), unexpected, "nothing pending");
    rig.report(SOFT + 10);
    rig.tick(); // 2: requested
    assert_eq!(rig.ack(3), unexpected, "another id");
    assert_eq!(rig.ack(2), Ok(()));
    assert_eq!(rig.ack(2), unexpected, "a duplicate");
    assert_eq!(
        rig.feed(Input::ReclaimAck {
            sender: hog(),
            payload: Payload::new(b"MA\x01"),
        }),
        Err(InputError::Frame(Rejection::Truncated))
    );
    assert_eq!(
        rig.feed(Input::ReclaimAck {
            sender: SubjectId::from_name("stranger"),
            payload: Payload::new(b"MA\x01\x02"),
        }),
        Err(InputError::Frame(Rejection::UnknownSender))
    );
    let c = rig.wd.counters();
    assert_eq!(c.rejected(Rejection::UnexpectedAck), 3);
    assert_eq!(c.rejected(Rejection::Truncated), 1);
    // Only one acknowledgement was taken.
    let acks = rig
        .events()
        .iter()
        .filter(|(_, k)| matches!(k, EventKind::ReclaimAcknowledged { .. }))
        .count();
    assert_eq!(acks, 1);
}

#[test]
fn below_the_rearm_but_above_the_target_is_not_met_and_not_killed() {
    let rearm = policy(2).limits.soft_rearm_bytes();
    assert!(TARGET < rearm - 1);
    let mut rig = Rig::asked(policy(2), false); // requested at tick 2
    rig.report(rearm - 1);
    rig.tick(); // 3: the incident stays open while the request waits
    assert!(rig
        .wd
        .subject(hog())
        .expect("known")
        .over_soft_since
        .is_some());
    rig.run_to(9);
    let kinds = rig.tags();
    use oomd::EventTag as T;
    assert_eq!(kinds, vec![(2, T::ReclaimRequested), (7, T::ReclaimMissed)]);
    assert!(
        rig.out.kills.is_empty(),
        "below soft by the deadline: the incident ends"
    );
    assert_eq!(rig.wd.subject(hog()).expect("known").over_soft_since, None);
}

#[test]
fn turning_reclaim_off_settles_a_pending_request_as_missed() {
    let mut rig = Rig::asked(policy(50), false); // requested at tick 2
    let mut off = policy(50);
    off.reclaim_target_percent = 0;
    rig.feed(Input::SetPolicy(PolicyUpdate::Global(off)))
        .expect("valid");
    rig.tick();
    let kinds = rig.tags();
    use oomd::EventTag as T;
    assert_eq!(kinds, vec![(2, T::ReclaimRequested), (3, T::ReclaimMissed)]);
    assert_eq!(rig.wd.subject(hog()).expect("known").reclaim, None);
}

#[test]
fn with_reclaim_off_nothing_is_asked() {
    let mut p = policy(2);
    p.reclaim_target_percent = 0;
    let mut rig = Rig::new(p, false);
    rig.tick();
    rig.report(SOFT + 10);
    rig.run_to(5);
    assert!(rig.out.reclaims.is_empty());
    assert_eq!(
        rig.out.kills.len(),
        1,
        "killed at the end of the grace, as before"
    );
}

#[test]
fn a_would_request_cannot_be_acknowledged() {
    // Nothing was sent, and its id is a tick anyone can guess.
    let mut p = policy(2);
    p.observe_only = true;
    let mut rig = Rig::asked(p, false); // a would-request at tick 2
    let unexpected = Err(InputError::Frame(Rejection::UnexpectedAck));
    assert_eq!(rig.ack(2), unexpected, "while it waits");
    rig.report(TARGET);
    rig.tick(); // 3: met
    assert_eq!(rig.ack(2), unexpected, "once it was met");
    assert!(!rig
        .tags()
        .iter()
        .any(|(_, t)| *t == oomd::EventTag::ReclaimAcknowledged));
}

#[test]
fn an_exit_drops_the_pending_request_and_the_next_process_is_asked_afresh() {
    let mut rig = Rig::asked(policy(2), false); // requested at tick 2
    rig.feed(Input::Exited(hog())).expect("running");
    assert_eq!(
        rig.ack(2),
        Err(InputError::Frame(Rejection::NotRunning)),
        "the channel of a process that exited"
    );
    let reg = Registration {
        subject: hog(),
        class: SubjectClass::Standard,
        critical: false,
        reports: true,
    };
    rig.feed(Input::Register(reg)).expect("registers");
    assert_eq!(
        rig.ack(2),
        Err(InputError::Frame(Rejection::UnexpectedAck)),
        "the old request is not the new process's"
    );
    rig.seq = 0;
    rig.report(SOFT + 10);
    rig.tick(); // 3: a new request
    assert_eq!(rig.out.reclaims.len(), 2);
    assert_eq!(rig.out.reclaims[1].0.id, 3);
    rig.run_to(9);
    assert!(
        rig.out.kills.len() == 1 && rig.tags().contains(&(8, oomd::EventTag::ReclaimMissed)),
        "judged on the new deadline (3 + 5), not the old one: {:?}",
        rig.tags()
    );
}
