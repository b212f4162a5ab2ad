//! Fuzz target: arbitrary bytes as a bundle file, admitted as unpack admits it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| airgap_fuzz::admit_bundle(data));
