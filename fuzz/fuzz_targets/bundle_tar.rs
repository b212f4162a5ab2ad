//! Fuzz target: arbitrary bytes as the tar inside a bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| airgap_fuzz::read_tar(data));
