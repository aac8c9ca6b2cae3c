//! A live run's event lines, read back from a console log, and the check that a recorded run
//! replays to them.
//!
//! The oomd daemon prints every event as one line in the marker words (`--log text`), on a
//! console it shares with other programs and with its own notes (`oomd: brake …`), and it
//! prints the contract markers (`oomd: kill app=…`, `oomd: kill denied …`) a second time, on
//! stdout. [`event_lines`] keeps only the event lines, once each, in order. [`find_replay`]
//! says where a replayed trace appears in them: a recorded run (`oomd --record`) replayed by
//! `oomd-sim replay LOG --against CONSOLE` must reproduce a contiguous stretch of what the
//! daemon printed, line for line, or the run was not deterministic (or the recording lost
//! something). The boot selftest checks this on every boot.
//!
//! What it is not: a parser of the console's other lines.

/// How every event line starts (after `oomd: `), as `oomd::trace::write_line` writes them;
/// a test renders every event kind and checks it is recognized.
const EVENT_PREFIXES: [&str; 28] = [
    "register app=",
    "register refused (",
    "unregister app=",
    "policy changed (",
    "soft limit app=",
    "under-report app=",
    "kill decided app=",
    "kill requested app=",
    "kill acknowledged app=",
    "kill app=",
    "kill denied (",
    "kill throttled app=",
    "kill refused app=",
    "kill escalated app=",
    "kill failed app=",
    "would kill app=",
    "exited app=",
    "frame rejected (",
    "answer ignored ticket=",
    "tick clamped got=",
    "policy refused (",
    "report stale app=",
    "resumed tick=",
    "reclaim requested app=",
    "reclaim would-request app=",
    "reclaim acknowledged app=",
    "reclaim met app=",
    "reclaim missed app=",
];

/// The one event kind not in [`EVENT_PREFIXES`] because it needs its own word boundary.
const KILL_ADOPTED: &str = "kill adopted app=";

/// Whether `line` (its `\r` stripped) is one of oomd's event lines.
#[must_use]
pub fn is_event_line(line: &str) -> bool {
    line.strip_prefix("oomd: ").is_some_and(|words| {
        words.starts_with(KILL_ADOPTED) || EVENT_PREFIXES.iter().any(|p| words.starts_with(p))
    })
}

/// The lines oomd printed twice (its contract markers: once on stdout, once in the log).
fn is_marker(line: &str) -> bool {
    line.starts_with("oomd: kill app=") || line.starts_with("oomd: kill denied (")
}

/// oomd's event lines in `console`, in order, each once: other lines are dropped, and each
/// pair of identical adjacent contract markers (its stdout copy and its log copy; nothing of
/// oomd's can come between them) counts once.
#[must_use]
pub fn event_lines(console: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending_copy = false;
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        if !is_event_line(line) {
            continue;
        }
        if is_marker(line) {
            if pending_copy && out.last().is_some_and(|l| l == line) {
                pending_copy = false;
                continue;
            }
            pending_copy = true;
        } else {
            pending_copy = false;
        }
        out.push(line.to_owned());
    }
    out
}

/// A run's events as oomd prints them (its log lines in the marker words, without the tick
/// and number the simulator's trace adds): what [`find_replay`] compares.
#[must_use]
pub fn event_words(run: &crate::sim::Run) -> Vec<String> {
    run.events
        .iter()
        .map(|e| {
            let mut line = String::new();
            // Writing to a String cannot fail.
            let _ = oomd::trace::write_line(&mut line, &e.kind, &run.names);
            line
        })
        .collect()
}

/// Why a replayed trace is not in the live lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The replay produced no event at all.
    Empty,
    /// No stretch of the live lines equals the replay; the longest agreement started at live
    /// line `at` and broke at replayed line `index`.
    Diverged {
        /// Where in the live lines the best attempt started.
        at: usize,
        /// The first replayed line that differed (0-based).
        index: usize,
        /// That replayed line.
        replayed: String,
        /// The live line in its place, or `None` past the end.
        live: Option<String>,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Empty => f.write_str("the replay produced no event"),
            Mismatch::Diverged {
                at,
                index,
                replayed,
                live,
            } => write!(
                f,
                "the replay diverged from the live run at its event {index} (live line {}): \
                 replayed {replayed:?}, live {}",
                at + index,
                live.as_deref()
                    .map_or("nothing more".to_owned(), |l| format!("{l:?}"))
            ),
        }
    }
}

