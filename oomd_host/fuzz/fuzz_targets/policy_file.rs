//! `oomd_config::policy::PolicyFile::parse` (the policy file oomd loads and `oomctl policy set`
//! sends) on any text: an error, never a panic; what parses becomes a policy document or a
//! `DocumentError`, and the document fits in one control message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oomd_config::policy::PolicyFile;
use oomd_proto::{ControlRequest, MAX_MESSAGE_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = PolicyFile::parse(text) else {
        return;
    };
    if let Ok(document) = file.to_document() {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        oomd_proto::encode(&ControlRequest::ApplyPolicy(document), &mut buf)
            .expect("a policy document fits in one message");
    }
});
