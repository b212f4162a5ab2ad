//! Fuzz target: arbitrary bytes as airgap/manifest.json.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| airgap_fuzz::parse_manifest(data));
