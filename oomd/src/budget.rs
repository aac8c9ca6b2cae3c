//! The kill budget: at most `kill_budget` kills decided in any `kill_window_ticks` ticks.

use crate::{bounds, Policy, Tick};

/// Recent kill decisions, to enforce the kill budget over a sliding window. Remembers the
/// newest [`bounds::MAX_KILL_BUDGET`] decisions, which is all a window can count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KillBudget {
    recent: [Tick; bounds::MAX_KILL_BUDGET as usize],
    len: usize,
    next: usize,
}

impl KillBudget {
    pub(crate) const fn new() -> Self {
        KillBudget {
            recent: [Tick::ZERO; bounds::MAX_KILL_BUDGET as usize],
            len: 0,
            next: 0,
        }
    }

    /// Kills decided in the `window` ticks ending at `now` (ticks `now - window + 1 ..= now`).
    fn used(&self, now: Tick, window: u64) -> usize {
        self.recent[..self.len]
            .iter()
            .filter(|&&t| now.since(t) < window)
            .count()
    }

    /// Whether one more kill may be decided at `now`.
    pub(crate) fn allows(&self, now: Tick, policy: &Policy) -> bool {
        self.used(now, u64::from(policy.kill_window_ticks)) < usize::from(policy.kill_budget)
    }

    /// Remembers a kill decided at `at`.
    pub(crate) fn record(&mut self, at: Tick) {
        self.recent[self.next] = at;
        self.next = (self.next + 1) % self.recent.len();
        self.len = (self.len + 1).min(self.recent.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(budget: u16, window: u32) -> Policy {
        Policy {
            kill_budget: budget,
            kill_window_ticks: window,
            ..Policy::default()
        }
    }

    #[test]
    fn the_window_slides() {
        let p = policy(2, 10);
        let mut b = KillBudget::new();
        b.record(Tick(1));
        b.record(Tick(5));
        assert!(!b.allows(Tick(10), &p), "ticks 1 and 5 are within 1..=10");
        assert!(b.allows(Tick(11), &p), "tick 1 left the window 2..=11");
    }

    #[test]
    fn only_the_newest_decisions_are_kept() {
        let p = policy(bounds::MAX_KILL_BUDGET, 1_000);
        let mut b = KillBudget::new();
        for t in 0..u64::from(bounds::MAX_KILL_BUDGET) * 2 {
            b.record(Tick(t));
        }
        assert_eq!(
            b.used(Tick(100), 1_000),
            usize::from(bounds::MAX_KILL_BUDGET)
        );
        assert!(!b.allows(Tick(100), &p));
    }
}
