//! The specification's three audit tests, shared with the `oomd` crate so that both
//! `cargo test -p oomd -- reject` and `cargo test -p oomd_host` run the same code.
#[path = "../../oomd/tests/reject.rs"]
mod spec;
