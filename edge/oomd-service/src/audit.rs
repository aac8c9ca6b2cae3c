//! The durable audit log: every kill-related event, one JSON line each, synced to disk before
//! the authority is called, and read back when oomd starts so that a restart forgets nothing.
//!
//! # Format
//!
//! One JSON object per line, in the marker words:
//!
//! ```text
//! {"seq":12,"tick":340,"ms":81234,"boot":"6f1c…","event":{"KillDecided":{…}},"line":"oomd: kill decided app=hog bytes=33555263 reason=hard-limit"}
//! ```
//!
//! `seq` and `tick` are the core's, `ms` the `CLOCK_BOOTTIME` milliseconds when the line was
//! written, `boot` the kernel's boot id (`/proc/sys/kernel/random/boot_id`), `event` the
//! core's event in its serde form, `line` its words.
//!
//! Each confirmed kill is followed by its kill report (the service's measurement, see
//! `kill_report`), with the `seq` and `tick` of the `kill confirmed` event and `report` in
//! place of `event`:
//!
//! ```text
//! {"seq":15,"tick":342,"ms":81301,"boot":"6f1c…","report":{"seq":15,…},"line":"oomd: kill report app=hog reason=hard-limit bytes=33555263 …"}
//! ```
//!
//! # What is logged, and when it is on disk
//!
//! Kills decided, requested, acknowledged, refused, escalated, confirmed, failed, denied,
//! throttled, would-kill, kill adopted, exits during a kill, policy changes, resumes
//! ([`is_audited`]). Lines are written as the core logs the events; the file is synced
//! (`fdatasync`) before any termination request goes to execd (audit before action, on disk),
//! and before execd is told that a kill's exit was taken (`ExitSeen`).
//!
//! # Bounds
//!
//! At most `max_bytes` (`--audit-log-max-bytes`, default [`DEFAULT_MAX_BYTES`]) in the file:
//! the line that would pass it first renames the file to `<path>.1` (replacing an older one)
//! and starts a new one. At start, at most [`TAIL_BYTES`] of each of the two files are read.
//!
//! # The sequence checkpoint
//!
//! Only kill-related events are in the log, but every event takes a sequence number. So that
//! no number is ever issued twice, `<path>.seq` holds the next sequence number, the tick and
//! the time, overwritten in place (one `pwrite` of [`CHECKPOINT_LEN`] bytes, not synced: a
//! crash of oomd leaves it in the page cache; a crash of the machine starts a new boot, whose
//! clients start over) whenever events were logged.
//!
//! # Recovery
//!
//! [`AuditLog::open`] reads the tail of `<path>.1` and `<path>` (in that order) and the
//! checkpoint: the next event sequence number and ticket (so neither repeats), the last tick
//! and when it was written (so ticks continue across the restart), the kill decisions of this
//! boot (for the kill budget), and the tickets of kills already confirmed (so a kill is never
//! confirmed twice). A line that is torn (the tail of a crash) or does not parse is skipped
//! and counted; nothing in the files can make recovery fail or read without bound.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use oomd::{Event, EventKind, Tick};
use oomd_proto::{KillReport, KillReportView};

use crate::kernel::{format_into, Cursor};

/// The audit log's size cap unless told otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Bytes read from the end of each file at start.
pub const TAIL_BYTES: u64 = 256 * 1024;
/// Longest line written; longer ones are cut to a line that still parses as JSON.
const MAX_LINE: usize = 1024;
/// Kill decisions restored at most: as many as the core's budget remembers.
pub const MAX_DECISIONS: usize = oomd::bounds::MAX_KILL_BUDGET as usize;
/// Bytes of the sequence checkpoint (`<path>.seq`), padded.
pub const CHECKPOINT_LEN: usize = 160;

/// Whether an event of this kind goes into the audit log.
#[must_use]
pub fn is_audited(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::KillDecided { .. }
            | EventKind::KillRequested { .. }
            | EventKind::KillAcknowledged { .. }
            | EventKind::KillRefused { .. }
            | EventKind::KillEscalated { .. }
            | EventKind::KillConfirmed { .. }
            | EventKind::KillFailed { .. }
            | EventKind::KillDenied { .. }
            | EventKind::KillThrottled { .. }
            | EventKind::WouldKill { .. }
            | EventKind::KillAdopted { .. }
            | EventKind::Exited {
                during_kill: true,
                ..
            }
            | EventKind::PolicyChanged { .. }
            | EventKind::PolicyRefused { .. }
            | EventKind::Resumed { .. }
    )
}

