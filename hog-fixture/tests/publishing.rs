//! What a real hog publishes on a real `SOCK_SEQPACKET` socket, mode by mode, and what the
//! kernel sees it hold.

mod common;

use std::os::unix::net::UnixDatagram;

use common::WaitStatus;
use common::{path_in_tmp, spawn, vm_rss, KIB, MIB, OVERHEAD};
use memstat::{Frame, SubjectId};

const CHUNK: u64 = 64 * KIB;
const MAX: u64 = MIB;

/// A hog growing 64 KiB per millisecond up to 1 MiB, then lingering briefly.
fn timer_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--chunk",
        "64KiB",
        "--max",
        "1MiB",
        "--interval-ms",
        "1",
        "--linger-ms",
        "200",
    ];
    args.extend_from_slice(extra);
    args
}

fn assert_seq_strictly_increasing(frames: &[Frame]) {
    for pair in frames.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "seq not increasing: {pair:?}");
    }
}

/// The `(added, held, alloc)` of every growth line (`initial`, `chunk`, `inject`), in order.
#[allow(clippy::unwrap_used)]
fn growth_lines(log: &str) -> Vec<(u64, u64, u64)> {
    let field = |line: &str, key: &str| -> u64 {
        let start = line.find(key).unwrap() + key.len();
        let rest = &line[start..];
        rest[..rest.find(' ').unwrap_or(rest.len())]
            .parse()
            .unwrap()
    };
    log.lines()
        .filter(|l| l.contains(" added=") && l.contains(" alloc="))
        .map(|l| (field(l, " added="), field(l, " held="), field(l, " alloc=")))
        .collect()
}

#[test]
fn honest_hog_publishes_its_allocator_growth_up_to_max_and_exits_by_itself() {
    let (mut hog, mut frames) = spawn("honest", &timer_args(&[]));
    let frames = frames.all();
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    let log = hog.stderr();

    // One frame at the start and one per chunk, none dropped.
    assert_eq!(frames.len(), 1 + 16, "{frames:?}\n{log}");
    assert!(frames.iter().enumerate().all(|(i, f)| f.seq == i as u64));
    assert_seq_strictly_increasing(&frames);
    assert!(frames.iter().all(|f| f.claimed_subject.is_none()));

    let first = frames[0].current_bytes;
    assert!(first < OVERHEAD, "nothing is held at the start: {first}");
    for pair in frames.windows(2) {
        let grew = pair[1].current_bytes - pair[0].current_bytes;
        assert!(
            (CHUNK..=CHUNK + OVERHEAD).contains(&grew),
            "each frame is one more chunk: {pair:?}"
        );
    }
    for frame in &frames {
        assert!(frame.current_bytes <= MAX + OVERHEAD, "{frame:?}");
        assert!(frame.peak_bytes <= MAX + OVERHEAD, "{frame:?}");
        assert!(frame.peak_bytes >= frame.current_bytes, "{frame:?}");
    }
    let last = frames.last().unwrap().current_bytes;
    assert!(last >= MAX, "reaches max: {last}");
    eprintln!("measured allocator overhead: {} bytes", last - MAX);

    // The frames are the allocator's own figures, as logged with each growth.
    let growths = growth_lines(&log);
    assert_eq!(growths.len(), frames.len(), "{log}");
    for ((_, held, alloc), frame) in growths.iter().zip(&frames) {
        assert_eq!(frame.current_bytes, *alloc, "{log}");
        assert!(*alloc >= *held && *alloc <= held + OVERHEAD, "{log}");
    }
    assert!(log.contains("max reached held=1048576"), "{log}");
    assert!(
        log.contains("exit reason=linger held=1048576 sent=17 dropped=0"),
        "{log}"
    );
}

