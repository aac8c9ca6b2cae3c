//! What the oomd service pays per tick and per service in process-group mode, for a root with
//! three children holding 30 MiB each, with each method: the [`proctree::Meter`] it uses (a
//! walk and `statm` per member, PSS again at least every `PSS_MAX_AGE`); a full read of every
//! member's PSS (`mem::tree_resident`); and their parts. And the meter on what a service looks like: a
//! single-threaded root (execd's shim) with one child holding 30 MiB (`meter/1x30MiB`), with
//! its `/proc` files kept open between reads and with none kept (`meter_by_path/1x30MiB`).
//!
//! The children are this bench binary re-run with `PROCTREE_BENCH_HOLD=<bytes>`: they touch
//! that many bytes and wait until their parent (the root, a shell) is gone, or 120 s. Each root
//! is killed with its process group when the bench ends (it is the bench's unreaped child, so
//! the group id is still its own).

use std::hint::black_box;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use proctree::{mem, Method, Pid, Tree};

const HOLD: &str = "PROCTREE_BENCH_HOLD";
const HELD: usize = 30 << 20;

/// A holder: touch `bytes`, then wait for the parent to go (bounded).
fn hold(bytes: usize) {
    let parent = std::os::unix::process::parent_id();
    let mut arena = vec![0u8; bytes];
    for page in arena.chunks_mut(4096) {
        page[0] = 0xa5;
    }
    let start = Instant::now();
    while std::os::unix::process::parent_id() == parent
        && start.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    black_box(&arena);
}

struct Root(Child);

impl Root {
    /// A shell with `children` holders.
    fn start(children: usize) -> Root {
        let exe = std::env::current_exe().expect("bench exe");
        let script: String = (0..children)
            .map(|_| format!("{} & ", exe.display()))
            .chain(std::iter::once("wait".to_owned()))
            .collect();
        let child = Command::new("/bin/sh")
            .args(["-c", &script])
            .env(HOLD, HELD.to_string())
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .expect("sh");
        Root(child)
    }

    fn pid(&self) -> Pid {
        self.0.id() as Pid
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Some(pgid) = rustix::process::Pid::from_raw(self.pid()) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

/// Waits (bounded) until the `children` holders of `root` hold their memory.
fn wait_held(tree: &Tree, root: &Root, children: usize) {
    let mut buf = [0; 512];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let figure = mem::tree_resident(tree, root.pid(), &mut buf).expect("tree");
        if figure.counted == children && figure.bytes >= (children * HELD) as u64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the holders never held: {figure:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tree_read(c: &mut Criterion) {
    let root = Root::start(3);
    let service = Root::start(1);
    let tree = Tree::new();
    let mut buf = [0; 512];
    wait_held(&tree, &root, 3);
    wait_held(&tree, &service, 1);
    let mut processes = 0;
    proctree::scan(|_| {
        processes += 1;
        std::ops::ControlFlow::Continue(())
    })
    .expect("scan");
    eprintln!(
        "{processes} processes on this machine; detected {:?}",
        tree.method()
    );

    let mut methods = vec![("scan", Tree::with_method(Method::Scan))];
    if Method::detect() == Method::Children {
        methods.insert(0, ("children_files", Tree::with_method(Method::Children)));
    }
    let mut group = c.benchmark_group("tree_read");
    for (name, tree) in &methods {
        // What a tick costs the oomd service: the meter, PSS read again at least every
        // `PSS_MAX_AGE`, which few of the iterations meet: a tick between full reads.
        let mut meter = proctree::Meter::<4>::new();
        group.bench_function(format!("{name}/meter/3x30MiB"), |b| {
            b.iter(|| {
                meter
                    .read(tree, black_box(root.pid()), &mut buf, Instant::now())
                    .expect("meter")
            });
        });
        // What one service costs: a shim-like root (single-threaded) and one process.
        let mut meter = proctree::Meter::<4>::new();
        group.bench_function(format!("{name}/meter/1x30MiB"), |b| {
            b.iter(|| {
                meter
                    .read(tree, black_box(service.pid()), &mut buf, Instant::now())
                    .expect("meter")
            });
        });
        // The same with no kept files: what a service past the meter's bounds costs.
        let mut meter = proctree::Meter::<4>::with_kept_files(0);
        group.bench_function(format!("{name}/meter_by_path/1x30MiB"), |b| {
            b.iter(|| {
                meter
                    .read(tree, black_box(service.pid()), &mut buf, Instant::now())
                    .expect("meter")
            });
        });
        group.bench_function(format!("{name}/tree_resident/3x30MiB"), |b| {
            b.iter(|| mem::tree_resident(tree, black_box(root.pid()), &mut buf).expect("tree"));
        });
        group.bench_function(format!("{name}/descendants/3"), |b| {
            b.iter(|| {
                tree.descendants(black_box(root.pid()), &mut buf)
                    .expect("walk")
            });
        });
    }
    let n = tree.descendants(root.pid(), &mut buf).expect("walk");
    let one = buf[..n]
        .iter()
        .copied()
        .find(|&p| mem::resident(p).is_ok_and(|r| r.bytes() >= HELD as u64))
        .expect("a holder");
    group.bench_function("resident/pss_smaps_rollup/30MiB", |b| {
        b.iter(|| mem::resident(black_box(one)).expect("pss"));
    });
    group.bench_function("resident/rss_statm/30MiB", |b| {
        b.iter(|| mem::rss(black_box(one)).expect("rss"));
    });
    group.finish();
    drop(service);
    drop(root);
}

criterion_group!(benches, tree_read);

fn main() {
    if let Some(bytes) = std::env::var(HOLD).ok().and_then(|b| b.parse().ok()) {
        hold(bytes);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
