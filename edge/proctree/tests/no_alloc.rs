//! Reading the tree and the memory of its members does not allocate.
//!
//! A counting global allocator counts every allocation made while counting is on; the walks
//! (every method this kernel offers), `read_stat`, `scan`, `mem::resident`,
//! `mem::tree_resident` and `Meter::read` (estimated and in full) run over a real
//! shell with two children, once to warm up and then 50 times counted. Runs without the test
//! harness, whose own threads would allocate at the same time.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use proctree::{mem, read_stat, scan, Meter, Method, Pid, Tree};

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

/// One round of everything the edge reads per tick or per termination; returns how many
/// descendants and bytes it saw (so that nothing is optimised away).
fn round(trees: &[Tree], root: Pid, meter: &mut Meter<4>) -> (usize, u64) {
    let mut found = 0;
    let mut bytes = 0;
    for (i, tree) in trees.iter().enumerate() {
        let mut buf = [0; 64];
        // Estimated, then (aged) read in full again.
        let now = std::time::Instant::now() + proctree::PSS_MAX_AGE * (i as u32);
        let figure = meter.read(tree, root, &mut buf, now).expect("meter");
        found += figure.counted;
        bytes += figure.bytes;
    }
    for tree in trees {
        let mut buf = [0; 64];
        let n = tree.descendants(root, &mut buf).expect("descendants");
        found += n;
        for &pid in &buf[..n] {
            bytes += mem::resident(pid).map_or(0, mem::Resident::bytes);
            let _ = read_stat(pid).expect("stat");
        }
        let mut children = [0; 8];
        found += tree.children(root, &mut children).expect("children");
        let figure = mem::tree_resident(tree, root, &mut buf).expect("tree_resident");
        found += figure.counted;
        bytes += figure.bytes;
    }
    let mut visited = 0;
    scan(|_| {
        visited += 1;
        std::ops::ControlFlow::Continue(())
    })
    .expect("scan");
    (found + visited, bytes)
}

fn main() {
    let family = common::family("sleep 30 & echo $!; sleep 30 & echo $!; wait", 2);
    let mut trees = vec![Tree::with_method(Method::Scan)];
    if Method::detect() == Method::Children {
        trees.push(Tree::with_method(Method::Children));
    }
    let detected = Tree::new();
    trees.push(detected);
    let mut meter = Meter::<4>::new();
    let warm = round(&trees, family.pid, &mut meter);
    assert!(
        warm.0 >= 2 * trees.len(),
        "the walks found the children: {warm:?}"
    );
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let mut seen = 0;
    for _ in 0..50 {
        seen += round(&trees, family.pid, &mut meter).0;
    }
    COUNTING.store(false, Ordering::SeqCst);
    let counted = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(seen > 0);
    assert_eq!(counted, 0, "reading the tree allocated {counted} times");
    println!(
        "proctree: 0 allocations over 50 rounds ({:?} detected)",
        detected.method()
    );
    // The counter counts: an allocation made with counting on is seen.
    COUNTING.store(true, Ordering::SeqCst);
    let probe = vec![0u8; 16];
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 1, "the counter counts");
    drop(probe);
    drop(family);
}
