//! What the hog publishes, per mode, and the publisher settings that make it so.
//!
//! Every figure starts from the process's own allocator (`CountingAlloc`): **allocator
//! bytes**, not the kernel's resident set size. Only the mode decides what is done with them.

use std::time::Duration;

use memstat::publish::{PublisherConfig, PublisherStats};
use memstat::{CountingAlloc, Publisher, SubjectId};

use crate::cli::{Args, Mode};

/// The per-mode decisions, without any I/O: testable on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    mode: Mode,
    on_growth: bool,
    under_factor: u64,
    claim: Option<SubjectId>,
    flood_frames: u64,
}

impl Policy {
    /// The policy the arguments ask for.
    #[must_use]
    pub fn from_args(args: &Args) -> Self {
        Self {
            mode: args.mode,
            on_growth: args.publish_on_growth,
            under_factor: args.under_factor.max(1),
            claim: match args.mode {
                Mode::Spoof => args.spoof_as.as_deref().map(SubjectId::from_name),
                _ => None,
            },
            flood_frames: args.flood_frames.max(1),
        }
    }

    /// The publisher configuration.
    ///
    /// - `quantum` is 1 byte, so any growth (a chunk, a partial last chunk, a one-byte
    ///   injection) is sent at once: one frame per chunk, never held back by `min_interval`.
    ///   Calls without growth keep the default `min_interval` (100 ms).
    /// - Flood: `min_interval` 0 and `quantum` 0, so *every* call builds a frame; frames the
    ///   socket cannot take are dropped and counted by the publisher, never queued.
    /// - Spoof: `claimed_subject` is `SubjectId::from_name(--spoof-as)`; otherwise no claim.
    /// - `--publish-on-growth`: the default `quantum` (64 KiB), the growth that wakes the
    ///   allocator's publishing thread (a 1-byte quantum would wake it at every allocation).
    #[must_use]
    pub fn config(&self) -> PublisherConfig {
        let mut config = PublisherConfig {
            quantum: if self.on_growth {
                PublisherConfig::DEFAULT.quantum
            } else {
                1
            },
            claimed_subject: self.claim,
            ..PublisherConfig::DEFAULT
        };
        if self.mode == Mode::Flood {
            config.min_interval = Duration::ZERO;
            config.quantum = 0;
        }
        config
    }

    /// The `(current, peak)` to publish for the allocator's `(live, peak)`: unchanged, except
    /// in under mode, where both are divided (rounding down) by `--under-factor`.
    #[must_use]
    pub fn figures(&self, live: u64, peak: u64) -> (u64, u64) {
        match self.mode {
            Mode::Under => (live / self.under_factor, peak / self.under_factor),
            _ => (live, peak),
        }
    }

    /// Frames offered per report: `--flood-frames` in flood mode, else 1.
    #[must_use]
    pub fn frames_per_report(&self) -> u64 {
        match self.mode {
            Mode::Flood => self.flood_frames,
            _ => 1,
        }
    }

    /// The subject frames claim to be, if any.
    #[must_use]
    pub fn claim(&self) -> Option<SubjectId> {
        self.claim
    }
}

/// What one report did, from the publisher's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reported {
    /// Calls made to the publisher.
    pub offered: u64,
    /// Frames sent.
    pub sent: u64,
    /// Frames built and dropped (socket full, peer gone, …).
    pub dropped: u64,
    /// Calls the rate limit suppressed.
    pub suppressed: u64,
}

/// The publisher (if any) and the policy.
#[derive(Debug)]
pub struct Reporter {
    publisher: Option<Publisher>,
    policy: Policy,
    /// A liar's promise: never report more than this (`--reclaim liar`, once asked).
    cap: Option<u64>,
}

impl Reporter {
    /// Reports through `publisher`, or nowhere if `None` (`--no-publish`, or no publisher in
    /// the environment).
    #[must_use]
    pub fn new(publisher: Option<Publisher>, policy: Policy) -> Self {
        Self {
            publisher,
            policy,
            cap: None,
        }
    }

