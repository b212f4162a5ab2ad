//! A root filesystem tar as a source (`pack --import FILE=REPO:TAG`): a
//! `docker export`, or any tar of a root filesystem, plain or compressed,
//! becomes a one-layer image. The tar streams through the placeholder
//! filter into the staging directory, hashed on the way; nothing is
//! decompressed whole first. The image config is built here, with the
//! `--change` instructions applied; one without a command is refused
//! before anything is written, as `docker run` would refuse the image.

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::bundle::SourceInfo;
use crate::digest::{Digest, HashingWriter};
use crate::files::untrusted::{Links, open_regular};
use crate::image::change::{self, Change};
use crate::image::{BlobRef, ImageRecord, ImageRef, Platform};
use crate::media::compression;
use crate::media::source::{LayerSink, ResolvedImage, Source, SourceError};
use crate::media::tar_guard::TarGuard;
use crate::progress::{Progress, ProgressReader, Task};
use crate::store::StagedLayer;

/// One `--import FILE=REPO:TAG`.
#[derive(Clone, Debug)]
pub struct Import {
    /// The tar, as the user typed it.
    pub path: PathBuf,
    /// The name the image is to have.
    pub reference: ImageRef,
}

/// Root filesystem tars, each made a one-layer image.
pub struct RootfsSource {
    imports: Vec<Import>,
    changes: Vec<Change>,
}

impl RootfsSource {
    /// A source making an image of each import, with `changes` applied to
    /// every image's config.
    pub fn new(imports: Vec<Import>, changes: Vec<Change>) -> Self {
        Self { imports, changes }
    }

    /// The references this source answers for.
    pub fn references(&self) -> Vec<ImageRef> {
        self.imports.iter().map(|i| i.reference.clone()).collect()
    }

    fn import_for(&self, reference: &ImageRef) -> Option<&Import> {
        self.imports
            .iter()
            .find(|i| i.reference.given == reference.given)
    }

    fn run_config(&self, import: &Import) -> Result<Map<String, Value>, SourceError> {
        let mut config = Map::new();
        change::apply(&mut config, &self.changes);
        if !change::has_command(&config) {
            return Err(SourceError::NoCommand {
                image: format!("{} (from {})", import.reference, import.path.display()),
            });
        }
        Ok(config)
    }
}

impl Source for RootfsSource {
    fn describe(&self) -> SourceInfo {
        SourceInfo {
            kind: "rootfs-tar".into(),
            engine: None,
            api_version: None,
        }
    }

    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError> {
        let mut resolved = Vec::new();
        let mut missing = Vec::new();
        for reference in refs {
            let Some(import) = self.import_for(reference) else {
                missing.push(reference.given.clone());
                continue;
            };
            self.run_config(import)?;
            open_regular(&import.path, Links::Follow).map_err(|source| SourceError::Input {
                path: import.path.clone(),
                source,
            })?;
            resolved.push(ResolvedImage {
                refs: vec![reference.clone()],
                id: None,
                layers: None,
            });
        }
        if !missing.is_empty() {
            return Err(SourceError::Missing { refs: missing });
        }
        Ok(resolved)
    }

    fn resolve_all(&self) -> Result<Option<Vec<ResolvedImage>>, SourceError> {
        self.resolve(&self.references()).map(Some)
    }

    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let mut records = Vec::new();
        for image in images {
            let Some(import) = image.refs.first().and_then(|r| self.import_for(r)) else {
                return Err(SourceError::Missing {
                    refs: image.refs.iter().map(|r| r.given.clone()).collect(),
                });
            };
            let input_error = |source| SourceError::Input {
                path: import.path.clone(),
                source,
            };
            let file = open_regular(&import.path, Links::Follow).map_err(input_error)?;
            let metadata = file.metadata().map_err(input_error)?;
            progress.start(Task::Saving, Some(metadata.len()));
            let layer = stage_rootfs(ProgressReader::new(file, progress), layers);
            progress.finish();
            let layer = layer.map_err(|e| match e {
                Staging::Read(source) => SourceError::Malformed {
                    reason: format!(
                        "{} is not a readable root filesystem tar: {source}",
                        import.path.display()
                    ),
                },
                Staging::Failed(error) => error,
            })?;
            // The file's time, not the clock's: packing the same tar twice
            // gives the same config, so the same image ID at the site.
            let created = metadata
                .modified()
                .ok()
                .map_or(OffsetDateTime::UNIX_EPOCH, OffsetDateTime::from);
            let config = image_config(
                self.run_config(import)?,
                &layer.digest,
                &host_platform(),
                created,
                &format!(
                    "airgap pack --import {}",
                    import.path.file_name().map_or_else(
                        || import.path.display().to_string(),
                        |n| n.to_string_lossy().into_owned()
                    )
                ),
            );
            records.push(ImageRecord {
                refs: image.refs.clone(),
                config_digest: Digest::of(&config),
                config,
                platform: host_platform(),
                layers: vec![layer],
            });
        }
        Ok(records)
    }
}

