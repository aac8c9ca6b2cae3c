//! oomd-config: the files of oomd's Linux edge — their formats, parsers and bounds.
//!
//! What it is:
//! - [`policy`]: the policy file (`/etc/oomd/policy.toml`, `oomctl policy set`), its sizes
//!   (`"512 MiB"`) and name rules, and its conversion to the protocol's `PolicyDocument`;
//! - [`input_log`]: the recorded input log (`oomd --record`, `oomd-sim --record`), written
//!   and read one bounded line at a time;
//! - [`toml_file`]: how every such file is read (regular files only, at most
//!   [`toml_file::MAX_FILE_BYTES`]) and the one error type, [`ConfigError`], that names the file,
//!   the key at fault and the line.
//!
//! What it is not: the simulator. Scenario files, replay and the proof suite live in
//! `oomd_host`, which depends on this crate; the daemon and `oomctl` depend on this crate and
//! never on `oomd_host`.

pub mod input_log;
pub mod policy;
pub mod toml_file;

pub use toml_file::ConfigError;
