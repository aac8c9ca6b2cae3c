//! `Link`: whether the transport's channel is up, and the reconnection backoff.
#![forbid(unsafe_code)]

use core::time::Duration;

use super::{PublisherConfig, Timestamp};

/// The channel as the core last saw it, with the wait to apply at the next failure.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Link {
    state: State,
    /// The wait before the next attempt, should the channel close or an attempt fail now.
    next_wait: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Frames go to the transport.
    Up,
    /// Closed, and the transport cannot reconnect: nothing is ever sent again.
    Dead,
    /// Closed; the first frame at or after `since + wait` asks the transport to reconnect.
    Down { since: Timestamp, wait: Duration },
}

/// What to do with a due frame, as far as the channel is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Send it.
    Open,
    /// Drop it: the backoff has not elapsed.
    BackingOff,
    /// Drop it: the channel is gone for good.
    Dead,
    /// Ask the transport to reconnect, then send it if that worked.
    Reconnect,
}

impl Link {
    pub(crate) const fn new(config: &PublisherConfig) -> Self {
        Self {
            state: State::Up,
            next_wait: config.first_backoff(),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.state == State::Up
    }

    /// Whether a frame built at `now` may go to the transport. Time that went backwards
    /// counts as none passing since the channel closed.
    pub(crate) fn gate(&self, now: Timestamp) -> Gate {
        match self.state {
            State::Up => Gate::Open,
            State::Dead => Gate::Dead,
            State::Down { since, wait } if now.saturating_duration_since(since) < wait => {
                Gate::BackingOff
            }
            State::Down { .. } => Gate::Reconnect,
        }
    }

    /// The channel closed, or an attempt to reopen it failed, at `now`. A transport that can
    /// reconnect is asked to again after the current wait, which then doubles (up to
    /// `backoff_max`); one that cannot is dead.
    pub(crate) fn closed(&mut self, config: &PublisherConfig, now: Timestamp, can_reconnect: bool) {
        if !can_reconnect {
            self.state = State::Dead;
            return;
        }
        self.state = State::Down {
            since: now,
            wait: self.next_wait,
        };
        self.next_wait = self.next_wait.saturating_mul(2).min(config.backoff_max);
    }

    /// The transport reconnected.
    pub(crate) fn reconnected(&mut self) {
        self.state = State::Up;
    }

    /// A frame was sent: the next outage starts from the first wait again.
    pub(crate) fn sent(&mut self, config: &PublisherConfig) {
        self.next_wait = config.first_backoff();
    }
}