/// What the audit log tells a starting oomd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The sequence number after the newest event found.
    pub next_event_seq: u64,
    /// The ticket after the newest ticket found.
    pub next_ticket: u32,
    /// The newest record's tick and `CLOCK_BOOTTIME` milliseconds, if it was written in this
    /// boot.
    pub last_in_this_boot: Option<(Tick, u64)>,
    /// The newest record's tick, whatever boot wrote it (ticks never go back).
    pub last_tick: Option<Tick>,
    /// Ticks of the kill decisions (and would-kills) written in this boot, oldest first, at
    /// most the newest [`MAX_DECISIONS`].
    pub kill_decisions: Vec<Tick>,
    /// Tickets whose kill was confirmed.
    pub confirmed: BTreeSet<u32>,
    /// Records read.
    pub records: usize,
    /// Lines skipped: torn, or not a record.
    pub skipped: usize,
}

impl Recovered {
    /// The tick a restarted core continues from: the last tick, plus the ticks that passed
    /// since it was written when that was in this boot (at `period_ms` per tick).
    #[must_use]
    pub fn resume_tick(&self, now_ms: u64, period_ms: u32) -> Tick {
        match (self.last_in_this_boot, self.last_tick) {
            (Some((tick, ms)), _) => {
                let passed = now_ms.saturating_sub(ms) / u64::from(period_ms.max(1));
                tick.plus(passed.max(1))
            }
            (None, Some(tick)) => tick.plus(1),
            (None, None) => Tick::ZERO,
        }
    }

    /// Whether anything was recovered at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

/// One line as read back.
#[derive(serde::Deserialize)]
struct Record {
    seq: u64,
    tick: u64,
    ms: u64,
    boot: String,
    /// Absent in a kill report's line (`report` instead), which only carries a `seq`.
    #[serde(default)]
    event: Option<EventKind>,
}

/// The sequence checkpoint as read back.
#[derive(serde::Deserialize)]
struct Checkpoint {
    next_seq: u64,
    tick: u64,
    ms: u64,
    boot: String,
}

/// The open audit log.
#[derive(Debug)]
pub struct AuditLog {
    file: File,
    /// `<path>.seq`, and the next sequence number it holds.
    checkpoint: Option<File>,
    checkpointed: u64,
    path: PathBuf,
    written: u64,
    max_bytes: u64,
    boot: [u8; 36],
    line: Box<[u8; MAX_LINE]>,
    /// Lines written since the last sync.
    dirty: bool,
    /// Writes or syncs that failed (the event is still in the stderr log and the ring).
    pub failures: u64,
    /// Syncs done, and the time they took, for `docs/perf.md`.
    pub syncs: u64,
    /// Total nanoseconds spent in syncs.
    pub sync_nanos: u64,
}

impl AuditLog {
    /// Opens (creating it and its directory if needed) the audit log at `path`, after reading
    /// back what its tail tells.
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<(AuditLog, Recovered)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let boot = boot_id();
        let mut recovered = Recovered::default();
        let mut last_per_subject = std::collections::BTreeMap::new();
        for file in [rotated(path), path.to_owned()] {
            if let Some((bytes, cut)) = read_tail(&file) {
                parse_tail(&bytes, cut, &boot, &mut recovered, &mut last_per_subject);
            }
        }
        if let Some(bytes) = read_checkpoint(&checkpoint_path(path)) {
            parse_checkpoint(&bytes, &boot, &mut recovered);
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        let checkpoint = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(checkpoint_path(path))
            .ok();
        Ok((
            AuditLog {
                file,
                checkpoint,
                checkpointed: recovered.next_event_seq,
                path: path.to_owned(),
                written,
                max_bytes: max_bytes.max(MAX_LINE as u64 * 2),
                boot,
                line: Box::new([0; MAX_LINE]),
                dirty: false,
                failures: 0,
                syncs: 0,
                sync_nanos: 0,
            },
            recovered,
        ))
    }

