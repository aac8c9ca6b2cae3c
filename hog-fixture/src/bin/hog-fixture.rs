//! The `hog-fixture` binary: the crate's runtime with a counting global allocator, so that
//! what it publishes is exactly what its allocator holds. See the library's documentation.

use std::alloc::System;
use std::process::ExitCode;

use memstat::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc<System> = CountingAlloc::new(System);

fn main() -> ExitCode {
    hog_fixture::main(&ALLOC)
}
