//! A forking service whose workers hold the memory, and report none of it, is killed on the
//! kernel figure: on a host (execd in process-group mode, the oomd service reading the
//! memory of every process under the service's shim), even when the workers double-forked
//! out of the service's session and process group. When oomd prints the kill, none of the
//! service's processes runs any more.
//!
//! The real binaries (built as `tests/host.rs` builds them), a manifest of two services (oomd
//! and the forker), and a policy with `enforce_kernel = true` and a hard limit of 48 MiB for
//! the forker, whose three workers hold 24 MiB each. Every wait is bounded: the hog and its
//! workers end by themselves after 20 s whatever happens, and execd is stopped when the test
//! ends.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{build, Execd};

const MIB: u64 = 1 << 20;

/// The policy: kernel readings enforced for every service (`ENFORCED`), or, the default, only
/// for services that do not report (`DEFAULT`).
const ENFORCED: &str = r#"
[policy]
sample_period_ms = 20
enforce_kernel = true
underreport_margin_bytes = "4 MiB"

[service.workers]
soft_bytes = "32 MiB"
hard_bytes = "48 MiB"
soft_grace_ticks = 0
exit_deadline_ticks = 100
"#;

const DEFAULT: &str = r#"
[policy]
sample_period_ms = 20
underreport_margin_bytes = "4 MiB"

[service.workers]
soft_bytes = "32 MiB"
hard_bytes = "48 MiB"
soft_grace_ticks = 0
exit_deadline_ticks = 100
"#;

fn manifest(bin: &Path, dir: &Path, memstat: bool) -> String {
    let (bin, dir) = (bin.display(), dir.display());
    format!(
        r#"
[[service]]
name = "oomd"
argv = ["{bin}/oomd", "--policy", "{dir}/policy.toml", "--socket", "{dir}/oomd.sock",
        "--audit-log", "{dir}/audit.jsonl",
        "--inject-dir", "{dir}", "--log", "text"]
role = "watchdog"

[[service]]
name = "workers"
argv = ["{bin}/hog-fixture", "--mode", "forker", "--children", "3", "--child-bytes", "24MiB",
        "--child-escape", "double-fork", "--no-publish", "--max", "0",
        "--linger-ms", "20000", "--lifetime-ms", "20000"]
memstat = {memstat}
"#
    )
}

/// Live processes running `exe` (by `/proc/<pid>/exe`): any process of the hog, wherever it
/// went. Only this test runs the binaries of `target/host-selftest` at this time (cargo runs
/// test binaries one after the other).
fn running(exe: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    let _ = proctree::scan(|s| {
        let same = std::fs::read_link(format!("/proc/{}/exe", s.pid)).is_ok_and(|p| p == exe);
        if same && !s.has_exited() {
            pids.push(s.pid);
        }
        std::ops::ControlFlow::Continue(())
    });
    pids
}

/// Both cases run one after the other in one test: they look for the hog's processes by
/// executable, so they must not overlap.
#[test]
fn a_service_whose_escaped_workers_hold_the_memory_is_killed_on_the_kernel_figure() {
    let bin = build();
    // With kernel readings enforced for everyone, the workers' report (nothing) loses.
    kill_on_the_kernel_figure(&bin, "enforced", ENFORCED, true);
    // With the default policy: a service without a memstat channel (`memstat = false`, the
    // stress-ng --bigheap case) is judged on its kernel figure all the same.
    kill_on_the_kernel_figure(&bin, "silent", DEFAULT, false);
}

fn kill_on_the_kernel_figure(bin: &Path, tag: &str, policy: &str, memstat: bool) {
    let dir = std::env::temp_dir().join(format!("oomd-kernel-tree-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("policy.toml"), policy).expect("policy");
    std::fs::write(dir.join("manifest.toml"), manifest(bin, &dir, memstat)).expect("manifest");
    let log_path = dir.join("execd.log");
    let log_file = std::fs::File::create(&log_path).expect("log");
    let execd = Command::new(bin.join("execd"))
        .arg("--manifest")
        .arg(dir.join("manifest.toml"))
        .arg("--socket")
        .arg(dir.join("execd.sock"))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .expect("execd starts");
    let mut execd = Execd(execd);
    let hog = bin.join("hog-fixture");

    // Wait (bounded) for oomd's kill marker, which it prints only after execd said every
    // process of the service is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log
            .lines()
            .any(|l| l.starts_with("oomd: kill app=workers bytes="))
        {
            break log;
        }
        let stopped = execd.0.try_wait().expect("execd status");
        assert!(
            stopped.is_none() && Instant::now() < deadline,
            "no kill of workers within 30 s (execd {stopped:?})\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // At once, no waiting: none of the hog's processes may still run.
    let survivors = running(&hog);
    assert_eq!(
        survivors,
        Vec::<i32>::new(),
        "processes survived the kill\n{log}"
    );

    let workers = log
        .lines()
        .find(|l| l.contains("children spawned n=3 bytes_each=25165824 "))
        .unwrap_or_else(|| panic!("the workers never started\n{log}"));
    assert!(workers.ends_with(" escape=double-fork"), "{workers}");
    // The workers report nothing: oomd saw them through the kernel figure only.
    assert!(
        log.lines()
            .any(|l| l.starts_with("oomd: under-report app=workers reported=0 kernel=")),
        "{log}"
    );
    let bytes: u64 = log
        .lines()
        .find_map(|l| l.strip_prefix("oomd: kill app=workers bytes="))
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or_else(|| panic!("no kill figure\n{log}"));
    assert!(
        bytes >= 48 * MIB,
        "killed at {bytes} bytes, under the hard limit\n{log}"
    );
    let exited = log.find("execd: workers exited (");
    let killed = log.find("oomd: kill app=workers bytes=");
    assert!(
        matches!((exited, killed), (Some(e), Some(k)) if e < k),
        "execd's exit must come before oomd's kill marker\n{log}"
    );
    assert!(!log.contains("FAIL"), "{log}");
    // Shown with --nocapture: what oomd and execd said about the workers.
    for line in log.lines().filter(|l| l.contains("workers")) {
        println!("{line}");
    }
    drop(execd);
    let _ = std::fs::remove_dir_all(&dir);
}
