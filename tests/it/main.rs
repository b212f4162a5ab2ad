//! Integration tests (one binary, as ripgrep and just do).
