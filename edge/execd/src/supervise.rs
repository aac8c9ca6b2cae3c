//! Supervision of the watchdog: execd restarts the `role = "watchdog"` service whenever it
//! exits, and ends it (to restart it) when it stops proving it is alive.
//!
//! - **Restart.** Any exit of the watchdog schedules a restart: at once the first time, then
//!   after a backoff that doubles from [`RESTART_BACKOFF_INITIAL`] up to
//!   [`RESTART_BACKOFF_MAX`], and falls back to the start once the watchdog has stayed up for
//!   [`RESTART_BACKOFF_RESET`]. At most [`RESTART_BUDGET`] restarts in any
//!   [`RESTART_WINDOW`]: one more exit in the window and execd gives up
//!   (`execd: watchdog down`), since a watchdog that cannot stay up is better visibly down
//!   than flapping.
//! - **Liveness.** The oomd service sends a heartbeat on the authority channel at least every
//!   `oomd_proto::HEARTBEAT_INTERVAL` from its loop. A watchdog silent for longer than the
//!   heartbeat timeout (`--heartbeat-timeout-ms`, default
//!   `oomd_proto::DEFAULT_HEARTBEAT_TIMEOUT`) is wedged, or stopped (`SIGSTOP`): execd ends it
//!   (forced, its whole tree) and the restart follows from its exit.
//! - **Nothing is forgotten.** On every new authority channel execd announces every service
//!   that runs (with a new copy of the oomd end of its memstat channel, which execd keeps, so
//!   frames sent meanwhile are still read), every termination it carries out, and every exit
//!   after an accepted termination that the previous oomd did not acknowledge (`authority.rs`).
//!
//! Log lines: `execd: watchdog exited (<status>); restarting in <ms> ms`,
//! `execd: watchdog restarted (n=<k>)`, `execd: watchdog wedged: no heartbeat for <ms> ms;
//! ending it`, `execd: watchdog down (<k> restarts in <s> s)`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The delay of the second restart in a row (the first is at once); it doubles from there.
pub const RESTART_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// The longest delay between two restarts.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A watchdog up this long restarts at once again after its next exit.
pub const RESTART_BACKOFF_RESET: Duration = Duration::from_secs(10);
/// Restarts allowed in any [`RESTART_WINDOW`].
pub const RESTART_BUDGET: usize = 5;
/// The window of the restart budget.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// What to do after the watchdog exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterExit {
    /// Restart it at this instant.
    RestartAt(Instant),
    /// The budget is spent: leave it down.
    GiveUp {
        /// Restarts in the window.
        restarts: usize,
    },
}

/// The restart schedule, as plain data (tested without processes).
#[derive(Debug, Clone)]
pub(crate) struct Supervisor {
    /// When each restart of the window happened.
    restarts: VecDeque<Instant>,
    /// The delay the next restart waits, unless the watchdog stayed up long enough.
    backoff: Duration,
    /// When the running watchdog started.
    started_at: Option<Instant>,
    /// A restart is due at this instant.
    pub(crate) due: Option<Instant>,
    /// Restarts so far, for the log.
    pub(crate) total: u64,
    /// Gave up: no more restarts.
    pub(crate) down: bool,
}

impl Supervisor {
    pub(crate) fn new() -> Supervisor {
        Supervisor {
            restarts: VecDeque::new(),
            backoff: Duration::ZERO,
            started_at: None,
            due: None,
            total: 0,
            down: false,
        }
    }

    /// The watchdog started (first spawn or restart) at `now`.
    pub(crate) fn started(&mut self, now: Instant) {
        self.started_at = Some(now);
        self.due = None;
    }

    /// The watchdog exited at `now`: when to restart it, or to give up.
    pub(crate) fn exited(&mut self, now: Instant) -> AfterExit {
        let up = self
            .started_at
            .take()
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        if up >= RESTART_BACKOFF_RESET {
            self.backoff = Duration::ZERO;
        }
        while self
            .restarts
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= RESTART_WINDOW)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= RESTART_BUDGET {
            self.down = true;
            self.due = None;
            return AfterExit::GiveUp {
                restarts: self.restarts.len(),
            };
        }
        let at = now + self.backoff;
        self.backoff = if self.backoff.is_zero() {
            RESTART_BACKOFF_INITIAL
        } else {
            self.backoff.saturating_mul(2).min(RESTART_BACKOFF_MAX)
        };
        self.restarts.push_back(at);
        self.total += 1;
        self.due = Some(at);
        AfterExit::RestartAt(at)
    }
}