/// Where `replayed` appears, whole and contiguous, in `live`: the index of its first line.
/// The first such place counts.
pub fn find_replay(replayed: &[String], live: &[String]) -> Result<usize, Mismatch> {
    let Some(first) = replayed.first() else {
        return Err(Mismatch::Empty);
    };
    let mut best = (0, 0); // (at, lines agreed)
    for at in 0..live.len() {
        if &live[at] != first {
            continue;
        }
        let agreed = replayed
            .iter()
            .zip(&live[at..])
            .take_while(|(r, l)| r == l)
            .count();
        if agreed == replayed.len() {
            return Ok(at);
        }
        if agreed > best.1 {
            best = (at, agreed);
        }
    }
    let (at, index) = best;
    Err(Mismatch::Diverged {
        at,
        index,
        replayed: replayed[index].clone(),
        live: live.get(at + index).cloned(),
    })
}

/// The recordings in a copy the selftest client made (`=== recording <name> <bytes>`, the
/// lines, `=== end`, for each), as (name, text), in order. Fails on a block that is cut short
/// or whose size disagrees with its header.
pub fn split_recordings(copy: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = copy;
    while let Some(at) = rest.find("=== recording ") {
        let after = &rest[at + "=== recording ".len()..];
        let (header, body) = after
            .split_once('\n')
            .ok_or("a recording header without its lines")?;
        let (name, size) = header
            .trim_end_matches('\r')
            .rsplit_once(' ')
            .ok_or_else(|| format!("a bad recording header {header:?}"))?;
        let size: usize = size
            .parse()
            .map_err(|_| format!("a bad recording size in {header:?}"))?;
        let text = body.get(..size).ok_or_else(|| {
            format!(
                "recording {name}: cut short ({} of {size} bytes)",
                body.len()
            )
        })?;
        let tail = &body[size..];
        if !tail.starts_with("=== end") {
            return Err(format!("recording {name}: {size} bytes, then no end line"));
        }
        out.push((name.to_owned(), text.to_owned()));
        rest = tail;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
[    2.000000] random: crng init done\r
execd: started oomd pid=12\r
oomd: policy soft=1000 hard=2000 tick=20ms control=/run/oomd/oomd.sock\r
oomd: ready\r
oomd: register app=hog class=standard critical=no\r
SELFTEST: something\r
oomd: brake app=hog memory.high=max\r
oomd: kill decided app=hog bytes=5000 reason=hard-limit\r
oomd: kill requested app=hog ticket=1 mode=graceful\r
oomd: request ticket=1 sent to execd\r
oomd: kill app=hog bytes=5000\r
execd: hog exited\r
oomd: kill app=hog bytes=5000\r
oomd: kill report app=hog reason=hard-limit bytes=5000\r
oomd: exited app=hog\r
";

    #[test]
    fn only_event_lines_are_kept_and_a_marker_counts_once() {
        assert_eq!(
            event_lines(CONSOLE),
            [
                "oomd: register app=hog class=standard critical=no",
                "oomd: kill decided app=hog bytes=5000 reason=hard-limit",
                "oomd: kill requested app=hog ticket=1 mode=graceful",
                "oomd: kill app=hog bytes=5000",
                "oomd: exited app=hog",
            ]
        );
    }

    #[test]
    fn recordings_are_split_and_a_short_one_is_refused() {
        let copy = "noise\n=== recording a.1 5\nab\nc\n=== end\n=== recording a 0\n=== end\n";
        assert_eq!(
            split_recordings(copy),
            Ok(vec![
                ("a.1".into(), "ab\nc\n".into()),
                ("a".into(), String::new())
            ])
        );
        assert!(split_recordings("=== recording a 10\nab\n=== end\n").is_err());
        assert!(split_recordings("=== recording a 2\nab").is_err());
        assert_eq!(split_recordings("nothing"), Ok(vec![]));
    }

    #[test]
    fn two_kills_of_the_same_figure_stay_two() {
        let console = "oomd: kill app=a bytes=1\noomd: kill app=a bytes=1\n\
                       oomd: kill app=a bytes=1\noomd: kill app=a bytes=1\n";
        assert_eq!(event_lines(console).len(), 2);
    }

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_replay_is_found_where_it_starts_and_a_divergence_is_named() {
        let live = lines(&["a", "b", "c", "b", "c", "d"]);
        assert_eq!(find_replay(&lines(&["b", "c", "d"]), &live), Ok(3));
        assert_eq!(find_replay(&lines(&["a", "b"]), &live), Ok(0));
        assert_eq!(find_replay(&[], &live), Err(Mismatch::Empty));
        let e = find_replay(&lines(&["b", "c", "x"]), &live).expect_err("diverges");
        assert_eq!(
            e,
            Mismatch::Diverged {
                at: 1,
                index: 2,
                replayed: "x".into(),
                live: Some("b".into())
            }
        );
        assert!(e.to_string().contains("live line 3"), "{e}");
        let past = find_replay(&lines(&["d", "e"]), &live).expect_err("past the end");
        assert!(
            matches!(past, Mismatch::Diverged { live: None, .. }),
            "{past:?}"
        );
    }

    #[test]
    fn every_event_kind_is_recognized_and_notes_are_not() {
        use memstat::SubjectId;
        use oomd::{EventKind, Tick, Ticket};
        let s = SubjectId::from_name("x");
        let kinds = [
            EventKind::Registered {
                subject: s,
                class: oomd::SubjectClass::Standard,
                critical: false,
            },
            EventKind::RegistrationRefused {
                subject: s,
                reason: oomd::RegistrationError::TableFull,
            },
            EventKind::Unregistered { subject: s },
            EventKind::PolicyChanged { subject: None },
            EventKind::PolicyChanged { subject: Some(s) },
            EventKind::SoftExceeded {
                subject: s,
                bytes: 1,
                soft: 1,
            },
            EventKind::UnderReport {
                subject: s,
                reported: 1,
                kernel: 2,
            },
            EventKind::KillDecided {
                subject: s,
                bytes: 1,
                reason: oomd::KillReason::HardLimit,
            },
            EventKind::KillRequested {
                subject: s,
                ticket: Ticket(1),
                mode: oomd::TerminationMode::Graceful,
            },
            EventKind::KillAcknowledged {
                subject: s,
                ticket: Ticket(1),
            },
            EventKind::KillConfirmed {
                subject: s,
                bytes: 1,
            },
            EventKind::KillDenied {
                subject: s,
                bytes: 1,
                reason: oomd::DenyReason::Critical,
            },
            EventKind::KillThrottled {
                subject: s,
                bytes: 1,
            },
            EventKind::KillRefused {
                subject: s,
                ticket: Ticket(1),
                reason: oomd::RefusalReason::Unavailable,
            },
            EventKind::KillEscalated {
                subject: s,
                ticket: Ticket(1),
            },
            EventKind::KillFailed {
                subject: s,
                bytes: 1,
            },
            EventKind::WouldKill {
                subject: s,
                bytes: 1,
                reason: oomd::KillReason::HardLimit,
            },
            EventKind::Exited {
                subject: s,
                during_kill: false,
            },
            EventKind::Exited {
                subject: s,
                during_kill: true,
            },
            EventKind::FrameRejected {
                sender: s,
                reason: oomd::Rejection::Truncated,
            },
            EventKind::AnswerIgnored { ticket: Ticket(1) },
            EventKind::TickClamped { got: Tick(1) },
            EventKind::PolicyRefused {
                subject: None,
                reason: oomd::PolicyError::HardZero,
            },
            EventKind::PolicyRefused {
                subject: Some(s),
                reason: oomd::PolicyError::HardZero,
            },
            EventKind::ReportStale {
                subject: s,
                since: Tick(1),
            },
            EventKind::Resumed {
                tick: Tick(1),
                next_ticket: Ticket(1),
            },
            EventKind::KillAdopted {
                subject: s,
                ticket: Ticket(1),
                mode: oomd::TerminationMode::Forced,
                acknowledged: true,
            },
            EventKind::ReclaimRequested {
                subject: s,
                target: 1,
                deadline: Tick(2),
            },
            EventKind::ReclaimWouldRequest {
                subject: s,
                target: 1,
                deadline: Tick(2),
            },
            EventKind::ReclaimAcknowledged { subject: s },
            EventKind::ReclaimMet {
                subject: s,
                bytes: 1,
            },
            EventKind::ReclaimMissed {
                subject: s,
                bytes: 1,
            },
        ];
        // Every kind there is: a kind added to the core without a prefix here fails this.
        let tags: std::collections::BTreeSet<_> = kinds.iter().map(EventKind::tag).collect();
        assert_eq!(tags.len(), oomd::EventTag::COUNT, "{tags:?}");
        let names = crate::fixture::TraceNames::default();
        for kind in kinds {
            let mut line = String::new();
            oomd::trace::write_line(&mut line, &kind, &names).expect("renders");
            assert!(is_event_line(&line), "not recognized: {line}");
        }
        for note in [
            "oomd: ready",
            "oomd: policy soft=1 hard=2 tick=20ms control=/x",
            "oomd: brake app=x memory.high=max",
            "oomd: kill report app=x reason=hard-limit bytes=1",
            "oomd: request ticket=1 sent to execd",
            "oomd: memstat channel of x closed by the service",
            "oomd: reclaim request id=5 sent to x",
            "oomd: could not send reclaim request id=5 to x: no memstat channel",
            "oomd: reclaim round trip app=x id=5 us=900",
            "execd: started oomd pid=1",
        ] {
            assert!(!is_event_line(note), "taken for an event: {note}");
        }
    }
}
