//! The options that say which bundle signers to accept.

use std::path::PathBuf;

use airgap::trust::TrustPolicy;

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// A trusted public key (PEM; a private key is refused); repeat for
    /// several. Naming keys or directories replaces the default trust
    /// directories.
    #[arg(long = "key", short = 'k', value_name = "PUBLIC_KEY")]
    keys: Vec<PathBuf>,
    /// A directory of trusted public keys (*.pem); repeatable. Default:
    /// /etc/airgap/trusted.d and ~/.config/airgap/trusted.d, where they exist.
    #[arg(long = "trust-dir", value_name = "DIR")]
    trust_dirs: Vec<PathBuf>,
    /// Accept a bundle that carries no signature at all.
    #[arg(long)]
    allow_unsigned: bool,
}

impl TrustArgs {
    pub fn policy(&self) -> anyhow::Result<TrustPolicy> {
        Ok(
            TrustPolicy::load(&self.keys, &self.trust_dirs, self.allow_unsigned)
                .map_err(airgap::Error::from)?,
        )
    }
}