impl crate::Execd {
    /// The slot of the watchdog service, if the manifest has one.
    fn watchdog_slot(&self) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.spec.role == Some(crate::manifest::Role::Watchdog))
    }

    /// The watchdog's exit: schedule its restart, or give up (never while execd stops).
    pub(crate) fn watchdog_exited(&mut self, status: oomd_proto::ExitStatus) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        match self.supervisor.exited(now) {
            AfterExit::RestartAt(at) => {
                let ms = at.saturating_duration_since(now).as_millis();
                self.log.line(format_args!(
                    "execd: watchdog exited ({status}); restarting in {ms} ms"
                ));
            }
            AfterExit::GiveUp { restarts } => {
                self.stats.watchdog_down = true;
                self.log.line(format_args!(
                    "execd: watchdog down ({restarts} restarts in {} s)",
                    RESTART_WINDOW.as_secs()
                ));
            }
        }
    }

    /// When the watchdog's heartbeat is overdue, if it runs with a channel.
    pub(crate) fn heartbeat_deadline(&self) -> Option<Instant> {
        let i = self.watchdog_slot()?;
        let run = self.slots[i].run.as_ref()?;
        if run.ending || !matches!(run.phase, crate::execd::Phase::Running) {
            return None;
        }
        let link = self.link.as_ref()?;
        Some(link.last_heard + self.heartbeat_timeout)
    }

    /// One loop step of supervision: restart the watchdog when due; end it when its
    /// heartbeat is overdue.
    pub(crate) fn supervise(&mut self, now: Instant) {
        let Some(i) = self.watchdog_slot() else {
            return;
        };
        if self.slots[i].run.is_none() {
            if self.stopping || self.supervisor.down {
                return;
            }
            if self.supervisor.due.is_some_and(|at| at <= now) {
                match self.spawn_service(i) {
                    Ok(_) => {
                        self.stats.watchdog_restarts += 1;
                        self.log.line(format_args!(
                            "execd: watchdog restarted (n={})",
                            self.supervisor.total
                        ));
                        self.supervisor.started(now);
                    }
                    // Counts as an exit: the next attempt follows the backoff.
                    Err(_) => self.watchdog_exited(oomd_proto::ExitStatus::Code(-1)),
                }
            }
            return;
        }
        if self.heartbeat_deadline().is_some_and(|at| at <= now) {
            let silent = self.link.as_ref().map_or(0, |l| {
                now.saturating_duration_since(l.last_heard).as_millis()
            });
            self.log.line(format_args!(
                "execd: watchdog wedged: no heartbeat for {silent} ms; ending it"
            ));
            self.stats.watchdog_wedged += 1;
            if let Some(run) = &mut self.slots[i].run {
                run.ending = true;
            }
            if let Err(e) = self.signal_service(i, oomd::TerminationMode::Forced) {
                self.log
                    .line(format_args!("execd: cannot end the wedged watchdog ({e})"));
            }
        }
    }

    /// Selftest builds: ends the watchdog as a crash would (forced), for the boot selftest's
    /// proof of the restart. The caller was checked to be privileged.
    pub(crate) fn end_watchdog(&mut self) -> bool {
        let Some(i) = self.watchdog_slot() else {
            return false;
        };
        if self.slots[i].run.is_none() {
            return false;
        }
        self.log.line(format_args!(
            "execd: ending the watchdog on request (selftest)"
        ));
        self.signal_service(i, oomd::TerminationMode::Forced)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_restart_is_at_once_then_the_backoff_doubles_to_its_bound() {
        let t0 = Instant::now();
        let mut s = Supervisor::new();
        s.started(t0);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..RESTART_BUDGET {
            let AfterExit::RestartAt(at) = s.exited(now) else {
                panic!("gave up too early");
            };
            delays.push(at - now);
            now = at;
            s.started(now);
        }
        assert_eq!(
            delays,
            [0, 100, 200, 400, 800].map(Duration::from_millis).to_vec()
        );
        // The sixth exit within a minute: down.
        assert_eq!(
            s.exited(now),
            AfterExit::GiveUp {
                restarts: RESTART_BUDGET
            }
        );
        assert!(s.down);
    }

    #[test]
    fn a_watchdog_that_stayed_up_restarts_at_once_and_old_restarts_leave_the_window() {
        let t0 = Instant::now();
        let mut s = Supervisor::new();
        s.started(t0);
        assert_eq!(s.exited(t0), AfterExit::RestartAt(t0));
        s.started(t0);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            s.exited(later),
            AfterExit::RestartAt(later + RESTART_BACKOFF_INITIAL)
        );
        // Up for ten seconds: the backoff starts over.
        let up = later + RESTART_BACKOFF_INITIAL;
        s.started(up);
        let much_later = up + RESTART_BACKOFF_RESET;
        assert_eq!(s.exited(much_later), AfterExit::RestartAt(much_later));
        // A minute on, the window holds none of those restarts any more.
        let mut now = much_later + RESTART_WINDOW;
        for _ in 0..RESTART_BUDGET {
            s.started(now);
            now += RESTART_BACKOFF_RESET;
            assert!(matches!(s.exited(now), AfterExit::RestartAt(_)));
        }
        assert_eq!(s.total, 3 + RESTART_BUDGET as u64);
    }
}
