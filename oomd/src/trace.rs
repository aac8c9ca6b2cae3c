//! One readable line per event, in the words of the serial-console marker contract.
//!
//! The Linux edge prints these lines on its console and stderr; `oomd-sim` prints them in its
//! traces. Keeping the words here means the simulator and the real service cannot disagree.
//! Two of them are contract markers that tests and the QEMU selftest match exactly:
//!
//! - `oomd: kill app=<name> bytes=<n>` ([`EventKind::KillConfirmed`]), and
//! - `oomd: kill denied (subject=<name> reason=<r>)` ([`EventKind::KillDenied`]).

use core::fmt::{self, Write};

use memstat::SubjectId;

use crate::{DenyReason, EventKind, KillReason, TerminationMode};

/// Turns subject ids back into service names for display.
pub trait SubjectNames {
    /// The name of `id`, if known. Unknown ids are shown as 16 hex digits.
    fn name(&self, id: SubjectId) -> Option<&str>;
}

/// Knows no names: every subject is shown by id.
impl SubjectNames for () {
    fn name(&self, _: SubjectId) -> Option<&str> {
        None
    }
}

struct Name<'a, N: SubjectNames + ?Sized>(&'a N, SubjectId);

impl<N: SubjectNames + ?Sized> fmt::Display for Name<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name(self.1) {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.1),
        }
    }
}

impl KillReason {
    /// The word traces use.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HardLimit => "hard-limit",
            Self::SoftGrace => "soft-grace",
        }
    }
}

impl DenyReason {
    /// The word the `kill denied` marker uses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
        }
    }
}

impl TerminationMode {
    /// The word traces use.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Graceful => "graceful",
            Self::Forced => "forced",
        }
    }
}

impl crate::RegistrationError {
    /// The word traces use.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::TableFull => "table-full",
        }
    }
}

/// Writes the line for `kind` (without a line ending).
pub fn write_line<W: Write + ?Sized, N: SubjectNames + ?Sized>(
    w: &mut W,
    kind: &EventKind,
    names: &N,
) -> fmt::Result {
    let n = |id| Name(names, id);
    match *kind {
        EventKind::Registered {
            subject,
            class,
            critical,
        } => write!(
            w,
            "oomd: register app={} class={} critical={}",
            n(subject),
            class.as_str(),
            if critical { "yes" } else { "no" }
        ),
        EventKind::RegistrationRefused { subject, reason } => write!(
            w,
            "oomd: register refused (subject={} reason={})",
            n(subject),
            reason.as_str()
        ),
        EventKind::Unregistered { subject } => write!(w, "oomd: unregister app={}", n(subject)),
        EventKind::PolicyChanged { subject: None } => w.write_str("oomd: policy changed (global)"),
        EventKind::PolicyChanged { subject: Some(s) } => {
            write!(w, "oomd: policy changed (subject={})", n(s))
        }
        EventKind::SoftExceeded {
            subject,
            bytes,
            soft,
        } => {
            write!(
                w,
                "oomd: soft limit app={} bytes={bytes} soft={soft}",
                n(subject)
            )
        }
        EventKind::UnderReport {
            subject,
            reported,
            kernel,
        } => write!(
            w,
            "oomd: under-report app={} reported={reported} kernel={kernel}",
            n(subject)
        ),
        EventKind::KillDecided {
            subject,
            bytes,
            reason,
        } => write!(
            w,
            "oomd: kill decided app={} bytes={bytes} reason={}",
            n(subject),
            reason.as_str()
        ),
        EventKind::KillRequested {
            subject,
            ticket,
            mode,
        } => write!(
            w,
            "oomd: kill requested app={} ticket={} mode={}",
            n(subject),
            ticket.0,
            mode.as_str()
        ),
        EventKind::KillAcknowledged { subject, ticket } => {
            write!(
                w,
                "oomd: kill acknowledged app={} ticket={}",
                n(subject),
                ticket.0
            )
        }
        EventKind::KillConfirmed { subject, bytes } => {
            write!(w, "oomd: kill app={} bytes={bytes}", n(subject))
        }
        EventKind::KillDenied {
            subject, reason, ..
        } => write!(
            w,
            "oomd: kill denied (subject={} reason={})",
            n(subject),
            reason.as_str()
        ),
        EventKind::KillThrottled { subject, bytes } => {
            write!(w, "oomd: kill throttled app={} bytes={bytes}", n(subject))
        }
        EventKind::KillRefused {
            subject,
            ticket,
            reason,
        } => write!(
            w,
            "oomd: kill refused app={} ticket={} reason={}",
            n(subject),
            ticket.0,
            reason.as_str()
        ),
        EventKind::KillEscalated { subject, ticket } => {
            write!(
                w,
                "oomd: kill escalated app={} ticket={}",
                n(subject),
                ticket.0
            )
        }
        EventKind::KillFailed { subject, bytes } => {
            write!(w, "oomd: kill failed app={} bytes={bytes}", n(subject))
        }
        EventKind::WouldKill {
            subject,
            bytes,
            reason,
        } => write!(
            w,
            "oomd: would kill app={} bytes={bytes} reason={}",
            n(subject),
            reason.as_str()
        ),
        EventKind::Exited {
            subject,
            during_kill: false,
        } => {
            write!(w, "oomd: exited app={}", n(subject))
        }
        EventKind::Exited {
            subject,
            during_kill: true,
        } => {
            write!(w, "oomd: exited app={} (kill not acknowledged)", n(subject))
        }
        EventKind::FrameRejected { sender, reason } => write!(
            w,
            "oomd: frame rejected (sender={} reason={})",
            n(sender),
            reason.as_str()
        ),
        EventKind::AnswerIgnored { ticket } => {
            write!(w, "oomd: answer ignored ticket={}", ticket.0)
        }
        EventKind::TickClamped { got } => write!(w, "oomd: tick clamped got={got}"),
        EventKind::PolicyRefused {
            subject: None,
            reason,
        } => write!(w, "oomd: policy refused (global): {reason}"),
        EventKind::PolicyRefused {
            subject: Some(s),
            reason,
        } => write!(w, "oomd: policy refused (subject={}): {reason}", n(s)),
        EventKind::ReportStale { subject, since } => {
            write!(w, "oomd: report stale app={} since={since}", n(subject))
        }
        EventKind::Resumed { tick, next_ticket } => {
            write!(w, "oomd: resumed tick={tick} next_ticket={}", next_ticket.0)
        }
        EventKind::KillAdopted {
            subject,
            ticket,
            mode,
            acknowledged,
        } => write!(
            w,
            "oomd: kill adopted app={} ticket={} mode={}{}",
            n(subject),
            ticket.0,
            mode.as_str(),
            if acknowledged { " (acknowledged)" } else { "" }
        ),
        EventKind::ReclaimRequested {
            subject,
            target,
            deadline,
        } => write!(
            w,
            "oomd: reclaim requested app={} target={target} deadline={deadline}",
            n(subject)
        ),
        EventKind::ReclaimWouldRequest {
            subject,
            target,
            deadline,
        } => write!(
            w,
            "oomd: reclaim would-request app={} target={target} deadline={deadline}",
            n(subject)
        ),
        EventKind::ReclaimAcknowledged { subject } => {
            write!(w, "oomd: reclaim acknowledged app={}", n(subject))
        }
        EventKind::ReclaimMet { subject, bytes } => {
            write!(w, "oomd: reclaim met app={} bytes={bytes}", n(subject))
        }
        EventKind::ReclaimMissed { subject, bytes } => {
            write!(w, "oomd: reclaim missed app={} bytes={bytes}", n(subject))
        }
    }
}
