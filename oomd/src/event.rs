//! The audit trail: events, why frames are rejected, and the bounded event ring.

use memstat::SubjectId;

use crate::{PolicyError, RefusalReason, SubjectClass, TerminationMode, Tick, Ticket};

/// Why a subject must be terminated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
#[non_exhaustive]
pub enum KillReason {
    /// Its enforced bytes reached its hard limit.
    HardLimit = 1,
    /// It stayed over its soft limit for the whole soft grace.
    SoftGrace = 2,
}

/// Why the core itself refused to ask for a kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
#[non_exhaustive]
pub enum DenyReason {
    /// The subject is critical (by registration or by name): it is never killed.
    Critical = 1,
}

/// Why a registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
#[non_exhaustive]
pub enum RegistrationError {
    /// The subject is registered and running.
    Duplicate = 1,
    /// The subject table is full; the subject runs unwatched.
    TableFull = 2,
}

/// Why a frame was rejected. Each reason has its own counter. A rejected frame changes no
/// subject's state. Discriminants are fixed; only append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
#[non_exhaustive]
pub enum Rejection {
    /// The authenticated sender is not a registered subject.
    UnknownSender = 0,
    /// The sender is registered but has exited.
    NotRunning = 1,
    /// The sender already used its frame budget for this tick.
    OverBudget = 2,
    /// The frame claims to be from another subject than the one that sent it.
    ClaimMismatch = 3,
    /// The sequence number is not above the last accepted one.
    StaleSequence = 4,
    /// Longer than `memstat::MAX_FRAME_LEN`.
    Oversize = 5,
    /// Wrong magic bytes.
    MagicMismatch = 6,
    /// A wire version this core does not know.
    UnsupportedVersion = 7,
    /// The frame ends early.
    Truncated = 8,
    /// A field is not validly encoded.
    Malformed = 9,
    /// Bytes follow the frame.
    TrailingBytes = 10,
    /// `peak_bytes < current_bytes`.
    Inconsistent = 11,
    /// A reclaim acknowledgement that quotes no pending request of its sender (late,
    /// duplicated or made up).
    UnexpectedAck = 12,
}

impl Rejection {
    /// How many reasons there are.
    pub const COUNT: usize = 13;
    /// Every reason, in discriminant order.
    pub const ALL: [Rejection; Self::COUNT] = [
        Self::UnknownSender,
        Self::NotRunning,
        Self::OverBudget,
        Self::ClaimMismatch,
        Self::StaleSequence,
        Self::Oversize,
        Self::MagicMismatch,
        Self::UnsupportedVersion,
        Self::Truncated,
        Self::Malformed,
        Self::TrailingBytes,
        Self::Inconsistent,
        Self::UnexpectedAck,
    ];

    /// The word traces use.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnknownSender => "unknown-sender",
            Self::NotRunning => "not-running",
            Self::OverBudget => "over-budget",
            Self::ClaimMismatch => "claim-mismatch",
            Self::StaleSequence => "stale-sequence",
            Self::Oversize => "oversize",
            Self::MagicMismatch => "magic-mismatch",
            Self::UnsupportedVersion => "unsupported-version",
            Self::Truncated => "truncated",
            Self::Malformed => "malformed",
            Self::TrailingBytes => "trailing-bytes",
            Self::Inconsistent => "inconsistent",
            Self::UnexpectedAck => "unexpected-ack",
        }
    }

    pub(crate) fn from_decode(e: memstat::DecodeError) -> Self {
        use memstat::DecodeError as D;
        match e {
            D::Oversize { .. } => Self::Oversize,
            D::MagicMismatch => Self::MagicMismatch,
            D::UnsupportedVersion { .. } => Self::UnsupportedVersion,
            D::Truncated => Self::Truncated,
            D::TrailingBytes { .. } => Self::TrailingBytes,
            D::Inconsistent => Self::Inconsistent,
            _ => Self::Malformed,
        }
    }
}

