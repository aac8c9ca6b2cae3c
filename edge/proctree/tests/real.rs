//! The walks on real processes this test starts: a shell with two children, a child that moved
//! to a session of its own, and an orphan reparented to this process (a child subreaper), with
//! every method this kernel offers.
#![allow(clippy::unwrap_used)]

mod common;

use common::{family, sorted, wait_until};
use proctree::{mem, read_stat, scan, Error, Meter, Method, Pid, Tree, PSS_MAX_AGE};

/// Every method this kernel offers (the scan always; `children` files when built in).
fn trees() -> Vec<Tree> {
    let mut trees = vec![Tree::with_method(Method::Scan)];
    if Method::detect() == Method::Children {
        trees.push(Tree::with_method(Method::Children));
    }
    trees
}

fn descendants(tree: &Tree, root: Pid) -> Vec<Pid> {
    let mut buf = [0; 64];
    let n = tree.descendants(root, &mut buf).unwrap();
    sorted(&buf[..n])
}

#[test]
fn a_shell_with_two_children_has_exactly_them_as_descendants() {
    let f = family("sleep 30 & echo $!; sleep 30 & echo $!; wait", 2);
    for tree in trees() {
        assert_eq!(descendants(&tree, f.pid), sorted(&f.printed), "{tree:?}");
        let mut buf = [0; 8];
        let n = tree.children(f.pid, &mut buf).unwrap();
        assert_eq!(sorted(&buf[..n]), sorted(&f.printed), "{tree:?}");
        // A leaf has none.
        assert_eq!(descendants(&tree, f.printed[0]), Vec::<Pid>::new());
    }
}

#[test]
fn grandchildren_come_after_their_parents() {
    // sh -> sh (subshell) -> sleep
    let f = family("(sleep 30 & echo $!; wait) & echo $!; wait", 2);
    // The two echoes race: the subshell is the one whose parent is the shell.
    let (child, grandchild) = match read_stat(f.printed[0]).unwrap().ppid == f.pid {
        true => (f.printed[0], f.printed[1]),
        false => (f.printed[1], f.printed[0]),
    };
    assert_eq!(read_stat(grandchild).unwrap().ppid, child);
    for tree in trees() {
        let mut buf = [0; 8];
        let n = tree.descendants(f.pid, &mut buf).unwrap();
        assert_eq!(buf[..n], [child, grandchild], "{tree:?}");
    }
}

#[test]
fn a_child_in_a_session_of_its_own_is_still_a_descendant() {
    let f = family("setsid sleep 30 & echo $!; wait", 1);
    let escaped = f.printed[0];
    wait_until("the child has its own session", || {
        read_stat(escaped).is_ok_and(|s| s.session == escaped)
    });
    let shell = read_stat(f.pid).unwrap();
    let stat = read_stat(escaped).unwrap();
    assert_ne!(stat.session, shell.session);
    assert_ne!(stat.pgrp, shell.pgrp);
    assert_eq!(stat.ppid, f.pid);
    for tree in trees() {
        assert_eq!(descendants(&tree, f.pid), [escaped], "{tree:?}");
    }
}

#[test]
fn an_orphan_adopted_by_a_subreaper_is_its_descendant_and_no_longer_its_old_parents() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let me = std::process::id() as Pid;
    // The subshell starts sleep and exits: sleep is orphaned, and adopted by this process.
    let f = family("(sleep 30 & echo $!); echo $$; exec sleep 30", 2);
    let orphan = f.printed[0];
    wait_until("the orphan is adopted", || {
        read_stat(orphan).is_ok_and(|s| s.ppid == me)
    });
    for tree in trees() {
        assert!(!descendants(&tree, f.pid).contains(&orphan), "{tree:?}");
        let mut buf = [0; 4096];
        let n = tree.descendants(me, &mut buf).unwrap();
        assert!(buf[..n].contains(&orphan), "{tree:?}");
        assert!(buf[..n].contains(&f.pid), "{tree:?}");
    }
}

#[test]
fn a_buffer_too_small_overflows_with_the_first_found() {
    let f = family(
        "sleep 30 & echo $!; sleep 30 & echo $!; sleep 30 & echo $!; wait",
        3,
    );
    for tree in trees() {
        let mut buf = [0; 2];
        assert_eq!(
            tree.descendants(f.pid, &mut buf),
            Err(Error::Overflow),
            "{tree:?}"
        );
        assert!(
            buf.iter().all(|p| f.printed.contains(p)),
            "{tree:?}: {buf:?}"
        );
        assert_ne!(buf[0], buf[1]);
        assert_eq!(
            tree.children(f.pid, &mut buf),
            Err(Error::Overflow),
            "{tree:?}"
        );
    }
}

#[test]
fn a_process_that_does_not_exist_has_no_descendants() {
    for tree in trees() {
        let mut buf = [0; 4];
        assert_eq!(tree.descendants(i32::MAX, &mut buf), Ok(0), "{tree:?}");
    }
}

