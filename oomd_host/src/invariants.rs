//! The core's invariants, checked after every single input: the oracle of the model test
//! (`tests/model.rs`, a proptest) and of the `watchdog` fuzz target (`fuzz/`), which share
//! this code so that both prove exactly the same things.
//!
//! A run is a sequence of [`Op`]s. [`Checker::input`] turns an op into an [`Input`] using what
//! the checker knows (tickets issued, sequence numbers), [`Checker::step`] feeds it to the
//! watchdog and checks every invariant against what it produced, [`Checker::crash`] replaces
//! the watchdog the way the edge does after a crash, and [`Checker::check_replay`] checks,
//! at the end, that the recorded inputs replay to the identical run.
//!
//! Invariants (from the specification and `docs/policy.md`):
//! 1. a critical subject is never requested;
//! 2. kill decisions (and would-kills) never exceed the budget in any window;
//! 3. at most one request in flight per subject; a second one only as an escalation
//!    graceful → forced, never down;
//! 4. a kill is confirmed only on an observed exit, after the authority accepted;
//! 5. every request is preceded by its audit record (decision or escalation, then request);
//! 6. the ring never holds more than its capacity and never loses silently;
//! 7. a rejected frame changes no subject's memory or kill state;
//! 8. replaying the recorded inputs gives the identical event log and requests;
//! 9. at most the frame budget, plus one coalesced latest frame, are taken per sender per tick;
//! 10. nothing due is left undone by a tick: after it, no running subject is over soft without
//!     an incident, idle while a kill is due, or pending past its deadline (the tick skips
//!     subjects with nothing to do; this proves that it never skips one with something due);
//!     and a frame or kernel reading that puts its subject at or over hard leaves it not idle
//!     (the kill is decided in that input); and no reclaim request waits past its deadline, or
//!     at or below its target, or with reclaim turned off;
//! 11. no kill in an incident whose reclaim was met: a met reclaim ends the incident, and a
//!     kill (or would-kill) of that subject needs a new crossing first;
//! 12. a crossing asks for a reclaim (a would-request in observe-only mode) in the same step
//!     exactly when reclaim is on, the crossing is below hard and the subject was not asked
//!     less than a kill window before with its reclaim met, each handed-out request right after its audit
//!     record and never in observe-only mode, and a soft-grace kill in an incident that asked
//!     comes only after that request was missed;
//!
//! and, throughout, no panic.

use std::collections::{BTreeMap, BTreeSet};

use memstat::{Frame, SubjectId, MAX_FRAME_LEN};
use oomd::{
    Answer, Event, EventKind, Input, KillState, Limits, Payload, Policy, PolicyUpdate,
    RefusalReason, Registration, Restore, SubjectClass, SubjectStatus, TerminationMode,
    TerminationRequest, Tick, Ticket, Watchdog,
};

use crate::fixture::RecordingAuthority;

/// An invariant that did not hold: what was wrong, and where it was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

/// `ensure!(cond)` or `ensure!(cond, "fmt", args..)`: a [`Violation`] unless `cond` holds.
macro_rules! ensure {
    ($cond:expr) => {
        ensure!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Violation(format!(
                "{} at {}:{}",
                format_args!($($fmt)+),
                file!(),
                line!()
            )));
        }
    };
}

/// `ensure_eq!(left, right)` or with a message: a [`Violation`] showing both sides unless equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr) => {
        ensure_eq!($left, $right, "{} == {}", stringify!($left), stringify!($right))
    };
    ($left:expr, $right:expr, $($fmt:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if !(*left == *right) {
                    return Err(Violation(format!(
                        "{}: left: {:?}, right: {:?} at {}:{}",
                        format_args!($($fmt)+),
                        left,
                        right,
                        file!(),
                        line!()
                    )));
                }
            }
        }
    };
}

/// The subjects' names: `samgrd` is always critical.
pub const NAMES: [&str; 6] = ["a", "b", "c", "d", "samgrd", "e"];
/// Small on purpose: the checker drains the ring after every step, so it never wraps unseen.
pub const EVENTS: usize = 256;
/// The watchdog checked: eight subjects, an event ring of [`EVENTS`].
pub type Wd = Watchdog<8, EVENTS>;

