//! The meter's kept files on real processes: what the figure promises holds when its `/proc`
//! files stay open between reads. A fork after a read is counted at the next; an escapee
//! (`setsid`, its parent gone) reparented to a subreaper root is counted; a member that exits
//! is dropped with its files; a process met again under a pid that is not under the tree is
//! not counted; a child forked by another thread than the main one is found; a tree larger
//! than the kept members, or a meter with no budget, reads the same.
//!
//! Runs without the test harness: the binary is run again as a subreaper shell (which must
//! be single-threaded when it sets the attribute and `exec`s) or as a two-threaded forker.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{family, family_of, family_of_subreaper, wait_until};
use proctree::{read_stat, Meter, Method, Pid, Tree, MEMBERS_KEPT};

/// Run as a member with two threads: the second forks `sleep 30` and prints its pid, then
/// both wait.
const THREAD_FORK: &str = "PROCTREE_TEST_THREAD_FORK";

fn children_tree() -> Option<Tree> {
    (Method::detect() == Method::Children).then(|| Tree::with_method(Method::Children))
}

/// The members of `root`'s tree as a meter reads them in full (aged past the PSS age).
fn full_read(meter: &mut Meter<4>, tree: &Tree, root: Pid, t: Instant) -> Vec<Pid> {
    let mut buf = [0; 64];
    let figure = meter.read(tree, root, &mut buf, t).unwrap();
    assert!(!figure.estimated, "{figure:?}");
    common::sorted(&buf[..figure.counted])
}

fn a_fork_after_a_read_is_counted_at_the_next(tree: &Tree) {
    let mut f = family("sleep 30 & echo $!; read go; sleep 30 & echo $!; wait", 1);
    let mut meter = Meter::<4>::new();
    let t = Instant::now();
    let mut buf = [0; 64];
    let first = meter.read(tree, f.pid, &mut buf, t).unwrap();
    assert_eq!((first.counted, buf[0]), (1, f.printed[0]), "{first:?}");
    let kept = meter.kept_files();
    f.tell("go");
    let second = f.read_pid();
    // The same instant: only a new member makes it a full read.
    let next = meter.read(tree, f.pid, &mut buf, t).unwrap();
    assert!(!next.estimated && next.counted == 2, "{next:?}");
    assert_eq!(
        common::sorted(&buf[..2]),
        common::sorted(&[f.printed[0], second])
    );
    if tree.method() == Method::Children {
        assert!(
            kept >= 2 && meter.kept_files() > kept,
            "{kept} then {}",
            meter.kept_files()
        );
    }
}

fn an_escapee_reparented_to_the_root_is_counted_and_its_exited_parent_dropped(tree: &Tree) {
    // The subshell starts a sleep in a session of its own and waits for a line (on the
    // shell's stdin: an asynchronous list's own is /dev/null); once it has it, it exits and
    // the sleep is reparented to the root, a subreaper, which then holds.
    let mut f = family_of_subreaper(
        "exec 3<&0; (setsid sleep 30 & echo $!; read go <&3) & echo $!; wait; read hold",
        2,
    );
    let root = f.pid;
    let (subshell, escapee) = match read_stat(f.printed[0]).unwrap().ppid == root {
        true => (f.printed[0], f.printed[1]),
        false => (f.printed[1], f.printed[0]),
    };
    wait_until("the escapee has its own session", || {
        read_stat(escapee).is_ok_and(|s| s.session == escapee && s.ppid == subshell)
    });
    let mut meter = Meter::<4>::new();
    let t = Instant::now();
    assert_eq!(
        full_read(&mut meter, tree, root, t),
        common::sorted(&[subshell, escapee])
    );
    let kept = meter.kept_files();
    f.tell("go");
    wait_until("the escapee is the root's", || {
        read_stat(escapee).is_ok_and(|s| s.ppid == root) && read_stat(subshell).is_err()
    });
    assert_eq!(full_read(&mut meter, tree, root, t), [escapee]);
    if tree.method() == Method::Children {
        assert!(
            meter.kept_files() < kept,
            "{kept} then {}",
            meter.kept_files()
        );
    }
}

fn a_process_that_is_not_under_the_tree_is_never_counted(tree: &Tree) {
    let a = family("sleep 30 & echo $!; wait", 1);
    let b = family("sleep 30 & echo $!; wait", 1);
    let mut meter = Meter::<4>::new();
    let t = Instant::now();
    // Each tree keeps its own files: reading them in turn mixes nothing.
    for i in 0..3 {
        let at = t + proctree::PSS_MAX_AGE * i;
        assert_eq!(full_read(&mut meter, tree, a.pid, at), [a.printed[0]]);
        assert_eq!(full_read(&mut meter, tree, b.pid, at), [b.printed[0]]);
    }
    let (a_root, before) = (a.pid, meter.kept_files());
    drop(a);
    // A root that is gone (reaped) has no figure, and its files go with it.
    let mut buf = [0; 8];
    assert!(meter.read(tree, a_root, &mut buf, t).is_err());
    assert!(
        meter.kept_files() <= before / 2,
        "{before} then {}",
        meter.kept_files()
    );
    assert_eq!(
        full_read(&mut meter, tree, b.pid, t + proctree::PSS_MAX_AGE * 4),
        [b.printed[0]]
    );
}

