//! The process authority: the only thing allowed to end a subject.
//!
//! The core never signals anything. When it has decided (and logged) that a subject must end,
//! it hands a [`TerminationRequest`] to an [`Authority`]. The authority carries it out in its
//! own time and reports back through [`Input::Answer`](crate::Input::Answer) (accepted or
//! refused, keyed by the request's [`Ticket`]) and [`Input::Exited`](crate::Input::Exited).
//!
//! The request call itself returns nothing on purpose: every fact that changes the core's
//! state arrives as an input, so a recorded input stream replays a run bit for bit without the
//! authority. An authority that fails at once (its transport is down, say) answers with
//! `Input::Answer { answer: Answer::Refused(..) }` like any other refusal.

use memstat::SubjectId;

use crate::Tick;

/// Identifies one termination request. Issued by the core in increasing order (wrapping after
/// 2^32 requests, far beyond any run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ticket(pub u32);

/// How hard to end a subject. Escalation only goes up: `Graceful` then `Forced`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum TerminationMode {
    /// Ask the subject to exit (SIGTERM on Linux) and give it time.
    Graceful = 1,
    /// End it now (SIGKILL / `cgroup.kill` on Linux).
    Forced = 2,
}

/// What the core asks the authority to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TerminationRequest {
    /// Quote this in the answer.
    pub ticket: Ticket,
    /// The service to end: all of it, by identity, never a PID.
    pub subject: SubjectId,
    /// How.
    pub mode: TerminationMode,
    /// Sequence number of the [`EventKind::KillRequested`](crate::EventKind::KillRequested)
    /// event that records this request: it exists before the request does, and lets the
    /// authority's own logs point at the audit record.
    pub audit_seq: u64,
    /// The enforced bytes at the decision. The authority keeps it with the termination, so
    /// that a restarted watchdog adopting the kill ([`Restore::KillInFlight`]) reports the
    /// figure it was decided on.
    ///
    /// [`Restore::KillInFlight`]: crate::Restore::KillInFlight
    pub bytes: u64,
}

/// What the core asks a subject, through whoever carries its memstat channel: reclaim down
/// to `target_bytes` by `deadline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReclaimRequest {
    /// The subject asked.
    pub subject: SubjectId,
    /// The request's id, which its acknowledgement quotes: the tick it was made. A subject has
    /// at most one request per incident and never two at one tick, so the ids of one channel
    /// never repeat.
    pub id: u64,
    /// The bytes it should be at or below (its enforced figure: the report, and the kernel
    /// figure too where that is enforced).
    pub target_bytes: u64,
    /// The tick by which it must be (`deadline.since(Tick(id))` ticks from the request: the
    /// edge turns that span into time with the policy's `sample_period_ms`).
    pub deadline: Tick,
    /// Sequence number of the [`EventKind::ReclaimRequested`](crate::EventKind) event that
    /// records this request.
    pub audit_seq: u64,
}

/// Where the core's requests go: the process authority's terminations, and the reclaim
/// requests that a subject's memstat channel carries (the edge routes each).
pub trait Authority {
    /// Start ending `request.subject`. Must not block. The outcome comes back later as inputs:
    /// one [`Answer`] for the ticket, then [`Input::Exited`](crate::Input::Exited) when the
    /// subject is gone. The core logs the request *before* calling this.
    fn request_termination(&mut self, request: TerminationRequest);

    /// Ask `request.subject` to reclaim. Must not block. Nothing comes back but what the
    /// subject sends ([`Input::ReclaimAck`](crate::Input::ReclaimAck), and its frames, which
    /// are what the core judges); a request that cannot be delivered is simply missed. The core
    /// logs the request *before* calling this.
    fn request_reclaim(&mut self, request: ReclaimRequest);
}

/// The authority's answer to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Answer {
    /// The authority has started ending the subject.
    Accepted,
    /// The authority will not end the subject.
    Refused(RefusalReason),
}

/// Why an authority refused. Crosses process boundaries: discriminants are fixed, only append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The authority protects this subject (defence in depth behind the core's own check).
    Critical = 1,
    /// The authority does not know the subject (it exited, or never ran under it).
    UnknownSubject = 2,
    /// The caller may not end subjects.
    NotPermitted = 3,
    /// The authority could not be reached or could not act.
    Unavailable = 4,
}

impl RefusalReason {
    /// The word logs and markers use.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::UnknownSubject => "unknown-subject",
            Self::NotPermitted => "not-permitted",
            Self::Unavailable => "unavailable",
        }
    }
}
