//! Fuzz target: arbitrary bytes as a bundle file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| airgap_fuzz::read_bundle(data));