    /// From now on, report at most `cap` bytes whatever the allocator holds (the liar).
    pub fn cap_reports_at(&mut self, cap: u64) {
        self.cap = Some(cap);
    }

    /// The descriptor oomd's reclaim requests arrive on, for the wait (`None` without a
    /// publisher, or while it is disconnected).
    #[must_use]
    pub fn reclaim_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.publisher.as_ref().and_then(Publisher::reclaim_fd)
    }

    /// The newest reclaim request not yet acknowledged (reads what oomd sent, without
    /// blocking).
    pub fn poll_reclaim(&mut self) -> Option<memstat::ReclaimRequest> {
        self.publisher.as_mut().and_then(Publisher::poll_reclaim)
    }

    /// Acknowledges request `id`.
    ///
    /// # Errors
    ///
    /// What the publisher says; `Closed` without a publisher.
    pub fn acknowledge(&mut self, id: u64) -> Result<(), memstat::publish::SendError> {
        match self.publisher.as_mut() {
            Some(p) => p.acknowledge(id),
            None => Err(memstat::publish::SendError::Closed),
        }
    }

    /// Whether frames go anywhere.
    #[must_use]
    pub fn is_publishing(&self) -> bool {
        self.publisher.is_some()
    }

    /// Publishes what `alloc` holds now, as the mode says. Honest, spoof and forker modes
    /// call `Publisher::publish_from` (exactly the allocator's figures); under mode divides
    /// them; flood mode calls `publish_from` `--flood-frames` times in a row.
    pub fn report<A, S>(&mut self, alloc: &CountingAlloc<A, S>) -> Reported {
        let offered = self.policy.frames_per_report();
        self.offer(alloc, offered)
    }

    /// Offers the current figures once, as the mode says (one frame even in flood mode): the
    /// call an idle hog makes at least every [`next_due`](Self::next_due), so that the
    /// publisher's heartbeat keeps it from looking silent.
    pub fn heartbeat<A, S>(&mut self, alloc: &CountingAlloc<A, S>) -> Reported {
        self.offer(alloc, 1)
    }

    /// How long until [`heartbeat`](Self::heartbeat) would send (`None` without a publisher).
    #[must_use]
    pub fn next_due(&self, now: std::time::Instant) -> Option<Duration> {
        self.publisher.as_ref().map(|p| p.next_due(now))
    }

    fn offer<A, S>(&mut self, alloc: &CountingAlloc<A, S>, offered: u64) -> Reported {
        let Some(publisher) = self.publisher.as_mut() else {
            return Reported::default();
        };
        let before = publisher.stats();
        for _ in 0..offered {
            let _ = match (self.cap, self.policy.mode) {
                (Some(cap), _) => {
                    publisher.publish(alloc.live_bytes().min(cap), alloc.peak_bytes())
                }
                (None, Mode::Under) => {
                    let (current, peak) =
                        self.policy.figures(alloc.live_bytes(), alloc.peak_bytes());
                    publisher.publish(current, peak)
                }
                (None, _) => publisher.publish_from(alloc),
            };
        }
        let after = publisher.stats();
        Reported {
            offered,
            sent: after.sent.saturating_sub(before.sent),
            dropped: after.dropped().saturating_sub(before.dropped()),
            suppressed: after.suppressed.saturating_sub(before.suppressed),
        }
    }

    /// The publisher's counters since the start (all zero without a publisher).
    #[must_use]
    pub fn stats(&self) -> PublisherStats {
        self.publisher
            .as_ref()
            .map(Publisher::stats)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn policy(args: &[&str]) -> Policy {
        let argv = std::iter::once("hog-fixture").chain(args.iter().copied());
        Policy::from_args(&Args::try_parse_from(argv).unwrap())
    }

    #[test]
    fn honest_figures_are_the_allocators_own() {
        let honest = policy(&[]);
        assert_eq!(honest.figures(1_000_000, 2_000_000), (1_000_000, 2_000_000));
        assert_eq!(honest.frames_per_report(), 1);
        assert_eq!(honest.claim(), None);
    }

    #[test]
    fn under_mode_divides_current_and_peak_rounding_down() {
        let under = policy(&["--mode", "under"]);
        assert_eq!(under.figures(1 << 20, 3 << 20), (65_536, 196_608));
        assert_eq!(under.figures(15, 31), (0, 1));
        let by_three = policy(&["--mode", "under", "--under-factor", "3"]);
        assert_eq!(by_three.figures(100, 101), (33, 33));
        assert_eq!(by_three.figures(u64::MAX, u64::MAX).0, u64::MAX / 3);
        let by_one = policy(&["--mode", "under", "--under-factor", "1"]);
        assert_eq!(by_one.figures(7, 9), (7, 9));
    }

    #[test]
    fn spoof_claims_the_named_subject() {
        let spoof = policy(&["--mode", "spoof", "--spoof-as", "hog"]);
        assert_eq!(spoof.claim(), Some(SubjectId(0x335f_1719_2ff5_babd)));
        assert_eq!(
            spoof.config().claimed_subject,
            Some(SubjectId::from_name("hog"))
        );
        assert_eq!(spoof.figures(5, 6), (5, 6));
        assert_eq!(policy(&[]).config().claimed_subject, None);
    }

    #[test]
    fn every_growth_is_sent_at_once_and_flood_is_not_rate_limited() {
        let honest = policy(&[]).config();
        assert_eq!(honest.quantum, 1);
        assert_eq!(honest.min_interval, PublisherConfig::DEFAULT.min_interval);
        let flood = policy(&["--mode", "flood", "--flood-frames", "500"]);
        assert_eq!(flood.frames_per_report(), 500);
        assert_eq!(
            (flood.config().min_interval, flood.config().quantum),
            (Duration::ZERO, 0)
        );
    }

    #[test]
    fn without_a_publisher_nothing_is_offered() {
        let alloc = CountingAlloc::new(std::alloc::System);
        let mut reporter = Reporter::new(None, policy(&["--mode", "flood"]));
        assert!(!reporter.is_publishing());
        assert_eq!(reporter.report(&alloc), Reported::default());
        assert_eq!(reporter.stats(), PublisherStats::default());
    }

    fn connected(args: &[&str]) -> (Reporter, std::os::fd::OwnedFd) {
        use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
        let (ours, theirs) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let policy = policy(args);
        let publisher = Publisher::from_fd(ours, policy.config());
        (Reporter::new(Some(publisher), policy), theirs)
    }

    fn received(fd: &std::os::fd::OwnedFd) -> Vec<memstat::Frame> {
        use rustix::net::{recv, RecvFlags};
        let mut frames = Vec::new();
        let mut buf = [0u8; memstat::MAX_FRAME_LEN + 1];
        while let Ok((n, _)) = recv(fd, &mut buf, RecvFlags::DONTWAIT) {
            frames.push(memstat::Frame::decode(&buf[..n]).unwrap());
        }
        frames
    }

    #[test]
    fn a_spoofed_report_carries_the_claim_on_the_wire() {
        let alloc = CountingAlloc::new(std::alloc::System);
        let (mut reporter, theirs) = connected(&["--mode", "spoof", "--spoof-as", "samgrd"]);
        let reported = reporter.report(&alloc);
        assert_eq!((reported.offered, reported.sent), (1, 1));
        let frames = received(&theirs);
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0].claimed_subject,
            Some(SubjectId::from_name("samgrd"))
        );
    }

    #[test]
    fn a_flood_report_offers_every_frame_without_rate_limit() {
        let alloc = CountingAlloc::new(std::alloc::System);
        let (mut reporter, theirs) = connected(&["--mode", "flood", "--flood-frames", "40"]);
        let reported = reporter.report(&alloc);
        assert_eq!(reported.offered, 40);
        assert_eq!(reported.sent + reported.dropped, 40);
        assert_eq!(reported.suppressed, 0);
        let frames = received(&theirs);
        assert_eq!(u64::try_from(frames.len()).unwrap(), reported.sent);
        assert!(frames.windows(2).all(|w| w[0].seq < w[1].seq));
    }
}
