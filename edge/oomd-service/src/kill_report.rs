//! Kill reports: for each confirmed kill, how far the subject got over its hard limit and how
//! long each step took, from the crossing to the request to the exit.
//!
//! Built from the core's events as the service logs them, with the service's monotonic clock
//! beside the core's ticks, and the subject's enforced figure followed after every input while
//! an incident is open. The core knows none of it (its events stay small and its replay
//! exact); a report is the edge's measurement, logged after the `kill confirmed` event it
//! belongs to.
//!
//! The crossing is the first event of the incident that saw the subject at or over the limit
//! the kill is for: for a hard-limit kill its decision (decided in the input that crossed), or
//! the first `kill throttled` when the budget held it back; for a soft-grace kill the last
//! `soft exceeded`. A kill adopted from a previous run has no report: its crossing and request
//! were another process's.
//!
//! Bounded: one open incident per subject, the last [`MAX_KILL_REPORTS`] reports kept for
//! `oomctl events`; nothing allocates.

use std::time::Instant;

use memstat::SubjectId;
use oomd::{Event, EventKind, KillReason, Tick, Watchdog};
use oomd_proto::{KillReport, Span, MAX_KILL_REPORTS};

use crate::reserved::Reserved;

/// When something happened: the core's tick and the service's clock.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    tick: Tick,
    at: Instant,
}