#[test]
fn the_scan_visits_this_process_and_can_stop() {
    let me = std::process::id() as Pid;
    let mut seen = false;
    let mut visited = 0;
    scan(|s| {
        visited += 1;
        if s.pid == me {
            seen = true;
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert!(seen);
    assert!(visited >= 1);
}

#[test]
fn a_tree_holding_memory_shows_it_in_its_members() {
    // dd fills a 24 MiB buffer and blocks writing it into a pipe nobody reads.
    let f = family(
        "dd if=/dev/zero bs=24M count=1 status=none | sleep 30 & echo $!; wait",
        1,
    );
    let tree = Tree::new();
    let members = || {
        let mut buf = [0; 8];
        let n = tree.descendants(f.pid, &mut buf).unwrap();
        buf[..n].to_vec()
    };
    let holder = || {
        members()
            .into_iter()
            .find(|&p| mem::resident(p).is_ok_and(|r| r.bytes() >= 24 << 20))
    };
    // Wait for one member to hold it all: dd fills its buffer as it reads, so the members'
    // sum can reach 24 MiB (dd's part so far plus the shells') before dd alone does.
    wait_until("dd holds its 24 MiB buffer", || holder().is_some());
    let dd = holder().expect("one member holds it all");
    let held: u64 = members()
        .into_iter()
        .filter_map(|p| mem::resident(p).ok())
        .map(mem::Resident::bytes)
        .sum();
    assert!(held >= 24 << 20, "the members hold {held} bytes");
    let r = mem::resident(dd).unwrap();
    assert!(matches!(r, mem::Resident::Pss(_)), "{r:?}");
    // Its pages are private: PSS and RSS agree on them.
    assert!(mem::rss(dd).unwrap() + (1 << 20) >= r.bytes());
}

#[test]
fn the_memory_of_a_tree_is_the_sum_over_its_members_not_its_root() {
    let f = family(
        "dd if=/dev/zero bs=16M count=1 status=none | sleep 30 & \
         dd if=/dev/zero bs=8M count=1 status=none | sleep 30 & echo $!; wait",
        1,
    );
    for tree in trees() {
        let mut buf = [0; 16];
        wait_until("both dd hold their buffers", || {
            mem::tree_resident(&tree, f.pid, &mut buf).is_ok_and(|t| t.bytes >= 24 << 20)
        });
        let figure = mem::tree_resident(&tree, f.pid, &mut buf).unwrap();
        assert_eq!(figure.counted, 4, "{tree:?}: {figure:?}");
        assert!(!figure.truncated && !figure.rss, "{tree:?}: {figure:?}");
        // Four small processes besides the buffers: well under 24 MiB more.
        assert!(figure.bytes < 48 << 20, "{tree:?}: {figure:?}");
        let mut small = [0; 2];
        let cut = mem::tree_resident(&tree, f.pid, &mut small).unwrap();
        assert!(cut.truncated && cut.counted == 2 && cut.bytes <= figure.bytes + (1 << 20));
        // The root's own memory is not in it: a leaf has an empty tree.
        let leaf = mem::tree_resident(&tree, f.printed[0], &mut buf).unwrap();
        assert_eq!((leaf.counted, leaf.bytes), (0, 0));
    }
}

#[test]
fn a_meter_reads_pss_in_full_first_and_again_only_when_the_tree_changes() {
    // One holder of 8 MiB; a second of 4 MiB once the test says so.
    let mut f = family(
        "dd if=/dev/zero bs=8M count=1 status=none | sleep 30 & echo $!; read go; \
         dd if=/dev/zero bs=4M count=1 status=none | sleep 30 & echo $!; wait",
        1,
    );
    let tree = Tree::new();
    let mut buf = [0; 16];
    let root = f.pid;
    let full = |buf: &mut [Pid]| mem::tree_resident(&tree, root, buf).unwrap();
    wait_until("the first holder is full", || {
        full(&mut buf).bytes >= 8 << 20
    });
    let mut meter = Meter::<4>::new();
    let t = std::time::Instant::now();
    let first = meter.read(&tree, root, &mut buf, t).unwrap();
    assert!(
        !first.estimated && first.counted == 2 && first.bytes >= 8 << 20,
        "{first:?}"
    );
    assert_eq!(meter.len(), 1);
    // Nothing changed: the remembered sum, moved by what RSS moved (nothing, or a page).
    let again = meter.read(&tree, root, &mut buf, t).unwrap();
    assert!(again.estimated, "{again:?}");
    assert!(
        again.bytes.abs_diff(first.bytes) < 1 << 20,
        "{again:?} vs {first:?}"
    );
    // Too old: read in full.
    let aged = meter.read(&tree, root, &mut buf, t + PSS_MAX_AGE).unwrap();
    assert!(!aged.estimated, "{aged:?}");
    // A new member (fork) that holds 4 MiB more: read in full at once.
    f.tell("go");
    f.read_pid();
    wait_until("the second holder is full", || {
        let now = full(&mut buf);
        now.counted == 4 && now.bytes >= 12 << 20
    });
    let grown = meter.read(&tree, root, &mut buf, t + PSS_MAX_AGE).unwrap();
    assert!(!grown.estimated && grown.counted == 4, "{grown:?}");
    assert!(grown.bytes >= 12 << 20, "{grown:?}");
    // A root that is gone has no figure.
    assert!(meter
        .read(&tree, i32::MAX, &mut buf, t)
        .unwrap_err()
        .is_gone());
}