/// Why a root filesystem could not be staged.
pub enum Staging {
    /// The input is not a tar (or does not decompress).
    Read(io::Error),
    /// Anything else (the disk, the sink).
    Failed(SourceError),
}

/// Decodes `input` (plain or compressed), drops the engine's placeholder
/// files, stages the result as one layer and hands it to `layers` (unless
/// they hold it already). Returns the layer's diff ID and size.
pub fn stage_rootfs(
    input: impl Read + Send,
    layers: &mut dyn LayerSink,
) -> Result<BlobRef, Staging> {
    let staging = layers.staging_dir().to_owned();
    let stage_error = |source| {
        Staging::Failed(SourceError::Stage {
            path: staging.clone(),
            source,
        })
    };
    let (_, decoded) = compression::decoded(input).map_err(Staging::Read)?;
    let temp = tempfile::Builder::new()
        .prefix("rootfs-")
        .tempfile_in(&staging)
        .map_err(stage_error)?;
    let mut stored = HashingWriter::new(BufWriter::with_capacity(BUFFER, temp.as_file()));
    without_placeholders(decoded, MarkedWriter(&mut stored)).map_err(|e| {
        if !e.get_ref().is_some_and(|inner| inner.is::<WriteFailed>()) {
            return Staging::Read(e);
        }
        match e.into_inner().map(|inner| inner.downcast::<WriteFailed>()) {
            Some(Ok(written)) => stage_error(written.0),
            _ => unreachable!("just checked to be a write failure"),
        }
    })?;
    let (digest, size, writer) = stored.finish();
    writer
        .into_inner()
        .map_err(|e| stage_error(e.into_error()))?;
    let path = temp
        .into_temp_path()
        .keep()
        .map_err(|e| stage_error(e.error))?;
    let blob = BlobRef {
        digest: digest.clone(),
        size,
    };
    if layers.has_layer(&digest) {
        let _ = std::fs::remove_file(&path);
    } else {
        layers
            .put_layer(StagedLayer { path, digest, size })
            .map_err(Staging::Failed)?;
    }
    Ok(blob)
}

/// A failure writing the staged file, told apart from one reading the tar.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct WriteFailed(io::Error);

/// Marks its write errors as [`WriteFailed`].
struct MarkedWriter<W>(W);

impl<W: Write> Write for MarkedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .write(buf)
            .map_err(|e| io::Error::new(e.kind(), WriteFailed(e)))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .flush()
            .map_err(|e| io::Error::new(e.kind(), WriteFailed(e)))
    }
}

/// Files an engine makes in every container for its own mounts: empty
/// mount points for the files it bind-mounts over, and its marker files.
/// `docker export` includes them; an image must not (they would hide the
/// site's own, or claim a container environment).
fn is_placeholder(path: &[u8], header: &tar::Header) -> bool {
    let path = path.strip_prefix(b"./").unwrap_or(path);
    let path = path.strip_prefix(b"/").unwrap_or(path);
    let regular = header.entry_type() == tar::EntryType::Regular;
    let empty = header.size().is_ok_and(|s| s == 0);
    match path {
        b".dockerenv" | b"run/.containerenv" => regular,
        b"etc/hosts" | b"etc/hostname" | b"etc/resolv.conf" | b"dev/console" => regular && empty,
        _ => false,
    }
}

/// A long name, a long link and a pax header: what an entry can have before it.
const MOST_EXTENSIONS: usize = 3;

