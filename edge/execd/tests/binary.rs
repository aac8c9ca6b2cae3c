//! The `execd` binary: argument checks, `--init` refused off PID 1, and a host run.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{request, PATIENCE};
use oomd_proto::{ExecdReply, ExecdRequest};
use rustix::process::{kill_process, Pid, Signal};

const EXECD: &str = env!("CARGO_BIN_EXE_execd");

/// An execd process this test started; killed on drop if it still runs.
struct Running(Child);

impl Running {
    fn pid(&self) -> Pid {
        Pid::from_child(&self.0)
    }

    /// Waits up to [`PATIENCE`] for it to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "execd did not exit in time");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // Unreaped child of this test: its pid cannot have been reused. SIGTERM first, so
            // that it kills its own services; SIGKILL if it does not exit.
            let _ = kill_process(self.pid(), Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn execd(args: &[&str], stderr: &Path) -> Running {
    let log = std::fs::File::create(stderr).unwrap();
    Running(
        Command::new(EXECD)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

#[test]
fn init_is_refused_when_not_pid_1() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("stderr");
    let mut run = execd(&["--init", "--manifest", "/nonexistent"], &stderr);
    let status = run.wait();
    assert_eq!(status.code(), Some(2));
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        text.contains("execd: --init refused: execd is pid"),
        "{text}"
    );
    assert!(text.contains("not 1"), "{text}");
}

#[test]
fn poweroff_after_needs_init() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("stderr");
    let status = execd(&["--poweroff-after", "5"], &stderr).wait();
    assert_eq!(status.code(), Some(2));
}

#[test]
fn a_bad_manifest_exits_2_naming_the_entry_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("services.toml");
    std::fs::write(&manifest, "[[service]]\nname = \"hog\"\nargv = []\n").unwrap();
    let stderr = dir.path().join("stderr");
    let socket = dir.path().join("execd.sock");
    let status = execd(
        &[
            "--manifest",
            manifest.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ],
        &stderr,
    )
    .wait();
    assert_eq!(status.code(), Some(2));
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        text.contains("service #1 (\"hog\"): key `argv`: must not be empty"),
        "{text}"
    );
}

#[test]
fn on_a_host_it_runs_the_manifest_and_stops_its_services_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("services.toml");
    std::fs::write(
        &manifest,
        "[[service]]\nname = \"family\"\nargv = [\"/bin/sh\", \"-c\", \"sleep 30 & sleep 30 & wait\"]\n",
    )
    .unwrap();
    let stderr = dir.path().join("stderr");
    let socket = dir.path().join("execd.sock");
    let mut run = execd(
        &[
            "--manifest",
            manifest.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ],
        &stderr,
    );

    let deadline = Instant::now() + PATIENCE;
    let client = loop {
        if let Ok(c) = oomd_proto::connect(&socket) {
            break c;
        }
        assert!(Instant::now() < deadline, "execd does not listen");
        std::thread::sleep(Duration::from_millis(10));
    };
    let pid = loop {
        let listed = request(&client, &ExecdRequest::List);
        if let Some(pid) = listed.iter().find_map(|r| match r {
            ExecdReply::Service(s) => s.pid,
            _ => None,
        }) {
            break pid;
        }
        assert!(Instant::now() < deadline, "family never ran: {listed:?}");
    };
    let mut members = common::wait_for_tree(pid, 3); // under the shim
    members.push(pid);
    let pinned = common::pin(&members);

    kill_process(run.pid(), Signal::TERM).unwrap();
    assert_eq!(run.wait().code(), Some(0));
    assert_eq!(common::still_running(&pinned), Vec::<i32>::new());
    common::assert_all_gone(&members, pid);
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        text.contains(&format!("execd: started family pid={pid}\n")),
        "{text}"
    );
    assert!(text.contains("execd: stopping\n"), "{text}");
    assert!(text.contains("execd: family exited (signal 9)\n"), "{text}");
}