    /// Appends `event` if it is audited, with its words (names from `names`). Never
    /// allocates.
    pub fn append_event<N: oomd::trace::SubjectNames + ?Sized>(
        &mut self,
        event: &Event,
        names: &N,
        now_ms: u64,
    ) {
        if !is_audited(&event.kind) {
            return;
        }
        let mut words = [0u8; 256];
        let mut c = Cursor {
            buf: &mut words,
            len: 0,
        };
        let _ = oomd::trace::write_line(&mut c, &event.kind, names);
        let len = c.len;
        let line = core::str::from_utf8(&words[..len]).unwrap_or("");
        self.append(event, line, now_ms);
    }

    /// Appends `event` (with its words `line`) if it is audited. Never allocates.
    pub fn append(&mut self, event: &Event, line: &str, now_ms: u64) {
        if !is_audited(&event.kind) {
            return;
        }
        #[derive(serde::Serialize)]
        struct Out<'a> {
            seq: u64,
            tick: u64,
            ms: u64,
            boot: &'a str,
            event: &'a EventKind,
            line: &'a str,
        }
        let boot = self.boot;
        let boot = core::str::from_utf8(&boot).unwrap_or("");
        let out = Out {
            seq: event.seq,
            tick: event.tick.0,
            ms: now_ms,
            boot,
            event: &event.kind,
            line,
        };
        // Too long for a line (an event line cut short would not parse): the record without
        // its words, which always fits.
        if !self.write_record(&out) && !self.write_record(&Out { line: "", ..out }) {
            self.failures += 1;
        }
    }

    /// Appends the kill report `view` of the `kill confirmed` event `confirmed`, after it:
    /// `{"seq":..,"tick":..,"ms":..,"boot":..,"report":{..},"line":"oomd: kill report .."}`
    /// (same `seq` and `tick` as the event). Never allocates.
    pub fn append_report(&mut self, confirmed: &Event, view: &KillReportView, now_ms: u64) {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            seq: u64,
            tick: u64,
            ms: u64,
            boot: &'a str,
            report: &'a KillReport,
            line: &'a str,
        }
        let mut words = [0u8; 512];
        let line = format_into(&mut words, format_args!("{view}"));
        let boot = self.boot;
        let out = Out {
            seq: confirmed.seq,
            tick: confirmed.tick.0,
            ms: now_ms,
            boot: core::str::from_utf8(&boot).unwrap_or(""),
            report: &view.report,
            line,
        };
        if !self.write_record(&out) {
            self.failures += 1;
        }
    }

    /// Writes `record` as one JSON line (rotating first if it would pass the cap); false if
    /// it does not fit in a line. A failed write is counted.
    fn write_record<T: serde::Serialize>(&mut self, record: &T) -> bool {
        let mut w: &mut [u8] = &mut self.line[..MAX_LINE - 1];
        let room = w.len();
        if serde_json::to_writer(&mut w, record).is_err() {
            return false;
        }
        let n = room - w.len();
        self.line[n] = b'\n';
        let n = n + 1;
        if self.written.saturating_add(n as u64) > self.max_bytes {
            self.rotate();
        }
        match self.file.write_all(&self.line[..n]) {
            Ok(()) => {
                self.written += n as u64;
                self.dirty = true;
            }
            Err(_) => self.failures += 1,
        }
        true
    }

    /// Records that the next event will be `next_seq` (at `tick`, `now_ms`), if that moved
    /// since the last checkpoint: one `pwrite`, never an allocation.
    pub fn checkpoint(&mut self, next_seq: u64, tick: Tick, now_ms: u64) {
        if next_seq == self.checkpointed {
            return;
        }
        let Some(file) = &self.checkpoint else {
            return;
        };
        let mut buf = [b' '; CHECKPOINT_LEN];
        let boot = core::str::from_utf8(&self.boot).unwrap_or("");
        let mut c = Cursor {
            buf: &mut buf[..CHECKPOINT_LEN - 1],
            len: 0,
        };
        let written = core::fmt::write(
            &mut c,
            format_args!(
                "{{\"next_seq\":{next_seq},\"tick\":{},\"ms\":{now_ms},\"boot\":\"{boot}\"}}",
                tick.0
            ),
        );
        buf[CHECKPOINT_LEN - 1] = b'\n';
        if written.is_ok() && rustix::io::pwrite(file, &buf, 0).is_ok() {
            self.checkpointed = next_seq;
        } else {
            self.failures += 1;
        }
    }

    /// Makes every line written so far durable (`fdatasync`), if any is not yet.
    pub fn sync(&mut self) {
        if !self.dirty {
            return;
        }
        let start = std::time::Instant::now();
        match self.file.sync_data() {
            Ok(()) => {
                self.dirty = false;
                self.syncs += 1;
                let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.sync_nanos = self.sync_nanos.saturating_add(nanos);
            }
            Err(_) => self.failures += 1,
        }
    }

    /// `<path>` becomes `<path>.1` (replacing the older one) and a new `<path>` starts.
    fn rotate(&mut self) {
        self.sync();
        if std::fs::rename(&self.path, rotated(&self.path)).is_err() {
            self.failures += 1;
            return;
        }
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(file) => {
                self.file = file;
                self.written = 0;
            }
            Err(_) => self.failures += 1,
        }
    }
}

