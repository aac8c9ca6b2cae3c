//! Every bound of the fixture in one place, with the reason for each.

/// Bytes between two writes when touching a chunk: the page size of every target oomd runs
/// on. The arena writes every byte anyway, so this only documents what "touched" means.
pub const PAGE_SIZE: usize = 4096;

/// The byte every arena page is filled with. Not zero, so no layer (compiler, allocator,
/// kernel zero page) can skip the write and leave the page unbacked.
pub const FILL: u8 = 0xa5;

/// Most children the forker spawns: enough to prove "the whole group ends", small enough
/// that a mistyped count cannot fork-bomb the test machine.
pub const MAX_CHILDREN: u32 = 64;

/// Most frames the flood mode offers per chunk: a flood is a flood at ten thousand, and the
/// bound keeps a chunk's burst short (well under a second) whatever the argument.
pub const MAX_FLOOD_FRAMES: u64 = 1_000_000;

/// Longest control message read; `grow 18446744073709551615` is 25 bytes. A longer datagram
/// is truncated by the kernel and then refused as malformed.
pub const MAX_CONTROL_LEN: usize = 64;

/// Longest single wait between two looks at the clock, so a deadline is never overslept by
/// more than this even if a timeout computation were off.
pub const MAX_WAIT_MS: u16 = 1000;

const _: () = assert!(MAX_CHILDREN > 0 && MAX_FLOOD_FRAMES > 0 && MAX_CONTROL_LEN >= 25);
