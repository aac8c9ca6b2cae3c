//! After start-up the service does not allocate: frames, ticks, kernel readings, kills,
//! answers, exits, restarts, control requests and the input recording are all handled in
//! memory sized at start.
//!
//! A counting global allocator counts every allocation made inside `Service::step`, over many
//! full cycles, after one warm-up cycle. Runs without the test harness, whose own threads
//! would allocate at the same time.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{policy, Rig};
use oomd::Answer;
use oomd_proto::{ControlRequest, ExitStatus, FromAuthority, ToAuthority};

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

/// Steps the service with allocation counting on, and nothing else counted.
fn counted_steps(rig: &mut Rig, n: usize) {
    for _ in 0..n {
        COUNTING.store(true, Ordering::SeqCst);
        let r = rig.svc.step(1);
        COUNTING.store(false, Ordering::SeqCst);
        r.expect("service step");
    }
}

/// One incident: the hog starts, grows past hard, is requested, accepted, exits.
fn cycle(rig: &mut Rig, steps: usize) {
    let hog = rig.start("hog", false);
    counted_steps(rig, steps);
    for bytes in [500, 1_500, 2_500, 9_000] {
        rig.publish(hog, bytes, Some(hog));
        counted_steps(rig, steps);
    }
    let Some(ToAuthority::Terminate(request)) = rig.next_request(Duration::from_secs(5)) else {
        panic!("no termination request");
    };
    rig.tell(&FromAuthority::Answer {
        ticket: request.ticket,
        answer: Answer::Accepted,
    });
    counted_steps(rig, steps);
    rig.tell(&FromAuthority::Exited {
        subject: hog,
        status: ExitStatus::Signal(15),
    });
    counted_steps(rig, steps);
    let _ = rig.control(&ControlRequest::Status { from: 0 });
    let _ = rig.control(&ControlRequest::Events {
        since: 0,
        limit: 64,
    });
    counted_steps(rig, steps);
}

fn main() {
    let mut rig = Rig::recording("no-alloc", policy()); // recording included
    let db = rig.start("db", true);
    cycle(&mut rig, 5); // warm-up: first use of every path
    ALLOCATIONS.store(0, Ordering::SeqCst);
    for i in 0..20 {
        rig.publish(db, 10 + i, None);
        cycle(&mut rig, 5);
    }
    let counted = ALLOCATIONS.load(Ordering::SeqCst);
    // Sanity: counting works (this allocation is counted, then the count is restored).
    COUNTING.store(true, Ordering::SeqCst);
    let probe = vec![0u8; 16];
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        counted + 1,
        "the counter counts"
    );
    drop(probe);
    assert_eq!(
        counted, 0,
        "the service allocated {counted} times in its steady state"
    );
    println!("oomd service steady state: 0 allocations over 20 kill cycles");
}