/// What happened. One variant per kind of event; see `docs/policy.md` for when each appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum EventKind {
    /// A subject was registered (or re-registered after it exited).
    Registered {
        /// Who.
        subject: SubjectId,
        /// Its victim class.
        class: SubjectClass,
        /// Whether it is protected from kills.
        critical: bool,
    },
    /// A registration was refused.
    RegistrationRefused {
        /// Who.
        subject: SubjectId,
        /// Why.
        reason: RegistrationError,
    },
    /// A subject was removed from the table.
    Unregistered {
        /// Who.
        subject: SubjectId,
    },
    /// The global policy (`subject: None`) or a subject's limits changed.
    PolicyChanged {
        /// The subject whose override changed, if any.
        subject: Option<SubjectId>,
    },
    /// A subject crossed its soft limit (once per crossing; see `bounds::SOFT_REARM_DIVISOR`).
    SoftExceeded {
        /// Who.
        subject: SubjectId,
        /// Its enforced bytes.
        bytes: u64,
        /// Its soft limit.
        soft: u64,
    },
    /// A subject's kernel figure exceeds its own report by more than the policy's margin.
    UnderReport {
        /// Who.
        subject: SubjectId,
        /// What it reported (zero if it never reported).
        reported: u64,
        /// What the kernel charges it.
        kernel: u64,
    },
    /// The core decided to terminate a subject. Logged before the authority is called.
    KillDecided {
        /// Who.
        subject: SubjectId,
        /// Its enforced bytes at the decision.
        bytes: u64,
        /// Why.
        reason: KillReason,
    },
    /// A termination request is being handed to the authority.
    KillRequested {
        /// Who.
        subject: SubjectId,
        /// The request.
        ticket: Ticket,
        /// How hard.
        mode: TerminationMode,
    },
    /// The authority accepted a request.
    KillAcknowledged {
        /// Who.
        subject: SubjectId,
        /// The request.
        ticket: Ticket,
    },
    /// The subject exited after an acknowledged request: the kill happened.
    KillConfirmed {
        /// Who.
        subject: SubjectId,
        /// Its enforced bytes at the decision.
        bytes: u64,
    },
    /// The core refused to kill a subject that is over its limit (once per incident).
    KillDenied {
        /// Who.
        subject: SubjectId,
        /// Its enforced bytes.
        bytes: u64,
        /// Why.
        reason: DenyReason,
    },
    /// A kill is due but the kill budget is spent; it is retried every tick while due.
    KillThrottled {
        /// Who.
        subject: SubjectId,
        /// Its enforced bytes.
        bytes: u64,
    },
    /// The authority refused a request; retried no sooner than one kill window later.
    KillRefused {
        /// Who.
        subject: SubjectId,
        /// The request.
        ticket: Ticket,
        /// The authority's reason.
        reason: RefusalReason,
    },
    /// No exit by the deadline after a graceful request: a forced request follows.
    KillEscalated {
        /// Who.
        subject: SubjectId,
        /// The graceful request that went unanswered by an exit.
        ticket: Ticket,
    },
    /// No exit by the deadline after the forced request. Not retried in this incident.
    KillFailed {
        /// Who.
        subject: SubjectId,
        /// Its enforced bytes at the decision.
        bytes: u64,
    },
    /// Observe-only: the core would have decided this kill.
    WouldKill {
        /// Who.
        subject: SubjectId,
        /// Its enforced bytes.
        bytes: u64,
        /// Why.
        reason: KillReason,
    },
    /// A subject exited without an acknowledged kill of ours.
    Exited {
        /// Who.
        subject: SubjectId,
        /// A request of ours was pending but not acknowledged: not counted as our kill.
        during_kill: bool,
    },
    /// A frame was rejected (the first of each reason in each tick; all are counted).
    FrameRejected {
        /// The authenticated sender.
        sender: SubjectId,
        /// Why.
        reason: Rejection,
    },
    /// An answer quoted a ticket that is not pending (late, duplicated or unknown).
    AnswerIgnored {
        /// The ticket quoted.
        ticket: Ticket,
    },
    /// A tick went backwards and was clamped to the current time.
    TickClamped {
        /// The tick received.
        got: Tick,
    },
    /// A policy change was refused; the policy in force is unchanged.
    PolicyRefused {
        /// The subject whose override was refused, or `None` for the global policy.
        subject: Option<SubjectId>,
        /// The first setting at fault.
        reason: PolicyError,
    },
    /// The watchdog took over from a previous run ([`Restore::Resume`](crate::Restore)).
    Resumed {
        /// The tick it continues from.
        tick: Tick,
        /// The first ticket it will issue.
        next_ticket: Ticket,
    },
    /// A kill requested by a previous run was adopted ([`Restore::KillInFlight`](crate::Restore)).
    KillAdopted {
        /// Who.
        subject: SubjectId,
        /// The request.
        ticket: Ticket,
        /// How hard it asked.
        mode: TerminationMode,
        /// The authority had accepted it.
        acknowledged: bool,
    },
    /// A subject that reports has had no frame accepted for `report_stale_ticks` ticks (once
    /// per silence: another only after a frame of it is accepted again).
    ReportStale {
        /// Who.
        subject: SubjectId,
        /// The tick of its last accepted frame, or of its registration if it never had one.
        since: Tick,
    },
    /// A subject that crossed its soft limit is asked to reclaim. Logged before the request
    /// is handed out; its id is the event's tick.
    ReclaimRequested {
        /// Who.
        subject: SubjectId,
        /// The bytes it is asked to be at or below.
        target: u64,
        /// The tick by which it must be.
        deadline: Tick,
    },
    /// Observe-only: the reclaim request that would have been made (nothing is sent).
    ReclaimWouldRequest {
        /// Who.
        subject: SubjectId,
        /// The target.
        target: u64,
        /// The deadline.
        deadline: Tick,
    },
    /// The subject acknowledged its pending reclaim request (a claim: only its figures count).
    ReclaimAcknowledged {
        /// Who.
        subject: SubjectId,
    },
    /// The enforced bytes reached the target by the deadline: the incident ends, no kill.
    ReclaimMet {
        /// Who.
        subject: SubjectId,
        /// Its enforced bytes.
        bytes: u64,
    },
    /// The deadline passed above the target (or the hard limit came first, or reclaim was
    /// turned off): the incident goes on as without reclaim.
    ReclaimMissed {
        /// Who.
        subject: SubjectId,
        /// Its enforced bytes.
        bytes: u64,
    },
}

