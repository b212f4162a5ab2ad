//! Stages one blob from an image archive on disk, decompressing gzip or zstd
//! layers on the way, and hashes both what the archive held and what was
//! stored. Bundles keep layers uncompressed, so every stored layer's digest
//! is its diff ID whatever the source engine compressed it with.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader, HashingWriter};

/// A blob written to the staging directory.
#[derive(Debug)]
pub struct StagedBlob {
    /// Where it is.
    pub path: PathBuf,
    /// Digest of the stored (uncompressed) bytes.
    pub digest: Digest,
    /// Size of the stored bytes.
    pub size: u64,
    /// Digest of the bytes as the archive held them (differs when compressed).
    pub archived_digest: Digest,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Copies `content` to `path`, decompressing it if it is gzip or zstd.
/// Staged files are temporary (removed once compressed into the bundle), so
/// they are not synced to disk.
pub fn stage(content: impl Read, path: &Path) -> io::Result<StagedBlob> {
    let mut archived = BufReader::with_capacity(BUFFER, content);
    let file = File::create(path)?;
    let mut stored = HashingWriter::new(BufWriter::with_capacity(BUFFER, file));
    let start = archived.fill_buf()?;
    let gzip = start.starts_with(GZIP_MAGIC);
    let archived_digest = if gzip || start.starts_with(ZSTD_MAGIC) {
        // The decoders buffer what they read from here, so everything the
        // archive held passes through this hash once.
        let mut hashed = HashingReader::new(archived);
        if gzip {
            io::copy(
                &mut flate2::read::MultiGzDecoder::new(&mut hashed),
                &mut stored,
            )?;
        } else {
            io::copy(
                &mut zstd::stream::read::Decoder::new(&mut hashed)?,
                &mut stored,
            )?;
        }
        // Whatever follows a compressed stream still belongs to the archived blob.
        io::copy(&mut hashed, &mut io::sink())?;
        Some(hashed.finish().0)
    } else {
        // Stored as archived: one hash serves as both digests.
        io::copy(&mut archived, &mut stored)?;
        None
    };
    let (digest, size, writer) = stored.finish();
    writer.into_inner().map_err(|e| e.into_error())?;
    Ok(StagedBlob {
        path: path.to_owned(),
        archived_digest: archived_digest.unwrap_or_else(|| digest.clone()),
        digest,
        size,
    })
}

const BUFFER: usize = 256 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_blobs_are_stored_uncompressed_with_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        let plain = b"layer content ".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();

        let staged = stage(&gz[..], &dir.path().join("b")).unwrap();
        assert_eq!(staged.digest, Digest::of(&plain));
        assert_eq!(staged.archived_digest, Digest::of(&gz));
        assert_eq!(staged.size, plain.len() as u64);
        assert_eq!(std::fs::read(&staged.path).unwrap(), plain);
    }

    #[test]
    fn plain_blobs_keep_one_digest() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(&b"{\"a\":1}"[..], &dir.path().join("b")).unwrap();
        assert_eq!(staged.digest, staged.archived_digest);
    }
}
