//! The rules of a tick, written once: what one subject needs at tick `now`.
//!
//! [`next_action`] is a pure function of one subject's row, its limits, the policy and the
//! tick. The watchdog computes it for every subject at each tick, skips the subjects whose
//! action [`is_none`](Action::is_none), sorts the rest into the decision order and applies
//! each action (`Watchdog::apply`). Applying an action that is none would change nothing, by
//! construction: the skip is the rule, not an estimate of it.
//!
//! Not here: the kill budget, criticality and observe-only mode. They decide *how* a due kill
//! ends (denied, throttled, would-kill, requested) and depend on what other subjects did in
//! the same tick, so they are applied in order, by the watchdog.

use crate::subject::Subject;
use crate::{KillReason, KillState, Limits, Policy, TerminationMode, Tick};

/// What one subject needs at one tick. The fields are applied in the order they are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Action {
    /// The under-report flag's new value, when it changes; an event when it turns on.
    pub(crate) underreport: Option<bool>,
    /// The report has just turned stale: one event, until a frame is accepted again.
    pub(crate) report_stale: bool,
    /// The deadline of the pending request (of this mode) has passed: a graceful request is
    /// escalated to a forced one, a forced one has failed.
    pub(crate) deadline_passed: Option<TerminationMode>,
    /// The pending reclaim request is settled: met (the incident ends without a kill) or
    /// missed (the incident goes on under the ordinary rules).
    pub(crate) reclaim: Option<Reclaim>,
    /// The incident begins or ends.
    pub(crate) incident: Option<Incident>,
    /// The incident that begins asks the subject to reclaim (reclaim is on and no hard-limit
    /// kill is due at once).
    pub(crate) request_reclaim: bool,
    /// Back from throttled to idle: the kill is no longer due.
    pub(crate) unthrottle: bool,
    /// A kill is due and the kill state lets it be decided now.
    pub(crate) kill: Option<KillReason>,
}

/// A change of incident: the time over soft, from the crossing to the re-arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Incident {
    /// The enforced bytes reached the soft limit: one warning.
    Begins,
    /// The enforced bytes fell below the re-arm threshold: whatever was denied, refused,
    /// failed or throttled re-arms.
    Ends,
}

/// How a pending reclaim request was settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reclaim {
    /// The enforced bytes are at or below the target, by the deadline.
    Met,
    /// The deadline passed above the target, the hard limit was reached first, or reclaim
    /// was turned off while the request was pending.
    Missed,
    /// A would-request is pending and observe-only mode is off: the incident starts afresh
    /// now, with a real request.
    Reissue,
}

impl Action {
    /// Nothing to do.
    pub(crate) const NONE: Action = Action {
        underreport: None,
        report_stale: false,
        deadline_passed: None,
        reclaim: None,
        incident: None,
        request_reclaim: false,
        unthrottle: false,
        kill: None,
    };

    /// Whether applying this action would change nothing: the tick skips the subject.
    #[inline]
    pub(crate) fn is_none(&self) -> bool {
        // Field by field, not `== NONE`: this runs for every subject at every tick.
        self.underreport.is_none()
            && !self.report_stale
            && self.deadline_passed.is_none()
            && self.reclaim.is_none()
            && self.incident.is_none()
            && !self.request_reclaim
            && !self.unthrottle
            && self.kill.is_none()
    }
}

