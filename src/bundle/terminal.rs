//! A bundle never flows through a terminal: written there it would fill the
//! screen with binary and leave nothing usable, and read from there nobody
//! can type one. `docker save` and `docker load` refuse the same way.

use std::io::IsTerminal;

use crate::error::ErrorKind;

/// Standard output or input is a terminal where a bundle must flow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TerminalError {
    /// `pack -o -` with standard output on a terminal.
    #[error(
        "cowardly refusing to write the bundle to a terminal: redirect standard output (airgap pack -o - … > FILE, or | ssh HOST airgap unpack -) or name a file with -o FILE"
    )]
    StdoutIsTerminal,
    /// A bundle read from `-` with standard input on a terminal.
    #[error(
        "standard input is a terminal, and a bundle cannot be typed: redirect or pipe one in (airgap unpack - < BUNDLE), or name the bundle file instead of -"
    )]
    StdinIsTerminal,
}

impl TerminalError {
    /// A bad command line: nothing was read or written.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Usage
    }
}

/// Refuses when standard output, where the bundle would go, is a terminal.
pub fn check_stdout_for_bundle() -> Result<(), TerminalError> {
    if std::io::stdout().is_terminal() {
        return Err(TerminalError::StdoutIsTerminal);
    }
    Ok(())
}

/// Refuses when standard input, where the bundle would come from, is a
/// terminal: staging waits for end of input, so it would only hang.
pub fn check_stdin_for_bundle() -> Result<(), TerminalError> {
    if std::io::stdin().is_terminal() {
        return Err(TerminalError::StdinIsTerminal);
    }
    Ok(())
}
