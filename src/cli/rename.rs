//! `--tag SRC=DST` and `--prefix PREFIX`: the names images arrive under,
//! shared by unpack, inspect and verify.

use airgap::display::escape;
use airgap::image::rename::{Prefix, Renamed, Renaming, TagRule};

#[derive(Debug, Clone, clap::Args)]
pub struct RenameArgs {
    /// Give the reference SRC (as the bundle names it, short or full) the name DST on arrival; repeatable. Wins over --prefix.
    #[arg(long = "tag", value_name = "SRC=DST", value_parser = TagRule::parse)]
    tags: Vec<TagRule>,
    /// Put every reference under the registry path PREFIX on arrival, keeping its repository path, tag and digest (nginx:1.27 -> PREFIX/library/nginx:1.27, ghcr.io/org/app:2 -> PREFIX/org/app:2).
    #[arg(long, value_name = "PREFIX", value_parser = Prefix::parse)]
    prefix: Option<Prefix>,
}

impl RenameArgs {
    /// The renaming asked for; a contradiction between arguments is a usage error.
    pub fn renaming(&self) -> anyhow::Result<Renaming> {
        Ok(Renaming::new(self.tags.clone(), self.prefix.clone()).map_err(airgap::Error::from)?)
    }
}

impl RenameArgs {
    /// The renaming for a push to a registry, whose address stands for
    /// `--prefix`; giving both is a usage error.
    pub fn renaming_under(&self, prefix: Prefix) -> anyhow::Result<Renaming> {
        if self.prefix.is_some() {
            return Err(airgap::Error::from(airgap::media::registry::RegistryError::Usage(
                "--prefix and --to registry://HOST/PREFIX both give a prefix: put the path in --to only".into(),
            ))
            .into());
        }
        Ok(Renaming::new(self.tags.clone(), Some(prefix)).map_err(airgap::Error::from)?)
    }
}

/// One image's names for people: `old → new` for each renamed reference,
/// the name alone for one kept.
pub fn describe(names: &[Renamed]) -> String {
    names
        .iter()
        .map(|n| {
            if n.from.name == n.to.name {
                escape(&n.from.given).into_owned()
            } else {
                format!("{} → {}", escape(&n.from.given), escape(&n.to.given))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