/// What subject `s`, under `limits` and `policy`, needs at tick `now`; `bytes` is its enforced
/// figure (`s.enforced(policy, now)`, computed once by the caller, which sorts on it too).
///
/// The rules, in order: an under-report starts or ends; a report turns stale; a pending kill
/// waits for its deadline and nothing else; a pending reclaim request is met (at or below its
/// target: the incident ends, nothing is due), is made for real (a would-request, once
/// observe-only mode is off: the incident starts afresh), waits (only the hard limit can make
/// a kill due; the incident does not end on the re-arm threshold) or is missed (its deadline
/// passed, or the hard limit was reached: the ordinary rules go on); otherwise the incident
/// begins (at soft, asking for a reclaim when reclaim is on, no hard-limit kill is due at once
/// and the subject was not asked, and met, in the last kill window) or ends (below the re-arm
/// threshold), and a kill is due at hard, or once over soft for the soft
/// grace (when there is one), if the kill state allows it: idle or throttled; refused, once
/// the retry time has come; would-kill, once observe-only mode is off. Denied and failed
/// wait for the incident to end.
// Inlined into the tick's scan, which runs it for every subject: measurably faster
// (benches/core.rs, docs/perf.md).
#[inline(always)]
pub(crate) fn next_action(
    s: &Subject,
    limits: &Limits,
    policy: &Policy,
    now: Tick,
    bytes: u64,
) -> Action {
    if !s.running() {
        return Action::NONE;
    }
    let mut action = Action::NONE;
    let under = s.under_reports(policy.underreport_margin_bytes);
    if under != s.underreport_noted() {
        action.underreport = Some(under);
    }
    action.report_stale = !s.stale_noted() && s.report_is_stale(now, policy.report_stale_ticks);

    if let KillState::Pending { deadline, mode, .. } = s.kill {
        if now >= deadline {
            action.deadline_passed = Some(mode);
        }
        return action;
    }

    let mut over_soft_since = s.over_soft_since();
    let below_soft = bytes < limits.soft_bytes;
    if over_soft_since.is_none() && below_soft && matches!(s.kill, KillState::Idle) {
        // The steady state of almost every subject: nothing open, nothing due (below soft
        // is below hard, and with no incident no grace runs, and no reclaim is pending).
        return action;
    }
    let mut reclaim_waits = false;
    if let Some(id) = s.reclaim_pending() {
        // The request's id is its incident's start.
        let since = Tick(id);
        let percent = policy.reclaim_target_percent;
        let deadline = since.plus(u64::from(policy.reclaim_deadline_ticks));
        if percent > 0 && bytes <= limits.reclaim_target(percent) {
            action.reclaim = Some(Reclaim::Met);
            action.incident = Some(Incident::Ends);
            return action;
        }
        if percent == 0 || bytes >= limits.hard_bytes {
            action.reclaim = Some(Reclaim::Missed);
        } else if s.reclaim_would() && !policy.observe_only {
            // Observe-only was turned off: the subject was never asked. It is asked now, for
            // real, with a deadline (and a soft grace) from now.
            action.reclaim = Some(Reclaim::Reissue);
            return action;
        } else if now >= deadline {
            action.reclaim = Some(Reclaim::Missed);
        } else {
            reclaim_waits = true;
        }
    }
    if below_soft && bytes < limits.soft_rearm_bytes() && !reclaim_waits {
        // The incident ends (or a kill state left without one is cleared): everything
        // re-arms to idle, and nothing is due so far below soft.
        action.incident = Some(Incident::Ends);
        return action;
    }
    if over_soft_since.is_none() && !below_soft {
        action.incident = Some(Incident::Begins);
        over_soft_since = Some(now);
        // One request per kill window at most: a subject asked less than a window ago (and
        // whose reclaim was met) has its ordinary soft grace this time, so that reclaiming
        // just in time and growing straight back cannot keep it over soft for good.
        let asked_lately = s
            .reclaim_met()
            .is_some_and(|asked| now.since(Tick(asked)) < u64::from(policy.kill_window_ticks));
        action.request_reclaim =
            policy.reclaim_target_percent > 0 && bytes < limits.hard_bytes && !asked_lately;
    }
    let reason = kill_reason(bytes, over_soft_since, limits, now)
        // While a reclaim request waits, only the hard limit kills.
        .filter(|&r| !reclaim_waits || r == KillReason::HardLimit);
    match (reason, s.kill) {
        (None, KillState::Throttled { .. }) => action.unthrottle = true,
        (Some(reason), KillState::Idle | KillState::Throttled { .. }) => {
            action.kill = Some(reason);
        }
        (Some(reason), KillState::Refused { retry_at }) if now >= retry_at => {
            action.kill = Some(reason);
        }
        (Some(reason), KillState::WouldKill { .. }) if !policy.observe_only => {
            action.kill = Some(reason);
        }
        _ => {}
    }
    action
}

