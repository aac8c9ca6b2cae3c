//! The `hog-fixture` binary: the crate's runtime with a counting global allocator, so that
//! what it publishes is exactly what its allocator holds. See the library's documentation.

use std::alloc::System;
use std::process::ExitCode;

use hog_fixture::HogAlloc;
use memstat::publish::GrowthPublisher;

#[global_allocator]
static ALLOC: HogAlloc = HogAlloc::with_signal(System, GrowthPublisher::new());

fn main() -> ExitCode {
    hog_fixture::main(&ALLOC)
}
