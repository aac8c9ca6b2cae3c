//! Lifecycle log lines: one `write()` per line, so that lines from several processes sharing a
//! console never interleave.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Where execd's log lines go.
#[derive(Debug, Clone, Default)]
pub struct Log {
    memory: Option<LogLines>,
}

/// Lines kept in memory by a [`Log::memory`] log (for tests).
#[derive(Debug, Clone, Default)]
pub struct LogLines(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Lines go to stderr.
    #[must_use]
    pub fn stderr() -> Self {
        Log { memory: None }
    }

    /// Lines are kept in memory (and echoed through `eprint!`, which a test harness captures).
    #[must_use]
    pub fn memory() -> (Self, LogLines) {
        let lines = LogLines::default();
        (
            Log {
                memory: Some(lines.clone()),
            },
            lines,
        )
    }

    /// Writes one line (`execd: ` is part of `args`; the newline is added).
    pub fn line(&self, args: fmt::Arguments<'_>) {
        let mut line = args.to_string();
        line.push('\n');
        match &self.memory {
            None => {
                // Unbuffered: one write() for the whole line. A log that cannot be written is
                // not a reason to stop supervising.
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Some(lines) => {
                eprint!("{line}");
                if let Ok(mut lines) = lines.0.lock() {
                    line.pop();
                    lines.push(line);
                }
            }
        }
    }
}

impl LogLines {
    /// Every line so far.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Whether some line contains `needle`.
    #[must_use]
    pub fn contains(&self, needle: &str) -> bool {
        self.0
            .lock()
            .map(|l| l.iter().any(|line| line.contains(needle)))
            .unwrap_or(false)
    }
}