/// `<path>.seq`.
fn checkpoint_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".seq");
    PathBuf::from(name)
}

/// What [`AuditLog::open`] recovers from these file contents: `files` are the rotated log
/// and the current one, in that order, `checkpoint` the sequence checkpoint's, `boot` the
/// kernel's boot id. As when they are read from disk, only the last [`TAIL_BYTES`] of each
/// file and the first [`CHECKPOINT_LEN`] bytes of the checkpoint count; nothing in them makes
/// recovery fail, and what it keeps is bounded ([`MAX_DECISIONS`] kill decisions, at most one
/// confirmed ticket per record).
#[must_use]
pub fn recover(files: &[&[u8]], checkpoint: &[u8], boot: &[u8; 36]) -> Recovered {
    let mut recovered = Recovered::default();
    let mut last_per_subject = std::collections::BTreeMap::new();
    for bytes in files {
        let start = bytes.len().saturating_sub(TAIL_BYTES as usize);
        parse_tail(
            &bytes[start..],
            start > 0,
            boot,
            &mut recovered,
            &mut last_per_subject,
        );
    }
    let checkpoint = &checkpoint[..checkpoint.len().min(CHECKPOINT_LEN)];
    parse_checkpoint(checkpoint, boot, &mut recovered);
    recovered
}

/// Reads the sequence checkpoint, at most [`CHECKPOINT_LEN`] bytes.
fn read_checkpoint(path: &Path) -> Option<Vec<u8>> {
    let file = File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(CHECKPOINT_LEN as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// Reads what the checkpoint's bytes tell into `out`.
fn parse_checkpoint(bytes: &[u8], boot: &[u8; 36], out: &mut Recovered) {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let Ok(c) = serde_json::from_str::<Checkpoint>(text) else {
        if !text.is_empty() {
            out.skipped += 1;
        }
        return;
    };
    out.records += 1;
    out.next_event_seq = out.next_event_seq.max(c.next_seq);
    let tick = Tick(c.tick);
    out.last_tick = Some(out.last_tick.map_or(tick, |t| t.max(tick)));
    let boot = core::str::from_utf8(boot).unwrap_or("");
    if c.boot == boot && !boot.trim().is_empty() {
        let newer = out.last_in_this_boot.is_none_or(|(t, _)| t <= tick);
        if newer {
            out.last_in_this_boot = Some((tick, c.ms));
        }
    }
}

/// `<path>.1`.
pub(crate) fn rotated(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// The kernel's boot id, or 36 spaces if it cannot be read (then nothing counts as "this
/// boot", and only sequence numbers and tickets are recovered).
fn boot_id() -> [u8; 36] {
    let mut id = [b' '; 36];
    if let Ok(text) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        let text = text.trim().as_bytes();
        if text.len() == 36 {
            id.copy_from_slice(text);
        }
    }
    id
}

/// `CLOCK_BOOTTIME` in milliseconds: counts while the machine sleeps, unlike the monotonic
/// clock, so the ticks a restart skips are right after a suspend too.
#[must_use]
pub fn now_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1000 + u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000_000
}

/// Reads the last [`TAIL_BYTES`] of `path`, if it exists, and whether that cut the file.
fn read_tail(path: &Path) -> Option<(Vec<u8>, bool)> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes).ok()?;
    Some((bytes, start > 0))
}

