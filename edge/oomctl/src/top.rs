//! `oomctl top`: the status table, refreshed.
//!
//! On a terminal it redraws in place and reads keys without echo: `q` or Ctrl-C quits and the
//! terminal is put back as it was. When stdout is not a terminal (a pipe, a file) it prints one
//! table after another, each after a `--- <n>` line, so that a script or a log keeps them all.
//! Kills are counted from the events oomd still holds (its ring): a subject's KILLS column is
//! its `kill confirmed` events since the oldest one still held, and says so.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use memstat::SubjectId;
use oomd::EventKind;
use oomd_proto::client::Client;
use oomd_proto::{ControlReply, ControlRequest};

use crate::{counters_text, one, status_table, unexpected, Failure};

/// Pages of events read per refresh, at most: oomd's whole event ring.
const MAX_PAGES_PER_REFRESH: usize =
    oomd::bounds::DEFAULT_EVENTS.div_ceil(oomd_proto::MAX_PAGE as usize);

/// Runs until `count` tables were shown, a quit key, or a failure.
pub(crate) fn run(client: &mut Client, every: Duration, count: Option<u64>) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let on_terminal = stdout.is_terminal();
    // Keys only where someone can type them: both ends a terminal.
    let keys = if on_terminal && std::io::stdin().is_terminal() {
        RawKeys::enter()
    } else {
        None
    };
    let mut kills: BTreeMap<SubjectId, u64> = BTreeMap::new();
    let mut since = 0;
    let mut shown = 0u64;
    loop {
        // The events since the last refresh, for the kill counts: at most a ring's worth of
        // pages per refresh, so that a service logging events as fast as they are read cannot
        // keep the table from being drawn (the rest is read at the next refresh).
        for _ in 0..MAX_PAGES_PER_REFRESH {
            let page = client.events(since)?;
            for view in &page.events {
                if let EventKind::KillConfirmed { subject, .. } = view.event.kind {
                    *kills.entry(subject).or_default() += 1;
                }
            }
            since = page.next;
            if page.events.is_empty() {
                break;
            }
        }
        let subjects = client.status()?;
        let counters = match one(client.control(&ControlRequest::Counters)?)? {
            ControlReply::Counters(c) => c,
            other => return Err(unexpected(&other)),
        };
        shown += 1;
        let mut text = String::new();
        if on_terminal {
            // Home and clear, then the table: one write, so the screen never shows half.
            text.push_str("\x1b[H\x1b[2J");
            text.push_str(&format!(
                "oomctl top: every {} ms{}; kills counted from event #{}\n\n",
                every.as_millis(),
                if keys.is_some() { ", q quits" } else { "" },
                counters.events_overwritten
            ));
        } else {
            text.push_str(&format!("--- {shown}\n"));
        }
        let body = format!(
            "{}{}",
            status_table(&subjects, Some(&kills)),
            counters_text(&counters)
        );
        // Only the input side of the terminal changed: output still turns "\n" into "\r\n".
        text.push_str(&body);
        let mut lock = stdout.lock();
        let written = lock.write_all(text.as_bytes()).and_then(|()| lock.flush());
        drop(lock);
        if written.is_err() {
            return Ok(()); // the reader went away (a closed pipe): nothing left to show
        }
        if count.is_some_and(|c| shown >= c) {
            return Ok(());
        }
        match &keys {
            Some(keys) => {
                if keys.quit_within(every) {
                    return Ok(());
                }
            }
            None => std::thread::sleep(every),
        }
    }
}

/// The terminal in non-canonical mode without echo or signals (so Ctrl-C arrives as a key and
/// the terminal is restored), for as long as it lives.
struct RawKeys {
    saved: rustix::termios::Termios,
}

impl RawKeys {
    /// `None` if the terminal cannot be switched (then there are no keys, and Ctrl-C works
    /// as usual).
    fn enter() -> Option<RawKeys> {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        raw.local_modes &= !(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
        tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw).ok()?;
        Some(RawKeys { saved })
    }

    /// Waits up to `d` for keys; whether one of them was `q` or Ctrl-C.
    fn quit_within(&self, d: Duration) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let end = Instant::now() + d;
        let stdin = std::io::stdin();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let timeout = Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
            if !matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0) {
                continue;
            }
            let mut buf = [0u8; 32];
            match rustix::io::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => return true, // the terminal is gone
                Ok(n) => {
                    if buf[..n].iter().any(|&b| matches!(b, b'q' | b'Q' | 0x03)) {
                        return true;
                    }
                }
            }
        }
    }
}

impl Drop for RawKeys {
    fn drop(&mut self) {
        use rustix::termios::{tcsetattr, OptionalActions};
        let _ = tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &self.saved);
        // Below the last table, not over it.
        let _ = std::io::stdout().write_all(b"\n");
    }
}
