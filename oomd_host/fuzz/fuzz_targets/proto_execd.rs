//! `oomd_proto::decode` of every message type on any bytes, and on any body behind the header
//! of execd's control socket (`ExecdRequest`, `ExecdReply`): no panic; what decodes re-encodes no longer and decodes back to itself; no
//! other protocol's type reads it (`WrongProtocol`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oomd_fuzz::{check_every_message, with_header};
use oomd_proto::Protocol;

fuzz_target!(|data: &[u8]| {
    check_every_message(data);
    check_every_message(&with_header(Protocol::ExecdControl, data));
});
