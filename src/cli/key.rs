//! `airgap key …`.

use std::path::PathBuf;

use airgap::trust::keys::PublicKey;

use super::output::print;

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Print the fingerprint of a public or private key (PEM): the SHA-256
    /// of its public key's DER encoding, as bundles and `inspect` show it.
    Fingerprint {
        /// The key file.
        file: PathBuf,
    },
}

pub fn run(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Fingerprint { file } => {
            let key = PublicKey::read_public_half(&file).map_err(airgap::Error::from)?;
            print(&format!("{}  {}\n", key.fingerprint(), file.display()))
        }
    }
}
