//! `oomd_config::policy::PolicyFile::parse` (the policy file oomd loads and `oomctl policy set`
//! sends) on any text: an error, never a panic. What parses is valid (the core takes its
//! policy and every service's limits), and its document, when it makes one, crosses the
//! control socket unchanged (one message, decoded back to itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oomd::Watchdog;
use oomd_config::policy::PolicyFile;
use oomd_proto::{ControlRequest, MAX_MESSAGE_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = PolicyFile::parse(text) else {
        return;
    };
    file.policy.validate().expect("a parsed policy is valid");
    assert!(Watchdog::<2, 8>::new(file.policy).is_ok());
    for limits in file.services.values() {
        limits.validate().expect("parsed limits are valid");
    }
    if let Ok(document) = file.to_document() {
        let request = ControlRequest::ApplyPolicy(document);
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let bytes =
            oomd_proto::encode(&request, &mut buf).expect("a policy document fits in one message");
        let decoded: ControlRequest = oomd_proto::decode(bytes).expect("and decodes");
        assert_eq!(decoded, request);
    }
});
