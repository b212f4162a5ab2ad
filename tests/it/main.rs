//! Integration tests, one binary (as ripgrep and just do). Tests that need
//! engines read their addresses from AIRGAP_TEST_* (set by scripts/test); with
//! CI=true a missing engine fails the test, otherwise it is skipped loudly.

mod support;

mod archive;
mod archives;
mod beside;
mod cache;
mod cli;
mod compose;
mod compose_rules;
mod conformance;
mod containerd;
mod delta;
mod exits;
mod forged;
mod golden;
mod handoff;
mod hostile;
mod html;
mod json;
mod layout;
mod operator;
mod plan;
mod podman_names;
mod project;
mod recognise;
mod record;
mod registry_faults;
mod registry_pull;
mod registry_push;
mod rename;
mod roundtrip;
mod snapshot;
mod store_in_place;
mod tamper;
mod trust;
