//! The control protocol: one datagram per command, ASCII.
//!
//! The only command is `grow <SIZE>` (SIZE as on the command line: `300000`, `64KiB`, `1M`,
//! …): grow the arena by exactly that many bytes, capped at `--max`, then publish. Leading
//! and trailing white space (a newline from `echo`, say) and trailing NUL bytes are ignored.
//! There is no reply; the effect is visible in the memstat frames and the log. A message that
//! is not a valid command is logged and ignored.

use std::fmt;

use crate::size::{parse_size, SizeError};

/// A parsed control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Grow the arena by this many bytes (capped at `--max`).
    Grow(u64),
}

/// Why a control message was ignored. All are the sender's fault.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlError {
    /// Not UTF-8.
    NotText,
    /// The first word is not a command.
    UnknownCommand {
        /// The message, trimmed.
        message: String,
    },
    /// `grow` without a valid size.
    BadSize(SizeError),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotText => f.write_str("message is not text"),
            Self::UnknownCommand { message } => {
                write!(f, "unknown command {message:?} (expected \"grow <SIZE>\")")
            }
            Self::BadSize(e) => write!(f, "grow: {e}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// Parses one control message.
pub fn parse_command(message: &[u8]) -> Result<Command, ControlError> {
    let text = std::str::from_utf8(message).map_err(|_| ControlError::NotText)?;
    let text = text.trim_end_matches('\0').trim();
    match text.split_once(char::is_whitespace) {
        Some(("grow", size)) => parse_size(size)
            .map(Command::Grow)
            .map_err(ControlError::BadSize),
        _ => Err(ControlError::UnknownCommand {
            message: text.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_takes_a_size_with_or_without_suffix() {
        assert_eq!(parse_command(b"grow 300000"), Ok(Command::Grow(300_000)));
        assert_eq!(parse_command(b"grow 64KiB\n"), Ok(Command::Grow(65_536)));
        assert_eq!(
            parse_command(b"  grow   1M \0\0"),
            Ok(Command::Grow(1 << 20))
        );
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        assert_eq!(parse_command(b"\xff"), Err(ControlError::NotText));
        for message in ["", "grow", "shrink 5", "grow5", "GROW 5"] {
            assert!(
                matches!(
                    parse_command(message.as_bytes()),
                    Err(ControlError::UnknownCommand { .. })
                ),
                "{message:?}"
            );
        }
        let err = parse_command(b"grow 1MB").unwrap_err();
        assert!(matches!(
            err,
            ControlError::BadSize(SizeError::UnknownSuffix { .. })
        ));
        assert!(err.to_string().starts_with("grow: size \"1MB\""));
    }
}
