//! `execd::manifest::Manifest::parse` on any text: an error, never a panic; what parses holds
//! at most `MAX_SERVICES` uniquely named services.
#![no_main]

use execd::bounds::MAX_SERVICES;
use execd::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(manifest) = Manifest::parse(text) {
        let services = manifest.services();
        assert!(services.len() <= MAX_SERVICES);
        for (i, s) in services.iter().enumerate() {
            assert!(services[..i].iter().all(|t| t.name != s.name));
            assert!(manifest.get(&s.name).is_some());
        }
    }
});
