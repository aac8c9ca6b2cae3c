//! `/proc` paths built on the stack, and small files read into stack buffers.

use core::ffi::CStr;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags, CWD};
use rustix::io::Errno;

use crate::{Error, Pid};

/// The longest path built: `/proc/<pid>/task/<tid>/children` is 40 bytes at most.
const MAX_PATH: usize = 64;

/// A NUL-terminated path in a fixed buffer.
pub(crate) struct Path {
    buf: [u8; MAX_PATH],
    len: usize,
}

impl Path {
    pub(crate) fn new() -> Self {
        Path {
            buf: [0; MAX_PATH],
            len: 0,
        }
    }

    /// `/proc/<pid>/<file>`.
    pub(crate) fn proc(pid: Pid, file: &str) -> Option<Self> {
        let mut p = Path::new();
        p.push(b"/proc/")?;
        p.push_int(pid)?;
        p.push(b"/")?;
        p.push(file.as_bytes())?;
        Some(p)
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) -> Option<&mut Self> {
        // Room for the bytes and the final NUL.
        let end = self.len.checked_add(bytes.len())?;
        if end >= MAX_PATH || bytes.contains(&0) {
            return None;
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Some(self)
    }

    pub(crate) fn push_int(&mut self, n: Pid) -> Option<&mut Self> {
        let mut digits = [0u8; 12];
        let mut i = digits.len();
        let negative = n < 0;
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if negative {
            i -= 1;
            digits[i] = b'-';
        }
        self.push(&digits[i..])
    }

    pub(crate) fn as_cstr(&self) -> Option<&CStr> {
        // `push` keeps a zero byte after `len` and none before it.
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).ok()
    }
}

/// Opens `path` (relative to `dir`, or absolute) read-only.
pub(crate) fn open_at(dir: Option<&OwnedFd>, path: &Path, flags: OFlags) -> Result<OwnedFd, Error> {
    let path = path.as_cstr().ok_or(Error::Malformed)?;
    let flags = flags | OFlags::RDONLY | OFlags::CLOEXEC;
    let fd = match dir {
        Some(dir) => rustix::fs::openat(dir.as_fd(), path, flags, Mode::empty()),
        None => rustix::fs::openat(CWD, path, flags, Mode::empty()),
    };
    Ok(fd?)
}

/// Reads a whole small file into `buf`; returns its length. A file that does not fit is
/// [`Error::Malformed`] (every file read this way is bounded by the kernel's format).
pub(crate) fn read_small(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Error> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Err(Error::Malformed);
        }
        match rustix::io::read(fd, &mut buf[len..]) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads a whole small file kept open into `buf`, from offset 0 (`pread`: the file's offset
/// is left alone); returns its length. `/proc` files are `seq_file`s: a read from offset 0
/// writes the text anew, and a read shorter than asked is the end of it (the kernel fills the
/// caller's buffer until the records run out), so a file that fits takes one system call.
pub(crate) fn pread_small(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Error> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Err(Error::Malformed);
        }
        match rustix::io::pread(fd, &mut buf[len..], len as u64) {
            Ok(0) => return Ok(len),
            Ok(n) => {
                len += n;
                if len < buf.len() {
                    return Ok(len);
                }
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Parses a decimal number (ASCII digits only, no sign, no overflow).
pub(crate) fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Parses a pid (a decimal that fits a positive `i32`).
pub(crate) fn parse_pid(field: &[u8]) -> Option<Pid> {
    parse_u64(field)
        .and_then(|v| Pid::try_from(v).ok())
        .filter(|&p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_with_their_nul() {
        let p = Path::proc(4_194_304, "stat").unwrap();
        assert_eq!(p.as_cstr().unwrap().to_bytes(), b"/proc/4194304/stat");
        let mut p = Path::new();
        p.push_int(-12).unwrap();
        assert_eq!(p.as_cstr().unwrap().to_bytes(), b"-12");
    }

    #[test]
    fn a_path_that_does_not_fit_is_refused() {
        let mut p = Path::new();
        assert!(p.push(&[b'a'; MAX_PATH - 1]).is_some());
        assert!(p.push(b"b").is_none());
        assert!(Path::new().push(b"a\0b").is_none());
    }

    #[test]
    fn numbers_are_digits_only() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_pid(b"0"), None);
        assert_eq!(parse_pid(b"2147483648"), None);
        assert_eq!(parse_pid(b"42"), Some(42));
    }
}