/// A fieldless mirror of [`EventKind`], for per-kind counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum EventTag {
    Registered = 0,
    RegistrationRefused,
    Unregistered,
    PolicyChanged,
    SoftExceeded,
    UnderReport,
    KillDecided,
    KillRequested,
    KillAcknowledged,
    KillConfirmed,
    KillDenied,
    KillThrottled,
    KillRefused,
    KillEscalated,
    KillFailed,
    WouldKill,
    Exited,
    FrameRejected,
    AnswerIgnored,
    TickClamped,
    PolicyRefused,
    ReportStale,
    Resumed,
    KillAdopted,
    ReclaimRequested,
    ReclaimWouldRequest,
    ReclaimAcknowledged,
    ReclaimMet,
    ReclaimMissed,
}

impl EventTag {
    /// How many kinds there are.
    pub const COUNT: usize = 29;
}

impl EventKind {
    /// Which kind this is.
    #[must_use]
    pub const fn tag(&self) -> EventTag {
        match self {
            Self::Registered { .. } => EventTag::Registered,
            Self::RegistrationRefused { .. } => EventTag::RegistrationRefused,
            Self::Unregistered { .. } => EventTag::Unregistered,
            Self::PolicyChanged { .. } => EventTag::PolicyChanged,
            Self::SoftExceeded { .. } => EventTag::SoftExceeded,
            Self::UnderReport { .. } => EventTag::UnderReport,
            Self::KillDecided { .. } => EventTag::KillDecided,
            Self::KillRequested { .. } => EventTag::KillRequested,
            Self::KillAcknowledged { .. } => EventTag::KillAcknowledged,
            Self::KillConfirmed { .. } => EventTag::KillConfirmed,
            Self::KillDenied { .. } => EventTag::KillDenied,
            Self::KillThrottled { .. } => EventTag::KillThrottled,
            Self::KillRefused { .. } => EventTag::KillRefused,
            Self::KillEscalated { .. } => EventTag::KillEscalated,
            Self::KillFailed { .. } => EventTag::KillFailed,
            Self::WouldKill { .. } => EventTag::WouldKill,
            Self::Exited { .. } => EventTag::Exited,
            Self::FrameRejected { .. } => EventTag::FrameRejected,
            Self::AnswerIgnored { .. } => EventTag::AnswerIgnored,
            Self::TickClamped { .. } => EventTag::TickClamped,
            Self::PolicyRefused { .. } => EventTag::PolicyRefused,
            Self::ReportStale { .. } => EventTag::ReportStale,
            Self::Resumed { .. } => EventTag::Resumed,
            Self::KillAdopted { .. } => EventTag::KillAdopted,
            Self::ReclaimRequested { .. } => EventTag::ReclaimRequested,
            Self::ReclaimWouldRequest { .. } => EventTag::ReclaimWouldRequest,
            Self::ReclaimAcknowledged { .. } => EventTag::ReclaimAcknowledged,
            Self::ReclaimMet { .. } => EventTag::ReclaimMet,
            Self::ReclaimMissed { .. } => EventTag::ReclaimMissed,
        }
    }
}

/// One entry of the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Event {
    /// Position in the log: starts at 0, grows by one per event, never reused.
    pub seq: u64,
    /// The tick during which it happened.
    pub tick: Tick,
    /// What happened.
    pub kind: EventKind,
}

/// A fixed-capacity ring of the last `N` events. When full, the oldest is overwritten and the
/// loss is visible: readers see it as [`Events::lost`], and per-kind counters are kept apart.
#[derive(Debug, Clone)]
pub(crate) struct EventLog<const N: usize> {
    slots: [(Tick, Option<EventKind>); N],
    /// Sequence number the next event will get.
    next_seq: u64,
    /// The first sequence number of this run: 0, or where a resumed run took over. Events
    /// before it belong to the previous run: a reader who had not read them lost them.
    first_seq: u64,
}