/// One step of a run: an input built from what the checker knows, or a crash.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Op {
    Register {
        who: usize,
        critical: bool,
        class: u8,
        reports: bool,
    },
    Unregister {
        who: usize,
    },
    Report {
        who: usize,
        bytes: u64,
    },
    Stale {
        who: usize,
        bytes: u64,
    },
    /// The newest frame after the budget, with older ones discarded unread.
    Latest {
        who: usize,
        bytes: u64,
        discarded: u16,
    },
    /// The sender jumps half the sequence space ahead (its report may freeze).
    Jump {
        who: usize,
    },
    Spoof {
        who: usize,
        victim: usize,
        bytes: u64,
    },
    Garbage {
        who: usize,
        bytes: Vec<u8>,
    },
    Kernel {
        who: usize,
        bytes: u64,
    },
    Tick {
        advance: u64,
    },
    TickBack {
        by: u64,
    },
    Accept {
        pick: usize,
    },
    Refuse {
        pick: usize,
    },
    Exit {
        who: usize,
    },
    Observe(bool),
    Budget {
        budget: u16,
        window: u32,
    },
    EnforceKernel(bool),
    Silence {
        judge_on_kernel: bool,
        stale_ticks: u32,
    },
    /// Reclaim on (`percent > 0`) or off, with a deadline.
    Reclaim {
        percent: u8,
        deadline: u32,
    },
    /// An acknowledgement: of the pending request (`quote_pending`), or of a made-up id.
    Ack {
        who: usize,
        quote_pending: bool,
    },
    /// The watchdog dies and a new one takes over from the audit log and the authority.
    Crash,
    /// An input as it comes, built by no rule (the fuzz target's; the model test makes none).
    /// A [`Input::Restore`] is dropped: the checker counts a refused restore as a violation,
    /// and only [`Checker::crash`] feeds restores, the way the edge does.
    Raw(Input),
}

/// The policy every run starts with.
#[must_use]
pub fn policy() -> Policy {
    Policy {
        limits: Limits {
            soft_bytes: 1_000,
            hard_bytes: 2_000,
            soft_grace_ticks: 4,
            exit_deadline_ticks: 2,
        },
        kill_budget: 2,
        kill_window_ticks: 8,
        frame_budget_per_tick: 3,
        underreport_margin_bytes: 300,
        report_stale_ticks: 6,
        ..Policy::default()
    }
}

/// The id of `NAMES[who]`.
#[must_use]
pub fn id(who: usize) -> SubjectId {
    SubjectId::from_name(NAMES[who % NAMES.len()])
}

fn payload(frame: Frame) -> Payload {
    let mut buf = [0; MAX_FRAME_LEN];
    let n = frame.encode(&mut buf).expect("valid frame");
    Payload::new(&buf[..n])
}

/// What the checker remembers between steps.
#[derive(Debug, Default)]
pub struct Checker {
    now: u64,
    next_seq: BTreeMap<SubjectId, u64>,
    critical: BTreeSet<SubjectId>,
    /// Ticks of every kill decision and would-kill.
    decisions: Vec<u64>,
    in_flight: BTreeMap<SubjectId, TerminationRequest>,
    accepted: BTreeSet<Ticket>,
    /// Tickets of each subject's kill in flight: the first request and its escalation.
    incident: BTreeMap<SubjectId, Vec<Ticket>>,
    requests_seen: usize,
    events_seen: u64,
    inputs: Vec<Input>,
    /// Every event, drained step by step.
    log: Vec<Event>,
    /// Frames (ordinary and latest) accepted per sender since the last tick.
    accepted_this_tick: BTreeMap<SubjectId, u16>,
    /// Every earlier run of the watchdog: the policy it started with and its inputs.
    incarnations: Vec<(Policy, Vec<Input>)>,
    /// The policy the current run started with.
    started_with: Option<Policy>,
    /// Subjects whose reclaim was met, until their next crossing (invariant 11).
    met: BTreeSet<SubjectId>,
    /// Subjects whose current incident asked for a reclaim: whether it was missed yet
    /// (invariant 12).
    asked: BTreeMap<SubjectId, (bool, u64)>,
    /// The tick of each subject's last met reclaim request, until its next crossing
    /// (invariant 12).
    met_at: BTreeMap<SubjectId, u64>,
    reclaims_seen: usize,
}

impl Checker {
    /// Whether the authority accepted any request of `subject`'s kill in flight.
    fn incident_accepted(&self, subject: SubjectId) -> bool {
        self.incident
            .get(&subject)
            .is_some_and(|tickets| tickets.iter().any(|t| self.accepted.contains(t)))
    }