/// Why a subject at `bytes`, over soft since `over_soft_since`, must be killed at `now`, if it
/// must: at or above hard, or over soft for at least the soft grace (a grace of 0 makes soft a
/// warning only).
#[inline]
pub(crate) fn kill_reason(
    bytes: u64,
    over_soft_since: Option<Tick>,
    limits: &Limits,
    now: Tick,
) -> Option<KillReason> {
    if bytes >= limits.hard_bytes {
        return Some(KillReason::HardLimit);
    }
    over_soft_since
        .filter(|&since| limits.soft_grace_ticks > 0 && now.since(since) >= limits.soft_grace_ticks)
        .map(|_| KillReason::SoftGrace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SubjectClass, Ticket};

    const SOFT: u64 = 1000;
    const HARD: u64 = 2000;
    const GRACE: u64 = 5;

    fn policy() -> Policy {
        Policy {
            limits: Limits {
                soft_bytes: SOFT,
                hard_bytes: HARD,
                soft_grace_ticks: GRACE,
                exit_deadline_ticks: 3,
            },
            underreport_margin_bytes: 100,
            report_stale_ticks: 10,
            ..Policy::default()
        }
    }

    /// A running subject registered at tick 0 that reported `bytes` at `at`.
    fn reporting(bytes: u64, at: Tick) -> Subject {
        let mut s = Subject::new(SubjectClass::Standard, false, true, Tick::ZERO);
        s.set_report(1, bytes, at);
        s
    }

    fn action(s: &Subject, now: u64) -> Action {
        let p = policy();
        let now = Tick(now);
        next_action(s, &p.limits, &p, now, s.enforced(&p, now))
    }

    #[test]
    fn steady_states_need_nothing() {
        // Below soft, fresh report: the common case.
        assert!(action(&reporting(10, Tick(1)), 2).is_none());
        // Over soft and warned, grace not yet over.
        let mut s = reporting(SOFT, Tick(1));
        s.set_over_soft_since(Some(Tick(1)));
        assert!(action(&s, 1 + GRACE - 1).is_none());
        // Between the re-arm threshold and soft, with no incident: nothing to re-arm.
        assert!(action(&reporting(SOFT - 1, Tick(1)), 2).is_none());
        // Exited subjects need nothing, whatever they reported.
        let mut s = reporting(HARD * 2, Tick(1));
        s.set_running(false);
        assert!(action(&s, 2).is_none());
        // Denied and failed wait for the incident to end.
        for kill in [
            KillState::Denied { since: Tick(1) },
            KillState::Failed { since: Tick(1) },
        ] {
            let mut s = reporting(HARD, Tick(1));
            s.set_over_soft_since(Some(Tick(1)));
            s.kill = kill;
            assert!(action(&s, 2).is_none(), "{kill:?}");
        }
    }

    #[test]
    fn a_crossing_begins_an_incident_and_hard_is_due_at_once() {
        let a = action(&reporting(SOFT, Tick(1)), 1);
        assert_eq!(a.incident, Some(Incident::Begins));
        assert_eq!(a.kill, None, "the grace starts at the crossing");
        let a = action(&reporting(HARD, Tick(1)), 1);
        assert_eq!(a.incident, Some(Incident::Begins));
        assert_eq!(a.kill, Some(KillReason::HardLimit));
    }

    #[test]
    fn the_soft_grace_ends_in_a_kill_and_a_grace_of_zero_never_does() {
        let mut s = reporting(SOFT, Tick(1));
        s.set_over_soft_since(Some(Tick(1)));
        assert_eq!(action(&s, 1 + GRACE).kill, Some(KillReason::SoftGrace));
        let mut p = policy();
        p.limits.soft_grace_ticks = 0;
        p.report_stale_ticks = 10_000;
        let now = Tick(1_000);
        let a = next_action(&s, &p.limits, &p, now, s.enforced(&p, now));
        assert!(a.is_none(), "{a:?}");
    }

    #[test]
    fn falling_below_the_rearm_threshold_ends_the_incident_and_rearms() {
        let rearm = policy().limits.soft_rearm_bytes();
        let mut s = reporting(rearm - 1, Tick(2));
        s.set_over_soft_since(Some(Tick(1)));
        s.kill = KillState::Denied { since: Tick(1) };
        let a = action(&s, 3);
        assert_eq!(a.incident, Some(Incident::Ends));
        assert_eq!(a.kill, None);
        // A kill state left without an incident (restored, say) re-arms too.
        let mut s = reporting(rearm - 1, Tick(2));
        s.kill = KillState::Failed { since: Tick(1) };
        assert_eq!(action(&s, 3).incident, Some(Incident::Ends));
    }

    #[test]
    fn a_pending_kill_waits_for_its_deadline_and_nothing_else() {
        let mut s = reporting(HARD * 4, Tick(1));
        for mode in [TerminationMode::Graceful, TerminationMode::Forced] {
            s.kill = KillState::Pending {
                ticket: Ticket(1),
                mode,
                acknowledged: true,
                escalated_from_acknowledged: false,
                deadline: Tick(5),
                bytes: HARD,
            };
            assert!(action(&s, 4).is_none(), "before the deadline: {mode:?}");
            let a = action(&s, 5);
            assert_eq!(a.deadline_passed, Some(mode));
            assert_eq!((a.incident, a.kill), (None, None));
        }
    }

    #[test]
    fn refused_waits_for_the_retry_and_throttled_retries_or_clears() {
        let mut s = reporting(HARD, Tick(1));
        s.set_over_soft_since(Some(Tick(1)));
        s.kill = KillState::Refused { retry_at: Tick(9) };
        assert!(action(&s, 8).is_none());
        assert_eq!(action(&s, 9).kill, Some(KillReason::HardLimit));

        s.kill = KillState::Throttled { since: Tick(1) };
        assert_eq!(action(&s, 2).kill, Some(KillReason::HardLimit));
        let mut calm = reporting(SOFT, Tick(1));
        calm.set_over_soft_since(Some(Tick(1)));
        calm.kill = KillState::Throttled { since: Tick(1) };
        let a = action(&calm, 2);
        assert!(a.unthrottle && a.kill.is_none(), "{a:?}");
    }

    #[test]
    fn would_kill_is_decided_again_once_observe_only_is_off() {
        let mut s = reporting(HARD, Tick(1));
        s.set_over_soft_since(Some(Tick(1)));
        s.kill = KillState::WouldKill { since: Tick(1) };
        let mut p = policy();
        p.observe_only = true;
        let now = Tick(2);
        assert!(next_action(&s, &p.limits, &p, now, HARD).is_none());
        p.observe_only = false;
        assert_eq!(
            next_action(&s, &p.limits, &p, now, HARD).kill,
            Some(KillReason::HardLimit)
        );
    }

    #[test]
    fn underreports_and_stale_reports_are_noted_once() {
        let mut s = reporting(10, Tick(1));
        s.set_kernel(10 + 101);
        assert_eq!(action(&s, 2).underreport, Some(true));
        s.set_underreport_noted(true);
        assert!(action(&s, 2).is_none());
        s.set_kernel(10);
        assert_eq!(action(&s, 2).underreport, Some(false));

        let s = reporting(10, Tick(1));
        assert!(action(&s, 10).is_none());
        assert!(action(&s, 11).report_stale);
        let mut noted = s;
        noted.set_stale_noted();
        assert!(action(&noted, 11).is_none());
    }
}