impl Stamp {
    fn until(self, later: Stamp) -> Span {
        Span {
            ticks: later.tick.0.saturating_sub(self.tick.0),
            micros: u64::try_from(later.at.saturating_duration_since(self.at).as_micros())
                .unwrap_or(u64::MAX),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Decision {
    at: Stamp,
    bytes: u64,
    reason: KillReason,
    hard: u64,
}

/// One subject's incident, from its first crossing on.
#[derive(Debug, Clone, Copy)]
struct Incident {
    subject: SubjectId,
    /// The last `soft exceeded`, while it stays over soft.
    soft: Option<Stamp>,
    /// The first `kill throttled`, while it stays over hard.
    throttled: Option<Stamp>,
    decided: Option<Decision>,
    requested: Option<Stamp>,
    escalated: bool,
    peak: u64,
}

impl Incident {
    fn new(subject: SubjectId) -> Incident {
        Incident {
            subject,
            soft: None,
            throttled: None,
            decided: None,
            requested: None,
            escalated: false,
            peak: 0,
        }
    }
}

/// Open incidents and the last reports.
#[derive(Debug)]
pub(crate) struct KillReports<const N: usize> {
    /// Room for `N`, reserved at start (resident as incidents open).
    open: Reserved<Incident>,
    done: heapless::Deque<KillReport, MAX_KILL_REPORTS>,
}

impl<const N: usize> Default for KillReports<N> {
    fn default() -> Self {
        KillReports {
            open: Reserved::with_capacity(N),
            done: heapless::Deque::new(),
        }
    }
}

impl<const N: usize> KillReports<N> {
    /// Takes one event the core logged (at `now`); returns the report of a confirmed kill.
    pub(crate) fn on_event<const S: usize, const E: usize>(
        &mut self,
        event: &Event,
        now: Instant,
        wd: &Watchdog<S, E>,
    ) -> Option<KillReport> {
        let stamp = Stamp {
            tick: event.tick,
            at: now,
        };
        match event.kind {
            EventKind::SoftExceeded { subject, bytes, .. } => {
                let incident = self.incident(subject)?;
                incident.soft = Some(stamp);
                incident.peak = incident.peak.max(bytes);
            }
            EventKind::KillThrottled { subject, bytes } => {
                let incident = self.incident(subject)?;
                incident.throttled.get_or_insert(stamp);
                incident.peak = incident.peak.max(bytes);
            }
            EventKind::KillDecided {
                subject,
                bytes,
                reason,
            } => {
                let hard = wd.subject(subject).map_or(0, |s| s.limits.hard_bytes);
                let incident = self.incident(subject)?;
                incident.decided = Some(Decision {
                    at: stamp,
                    bytes,
                    reason,
                    hard,
                });
                incident.peak = incident.peak.max(bytes);
            }
            EventKind::KillRequested { subject, .. } => {
                let incident = self.find(subject)?;
                if incident.requested.is_some() {
                    incident.escalated = true;
                } else {
                    incident.requested = Some(stamp);
                }
            }
            EventKind::KillConfirmed { subject, .. } => {
                let report = self.find(subject).and_then(|i| i.report(event.seq, stamp));
                self.close(subject);
                if let Some(report) = report {
                    if self.done.is_full() {
                        self.done.pop_front();
                    }
                    let _ = self.done.push_back(report);
                }
                return report;
            }
            EventKind::KillFailed { subject, .. }
            | EventKind::Exited { subject, .. }
            | EventKind::Unregistered { subject }
            | EventKind::KillAdopted { subject, .. } => self.close(subject),
            _ => {}
        }
        None
    }

    /// After every input: the open incidents follow their subjects' enforced figures (the
    /// peak), and a crossing the subject went back under, with nothing decided, is forgotten.
    pub(crate) fn follow<const S: usize, const E: usize>(&mut self, wd: &Watchdog<S, E>) {
        self.open.retain_mut(|incident| {
            let Some(status) = wd.subject(incident.subject).filter(|s| s.running) else {
                return false;
            };
            incident.peak = incident.peak.max(status.enforced_bytes);
            if incident.decided.is_none() {
                if status.enforced_bytes < status.limits.hard_bytes {
                    incident.throttled = None;
                }
                if status.enforced_bytes < status.limits.soft_bytes {
                    incident.soft = None;
                }
            }
            incident.decided.is_some() || incident.throttled.is_some() || incident.soft.is_some()
        });
    }

    /// Whether any incident is open (so that [`follow`](Self::follow) has work).
    pub(crate) fn any_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// The report of the `kill confirmed` event `seq`, if it is still kept.
    pub(crate) fn for_event(&self, seq: u64) -> Option<KillReport> {
        self.done.iter().find(|r| r.seq == seq).copied()
    }

    fn find(&mut self, subject: SubjectId) -> Option<&mut Incident> {
        self.open.iter_mut().find(|i| i.subject == subject)
    }

    /// The subject's open incident, opened if it has none (`None` only if the table is full,
    /// which it cannot be: one incident per subject, as many as the core has subjects).
    fn incident(&mut self, subject: SubjectId) -> Option<&mut Incident> {
        if let Some(i) = self.open.iter().position(|i| i.subject == subject) {
            return self.open.get_mut(i);
        }
        self.open.push(Incident::new(subject)).ok()?;
        self.open.last_mut()
    }

    fn close(&mut self, subject: SubjectId) {
        self.open.retain_mut(|i| i.subject != subject);
    }
}

impl Incident {
    fn report(&self, seq: u64, exit: Stamp) -> Option<KillReport> {
        let decided = self.decided?;
        let requested = self.requested?;
        let crossing = match decided.reason {
            KillReason::HardLimit => self.throttled,
            KillReason::SoftGrace => self.soft,
            _ => None,
        }
        .unwrap_or(decided.at);
        Some(KillReport {
            seq,
            subject: self.subject,
            reason: decided.reason,
            bytes: decided.bytes,
            peak: self.peak,
            hard: decided.hard,
            crossing_to_request: crossing.until(requested),
            request_to_exit: requested.until(exit),
            escalated: self.escalated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oomd::{Limits, Policy, Registration, SubjectClass, TerminationMode, Ticket};
    use std::time::Duration;

    type Wd = Watchdog<4, 64>;

    fn hog() -> SubjectId {
        SubjectId::from_name("hog")
    }

    fn watchdog(soft: u64, hard: u64) -> Wd {
        let mut policy = Policy::default();
        policy.limits = Limits {
            soft_bytes: soft,
            hard_bytes: hard,
            ..policy.limits
        };
        let mut wd = Wd::new(policy).expect("policy");
        let reg = Registration {
            subject: hog(),
            class: SubjectClass::Standard,
            critical: false,
            reports: true,
        };
        let _ = wd.handle(oomd::Input::Register(reg), &mut NoAuthority);
        wd
    }

    struct NoAuthority;
    impl oomd::Authority for NoAuthority {
        fn request_termination(&mut self, _: oomd::TerminationRequest) {}
        fn request_reclaim(&mut self, _: oomd::ReclaimRequest) {}
    }

    fn ev(seq: u64, tick: u64, kind: EventKind) -> Event {
        Event {
            seq,
            tick: Tick(tick),
            kind,
        }
    }

    #[test]
    fn a_throttled_crossing_counts_from_the_throttle_and_an_escalation_is_told() {
        let wd = watchdog(100, 1000);
        let mut r = KillReports::<4>::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let s = hog();
        assert!(r
            .on_event(
                &ev(
                    1,
                    3,
                    EventKind::KillThrottled {
                        subject: s,
                        bytes: 1200
                    }
                ),
                at(0),
                &wd
            )
            .is_none());
        let decided = EventKind::KillDecided {
            subject: s,
            bytes: 1500,
            reason: KillReason::HardLimit,
        };
        r.on_event(&ev(2, 5, decided), at(20), &wd);
        let request = |mode| EventKind::KillRequested {
            subject: s,
            ticket: Ticket(1),
            mode,
        };
        r.on_event(&ev(3, 5, request(TerminationMode::Graceful)), at(21), &wd);
        r.on_event(&ev(4, 9, request(TerminationMode::Forced)), at(60), &wd);
        let confirmed = EventKind::KillConfirmed {
            subject: s,
            bytes: 1500,
        };
        let report = r
            .on_event(&ev(5, 10, confirmed), at(71), &wd)
            .expect("a report");
        assert_eq!(
            report,
            KillReport {
                seq: 5,
                subject: s,
                reason: KillReason::HardLimit,
                bytes: 1500,
                peak: 1500,
                hard: 1000,
                crossing_to_request: Span {
                    ticks: 2,
                    micros: 21_000
                },
                request_to_exit: Span {
                    ticks: 5,
                    micros: 50_000
                },
                escalated: true,
            }
        );
        assert_eq!(report.overshoot(), 500);
        assert_eq!(r.for_event(5), Some(report));
        assert!(!r.any_open());
    }

    #[test]
    fn a_soft_grace_kill_counts_from_the_soft_crossing() {
        let wd = watchdog(100, 1000);
        let mut r = KillReports::<4>::default();
        let t0 = Instant::now();
        let s = hog();
        let soft = EventKind::SoftExceeded {
            subject: s,
            bytes: 150,
            soft: 100,
        };
        r.on_event(&ev(1, 2, soft), t0, &wd);
        let decided = EventKind::KillDecided {
            subject: s,
            bytes: 160,
            reason: KillReason::SoftGrace,
        };
        r.on_event(&ev(2, 7, decided), t0 + Duration::from_millis(50), &wd);
        let request = EventKind::KillRequested {
            subject: s,
            ticket: Ticket(1),
            mode: TerminationMode::Graceful,
        };
        r.on_event(&ev(3, 7, request), t0 + Duration::from_millis(50), &wd);
        let confirmed = EventKind::KillConfirmed {
            subject: s,
            bytes: 160,
        };
        let report = r
            .on_event(&ev(4, 8, confirmed), t0 + Duration::from_millis(60), &wd)
            .expect("a report");
        assert_eq!(report.crossing_to_request.ticks, 5);
        assert_eq!(report.crossing_to_request.micros, 50_000);
        assert_eq!(report.overshoot(), 0);
        assert!(!report.escalated);
    }

    #[test]
    fn an_adopted_kill_has_no_report_and_old_reports_make_room() {
        let wd = watchdog(100, 1000);
        let mut r = KillReports::<4>::default();
        let now = Instant::now();
        let s = hog();
        let adopted = EventKind::KillAdopted {
            subject: s,
            ticket: Ticket(3),
            mode: TerminationMode::Graceful,
            acknowledged: true,
        };
        r.on_event(&ev(1, 1, adopted), now, &wd);
        let confirmed = EventKind::KillConfirmed {
            subject: s,
            bytes: 1,
        };
        assert!(r.on_event(&ev(2, 2, confirmed), now, &wd).is_none());

        for n in 0..(MAX_KILL_REPORTS as u64 + 3) {
            let seq = 10 + n * 3;
            let decided = EventKind::KillDecided {
                subject: s,
                bytes: 2000,
                reason: KillReason::HardLimit,
            };
            r.on_event(&ev(seq, n, decided), now, &wd);
            let request = EventKind::KillRequested {
                subject: s,
                ticket: Ticket(n as u32),
                mode: TerminationMode::Graceful,
            };
            r.on_event(&ev(seq + 1, n, request), now, &wd);
            assert!(r.on_event(&ev(seq + 2, n, confirmed), now, &wd).is_some());
        }
        assert_eq!(r.done.len(), MAX_KILL_REPORTS);
        assert_eq!(r.for_event(12), None, "the oldest made room");
        let last = 10 + (MAX_KILL_REPORTS as u64 + 2) * 3 + 2;
        assert!(r.for_event(last).is_some());
    }
}