impl<const N: usize> EventLog<N> {
    const NON_EMPTY: () = assert!(N > 0, "the event ring needs at least one slot");

    pub(crate) const fn new() -> Self {
        let () = Self::NON_EMPTY;
        EventLog {
            slots: [(Tick::ZERO, None); N],
            next_seq: 0,
            first_seq: 0,
        }
    }

    pub(crate) fn push(&mut self, tick: Tick, kind: EventKind) -> u64 {
        let seq = self.next_seq;
        self.slots[(seq % N as u64) as usize] = (tick, Some(kind));
        self.next_seq = seq.wrapping_add(1);
        seq
    }

    pub(crate) const fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Numbers the next event `seq` (an empty log taking over from a previous run's).
    pub(crate) fn resume_at(&mut self, seq: u64) {
        self.next_seq = seq;
        self.first_seq = seq;
    }

    /// The sequence number of the oldest event still held.
    pub(crate) const fn oldest_seq(&self) -> u64 {
        let ring = self.next_seq.saturating_sub(N as u64);
        if ring > self.first_seq {
            ring
        } else {
            self.first_seq
        }
    }

    fn get(&self, seq: u64) -> Option<Event> {
        if seq < self.oldest_seq() || seq >= self.next_seq {
            return None;
        }
        let (tick, kind) = self.slots[(seq % N as u64) as usize];
        kind.map(|kind| Event { seq, tick, kind })
    }

    pub(crate) fn read(&self, since_seq: u64, limit: usize) -> Events<'_, N> {
        let start = since_seq.max(self.oldest_seq()).min(self.next_seq);
        let lost = self.oldest_seq().saturating_sub(since_seq);
        let end = start.saturating_add(limit as u64).min(self.next_seq);
        Events {
            log: self,
            next: start,
            end,
            lost,
        }
    }
}

/// Events read with [`Watchdog::events`](crate::Watchdog::events), oldest first.
#[derive(Debug, Clone)]
pub struct Events<'a, const N: usize> {
    log: &'a EventLog<N>,
    next: u64,
    end: u64,
    lost: u64,
}

impl<const N: usize> Events<'_, N> {
    /// How many events the reader missed because they were overwritten before it asked
    /// (zero unless `since_seq` was older than the oldest event held).
    #[must_use]
    pub const fn lost(&self) -> u64 {
        self.lost
    }

    /// The `since_seq` to pass next time to continue after this page.
    #[must_use]
    pub const fn resume_seq(&self) -> u64 {
        self.end
    }
}

impl<const N: usize> Iterator for Events<'_, N> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        while self.next < self.end {
            let seq = self.next;
            self.next += 1;
            if let Some(e) = self.log.get(seq) {
                return Some(e);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn tick_event(n: u64) -> EventKind {
        EventKind::TickClamped { got: Tick(n) }
    }

    #[test]
    fn ring_keeps_the_last_n_and_reports_what_a_reader_lost() {
        let mut log = EventLog::<4>::new();
        for n in 0..10 {
            assert_eq!(log.push(Tick(n), tick_event(n)), n);
        }
        let page = log.read(0, 100);
        assert_eq!(page.lost(), 6);
        let seqs: [u64; 4] = core::array::from_fn({
            let mut it = page.clone();
            move |_| it.next().map_or(u64::MAX, |e| e.seq)
        });
        assert_eq!(seqs, [6, 7, 8, 9]);
        assert_eq!(page.resume_seq(), 10);
        assert_eq!(log.read(8, 1).map(|e| e.seq).next(), Some(8));
        assert_eq!(log.read(8, 1).count(), 1);
        assert_eq!(log.read(8, 1).lost(), 0);
        assert_eq!(log.read(10, 5).count(), 0);
        assert_eq!(log.read(u64::MAX, 5).count(), 0);
    }

    #[test]
    fn a_resumed_log_numbers_on_and_counts_the_previous_runs_unread_events_as_lost() {
        let mut log = EventLog::<4>::new();
        log.resume_at(100);
        assert_eq!(log.push(Tick(1), tick_event(1)), 100);
        // A reader who had read up to 97 lost 98 and 99, which died with the previous run.
        let page = log.read(98, 10);
        assert_eq!(page.lost(), 2);
        assert_eq!(page.map(|e| e.seq).collect::<std::vec::Vec<_>>(), [100]);
        // A reader who had read everything loses nothing.
        assert_eq!(log.read(100, 10).lost(), 0);
    }

    #[test]
    fn rejection_table_is_in_discriminant_order() {
        for (i, r) in Rejection::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