#[test]
fn a_hog_that_never_calls_publish_is_published_by_its_allocator_on_growth() {
    // Chunks of 64 KiB, the growth quantum: each one wakes the allocator's thread. 20 ms
    // apart, longer than the growth publisher's pacing (13 ms), so that each crossing is its
    // own frame (a faster grower's crossings are coalesced: memstat/tests/growth_paced.rs).
    let mut args = timer_args(&["--publish-on-growth"]);
    let at = args
        .iter()
        .position(|a| *a == "--interval-ms")
        .expect("interval")
        + 1;
    args[at] = "20";
    let (mut hog, mut frames) = spawn("on-growth", &args);
    let frames = frames.all();
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    let log = hog.stderr();
    assert!(log.contains("publisher=growth-thread"), "{log}");
    // The loop offered nothing itself.
    assert!(
        log.contains("exit reason=linger held=1048576 sent=0 dropped=0"),
        "{log}"
    );
    assert_seq_strictly_increasing(&frames);
    for pair in frames.windows(2) {
        assert!(pair[1].current_bytes >= pair[0].current_bytes, "{pair:?}");
    }
    // Growth frames, not only the first and a heartbeat: the growth (320 ms) and the linger
    // (200 ms) are shorter than the heartbeat (1 s), so every frame but the first came from a
    // growth signal; one per chunk.
    assert!(frames.len() >= 16, "{frames:?}\n{log}");
    let last = frames.last().map_or(0, |f| f.current_bytes);
    assert!(last >= MAX, "the arena at max was published: {last}\n{log}");
}

#[test]
fn publish_on_growth_is_honest_mode_only() {
    let (mut hog, _frames) = spawn(
        "on-growth-flood",
        &timer_args(&["--publish-on-growth", "--mode", "flood"]),
    );
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 2));
    assert!(
        hog.stderr()
            .contains("--publish-on-growth only applies to --mode honest"),
        "{}",
        hog.stderr()
    );
}

#[test]
fn under_reporting_hog_publishes_a_sixteenth_of_what_it_holds() {
    let (mut hog, mut frames) = spawn("under", &timer_args(&["--mode", "under"]));
    let frames = frames.all();
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    let log = hog.stderr();
    let growths = growth_lines(&log);
    assert_eq!(growths.len(), frames.len(), "{log}");
    assert_seq_strictly_increasing(&frames);
    for ((_, held, _), frame) in growths.iter().zip(&frames) {
        assert!(
            frame.current_bytes >= held / 16 && frame.current_bytes <= (held + OVERHEAD) / 16,
            "held {held}, reported {frame:?}"
        );
    }
    assert_eq!(growths.last().map(|g| g.1), Some(MAX));
    let last = frames.last().unwrap();
    assert!(last.current_bytes >= MAX / 16 && last.current_bytes <= (MAX + OVERHEAD) / 16);
}

#[test]
fn spoofing_hog_claims_another_subjects_id_in_every_frame() {
    let (mut hog, mut frames) = spawn(
        "spoof",
        &timer_args(&[
            "--mode",
            "spoof",
            "--spoof-as",
            "samgrd",
            "--start",
            "512KiB",
        ]),
    );
    let frames = frames.all();
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    // The start growth is one frame, then one per remaining chunk.
    assert_eq!(frames.len(), 1 + 8, "{frames:?}");
    assert!(frames[0].current_bytes >= 512 * KIB);
    let claim = Some(SubjectId::from_name("samgrd"));
    assert!(
        frames.iter().all(|f| f.claimed_subject == claim),
        "{frames:?}"
    );
}

#[test]
fn flooding_hog_sends_hundreds_of_frames_per_chunk() {
    let (mut hog, mut frames) = spawn(
        "flood",
        &[
            "--mode",
            "flood",
            "--chunk",
            "64KiB",
            "--max",
            "256KiB",
            "--interval-ms",
            "1",
            "--linger-ms",
            "200",
        ],
    );
    let frames = frames.all();
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    let log = hog.stderr();
    // 5 reports (start + 4 chunks) of 10 000 frames each, sent or dropped.
    assert_eq!(log.matches("flood offered=10000 ").count(), 5, "{log}");
    assert!(frames.len() >= 500, "only {} frames:\n{log}", frames.len());
    assert_seq_strictly_increasing(&frames);
    assert!(frames.last().is_some_and(|f| f.seq < 5 * 10_000));
    assert!(frames
        .iter()
        .all(|f| f.current_bytes <= 256 * KIB + OVERHEAD));
}

