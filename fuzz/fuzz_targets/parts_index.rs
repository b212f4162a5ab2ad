//! Fuzz target: arbitrary bytes as a split bundle's parts index.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| airgap_fuzz::parse_parts_index(data));
