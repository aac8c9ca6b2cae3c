//! The little of `/proc` execd reads: who is in a process group.

use std::io;

/// The process group in the text of `/proc/<pid>/stat`: `pid (comm) state ppid pgrp …`. The
/// command name may hold spaces and parentheses, so fields are counted from its last `)`.
pub(crate) fn parse_pgrp(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(2)?.parse().ok()
}

/// The process group of `pid`, from `/proc/<pid>/stat`.
pub(crate) fn pgrp_of(pid: i32) -> io::Result<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_pgrp(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad stat line"))
}

/// Every process whose process group is `pgrp`, in `/proc` order. A snapshot: callers that act
/// on a pid must pin it (pidfd) and check again.
pub(crate) fn group_members(pgrp: i32) -> io::Result<Vec<i32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if matches!(pgrp_of(pid), Ok(g) if g == pgrp) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        assert_eq!(parse_pgrp("42 (a) b (c)) S 7 41 42 0 -1"), Some(41));
    }

    #[test]
    fn a_short_stat_line_is_rejected() {
        assert_eq!(parse_pgrp("42 (sh) Z 1"), None);
        assert_eq!(parse_pgrp("garbage"), None);
    }

    #[test]
    fn our_own_group_contains_us() {
        let me = std::process::id() as i32;
        let pgrp = pgrp_of(me).unwrap();
        assert!(group_members(pgrp).unwrap().contains(&me));
    }
}
