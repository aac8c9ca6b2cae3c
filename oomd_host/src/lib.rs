//! oomd_host: the host-side simulator and proof suite of the oomd core.
//!
//! What it is:
//! - [`fixture`]: a small harness for tests that drive a [`oomd::Watchdog`] by service name
//!   and read its trace;
//! - [`sim`], [`scenario`], [`record`]: a deterministic simulator of subjects with scripted
//!   memory growth and a fake process authority, driven by hand-written TOML scenarios, whose
//!   input stream can be recorded and replayed bit for bit;
//! - the `oomd-sim` command line over all of that.
//!
//! What it is not: a model of real memory or real processes. No clock, no threads, no
//! randomness except a seeded generator; the same scenario always gives the same trace.

pub mod console;
pub mod fixture;
pub mod invariants;
pub mod plot;
pub mod record;
pub mod scenario;
pub mod sim;