fn inject_args<'a>(control: &'a str, chunk: &'a str, max: &'a str) -> Vec<&'a str> {
    vec![
        "--grow-on-inject",
        "--control",
        control,
        "--chunk",
        chunk,
        "--max",
        max,
        "--linger-ms",
        "15000",
    ]
}

#[test]
fn an_idle_hog_keeps_publishing_its_heartbeat() {
    // Growth only on injection, and none comes: the hog is idle for 2.5 s. Its publisher's
    // heartbeat (1 s) still sends the unchanged figures, so oomd never takes it for silent.
    let control = path_in_tmp("idle.sock");
    let mut args = inject_args(control.to_str().unwrap(), "64KiB", "1MiB");
    let linger = args.iter().position(|a| *a == "--linger-ms").unwrap();
    args[linger + 1] = "2500";
    let (mut hog, mut frames) = spawn("idle", &args);
    let frames = frames.all();
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    assert!(
        frames.len() >= 3,
        "{} frames in 2.5 s of idling: {frames:?}\n{}",
        frames.len(),
        hog.stderr()
    );
    assert_seq_strictly_increasing(&frames);
    assert!(frames
        .iter()
        .all(|f| f.current_bytes == frames[0].current_bytes));
}

#[test]
fn control_grow_grows_by_exactly_the_requested_amount_capped_at_max() {
    let control = path_in_tmp("grow.sock");
    let control_str = control.to_str().unwrap();
    let (hog, mut frames) = spawn("grow", &inject_args(control_str, "64KiB", "1MiB"));
    let initial = frames.next().current_bytes;
    assert!(initial < OVERHEAD);
    let sender = UnixDatagram::unbound().unwrap();

    sender.send_to(b"grow 300000", &control).unwrap();
    let grown = frames.next().current_bytes;
    assert!(
        (300_000..=300_000 + OVERHEAD).contains(&(grown - initial)),
        "{initial} -> {grown}"
    );
    hog.wait_log("inject grow=300000 added=300000 held=300000 ");

    sender.send_to(b"grow 10MiB\n", &control).unwrap();
    let full = frames.next().current_bytes;
    assert!((MAX..=MAX + OVERHEAD).contains(&full), "{full}");
    hog.wait_log("inject grow=10485760 added=748576 held=1048576 ");
    hog.wait_log("max reached held=1048576");

    sender.send_to(b"shrink 5", &control).unwrap();
    hog.wait_log("control: ignored: unknown command \"shrink 5\"");
    sender.send_to(b"grow 1", &control).unwrap();
    hog.wait_log("inject grow=1 added=0 held=1048576 ");
}

#[test]
fn the_kernel_sees_the_arena_every_page_is_touched() {
    let control = path_in_tmp("rss.sock");
    let control_str = control.to_str().unwrap();
    // 256 KiB chunks are above glibc's mmap threshold: untouched, they would cost no RSS.
    let (hog, mut frames) = spawn("rss", &inject_args(control_str, "256KiB", "8MiB"));
    let _ = frames.next();
    let pid = hog.pid().as_raw_pid();
    let before = vm_rss(pid).unwrap();

    let sender = UnixDatagram::unbound().unwrap();
    sender.send_to(b"grow 8MiB", &control).unwrap();
    let frame = frames.next();
    assert!(frame.current_bytes >= 8 * MIB);
    let after = vm_rss(pid).unwrap();
    let grew = after.saturating_sub(before);
    // Every page is backed: allow 2% for the kernel's lazily summed counters.
    assert!(
        grew >= 8 * MIB / 50 * 49,
        "VmRSS {before} -> {after}: grew {grew}"
    );
}
