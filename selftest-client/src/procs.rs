//! What /proc says about process groups and trees (read through `proctree`).

use std::ops::ControlFlow;

use proctree::{read_stat, Pid, Tree};

/// Pids of the live (not zombie) processes whose process group is `pgid`.
pub(crate) fn group_members(pgid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    let _ = proctree::scan(|s| {
        if s.pgrp == pgid && !s.has_exited() {
            pids.push(s.pid);
        }
        ControlFlow::Continue(())
    });
    pids
}

/// Pids of the live descendants of `root`, parents first.
pub(crate) fn descendants(root: i32) -> Vec<i32> {
    let mut buf = [0; 256];
    let n = match Tree::new().descendants(root, &mut buf) {
        Ok(n) => n,
        Err(proctree::Error::Overflow) => buf.len(),
        Err(_) => 0,
    };
    buf[..n]
        .iter()
        .copied()
        .filter(|&p| read_stat(p).is_ok_and(|s| !s.has_exited()))
        .collect()
}

/// A process named by its pid and its start time, so that a reused pid is never taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) pid: Pid,
    starttime: u64,
}

impl Identity {
    /// Whether this very process still runs (not gone, not a zombie, not another process
    /// under a reused pid).
    pub(crate) fn is_running(&self) -> bool {
        read_stat(self.pid).is_ok_and(|s| s.starttime == self.starttime && !s.has_exited())
    }
}

/// A live descendant of `root` that leads a session of its own, other than `root`'s: a child
/// that escaped the service's session (and with it its process group).
pub(crate) fn escaped_descendant(root: i32) -> Option<Identity> {
    let session = read_stat(root).ok()?.session;
    descendants(root).into_iter().find_map(|pid| {
        let s = read_stat(pid).ok()?;
        (s.session == pid && s.session != session && !s.has_exited()).then_some(Identity {
            pid,
            starttime: s.starttime,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_group_contains_us() {
        // From /proc, not getpgrp: in a container the group leader may live outside this pid
        // namespace, and the group reads 0 (which rustix's getpgrp cannot represent).
        let me = std::process::id() as i32;
        let pgid = read_stat(me).expect("own stat").pgrp;
        assert!(group_members(pgid).contains(&me));
    }

    #[test]
    fn a_child_in_its_own_session_is_found_and_seen_to_end() {
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "30"])
            .spawn()
            .expect("setsid sleep");
        let me = std::process::id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let escaped = loop {
            if let Some(e) = escaped_descendant(me).filter(|e| e.pid == child.id() as i32) {
                break e;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                descendants(me)
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(escaped.is_running());
        child.kill().expect("kill our child");
        child.wait().expect("reap it");
        assert!(!escaped.is_running());
    }
}