    /// The kill in flight for `subject`, if any, is over.
    fn resolve(&mut self, subject: SubjectId) {
        self.in_flight.remove(&subject);
        self.incident.remove(&subject);
    }

    /// Turns an op into an input, using what the model knows (tickets, sequence numbers).
    pub fn input(&mut self, op: &Op, wd: &Wd, requests: &[TerminationRequest]) -> Option<Input> {
        let pick_ticket = |pick: usize| -> Ticket {
            if requests.is_empty() || pick.is_multiple_of(5) {
                Ticket((pick % 7) as u32) // sometimes an unknown or stale ticket
            } else {
                requests[pick % requests.len()].ticket
            }
        };
        Some(match *op {
            Op::Register {
                who,
                critical,
                class,
                reports,
            } => {
                let class = [
                    SubjectClass::Background,
                    SubjectClass::Standard,
                    SubjectClass::Foreground,
                ][usize::from(class) % 3];
                Input::Register(Registration {
                    subject: id(who),
                    class,
                    critical,
                    reports,
                })
            }
            Op::Unregister { who } => Input::Unregister(id(who)),
            Op::Report { who, bytes } => {
                let seq = self.next_seq.entry(id(who)).or_insert(0);
                *seq = seq.wrapping_add(1);
                let frame = Frame {
                    seq: *seq,
                    current_bytes: bytes,
                    peak_bytes: bytes,
                    claimed_subject: Some(id(who)),
                };
                Input::Frame {
                    sender: id(who),
                    payload: payload(frame),
                }
            }
            Op::Stale { who, bytes } => {
                let seq = wd.subject(id(who)).and_then(|s| s.last_seq).unwrap_or(0);
                let frame = Frame {
                    seq,
                    current_bytes: bytes,
                    peak_bytes: bytes,
                    claimed_subject: None,
                };
                Input::Frame {
                    sender: id(who),
                    payload: payload(frame),
                }
            }
            Op::Latest {
                who,
                bytes,
                discarded,
            } => {
                let seq = self.next_seq.entry(id(who)).or_insert(0);
                *seq = seq.wrapping_add(1);
                let frame = Frame {
                    seq: *seq,
                    current_bytes: bytes,
                    peak_bytes: bytes,
                    claimed_subject: None,
                };
                Input::LatestFrame {
                    sender: id(who),
                    payload: payload(frame),
                    discarded,
                }
            }
            Op::Jump { who } => {
                let seq = self.next_seq.entry(id(who)).or_insert(0);
                let jumped = seq.wrapping_add((1 << 63) - 1);
                let frame = Frame {
                    seq: jumped,
                    current_bytes: 0,
                    peak_bytes: 0,
                    claimed_subject: None,
                };
                Input::Frame {
                    sender: id(who),
                    payload: payload(frame),
                }
            }
            Op::Spoof { who, victim, bytes } if who != victim => {
                let frame = Frame {
                    seq: u64::MAX,
                    current_bytes: bytes,
                    peak_bytes: bytes,
                    claimed_subject: Some(id(victim)),
                };
                Input::Frame {
                    sender: id(who),
                    payload: payload(frame),
                }
            }
            Op::Spoof { .. } => return None,
            Op::Garbage { who, ref bytes } => Input::Frame {
                sender: id(who),
                payload: Payload::new(bytes),
            },
            Op::Kernel { who, bytes } => Input::KernelReading {
                subject: id(who),
                bytes,
            },
            Op::Tick { advance } => Input::Tick(Tick(self.now.saturating_add(advance))),
            Op::TickBack { by } => Input::Tick(Tick(self.now.saturating_sub(by))),
            Op::Accept { pick } => Input::Answer {
                ticket: pick_ticket(pick),
                answer: Answer::Accepted,
            },
            Op::Refuse { pick } => Input::Answer {
                ticket: pick_ticket(pick),
                answer: Answer::Refused(RefusalReason::Unavailable),
            },
            Op::Exit { who } => Input::Exited(id(who)),
            Op::Observe(on) => Input::SetPolicy(PolicyUpdate::Global(Policy {
                observe_only: on,
                ..*wd.policy()
            })),
            Op::Budget { budget, window } => Input::SetPolicy(PolicyUpdate::Global(Policy {
                kill_budget: budget,
                kill_window_ticks: window,
                ..*wd.policy()
            })),
            Op::EnforceKernel(on) => Input::SetPolicy(PolicyUpdate::Global(Policy {
                enforce_kernel: on,
                ..*wd.policy()
            })),
            Op::Silence {
                judge_on_kernel,
                stale_ticks,
            } => Input::SetPolicy(PolicyUpdate::Global(Policy {
                enforce_kernel_when_silent: judge_on_kernel,
                report_stale_ticks: stale_ticks,
                ..*wd.policy()
            })),
            Op::Reclaim { percent, deadline } => Input::SetPolicy(PolicyUpdate::Global(Policy {
                reclaim_target_percent: percent,
                reclaim_deadline_ticks: deadline,
                ..*wd.policy()
            })),
            Op::Ack { who, quote_pending } => {
                let pending = wd.subject(id(who)).and_then(|s| s.reclaim).map(|r| r.0);
                let id_quoted = match pending {
                    Some(id) if quote_pending => id,
                    Some(id) => id.wrapping_add(1),
                    None => self.now,
                };
                let mut buf = [0; memstat::MAX_ACK_LEN];
                let n = memstat::ReclaimAck { id: id_quoted }
                    .encode(&mut buf)
                    .expect("fits");
                Input::ReclaimAck {
                    sender: id(who),
                    payload: Payload::new(&buf[..n]),
                }
            }
            Op::Crash => return None, // not an input: see `Checker::crash`
            Op::Raw(Input::Restore(_)) => return None,
            Op::Raw(input) => input,
        })
    }

