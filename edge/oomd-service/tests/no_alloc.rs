//! After start-up the service does not allocate: frames (empty packets and bursts past the
//! frame budget too), ticks, kernel readings (the memory of a real process tree, read at every
//! tick), reclaim requests and their acknowledgements, kills, answers, exits, restarts, control
//! requests and the input recording are all handled in memory sized at start.
//!
//! A counting global allocator counts every allocation made inside `Service::step`: the rig
//! steps the service only through a counting stepper, so registrations, control replies,
//! answers and exits are all counted, in 20 full kill cycles after one warm-up cycle, once for
//! each audit-log format (none, text, JSON), with the input recording on. Runs without the
//! test harness, whose own threads would allocate at the same time.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{policy, Rig};
use oomd::Answer;
use oomd_proto::{ControlRequest, ExitStatus, FromAuthority, ToAuthority};
use oomd_service::{LogFormat, Service, ServiceError};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

#[allow(unsafe_code)]
// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One service step with allocation counting on: every step the rig makes goes through this,
/// so start-ups of services, control replies, answers and exits are all counted; the test's
/// own work between steps is not.
fn counted_step(svc: &mut Service) -> Result<(), ServiceError> {
    COUNTING.store(true, Ordering::SeqCst);
    let r = svc.step(1);
    COUNTING.store(false, Ordering::SeqCst);
    r
}

/// One incident: the hog starts, sends an empty packet and a burst past its frame budget
/// (paused, drained, coalesced), crosses soft and is asked to reclaim on its channel,
/// acknowledges and meets it, then grows past hard, is requested, accepted, exits; then status
/// and events are read over the control socket. Returns whether the reclaim request came.
fn cycle(rig: &mut Rig) -> bool {
    let hog = rig.start("hog", false);
    rig.send_raw(hog, &[]);
    for bytes in 0..20 {
        rig.publish(hog, bytes, Some(hog));
    }
    rig.pump_for(Duration::from_millis(12));
    rig.publish(hog, 1_500, Some(hog));
    let asked = rig
        .recv_on_channel(hog, Duration::from_secs(5))
        .and_then(|bytes| memstat::ReclaimRequest::decode(&bytes).ok());
    if let Some(request) = asked {
        rig.publish(hog, 400, Some(hog));
        let mut buf = [0; memstat::MAX_ACK_LEN];
        let n = memstat::ReclaimAck { id: request.id }
            .encode(&mut buf)
            .expect("fits");
        rig.send_raw(hog, &buf[..n]);
        rig.pump_for(Duration::from_millis(12));
    }
    for bytes in [500, 1_500, 2_500, 9_000] {
        rig.publish(hog, bytes, Some(hog));
        rig.pump_for(Duration::from_millis(3));
    }
    let Some(ToAuthority::Terminate(request)) = rig.next_request(Duration::from_secs(5)) else {
        panic!("no termination request");
    };
    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Accepted,
    });
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });
    let _ = rig.control(&ControlRequest::Status { from: 0 });
    let _ = rig.control(&ControlRequest::Events {
        since: 0,
        limit: 64,
    });
    rig.pump_for(Duration::from_millis(10));
    asked.is_some()
}

/// Sends the process's stdout and stderr to /dev/null until the returned guard is dropped:
/// the text and JSON audit logs are written (and counted) without flooding the test output.
struct Quiet {
    stdout: std::os::fd::OwnedFd,
    stderr: std::os::fd::OwnedFd,
}

impl Quiet {
    fn new() -> Quiet {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null");
        let saved = Quiet {
            stdout: rustix::io::dup(std::io::stdout()).expect("dup"),
            stderr: rustix::io::dup(std::io::stderr()).expect("dup"),
        };
        rustix::stdio::dup2_stdout(&null).expect("dup2");
        rustix::stdio::dup2_stderr(&null).expect("dup2");
        saved
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        // The saved descriptors are closed when the fields drop, after this.
        let _ = rustix::stdio::dup2_stdout(&self.stdout);
        let _ = rustix::stdio::dup2_stderr(&self.stderr);
    }
}

/// A real process tree for `db`, as execd would announce it on a host: a shell (the root, as
/// a shim is) with a child. Killed with its process group on drop (the shell is not reaped
/// before, so the group id is still its own).
struct Tree(std::process::Child);

impl Tree {
    fn start() -> Tree {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 60 & wait"])
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("sh");
        Tree(child)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if let Some(pgid) = rustix::process::Pid::from_raw(self.pid()) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

/// The kernel figure oomd holds for `db`.
fn kernel_bytes(rig: &mut Rig, db: oomd::SubjectId) -> Option<u64> {
    rig.control(&ControlRequest::Status { from: 0 })
        .into_iter()
        .find_map(|r| match r {
            oomd_proto::ControlReply::Subject(v) if v.status.subject == db => v.status.kernel_bytes,
            _ => None,
        })
}

fn main() {
    let tree = Tree::start();
    for log in [LogFormat::None, LogFormat::Text, LogFormat::Json] {
        let counted = {
            let _quiet = Quiet::new();
            let policy = oomd::Policy {
                reclaim_target_percent: 50,
                reclaim_deadline_ticks: 200,
                ..policy()
            };
            let mut rig = Rig::recording(&format!("no-alloc-{log:?}"), policy, log);
            rig.stepper = counted_step;
            let db = rig.start_as("db", true, tree.pid());
            // Wait (bounded) until the tree has its child and oomd has read its memory.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while kernel_bytes(&mut rig, db).unwrap_or(0) == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no kernel figure for db"
                );
                rig.pump_for(Duration::from_millis(10));
            }
            assert!(cycle(&mut rig), "no reclaim request"); // warm-up: every path once
            ALLOCATIONS.store(0, Ordering::SeqCst);
            for i in 0..20 {
                rig.publish(db, 10 + i, None);
                assert!(cycle(&mut rig), "no reclaim request in cycle {i}");
            }
            let counted = ALLOCATIONS.load(Ordering::SeqCst);
            // The figure was read all along (the tree still runs).
            assert!(kernel_bytes(&mut rig, db).is_some_and(|b| b > 0));
            counted
        };
        assert_eq!(
            counted, 0,
            "with --log {log:?} the service allocated {counted} times in its steady state"
        );
        println!("oomd service steady state, --log {log:?}: 0 allocations over 20 kill cycles");
    }
    // The counter counts: an allocation made with counting on is seen.
    COUNTING.store(true, Ordering::SeqCst);
    let probe = vec![0u8; 16];
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 1, "the counter counts");
    drop(probe);
}
