//! The options that say which bundle signers to accept.

use std::path::PathBuf;

use airgap::keys::PublicKey;
use airgap::verify::TrustPolicy;

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// A trusted public key (PEM); repeat for several.
    #[arg(long = "key", short = 'k', value_name = "PUBLIC_KEY")]
    keys: Vec<PathBuf>,
    /// Accept a bundle that carries no signature at all.
    #[arg(long)]
    allow_unsigned: bool,
}

impl TrustArgs {
    pub fn policy(&self) -> anyhow::Result<TrustPolicy> {
        let keys = self
            .keys
            .iter()
            .map(|path| PublicKey::read(path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(airgap::Error::from)?;
        Ok(TrustPolicy {
            keys,
            allow_unsigned: self.allow_unsigned,
        })
    }
}
