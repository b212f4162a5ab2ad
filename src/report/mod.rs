//! Reports a person reads on the isolated side, rendered from what
//! `inspect` and `verify` already work out.

pub mod html;
