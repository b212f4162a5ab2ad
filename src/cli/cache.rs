//! `airgap cache`.

use std::path::{Path, PathBuf};

use airgap::cache::{DEFAULT_MAX, LayerCache, default_dir};

use super::output::{bytes, print};

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// List the entries, least recently used first, and their total.
    Ls(DirArg),
    /// Remove the least recently used entries beyond a size (default 4G).
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// The layer cache (default: $XDG_CACHE_HOME/airgap, else ~/.cache/airgap).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Remove every entry.
    #[arg(long, conflicts_with = "max")]
    all: bool,
    /// Keep at most SIZE (K, M, G suffixes), the most recently used.
    #[arg(long, value_name = "SIZE", value_parser = airgap::bundle::parts::parse_size)]
    max: Option<u64>,
}

/// Opens the cache at `dir`, or the default place, bounded to `max`.
pub fn open(dir: Option<&Path>, max: u64) -> anyhow::Result<LayerCache> {
    let dir = match dir {
        Some(dir) => dir.to_owned(),
        None => default_dir().map_err(airgap::Error::from)?,
    };
    Ok(LayerCache::open(&dir, max).map_err(airgap::Error::from)?)
}

pub fn run(command: CacheCommand) -> anyhow::Result<()> {
    match command {
        CacheCommand::Ls(args) => {
            let cache = open(args.cache_dir.as_deref(), DEFAULT_MAX)?;
            let entries = cache.entries().map_err(airgap::Error::from)?;
            let mut text = String::new();
            for entry in &entries {
                let used = time::OffsetDateTime::from(entry.used)
                    .replace_nanosecond(0)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default();
                text += &format!(
                    "{:<6}  {}  {:>9}  used {used}\n",
                    serde_json::to_value(entry.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    entry.digest,
                    bytes(entry.size)
                );
            }
            text += &format!(
                "{} entries, {} in {}\n",
                entries.len(),
                bytes(entries.iter().map(|e| e.size).sum()),
                cache.dir().display()
            );
            print(&text)
        }
        CacheCommand::Prune(args) => {
            let max = if args.all {
                0
            } else {
                args.max.unwrap_or(DEFAULT_MAX)
            };
            let cache = open(args.dir.cache_dir.as_deref(), max)?;
            let pruned = cache.prune(max).map_err(airgap::Error::from)?;
            let left: u64 = cache
                .entries()
                .map_err(airgap::Error::from)?
                .iter()
                .map(|e| e.size)
                .sum();
            print(&format!(
                "removed {} entries ({}); {} left in {}\n",
                pruned.entries,
                bytes(pruned.bytes),
                bytes(left),
                cache.dir().display()
            ))
        }
    }
}
