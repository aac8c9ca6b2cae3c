//! What the host tests share: the edge binaries built as the QEMU image has them, and execd
//! as a child that is stopped when the test ends.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BINARIES: [&str; 4] = ["execd", "oomd", "hog-fixture", "selftest-client"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Builds the four binaries (selftest builds of oomd and execd) into their own target directory
/// (`target/host-selftest`) and returns their directory.
pub fn build() -> PathBuf {
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
        .args(["--features", "oomd-service/selftest,execd/selftest"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the edge binaries failed");
    let bin = target.join("debug");
    for b in BINARIES {
        assert!(bin.join(b).exists(), "{b} was not built");
    }
    bin
}

/// Starts execd on `<dir>/manifest.toml` with its control socket at `<dir>/execd.sock`, its
/// output (and that of every service it runs) in `<dir>/execd.log`; returns it and the log.
pub fn start_execd(bin: &Path, dir: &Path) -> (Execd, PathBuf) {
    let log = dir.join("execd.log");
    let file = std::fs::File::create(&log).expect("log");
    let child = Command::new(bin.join("execd"))
        .arg("--manifest")
        .arg(dir.join("manifest.toml"))
        .arg("--socket")
        .arg(dir.join("execd.sock"))
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .expect("execd starts");
    (Execd(child), log)
}

/// execd, started by the test: stopped (SIGTERM, which makes it end its services; SIGKILL
/// after 10 s) when the test ends, however it ends.
pub struct Execd(pub Child);

impl Drop for Execd {
    fn drop(&mut self) {
        // Not reaped yet (try_wait below is the only reaper): the pid is still execd's.
        if let (Ok(None), Some(pid)) = (
            self.0.try_wait(),
            rustix::process::Pid::from_raw(self.0.id() as i32),
        ) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
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
