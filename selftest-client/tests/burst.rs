//! A fast honest grower on real processes: the frame budget must bound oomd's work, never hide
//! the newest figure. The hog grows 1 MiB every millisecond to 200 MiB and publishes after
//! every chunk (about 200 frames in its first fraction of a second); oomd ticks once a second
//! and takes 8 frames per tick. The first version accepted the first 8 (7 MiB), rejected the
//! rest and had nothing newer: the hog, far past its 32 MiB hard limit, was never killed. Now
//! the newest frame delivered before a tick counts (coalesced), so the kill comes at the first
//! tick after the burst, on a figure at or over hard.
//!
//! Only processes this test started are signalled (execd, through `common::Execd`'s drop;
//! the hog is execd's service). The hog ends by itself after 30 s, and every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use common::{build, start_execd};

const MIB: u64 = 1 << 20;

const POLICY: &str = r#"
[policy]
sample_period_ms = 1000
frame_budget_per_tick = 8

[service.hog]
soft_bytes = "16 MiB"
hard_bytes = "32 MiB"
soft_grace_ticks = 0
exit_deadline_ticks = 5
"#;

#[test]
fn a_burst_of_frames_past_the_budget_is_killed_at_the_next_tick_on_its_newest_figure() {
    let bin = build();
    let dir = std::env::temp_dir().join(format!("oomd-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("policy.toml"), POLICY).expect("policy");
    let (b, d) = (bin.display(), dir.display());
    let manifest = format!(
        r#"
[[service]]
name = "oomd"
argv = ["{b}/oomd", "--policy", "{d}/policy.toml", "--socket", "{d}/oomd.sock",
        "--audit-log", "{d}/audit.jsonl", "--log", "text"]
role = "watchdog"
memstat = false

[[service]]
name = "hog"
argv = ["{b}/hog-fixture", "--chunk", "1MiB", "--interval-ms", "1", "--max", "200MiB",
        "--lifetime-ms", "30000", "--linger-ms", "30000"]
"#
    );
    std::fs::write(dir.join("manifest.toml"), manifest).expect("manifest");
    let (execd, log) = start_execd(&bin, &dir);
    let text = || std::fs::read_to_string(&log).unwrap_or_default();

    // Ticks are a second apart: the kill must come within a few of them.
    let start = Instant::now();
    let killed = loop {
        let t = text();
        if let Some(bytes) = t
            .lines()
            .find_map(|l| l.strip_prefix("oomd: kill app=hog bytes="))
        {
            break bytes.trim().parse::<u64>().expect("a byte count");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the hog was never killed\n{t}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "killed at {} MiB, {} ms after execd started",
        killed / MIB,
        start.elapsed().as_millis()
    );
    let t = text();
    assert!(
        killed >= 32 * MIB,
        "killed on a figure under hard: {killed}\n{t}"
    );
    // It was a burst past the budget: frames were refused as over budget, and the kill was
    // decided on a coalesced figure, not on one of the 8 frames taken one by one.
    assert!(
        t.contains("oomd: frame rejected (sender=hog reason=over-budget)"),
        "no burst past the budget\n{t}"
    );
    let decided = t
        .find("oomd: kill decided app=hog bytes=")
        .expect("the kill decided");
    assert!(t[decided..]
        .lines()
        .next()
        .is_some_and(|l| l.ends_with("reason=hard-limit")));
    // Judged on the newest figure at the tick: not on a stale report that the kernel figure
    // contradicts (the first version's "under-report" while the hog held 200 MiB).
    assert!(
        !t[..decided].contains("oomd: under-report app=hog"),
        "judged on a stale report\n{t}"
    );
    assert!(!t.contains("FAIL"), "{t}");
    drop(execd);
    let _ = std::fs::remove_dir_all(&dir);
}
