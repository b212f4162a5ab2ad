//! Fuzz target: manifests built from an arbitrary shape, written as airgap
//! writes them, then parsed and summarised.
#![no_main]

use airgap_fuzz::{ManifestShape, parse_manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|shape: ManifestShape| parse_manifest(&shape.build().to_bytes()));
