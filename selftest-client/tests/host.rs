//! The whole Linux edge on the host, as real processes: execd (process-group mode, no
//! cgroups, no root-only steps), the oomd service (selftest build), hog fixtures, and the
//! selftest client, in a temporary directory. Every behaviour marker must appear, and no FAIL.
//!
//! The binaries are built by this test into their own target directory
//! (`target/host-selftest`), with the oomd service's `selftest` feature, exactly as the QEMU
//! image will be. Nothing here waits by sleeping in place of a fact: the selftest client waits
//! for events with deadlines, and this test only bounds the whole run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARIES: [&str; 4] = ["execd", "oomd", "hog-fixture", "selftest-client"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Builds the four binaries (selftest build of oomd) and returns their directory.
fn build() -> PathBuf {
    let root = workspace_root();
    let target = root.join("target").join("host-selftest");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "build",
            "--quiet",
            "-p",
            "execd",
            "-p",
            "oomd-service",
            "-p",
            "hog-fixture",
            "-p",
            "selftest-client",
        ])
        .args(["--features", "oomd-service/selftest"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the edge binaries failed");
    let bin = target.join("debug");
    for b in BINARIES {
        assert!(bin.join(b).exists(), "{b} was not built");
    }
    bin
}

/// Kills the process group of execd (which it leads) when the test ends, however it ends.
struct Execd(Child);

impl Drop for Execd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hog(bin: &Path, dir: &Path, name: &str, max: &str, extra: &str) -> String {
    format!(
        r#"
[[service]]
name = "{name}"
argv = ["{hog}", "--control", "{dir}/inject/{name}.sock", "--chunk", "1MiB", "--max", "{max}", "--lifetime-ms", "90000", "--linger-ms", "90000"{extra}]
start = false
"#,
        hog = bin.join("hog-fixture").display(),
        dir = dir.display(),
    )
}

fn manifest(bin: &Path, dir: &Path) -> String {
    let mut m = format!(
        r#"
[[service]]
name = "oomd"
argv = ["{oomd}", "--policy", "{dir}/policy.toml", "--socket", "{dir}/oomd.sock", "--inject-dir", "{dir}/inject", "--log", "text"]
role = "watchdog"

[[service]]
name = "quiet"
argv = ["{hog}", "--chunk", "4KiB", "--interval-ms", "50", "--max", "4MiB", "--lifetime-ms", "90000", "--linger-ms", "90000"]
"#,
        oomd = bin.join("oomd").display(),
        hog = bin.join("hog-fixture").display(),
        dir = dir.display(),
    );
    let inject = r#", "--grow-on-inject""#;
    let big = "48MiB";
    m += &hog(bin, dir, "hog", big, inject);
    m += &hog(bin, dir, "critical-hog", big, inject)
        .replace("start = false", "start = false\ncritical = true");
    m += &hog(
        bin,
        dir,
        "spoof-hog",
        "2MiB",
        r#", "--mode", "spoof", "--spoof-as", "quiet""#,
    );
    m += &hog(
        bin,
        dir,
        "flood-hog",
        "2MiB",
        r#", "--mode", "flood", "--flood-frames", "2000", "--interval-ms", "5""#,
    );
    m += &hog(
        bin,
        dir,
        "liar-hog",
        big,
        &format!(r#"{inject}, "--mode", "under", "--under-factor", "16""#),
    );
    m += &hog(
        bin,
        dir,
        "forker-hog",
        big,
        &format!(r#"{inject}, "--mode", "forker", "--children", "2", "--child-bytes", "2MiB""#),
    );
    m += &hog(bin, dir, "rate-hog-a", big, inject);
    m += &hog(bin, dir, "rate-hog-b", big, inject);
    m
}

const POLICY: &str = r#"
[policy]
soft_bytes = "256 MiB"
hard_bytes = "512 MiB"
sample_period_ms = 20
kill_budget = 4
kill_window_ticks = 50
frame_budget_per_tick = 8
"#;

#[test]
fn every_behaviour_is_proven_on_real_processes() {
    let bin = build();
    let dir = std::env::temp_dir().join(format!("oomd-host-selftest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("inject")).expect("temp dir");
    std::fs::write(dir.join("policy.toml"), POLICY).expect("policy");
    std::fs::write(dir.join("manifest.toml"), manifest(&bin, &dir)).expect("manifest");

    let execd_log = std::fs::File::create(dir.join("execd.log")).expect("log");
    let execd = Command::new(bin.join("execd"))
        .arg("--manifest")
        .arg(dir.join("manifest.toml"))
        .arg("--socket")
        .arg(dir.join("execd.sock"))
        .stdin(Stdio::null())
        .stdout(execd_log.try_clone().expect("log"))
        .stderr(execd_log)
        .spawn()
        .expect("execd starts");
    let _execd = Execd(execd);

    let out = Command::new(bin.join("selftest-client"))
        .arg("--execd-socket")
        .arg(dir.join("execd.sock"))
        .arg("--oomd-socket")
        .arg(dir.join("oomd.sock"))
        .args(["--step-timeout-secs", "30"])
        .output()
        .expect("selftest-client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(dir.join("execd.log")).unwrap_or_default();
    print!("{stdout}"); // shown with --nocapture: the markers of this run
    let context = format!("--- selftest ---\n{stdout}\n--- execd, oomd and hogs ---\n{log}");

    for marker in [
        "SELFTEST: oom kill ok",
        "SELFTEST: oom deny critical ok",
        "SELFTEST: oom reject spoof ok",
        "SELFTEST: oom flood ok",
        "SELFTEST: oom underreport ok",
        "SELFTEST: oom tree kill ok",
        "SELFTEST: oom rate limit ok",
        "SELFTEST: Completed",
    ] {
        assert!(
            stdout.lines().any(|l| l == marker),
            "missing {marker:?}\n{context}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{context}");
    assert!(out.status.success(), "{context}");
    // The markers oomd prints itself, after the facts.
    assert!(log.lines().any(|l| l == "oomd: ready"), "{context}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("oomd: kill app=hog bytes=")),
        "{context}"
    );
    assert!(
        log.lines()
            .any(|l| l == "oomd: kill denied (subject=critical-hog reason=critical)"),
        "{context}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
