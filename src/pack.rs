//! The pack pipeline: plan → source → bundle. No printing; the CLI reports.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bundle::writer::{BundleWriter, Compression, WrittenBundle};
use crate::digest::Digest;
use crate::error::Error;
use crate::keys::PrivateKey;
use crate::plan::Plan;
use crate::progress::{Progress, Task};
use crate::source::{LayerSink, Source, SourceError};

/// How to pack.
pub struct PackOptions {
    /// The bundle to write.
    pub output: PathBuf,
    /// zstd settings.
    pub compression: Compression,
    /// The signing key; `None` writes an unsigned bundle.
    pub key: Option<PrivateKey>,
}

/// Packs the images of `plan` from `source` into one bundle. Every reference
/// is checked first, so a missing image fails before anything is written.
pub fn pack(
    source: &dyn Source,
    plan: &Plan,
    options: &PackOptions,
    progress: &dyn Progress,
) -> Result<WrittenBundle, Error> {
    source.check(&plan.images)?;
    let mut store = WriterStore {
        writer: BundleWriter::create(&options.output, &options.compression)?,
    };
    let records = source.export(&plan.images, &mut store, progress)?;
    progress.start(Task::Writing, None);
    let written = store
        .writer
        .finish(&records, source.describe(), options.key.as_ref());
    progress.finish();
    Ok(written?)
}

/// The bundle writer as the place sources push layers into.
struct WriterStore {
    writer: BundleWriter,
}

impl LayerSink for WriterStore {
    fn staging_dir(&self) -> &Path {
        self.writer.workdir()
    }

    fn has_layer(&self, digest: &Digest) -> bool {
        self.writer.has_layer(digest)
    }

    fn put_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), SourceError> {
        Ok(self.writer.add_layer(digest, size, content)?)
    }
}
