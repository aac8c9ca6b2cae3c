//! The log: one line per milestone on stderr, `hog-fixture[<pid>]: <words>`.
//!
//! Each line is formatted in full first and written with one `write` call, so lines of
//! several processes (the forker and its children share stderr) never interleave mid-line.
//! No line contains the word `FAIL` in capitals: the QEMU harness fails a run on it, and the
//! hog misbehaving on purpose is not a failure.

use std::fmt;
use std::io::Write;

/// Writes the hog's log lines to stderr.
#[derive(Clone, Copy, Debug)]
pub struct Logger {
    pid: u32,
}

impl Logger {
    /// A logger for the process `pid`.
    #[must_use]
    pub fn new(pid: u32) -> Self {
        Self { pid }
    }

    /// The line as it is written, newline included.
    #[must_use]
    pub fn format(&self, words: fmt::Arguments<'_>) -> String {
        format!("hog-fixture[{}]: {words}\n", self.pid)
    }

    /// Writes one line. A closed or full stderr is not the hog's problem: errors are ignored.
    pub fn line(&self, words: fmt::Arguments<'_>) {
        let line = self.format(words);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_pid_prefix_and_one_newline() {
        let log = Logger::new(42);
        assert_eq!(
            log.format(format_args!("chunk held={}", 65536)),
            "hog-fixture[42]: chunk held=65536\n"
        );
    }
}
