//! Fuzz target: the end of a bundle file, where a seal is looked for.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| airgap_fuzz::parse_seal(data));