fn a_thread_s_child_is_found(tree: &Tree) {
    // The root shell runs the forker, which prints its second thread's child.
    let exe = std::env::current_exe().unwrap();
    let mut sh = std::process::Command::new("/bin/sh");
    sh.arg("-c")
        .arg(format!("{} & echo $!; wait", exe.display()))
        .env(THREAD_FORK, "1");
    let f = family_of(sh, 2);
    let (member, grandchild) = match read_stat(f.printed[0]).unwrap().ppid == f.pid {
        true => (f.printed[0], f.printed[1]),
        false => (f.printed[1], f.printed[0]),
    };
    assert!(read_stat(member).unwrap().num_threads >= 2);
    assert_eq!(read_stat(grandchild).unwrap().ppid, member);
    // Not the main thread's child: only a listing of every thread finds it.
    let main = std::fs::read_to_string(format!("/proc/{member}/task/{member}/children")).unwrap();
    assert!(!main.contains(&grandchild.to_string()), "{main}");
    let mut meter = Meter::<4>::new();
    let t = Instant::now();
    for i in 0..3 {
        let got = full_read(&mut meter, tree, f.pid, t + proctree::PSS_MAX_AGE * i);
        assert_eq!(got, common::sorted(&[member, grandchild]), "read {i}");
    }
}

fn a_tree_past_the_kept_members_or_with_no_budget_reads_the_same(tree: &Tree) {
    let script: String = (0..MEMBERS_KEPT + 3)
        .map(|_| "sleep 30 & echo $!; ")
        .chain(std::iter::once("wait"))
        .collect();
    let f = family(&script, MEMBERS_KEPT + 3);
    // Each has exec'd: a process that execs between the open and the read of its
    // `smaps_rollup` reads as gone (the file holds the old memory), and is left out.
    wait_until("every child is sleep", || {
        f.printed.iter().all(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n")
        })
    });
    let all = common::sorted(&f.printed);
    let t = Instant::now();
    let mut meter = Meter::<4>::new();
    let mut none = Meter::<4>::with_kept_files(0);
    let mut few = Meter::<4>::with_kept_files(3);
    for i in 0..3 {
        let at = t + proctree::PSS_MAX_AGE * i;
        assert_eq!(full_read(&mut meter, tree, f.pid, at), all, "read {i}");
        assert_eq!(full_read(&mut none, tree, f.pid, at), all, "read {i}");
        assert_eq!(full_read(&mut few, tree, f.pid, at), all, "read {i}");
    }
    assert!(
        meter.kept_files() <= 2 + 3 * MEMBERS_KEPT,
        "{}",
        meter.kept_files()
    );
    assert_eq!(none.kept_files(), 0);
    assert!(few.kept_files() <= 3);
}

/// The forker: a second thread forks `sleep 30` (its child, not the main thread's), prints
/// its pid, and both threads wait as long as it lives.
fn thread_fork() {
    let worker = std::thread::spawn(|| {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        println!("{}", child.id());
        let _ = child.wait();
    });
    let _ = worker.join();
}

fn main() {
    common::subreaper_shell_if_asked();
    if std::env::var_os(THREAD_FORK).is_some() {
        return thread_fork();
    }
    let mut trees = vec![("scan", Tree::with_method(Method::Scan))];
    if let Some(tree) = children_tree() {
        trees.insert(0, ("children", tree));
    }
    type Case = (&'static str, fn(&Tree));
    let cases: [Case; 5] = [
        (
            "a_fork_after_a_read_is_counted_at_the_next",
            a_fork_after_a_read_is_counted_at_the_next,
        ),
        (
            "an_escapee_reparented_to_the_root_is_counted_and_its_exited_parent_dropped",
            an_escapee_reparented_to_the_root_is_counted_and_its_exited_parent_dropped,
        ),
        (
            "a_process_that_is_not_under_the_tree_is_never_counted",
            a_process_that_is_not_under_the_tree_is_never_counted,
        ),
        ("a_thread_s_child_is_found", a_thread_s_child_is_found),
        (
            "a_tree_past_the_kept_members_or_with_no_budget_reads_the_same",
            a_tree_past_the_kept_members_or_with_no_budget_reads_the_same,
        ),
    ];
    for (name, case) in cases {
        for (method, tree) in &trees {
            case(tree);
            println!("test {name} ({method}) ... ok");
        }
    }
}