/// Reads what the lines of a file's tail tell into `out`; `cut` when the tail starts inside
/// the file (its first line is then the cut end of one, and skipped).
fn parse_tail(
    bytes: &[u8],
    cut: bool,
    boot: &[u8; 36],
    out: &mut Recovered,
    last_per_subject: &mut std::collections::BTreeMap<memstat::SubjectId, u32>,
) {
    let mut lines = bytes.split(|&b| b == b'\n');
    if cut {
        lines.next(); // the cut start of a line
    }
    let boot = core::str::from_utf8(boot).unwrap_or("");
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<Record>(line) else {
            out.skipped += 1;
            continue;
        };
        out.records += 1;
        out.next_event_seq = out.next_event_seq.max(record.seq.saturating_add(1));
        let tick = Tick(record.tick);
        out.last_tick = Some(out.last_tick.map_or(tick, |t| t.max(tick)));
        let this_boot = record.boot == boot && !boot.trim().is_empty();
        if this_boot {
            out.last_in_this_boot = Some((tick, record.ms));
        }
        let Some(event) = record.event else {
            continue;
        };
        match event {
            EventKind::KillRequested {
                subject, ticket, ..
            }
            | EventKind::KillAdopted {
                subject, ticket, ..
            } => {
                out.next_ticket = out.next_ticket.max(ticket.0.saturating_add(1));
                last_per_subject.insert(subject, ticket.0);
            }
            EventKind::KillConfirmed { subject, .. } => {
                if let Some(ticket) = last_per_subject.get(&subject) {
                    out.confirmed.insert(*ticket);
                }
            }
            EventKind::KillDecided { .. } | EventKind::WouldKill { .. } if this_boot => {
                out.kill_decisions.push(tick);
                if out.kill_decisions.len() > MAX_DECISIONS {
                    out.kill_decisions.remove(0);
                }
            }
            EventKind::Resumed { next_ticket, .. } => {
                out.next_ticket = out.next_ticket.max(next_ticket.0);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memstat::SubjectId;
    use oomd::{KillReason, TerminationMode, Ticket};

    /// A log path in a fresh directory, removed with the guard.
    fn temp(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("oomd-audit-{name}-"))
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        (dir, path)
    }

    fn event(seq: u64, tick: u64, kind: EventKind) -> Event {
        Event {
            seq,
            tick: Tick(tick),
            kind,
        }
    }

    fn hog() -> SubjectId {
        SubjectId::from_name("hog")
    }

    #[test]
    fn what_is_written_is_recovered_and_torn_lines_are_skipped() {
        let (_dir, path) = temp("recover");
        let (mut log, first) = AuditLog::open(&path, DEFAULT_MAX_BYTES).unwrap();
        assert!(first.is_empty());
        let subject = hog();
        let events = [
            event(
                4,
                10,
                EventKind::KillDecided {
                    subject,
                    bytes: 99,
                    reason: KillReason::HardLimit,
                },
            ),
            event(
                5,
                10,
                EventKind::KillRequested {
                    subject,
                    ticket: Ticket(7),
                    mode: TerminationMode::Graceful,
                },
            ),
            event(6, 12, EventKind::KillConfirmed { subject, bytes: 99 }),
            // Not audited: never written.
            event(7, 13, EventKind::TickClamped { got: Tick(1) }),
        ];
        for e in &events {
            log.append(e, "words", 5_000);
        }
        log.sync();
        drop(log);
        // A crash in the middle of a line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"seq":8,"tick":14,"ms":"#)
            .unwrap();
        let (_, r) = AuditLog::open(&path, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(r.records, 3);
        assert_eq!(r.skipped, 1);
        assert_eq!(r.next_event_seq, 7);
        assert_eq!(r.next_ticket, 8);
        assert_eq!(r.kill_decisions, vec![Tick(10)]);
        assert!(r.confirmed.contains(&7));
        assert_eq!(r.last_in_this_boot, Some((Tick(12), 5_000)));
        // 2 s later at 100 ms ticks: 20 ticks on.
        assert_eq!(r.resume_tick(7_000, 100), Tick(32));
    }

    #[test]
    fn no_sequence_number_is_issued_twice_even_for_events_that_are_not_audited() {
        let (_dir, path) = temp("checkpoint");
        let (mut log, _) = AuditLog::open(&path, DEFAULT_MAX_BYTES).unwrap();
        let kind = EventKind::KillConfirmed {
            subject: hog(),
            bytes: 1,
        };
        log.append(&event(3, 9, kind), "words", 1_000);
        // Events 4..=19 were not audited (rejections, registrations, ...).
        log.checkpoint(20, Tick(11), 1_200);
        drop(log);
        let (_, r) = AuditLog::open(&path, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(r.next_event_seq, 20);
        assert_eq!(r.last_in_this_boot, Some((Tick(11), 1_200)));
        // A checkpoint that is garbage is skipped, not trusted.
        std::fs::write(checkpoint_path(&path), b"{\"next_seq\": oops").unwrap();
        let (_, r) = AuditLog::open(&path, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(r.next_event_seq, 4);
        assert_eq!(r.skipped, 1);
    }

    #[test]
    fn the_log_is_rotated_at_its_cap_and_both_files_are_read_back() {
        let (_dir, path) = temp("rotate");
        let (mut log, _) = AuditLog::open(&path, 4 * 1024).unwrap();
        for seq in 0..200 {
            let kind = EventKind::KillThrottled {
                subject: hog(),
                bytes: seq,
            };
            log.append(&event(seq, seq, kind), "oomd: kill throttled app=hog", seq);
        }
        log.sync();
        assert!(std::fs::metadata(&path).unwrap().len() <= 4 * 1024);
        assert!(rotated(&path).exists());
        drop(log);
        let (_, r) = AuditLog::open(&path, 4 * 1024).unwrap();
        assert_eq!(r.next_event_seq, 200);
        assert_eq!(r.skipped, 0);
    }

    #[test]
    fn garbage_is_skipped_and_a_huge_file_is_read_only_at_its_tail() {
        let (_dir, path) = temp("garbage");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut junk = vec![b'x'; 3 * TAIL_BYTES as usize];
        junk.extend_from_slice(b"\n\xff\xfe not json\n{\"seq\":1}\n");
        std::fs::write(&path, &junk).unwrap();
        let (_, r) = AuditLog::open(&path, DEFAULT_MAX_BYTES).unwrap();
        assert_eq!(r.records, 0);
        assert_eq!(r.skipped, 2);
        assert_eq!(r.next_event_seq, 0);
    }

    #[test]
    fn recover_of_the_files_bytes_is_what_open_reads_back() {
        let (_dir, path) = temp("recover-bytes");
        let (mut log, _) = AuditLog::open(&path, 4 * 1024).unwrap();
        for seq in 0..100 {
            let kind = EventKind::KillDecided {
                subject: hog(),
                bytes: seq,
                reason: KillReason::HardLimit,
            };
            log.append(&event(seq, seq, kind), "oomd: kill decided app=hog", seq);
        }
        log.checkpoint(120, Tick(130), 140);
        log.sync();
        drop(log);
        let read = |p: &Path| std::fs::read(p).unwrap_or_default();
        let (rotated_bytes, current) = (read(&rotated(&path)), read(&path));
        assert!(!rotated_bytes.is_empty(), "the log rotated");
        let (_, opened) = AuditLog::open(&path, 4 * 1024).unwrap();
        let recovered = recover(
            &[&rotated_bytes, &current],
            &read(&checkpoint_path(&path)),
            &boot_id(),
        );
        assert_eq!(recovered, opened);
        assert_eq!(recovered.next_event_seq, 120);
    }
}
