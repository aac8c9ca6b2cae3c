//! Reading a TOML file the way every oomd file is read: bounded, regular files only, and with
//! errors that name the file, the key at fault (as a path such as `service.db.hard_bytes`) and
//! the line.

use std::fmt;
use std::path::{Path, PathBuf};

/// Largest file read, in bytes (like execd's manifest): a file of every key many times over
/// fits; a larger one (or `/dev/zero`) is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

/// Deserializes TOML, turning any error into one that names the key path and its place.
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let mut key = path_key(&e.path().to_string());
        let inner = e.into_inner();
        let location = inner.span().map(|s| line_col(text, s.start));
        // Errors of the TOML syntax itself (an integer too large for any TOML integer, say)
        // come before any key was reached: name the key written on that line.
        if key.is_empty() {
            if let Some((line, _)) = location {
                key = key_on_line(text, line).unwrap_or_default();
            }
        }
        ConfigError {
            file: None,
            key,
            location,
            message: inner.message().trim_end().to_owned(),
        }
    })
}

/// The dotted key written on `line` (1-based) of a TOML text, with the table header above it:
/// `policy.hard_bytes` for a `hard_bytes = ...` line under `[policy]`.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let (key, _) = here.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("[[")
            .and_then(|t| t.strip_suffix("]]"))
            .or_else(|| l.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
            .map(str::trim)
    });
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_owned(),
    })
}

/// Reads `path` and parses it with `parse`; every error names the file. Only a regular file
/// of at most [`MAX_FILE_BYTES`] is read: a FIFO, a device or a directory is refused without
/// waiting on it (it is opened non-blocking and checked before any read).
pub fn load_file<T>(
    path: &Path,
    parse: fn(&str) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let with_file = |mut e: ConfigError| {
        e.file = Some(path.to_owned());
        e
    };
    let text = read_bounded(path).map_err(|message| {
        with_file(ConfigError {
            file: None,
            key: String::new(),
            location: None,
            message,
        })
    })?;
    parse(&text).map_err(with_file)
}

/// The text of a regular file of at most [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO opened for reading blocks until a writer comes; non-blocking, it does not.
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(format!("cannot read: {what}, not a regular file"));
    }
    let too_big = || format!("cannot read: larger than {MAX_FILE_BYTES} bytes");
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut text = String::new();
    // Bounded even if the file grows while it is read.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read: {e}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(text)
}

/// Why a file was refused: the file, the key at fault, where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    file: Option<PathBuf>,
    key: String,
    location: Option<(usize, usize)>,
    message: String,
}

impl ConfigError {
    /// An error about `key` (a dotted path) found after parsing, while validating.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            key: key.into(),
            location: None,
            message: message.into(),
        }
    }

    /// The key at fault as a path (`policy.soft_bytes`, `subject[0].report`); empty when the
    /// fault is the file as a whole (unreadable, or not TOML at all).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Line and column (1-based), when known.
    #[must_use]
    pub fn location(&self) -> Option<(usize, usize)> {
        self.location
    }

    /// What is wrong.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The file, when the text was loaded from one.
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some((line, col)) = self.location {
                write!(f, ":{line}:{col}")?;
            }
            f.write_str(": ")?;
        } else if let Some((line, col)) = self.location {
            write!(f, "line {line}, column {col}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// `serde_path_to_error` writes the root as `.`; we write it as nothing.
fn path_key(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_owned()
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn a_syntax_error_names_the_key_on_its_line() {
        let text = "[policy]\nsoft_bytes = 1\nhard_bytes = 99999999999999999999\n";
        assert_eq!(key_on_line(text, 3).as_deref(), Some("policy.hard_bytes"));
        assert_eq!(key_on_line(text, 1), None);
        assert_eq!(key_on_line("a = 1\n", 1).as_deref(), Some("a"));
    }
}