    /// The watchdog dies here. A new one is built the way the edge builds it: the policy in
    /// force, then what the audit log tells (where the clock, the events and the tickets
    /// were, and the kill decisions inside the window), then what the authority tells (every
    /// running subject, and the terminations it carries out). Every invariant is checked on
    /// the restore inputs too, and across the crash.
    pub fn crash(
        &mut self,
        wd: &mut Wd,
        authority: &mut RecordingAuthority,
    ) -> Result<(), Violation> {
        let in_force = *wd.policy();
        let running: Vec<SubjectStatus> = wd.subjects().filter(|s| s.running).collect();
        let next_ticket = authority
            .requests
            .iter()
            .map(|r| r.ticket.0 + 1)
            .max()
            .unwrap_or(1);
        let next_event_seq = wd.next_event_seq();
        let started_with = self.started_with.unwrap_or_else(policy);
        self.incarnations
            .push((started_with, core::mem::take(&mut self.inputs)));
        self.started_with = Some(in_force);
        *wd = Wd::new(in_force).expect("the policy in force is valid");
        // A new process: its frame budgets start afresh.
        self.accepted_this_tick.clear();
        self.step(
            wd,
            authority,
            Input::Restore(Restore::Resume {
                tick: Tick(self.now),
                next_event_seq,
                next_ticket,
            }),
        )?;
        // The newest kill decisions, as many as the core remembers: a window enlarged after
        // the restart must still count them.
        let keep = usize::from(oomd::bounds::MAX_KILL_BUDGET);
        let recent = self.decisions[self.decisions.len().saturating_sub(keep)..].to_vec();
        for at in recent {
            self.step(
                wd,
                authority,
                Input::Restore(Restore::KillDecided { at: Tick(at) }),
            )?;
        }
        for s in running {
            let registration = Registration {
                subject: s.subject,
                class: s.class,
                critical: s.critical,
                reports: s.reports,
            };
            self.step(wd, authority, Input::Register(registration))?;
            if let Some(r) = self.in_flight.get(&s.subject).copied() {
                let accepted = self.incident_accepted(s.subject);
                let adopt = Restore::KillInFlight {
                    subject: r.subject,
                    ticket: r.ticket,
                    mode: r.mode,
                    accepted,
                    bytes: r.bytes,
                };
                self.step(wd, authority, Input::Restore(adopt))?;
            }
        }
        Ok(())
    }

