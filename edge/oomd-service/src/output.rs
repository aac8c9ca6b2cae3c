//! The service's two output streams: contract markers on stdout, the audit log on stderr.
//! Every line is formatted into a fixed buffer and written with one `write()`.

use oomd::{Event, EventKind};
use oomd_proto::{KillReport, KillReportView};

use crate::kernel::{format_into, Cursor};
use crate::ServiceNames;

/// How the audit log on stderr is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One line per event in the marker words (`oomd: kill decided app=..`).
    #[default]
    Text,
    /// One JSON object per line: `{"seq":..,"tick":..,"event":{..},"line":".."}`.
    Json,
    /// No audit log (markers still go to stdout).
    None,
}

/// Longest line written; longer ones are cut (never split into two writes).
const MAX_LINE: usize = 1024;

/// The two streams.
#[derive(Debug)]
pub struct Output {
    format: LogFormat,
    line: [u8; MAX_LINE],
    /// Lines that could not be written whole (a full pipe, a closed console), counted.
    pub write_failures: u64,
}

impl Output {
    /// Writes to the process's stdout and stderr.
    #[must_use]
    pub fn new(format: LogFormat) -> Self {
        Output {
            format,
            line: [0; MAX_LINE],
            write_failures: 0,
        }
    }

    /// A contract marker, on stdout, as one write.
    pub fn marker(&mut self, args: core::fmt::Arguments<'_>) {
        let n = self.format_line(args);
        self.write(1, n);
    }

    /// A note of the service itself (start-up, a lost peer), on stderr in the log format.
    pub fn note(&mut self, args: core::fmt::Arguments<'_>) {
        match self.format {
            LogFormat::None => {}
            LogFormat::Text => {
                let n = self.format_line(args);
                self.write(2, n);
            }
            LogFormat::Json => {
                let mut text = [0u8; 512];
                let text = format_into(&mut text, args);
                #[derive(serde::Serialize)]
                struct Note<'a> {
                    note: &'a str,
                }
                let n = self.json_line(&Note { note: text });
                self.write(2, n);
            }
        }
    }

    /// One event: its audit line on stderr, and on stdout if it is a contract marker.
    pub fn event(&mut self, event: &Event, names: &ServiceNames) {
        let mut words = [0u8; 512];
        let mut c = Cursor {
            buf: &mut words,
            len: 0,
        };
        let _ = oomd::trace::write_line(&mut c, &event.kind, names);
        let len = c.len;
        let words = core::str::from_utf8(&words[..len]).unwrap_or("");
        if matches!(
            event.kind,
            EventKind::KillConfirmed { .. } | EventKind::KillDenied { .. }
        ) {
            self.marker(format_args!("{words}"));
        }
        match self.format {
            LogFormat::None => {}
            LogFormat::Text => self.marker_to(2, words),
            LogFormat::Json => {
                let n = self.json_event(event, words);
                self.write(2, n);
            }
        }
    }

    /// A kill report, after the `kill confirmed` event it belongs to: its line on stderr (in
    /// JSON, the report and its line). Not a contract marker: stdout keeps the kill line.
    pub fn kill_report(&mut self, view: &KillReportView) {
        match self.format {
            LogFormat::None => {}
            LogFormat::Text => {
                let n = self.format_line(format_args!("{view}"));
                self.write(2, n);
            }
            LogFormat::Json => {
                let mut words = [0u8; 512];
                let line = format_into(&mut words, format_args!("{view}"));
                #[derive(serde::Serialize)]
                struct Json<'a> {
                    report: &'a KillReport,
                    line: &'a str,
                }
                let n = self.json_line(&Json {
                    report: &view.report,
                    line,
                });
                self.write(2, n);
            }
        }
    }

    fn marker_to(&mut self, fd: i32, words: &str) {
        let n = self.format_line(format_args!("{words}"));
        self.write(fd, n);
    }

    fn json_event(&mut self, event: &Event, line: &str) -> usize {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            seq: u64,
            tick: u64,
            event: &'a EventKind,
            line: &'a str,
        }
        let json = Json {
            seq: event.seq,
            tick: event.tick.0,
            event: &event.kind,
            line,
        };
        self.json_line(&json)
    }

    fn json_line<T: serde::Serialize>(&mut self, value: &T) -> usize {
        let mut w: &mut [u8] = &mut self.line[..MAX_LINE - 1];
        let before = w.len();
        let _ = serde_json::to_writer(&mut w, value);
        let n = before - w.len();
        self.line[n] = b'\n';
        n + 1
    }

    /// Formats `args` and a newline into the line buffer; returns the length.
    fn format_line(&mut self, args: core::fmt::Arguments<'_>) -> usize {
        let mut c = Cursor {
            buf: &mut self.line[..MAX_LINE - 1],
            len: 0,
        };
        let _ = core::fmt::write(&mut c, args);
        let n = c.len;
        self.line[n] = b'\n';
        n + 1
    }

    /// One `write(2)` straight to the descriptor, past std's buffering, so that a line is
    /// never split and never waits in a buffer.
    fn write(&mut self, fd: i32, n: usize) {
        let bytes = &self.line[..n];
        let written = match fd {
            1 => rustix::io::write(std::io::stdout(), bytes),
            _ => rustix::io::write(std::io::stderr(), bytes),
        };
        if !matches!(written, Ok(w) if w == n) {
            self.write_failures = self.write_failures.saturating_add(1);
        }
    }
}
