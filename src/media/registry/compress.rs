//! Layers are compressed on push (a bundle stores them uncompressed), the
//! same bytes every time: gzip with no name, no mtime and a fixed level,
//! zstd at a fixed level on one thread. A compressed layer is written to a
//! temporary file while both digests are taken, so that its digest is known
//! before it is looked up or uploaded, and an interrupted upload can go on
//! from any offset.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::image::BlobRef;

/// How layers are compressed on push.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PushCompression {
    /// gzip, which every client pulls.
    #[default]
    Gzip,
    /// zstd (containerd 1.5+, Podman; not Docker before 23).
    Zstd,
    /// As the bundle stores them.
    None,
}

const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

impl PushCompression {
    /// Parses `gzip`, `zstd` or `none`.
    pub fn parse(given: &str) -> Result<Self, String> {
        match given {
            "gzip" => Ok(Self::Gzip),
            "zstd" => Ok(Self::Zstd),
            "none" => Ok(Self::None),
            _ => Err("expected gzip, zstd or none".into()),
        }
    }

    /// The OCI layer media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Self::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }
}

/// A layer as it is pushed.
pub struct Compressed {
    /// The file holding it.
    pub file: tempfile::NamedTempFile,
    /// Its digest and size.
    pub blob: BlobRef,
}

/// Why a layer could not be compressed.
pub enum CompressError {
    /// The bundle's content is not the layer it names.
    Changed {
        /// What was read.
        found: Digest,
    },
    /// Reading or writing failed.
    Io(io::Error),
}

impl From<io::Error> for CompressError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// Compresses `content`, which must be `layer` (checked as it is read),
/// into a temporary file in `dir`.
pub fn compress(
    content: &mut dyn Read,
    layer: &BlobRef,
    how: PushCompression,
    dir: &Path,
) -> Result<Compressed, CompressError> {
    let file = tempfile::NamedTempFile::new_in(dir)?;
    let mut reader = HashingReader::new(content);
    let out = HashingWriter::new(BufWriter::with_capacity(1 << 20, file.reopen()?));
    let out = match how {
        PushCompression::Gzip => {
            let mut encoder = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(out, flate2::Compression::new(GZIP_LEVEL));
            io::copy(&mut reader, &mut encoder)?;
            encoder.finish()?
        }
        PushCompression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
            encoder.include_checksum(true)?;
            io::copy(&mut reader, &mut encoder)?;
            encoder.finish()?
        }
        PushCompression::None => {
            let mut out = out;
            io::copy(&mut reader, &mut out)?;
            out
        }
    };
    let (digest, size, mut writer) = out.finish();
    writer.flush()?;
    writer.get_ref().sync_all()?;
    let (read, read_size) = reader.finish();
    if read != layer.digest || read_size != layer.size {
        return Err(CompressError::Changed { found: read });
    }
    Ok(Compressed {
        file,
        blob: BlobRef { digest, size },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(bytes: &[u8]) -> BlobRef {
        BlobRef {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn compression_is_deterministic_and_decodes_to_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for how in [
            PushCompression::Gzip,
            PushCompression::Zstd,
            PushCompression::None,
        ] {
            let first = compress(&mut &bytes[..], &layer(&bytes), how, dir.path())
                .ok()
                .unwrap();
            let second = compress(&mut &bytes[..], &layer(&bytes), how, dir.path())
                .ok()
                .unwrap();
            assert_eq!(first.blob, second.blob, "{how:?}");
            let file = std::fs::File::open(first.file.path()).unwrap();
            let (_, mut decoded) = crate::media::compression::decoded(file).unwrap();
            let mut out = Vec::new();
            decoded.read_to_end(&mut out).unwrap();
            assert_eq!(out, bytes, "{how:?}");
        }
    }

    #[test]
    fn content_that_is_not_the_layer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let refused = compress(
            &mut &b"other"[..],
            &layer(b"layer"),
            PushCompression::Gzip,
            dir.path(),
        );
        assert!(matches!(refused, Err(CompressError::Changed { .. })));
    }
}