    /// Feeds one input and checks every invariant against what it produced.
    pub fn step(
        &mut self,
        wd: &mut Wd,
        authority: &mut RecordingAuthority,
        input: Input,
    ) -> Result<(), Violation> {
        let before: BTreeMap<SubjectId, SubjectStatus> =
            wd.subjects().map(|s| (s.subject, s)).collect();
        let result = wd.handle(input, authority);
        self.inputs.push(input);
        // Restoring never fails when the edge feeds what the model says it should.
        if let Input::Restore(r) = input {
            ensure!(result.is_ok(), "{:?} refused: {:?}", r, result);
        }
        if let Input::Tick(t) = input {
            self.now = self.now.max(t.0);
            self.accepted_this_tick.clear();
        }
        // 9. Bounded work per sender: at most the frame budget, plus one latest frame, are
        // taken per tick, however many arrive.
        if let (Input::Frame { sender, .. } | Input::LatestFrame { sender, .. }, Ok(())) =
            (input, result)
        {
            let n = self.accepted_this_tick.entry(sender).or_insert(0);
            *n += 1;
            ensure!(
                *n <= wd.policy().frame_budget_per_tick + 1,
                "{} frames of one sender taken in one tick",
                n
            );
        }
        if let Input::Answer {
            ticket,
            answer: Answer::Accepted,
        } = input
        {
            if result.is_ok() {
                self.accepted.insert(ticket);
            }
        }
        if let Input::Register(r) = input {
            if result.is_ok() {
                self.next_seq.remove(&r.subject);
                let critical = r.critical
                    || oomd::bounds::ALWAYS_CRITICAL
                        .iter()
                        .any(|n| SubjectId::from_name(n) == r.subject);
                if critical {
                    self.critical.insert(r.subject);
                } else {
                    self.critical.remove(&r.subject);
                }
            }
        }

        // 7. Rejected frames (and acknowledgements) change nothing but the sender's per-tick
        // frame count.
        if let (
            Input::Frame { .. } | Input::LatestFrame { .. } | Input::ReclaimAck { .. },
            Err(_),
        ) = (input, result)
        {
            let without_count = |mut s: SubjectStatus| {
                s.frames_this_tick = 0;
                s
            };
            let after: BTreeMap<SubjectId, SubjectStatus> = wd
                .subjects()
                .map(|s| (s.subject, without_count(s)))
                .collect();
            let before: BTreeMap<_, _> = before
                .into_iter()
                .map(|(k, s)| (k, without_count(s)))
                .collect();
            ensure_eq!(after, before, "a rejected frame changed state");
        }

        // 10. Nothing due is left undone by a tick.
        if let Input::Tick(_) = input {
            let now = wd.now();
            let policy = *wd.policy();
            for st in wd.subjects().filter(|st| st.running) {
                let l = st.limits;
                let pending = matches!(st.kill, KillState::Pending { .. });
                let reclaim_waits = st.reclaim.is_some();
                if let Some((id, _)) = st.reclaim {
                    ensure!(
                        policy.reclaim_target_percent > 0
                            && now.0 < id + u64::from(policy.reclaim_deadline_ticks)
                            && st.enforced_bytes > l.reclaim_target(policy.reclaim_target_percent)
                            && st.over_soft_since == Some(Tick(id)),
                        "a reclaim request left waiting after tick {}: {:?}",
                        now.0,
                        st
                    );
                }
                ensure!(
                    pending || st.enforced_bytes < l.soft_bytes || st.over_soft_since.is_some(),
                    "over soft without an incident after tick {}: {:?}",
                    now.0,
                    st
                );
                let due = st.enforced_bytes >= l.hard_bytes
                    || (!reclaim_waits
                        && st.over_soft_since.is_some_and(|since| {
                            l.soft_grace_ticks > 0 && now.since(since) >= l.soft_grace_ticks
                        }));
                ensure!(
                    !(due && st.kill == KillState::Idle),
                    "a due kill left idle after tick {}: {:?}",
                    now.0,
                    st
                );
                if let KillState::Pending { deadline, .. } = st.kill {
                    ensure!(
                        deadline > now,
                        "a pending kill past its deadline after tick {}: {:?}",
                        now.0,
                        st
                    );
                }
            }
        }

        // 10, at the crossing: a frame or reading over hard is decided in its own input.
        let changed = match (input, result) {
            (Input::Frame { sender, .. } | Input::LatestFrame { sender, .. }, Ok(())) => {
                Some(sender)
            }
            (Input::KernelReading { subject, .. }, Ok(())) => Some(subject),
            _ => None,
        };
        if let Some(st) = changed.and_then(|id| wd.subject(id)) {
            ensure!(
                !(st.enforced_bytes >= st.limits.hard_bytes && st.kill == KillState::Idle),
                "a frame or reading over hard left its subject idle: {:?}",
                st
            );
        }

        // 6. The ring: nothing lost with this capacity, never more than capacity held.
        let page = wd.events(self.events_seen, usize::MAX);
        ensure_eq!(page.lost(), 0);
        let new: Vec<Event> = page.collect();
        ensure!(wd.events(0, usize::MAX).count() <= EVENTS);
        ensure_eq!(wd.next_event_seq(), self.events_seen + new.len() as u64);
        self.events_seen = wd.next_event_seq();
        self.log.extend_from_slice(&new);

        let policy = *wd.policy();
        for (k, e) in new.iter().enumerate() {
            match e.kind {
                EventKind::SoftExceeded { subject, bytes, .. } => {
                    self.met.remove(&subject);
                    self.asked.remove(&subject);
                    // 12. With reclaim on, a crossing below hard asks in the same step, unless
                    // the subject's reclaim was met less than a kill window ago.
                    let hard = wd
                        .subject(subject)
                        .map_or(u64::MAX, |s| s.limits.hard_bytes);
                    let lately = self.met_at.remove(&subject).is_some_and(|t| {
                        e.tick.0.saturating_sub(t) < u64::from(policy.kill_window_ticks)
                    });
                    let next = new.get(k + 1).map(|e| e.kind);
                    let asked = matches!(next, Some(EventKind::ReclaimRequested { subject: s, .. }
                        | EventKind::ReclaimWouldRequest { subject: s, .. }) if s == subject);
                    ensure_eq!(
                        asked,
                        policy.reclaim_target_percent > 0 && bytes < hard && !lately,
                        "a crossing asked (or not) against the rule; next event {:?}",
                        next
                    );
                }
                EventKind::ReclaimRequested { subject, .. }
                | EventKind::ReclaimWouldRequest { subject, .. } => {
                    ensure!(
                        matches!(e.kind, EventKind::ReclaimRequested { .. }) != policy.observe_only,
                        "a reclaim request and observe-only disagree: {:?}",
                        e
                    );
                    self.asked.insert(subject, (false, e.tick.0));
                }
                EventKind::ReclaimMissed { subject, .. } => {
                    let asked = self.asked.get_mut(&subject);
                    ensure!(asked.is_some(), "missed without a request");
                    if let Some(asked) = asked {
                        asked.0 = true;
                    }
                }
                EventKind::ReclaimMet { subject, .. } => {
                    let asked = self.asked.remove(&subject);
                    ensure!(asked.is_some(), "met without a request");
                    self.met.insert(subject);
                    self.met_at
                        .insert(subject, asked.map_or(e.tick.0, |(_, at)| at));
                }
                EventKind::Registered { subject, .. } => {
                    self.met.remove(&subject);
                    self.asked.remove(&subject);
                    self.met_at.remove(&subject);
                }
                // 2. Budget.
                EventKind::KillDecided {
                    subject, reason, ..
                }
                | EventKind::WouldKill {
                    subject, reason, ..
                } => {
                    // 11. No kill in an incident whose reclaim was met.
                    ensure!(
                        !self.met.contains(&subject),
                        "a kill after a met reclaim, with no new crossing: {:?}",
                        e
                    );
                    // 12. A soft-grace kill in an incident that asked waits for the miss.
                    if reason == oomd::KillReason::SoftGrace {
                        ensure!(
                            self.asked.get(&subject).is_none_or(|a| a.0),
                            "a soft-grace kill while the reclaim request waits: {:?}",
                            e
                        );
                    }
                    self.decisions.push(e.tick.0);
                    let t = e.tick.0;
                    let in_window = self
                        .decisions
                        .iter()
                        .filter(|&&d| d <= t && t - d < u64::from(policy.kill_window_ticks))
                        .count();
                    ensure!(
                        in_window <= usize::from(policy.kill_budget),
                        "{} decisions in the window ending at tick {}",
                        in_window,
                        t
                    );
                }
                // 4. Confirmation only on an observed exit of an accepted request.
                // ... and, conversely, an exit after an accepted request is always confirmed.
                EventKind::KillConfirmed { subject, .. } => {
                    ensure_eq!(input, Input::Exited(subject));
                    ensure!(self.in_flight.contains_key(&subject));
                    ensure!(
                        self.incident_accepted(subject),
                        "confirmed without acceptance"
                    );
                    self.resolve(subject);
                }
                EventKind::Exited {
                    subject,
                    during_kill,
                } => {
                    ensure_eq!(during_kill, self.in_flight.contains_key(&subject));
                    ensure!(
                        !self.incident_accepted(subject),
                        "an accepted kill went unconfirmed"
                    );
                    self.resolve(subject);
                }
                EventKind::Unregistered { subject } => self.resolve(subject),
                EventKind::KillRefused { subject, .. } | EventKind::KillFailed { subject, .. } => {
                    ensure!(self.in_flight.contains_key(&subject));
                    self.resolve(subject);
                }
                _ => {}
            }
        }

        for r in &authority.requests[self.requests_seen..] {
            // 1. Never a critical subject.
            ensure!(
                !self.critical.contains(&r.subject),
                "critical {:?} requested",
                r.subject
            );
            // 5. Audit before action.
            let audit = new.iter().position(|e| e.seq == r.audit_seq);
            ensure!(
                audit.is_some(),
                "request without an audit record in this step"
            );
            let audit = audit.unwrap_or_default();
            ensure_eq!(
                new[audit].kind,
                EventKind::KillRequested {
                    subject: r.subject,
                    ticket: r.ticket,
                    mode: r.mode
                }
            );
            ensure!(audit > 0);
            let cause = new[audit - 1].kind;
            // 3. One in flight; a second request only escalates graceful → forced.
            match (self.in_flight.get(&r.subject), r.mode) {
                (None, TerminationMode::Graceful) => {
                    let decided = matches!(cause, EventKind::KillDecided { subject, .. } if subject == r.subject);
                    ensure!(decided, "a graceful request not right after its decision");
                }
                (Some(prev), TerminationMode::Forced) if prev.mode == TerminationMode::Graceful => {
                    ensure_eq!(
                        cause,
                        EventKind::KillEscalated {
                            subject: r.subject,
                            ticket: prev.ticket
                        }
                    );
                }
                (prev, mode) => {
                    ensure!(false, "request {:?} while {:?} in flight", mode, prev)
                }
            }
            self.in_flight.insert(r.subject, *r);
            self.incident.entry(r.subject).or_default().push(r.ticket);
        }
        self.requests_seen = authority.requests.len();
        for r in &authority.reclaims[self.reclaims_seen..] {
            // 12, and 5 for reclaims: audit before action, never in observe-only mode.
            ensure!(
                !policy.observe_only,
                "a reclaim request in observe-only mode"
            );
            let audit = new.iter().find(|e| e.seq == r.audit_seq);
            ensure_eq!(
                audit.map(|e| (e.tick.0, e.kind)),
                Some((
                    r.id,
                    EventKind::ReclaimRequested {
                        subject: r.subject,
                        target: r.target_bytes,
                        deadline: r.deadline
                    }
                )),
                "a reclaim request without its audit record in this step"
            );
        }
        self.reclaims_seen = authority.reclaims.len();
        Ok(())
    }

    /// Invariant 8, replay: the same inputs give the same log and the same requests, run by
    /// run (every run of the watchdog, from the policy it started with). `authority` is the
    /// one the run's requests went to.
    pub fn check_replay(&self, authority: &RecordingAuthority) -> Result<(), Violation> {
        let mut runs = self.incarnations.clone();
        runs.push((
            self.started_with.unwrap_or_else(policy),
            self.inputs.clone(),
        ));
        let mut replay_authority = RecordingAuthority::default();
        let mut again = Vec::new();
        for (start, inputs) in &runs {
            let mut replayed = match Wd::new(*start) {
                Ok(wd) => wd,
                Err(e) => return Err(Violation(format!("a run started with {e:?}"))),
            };
            for input in inputs {
                let next = replayed.next_event_seq();
                let _ = replayed.handle(*input, &mut replay_authority);
                again.extend(replayed.events(next, usize::MAX));
            }
        }
        ensure_eq!(&self.log, &again);
        ensure_eq!(authority.requests, replay_authority.requests);
        ensure_eq!(authority.reclaims, replay_authority.reclaims);
        Ok(())
    }

    /// Every event of the run so far, in order.
    #[must_use]
    pub fn log(&self) -> &[Event] {
        &self.log
    }
}
