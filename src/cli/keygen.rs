//! `airgap keygen`.

use std::path::PathBuf;

use airgap::trust::keys::PrivateKey;

use super::output::print;

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Path prefix of the key files: writes PREFIX.pem and PREFIX.pub.pem.
    #[arg(long, short)]
    output: PathBuf,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let key = PrivateKey::generate().map_err(airgap::Error::from)?;
    let (private, public) = key.write_pair(&args.output).map_err(airgap::Error::from)?;
    print(&format!(
        "private key: {} (keep it on the connected side)\npublic key:  {} (copy it to the isolated site)\nfingerprint: {}\n",
        private.display(),
        public.display(),
        key.public().fingerprint()
    ))
}
