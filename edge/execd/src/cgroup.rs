//! cgroup v2 placement of services, used only with an explicit cgroup root: `--init` as PID 1
//! (`/sys/fs/cgroup`, mounted by execd) or `--cgroup-root`. Never on a host by default, and
//! never on a root that is not a cgroup v2 filesystem (checked with `statfs` before anything
//! is created or written).
//!
//! Verified only in the QEMU guest: hosts that run the tests use process groups.
//!
//! Layout: `<root>/oomd/<name>` per service, with the memory controller enabled for the
//! children of `<root>` and of `<root>/oomd`. The child joins its directory before `exec` by
//! writing `0` to a `cgroup.procs` descriptor opened before the fork.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustix::process::Signal;

use crate::bounds::CGROUP_PREFIX;
use crate::log::Log;
use crate::signal;

/// `CGROUP2_SUPER_MAGIC` from `linux/magic.h`.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// The `oomd` directory under a verified cgroup v2 root.
#[derive(Debug)]
pub(crate) struct CgroupRoot {
    base: PathBuf,
}

impl CgroupRoot {
    /// Checks that `root` is a cgroup v2 mount, creates `<root>/oomd` and enables the memory
    /// controller for the children of both (failures to enable are logged: services still run
    /// in their cgroups, without memory accounting).
    pub(crate) fn open(root: &Path, log: &Log) -> io::Result<Self> {
        let fs = rustix::fs::statfs(root)?;
        #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
        if fs.f_type as u64 != CGROUP2_SUPER_MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a cgroup v2 filesystem", root.display()),
            ));
        }
        let base = root.join(CGROUP_PREFIX.trim_end_matches('/'));
        mkdir(&base)?;
        for dir in [root, base.as_path()] {
            if let Err(e) = write_file(&dir.join("cgroup.subtree_control"), b"+memory") {
                log.line(format_args!(
                    "execd: cgroup: cannot enable memory in {} ({e})",
                    dir.display()
                ));
            }
        }
        Ok(CgroupRoot { base })
    }

    /// Creates (or reuses) the service's directory and opens its `cgroup.procs` for the child
    /// to join before exec.
    pub(crate) fn prepare(&self, name: &str) -> io::Result<(PathBuf, File)> {
        let dir = self.base.join(name);
        mkdir(&dir)?;
        let procs = File::options().write(true).open(dir.join("cgroup.procs"))?;
        Ok((dir, procs))
    }
}

fn mkdir(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    File::options().write(true).open(path)?.write_all(bytes)
}

/// Whether any live process is in `dir` or below (`populated 1` in `cgroup.events`). Exited
/// processes waiting to be reaped do not count.
pub(crate) fn populated(dir: &Path) -> io::Result<bool> {
    let events = std::fs::read_to_string(dir.join("cgroup.events"))?;
    events
        .lines()
        .find_map(|l| l.strip_prefix("populated "))
        .map(|v| v.trim() != "0")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no populated line"))
}

/// Kills every process in `dir` at once (`cgroup.kill`, Linux 5.14); on kernels without it,
/// SIGKILL to each member through a pidfd.
pub(crate) fn kill(dir: &Path) -> io::Result<()> {
    match write_file(&dir.join("cgroup.kill"), b"1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => signal_members(dir, Signal::KILL),
        other => other,
    }
}

/// Sends `sig` to every process listed in `dir/cgroup.procs`, each through a pidfd opened on it
/// and kept only if the pid is still listed after the pidfd was opened (so a pid reused in
/// between is never signalled).
pub(crate) fn signal_members(dir: &Path, sig: Signal) -> io::Result<()> {
    let procs = dir.join("cgroup.procs");
    let list = || -> io::Result<Vec<i32>> {
        Ok(std::fs::read_to_string(&procs)?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    };
    let before = list()?;
    let mut after: Option<Vec<i32>> = None;
    signal::each_verified(
        &before,
        |pid| {
            after
                .get_or_insert_with(|| list().unwrap_or_default())
                .contains(&pid)
        },
        sig,
    )
}

/// Removes the service's directory once it is empty (a failure only leaves an empty directory,
/// reused by the next spawn).
pub(crate) fn remove(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_that_is_not_cgroup2_is_refused_before_anything_is_created() {
        // Only statfs runs: a temporary directory is never a cgroup v2 mount.
        let dir = tempfile::tempdir().unwrap();
        let err = CgroupRoot::open(dir.path(), &Log::memory().0).unwrap_err();
        assert!(
            err.to_string().contains("is not a cgroup v2 filesystem"),
            "{err}"
        );
        assert!(!dir.path().join("oomd").exists());
    }
}
