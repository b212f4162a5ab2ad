//! Fuzz target: arbitrary bytes as a project's compose.yaml, resolved as
//! `airgap plan` and `pack` resolve it (interpolation, merge keys, extends,
//! include, profiles).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| airgap_fuzz::load_compose(data));
