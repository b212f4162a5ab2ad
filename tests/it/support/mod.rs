//! Shared test support: engines, fixtures, the airgap command.

pub mod cmd;
pub mod containerd;
pub mod disk;
pub mod engine;
pub mod fixtures;
pub mod hostile;
pub mod proxy;
pub mod registry;
pub mod synthetic;
