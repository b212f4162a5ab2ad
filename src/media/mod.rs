//! Media images are read from and written to, one module each.

pub mod layout;