/// Copies the tar `input` to `output` entry by entry, byte for byte, except
/// the placeholders (with the long-name and PAX entries that name them).
fn without_placeholders(input: impl Read, output: impl Write) -> io::Result<()> {
    let mut archive = tar::Archive::new(TarGuard::new(input));
    let mut builder = tar::Builder::new(output);
    // Extension entries describe the entry after them: held until it is seen.
    let mut pending: Vec<(tar::Header, Vec<u8>)> = Vec::new();
    let mut entries = 0usize;
    for entry in archive.entries()?.raw(true) {
        let mut entry = entry?;
        let header = entry.header().clone();
        let mut data = Vec::new();
        let kind = header.entry_type();
        if kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions() {
            entry.read_to_end(&mut data)?;
            pending.push((header, data));
            if pending.len() > MOST_EXTENSIONS {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "an entry has more extension headers than a tar writer makes",
                ));
            }
            continue;
        }
        entries += 1;
        let path = full_path(&header, &pending);
        if is_placeholder(&path, &header) {
            pending.clear();
            io::copy(&mut entry, &mut io::sink())?;
            continue;
        }
        for (extension, data) in pending.drain(..) {
            builder.append(&extension, &data[..])?;
        }
        builder.append(&header, &mut entry)?;
    }
    if entries == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "it holds no files",
        ));
    }
    builder.into_inner()?.flush()
}

/// The entry's path: a GNU long name or PAX `path` before it wins over
/// the header's own.
fn full_path(header: &tar::Header, pending: &[(tar::Header, Vec<u8>)]) -> Vec<u8> {
    let mut path = header.path_bytes().into_owned();
    for (extension, data) in pending {
        let kind = extension.entry_type();
        if kind.is_gnu_longname() {
            path = data.split(|b| *b == 0).next().unwrap_or_default().to_vec();
        } else if kind.is_pax_local_extensions() {
            for record in tar::PaxExtensions::new(data).flatten() {
                if record.key_bytes() == b"path" {
                    path = record.value_bytes().to_vec();
                }
            }
        }
    }
    path
}

/// An OCI image config for one layer: the run config given, the host's
/// platform (what an export was taken on), one history entry.
pub fn image_config(
    run: Map<String, Value>,
    diff_id: &Digest,
    platform: &Platform,
    created: OffsetDateTime,
    created_by: &str,
) -> Vec<u8> {
    let created = created
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
    let mut config = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "created": created,
        "config": run,
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
        "history": [{ "created": created, "created_by": created_by }],
    });
    if let Some(variant) = &platform.variant {
        config["variant"] = json!(variant);
    }
    serde_json::to_vec(&config).expect("a JSON value serialises")
}

/// This machine's platform, in the names image configs use.
pub fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", None),
        "x86" => ("386", None),
        "arm" => ("arm", Some("v7")),
        "powerpc64" => ("ppc64le", None),
        other => (other, None),
    };
    Platform {
        os: std::env::consts::OS.to_owned(),
        architecture: architecture.to_owned(),
        variant: variant.map(str::to_owned),
    }
}

const BUFFER: usize = 256 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn paths(tar: &[u8]) -> Vec<String> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn the_engines_placeholders_are_left_out_and_the_rest_kept() {
        let long = format!("srv/{}/kept", "d".repeat(120));
        let input = tar_of(&[
            (".dockerenv", b""),
            ("etc/hosts", b""),
            ("etc/hostname", b""),
            ("etc/resolv.conf", b""),
            ("dev/console", b""),
            ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            // Written by the user: kept.
            ("etc/hosts.allow", b""),
            (&long, b"long"),
        ]);
        let mut output = Vec::new();
        without_placeholders(&input[..], &mut output).unwrap();
        assert_eq!(paths(&output), vec!["etc/passwd", "etc/hosts.allow", &long]);
    }

    #[test]
    fn a_non_empty_hosts_file_is_the_users_and_kept() {
        let input = tar_of(&[("etc/hosts", b"10.0.0.1 db\n")]);
        let mut output = Vec::new();
        without_placeholders(&input[..], &mut output).unwrap();
        assert_eq!(paths(&output), vec!["etc/hosts"]);
    }

    #[test]
    fn a_tar_without_files_is_refused() {
        let mut output = Vec::new();
        let error = without_placeholders(&[0u8; 1024][..], &mut output).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_config_names_its_layer_platform_and_time() {
        let digest = Digest::of(b"layer");
        let mut run = Map::new();
        run.insert("Cmd".into(), json!(["/app"]));
        let config = image_config(
            run,
            &digest,
            &host_platform(),
            OffsetDateTime::UNIX_EPOCH,
            "test",
        );
        let parsed: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(parsed["rootfs"]["diff_ids"], json!([digest.to_string()]));
        assert_eq!(parsed["config"]["Cmd"], json!(["/app"]));
        assert_eq!(parsed["created"], json!("1970-01-01T00:00:00Z"));
        assert_eq!(parsed["os"], json!("linux"));
        let summary = crate::image::ConfigSummary::parse(&config).unwrap();
        assert_eq!(summary.rootfs.diff_ids, vec![digest]);
    }
}
