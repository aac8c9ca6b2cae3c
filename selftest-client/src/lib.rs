//! The selftest client: proves oomd's behaviours on a running system, one at a time, and
//! prints one marker per behaviour, only after it has checked the facts the marker claims:
//! oomd's own events (read over its control socket) and execd's exit notifications.
//!
//! Markers (stdout, one `write()` each): `SELFTEST: oom kill ok`,
//! `SELFTEST: oom deny critical ok`, `SELFTEST: oom reject spoof ok`,
//! `SELFTEST: oom rate limit ok`, `SELFTEST: oom underreport ok`, `SELFTEST: oom tree kill ok`,
//! `SELFTEST: oom flood ok`, `SELFTEST: oom escape kill ok`, then `SELFTEST: Completed`. A behaviour that cannot be proven
//! prints `SELFTEST: <behaviour> FAIL: <reason>` instead of its marker, and the run goes on.
//!
//! It expects the manifest of `docs/selftest.md`: the hog services it spawns by name, each a
//! `hog-fixture` with the mode its behaviour needs. What it is not: a test of the core's policy
//! (that is `oomd_host`); it proves the same behaviours on real processes.

mod behaviours;
mod procs;
mod session;

pub use behaviours::{Behaviour, ALL};
pub use session::{Session, Settings};
