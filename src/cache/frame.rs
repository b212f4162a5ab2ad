//! A layer frame entry: the zstd frame of the layer's tar entry as the
//! bundle carries it, then a skippable frame recording the layer's size
//! and the SHA-256 of the frame (so the file is still a zstd stream
//! `zstd -d` reads, and its check needs no decompression).

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingReader, HashingWriter};

/// Skippable frame magic of the trailer (RFC 8878 allows 0x184D2A50–5F).
const TRAILER_MAGIC: u32 = 0x184D_2A5A;
/// Magic, frame size, layer size, SHA-256 in hex.
const TRAILER_LEN: u64 = 4 + 4 + 8 + 64;
const TAR_BLOCK: usize = 512;

/// A layer frame found in the cache whose bytes match the SHA-256 written
/// with them: `file` is positioned at its start (entries are only ever
/// replaced by rename, never changed in place).
#[derive(Debug)]
pub struct CachedFrame {
    /// The open entry.
    pub file: File,
    /// The frame's length: the bytes of `file` to copy into a bundle.
    pub frame_len: u64,
    /// The layer's own (uncompressed) size.
    pub size: u64,
}

impl CachedFrame {
    /// Checks the frame in `file` against its trailer.
    pub(super) fn check(mut file: File) -> io::Result<Self> {
        let damaged = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let len = file.metadata()?.len();
        let frame_len = len
            .checked_sub(TRAILER_LEN)
            .ok_or_else(|| damaged("shorter than its trailer"))?;
        let mut trailer = [0u8; TRAILER_LEN as usize];
        file.read_exact_at(&mut trailer, frame_len)?;
        let (expected, size) = parse_trailer(&trailer).ok_or_else(|| damaged("no trailer"))?;
        let mut hashing = HashingWriter::new(io::sink());
        io::copy(&mut Read::take(&mut file, frame_len), &mut hashing)?;
        let (actual, _, _) = hashing.finish();
        if actual != expected {
            return Err(damaged("frame does not match its recorded digest"));
        }
        file.rewind()?;
        Ok(Self {
            file,
            frame_len,
            size,
        })
    }

    /// The frame's bytes, to copy into a bundle as they are.
    pub fn frame(&mut self) -> impl Read + '_ {
        Read::take(&mut self.file, self.frame_len)
    }

    /// Decompresses the layer into the new file `target`, checking the tar
    /// header names `digest` and the bytes hash to it.
    pub(super) fn extract(mut self, digest: &Digest, target: &Path) -> io::Result<u64> {
        let damaged = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let size = self.size;
        let mut decoder = zstd::stream::read::Decoder::new(self.frame())?;
        decoder.window_log_max(crate::bundle::WINDOW_LOG_MAX)?;
        let mut header = [0u8; TAR_BLOCK];
        decoder.read_exact(&mut header)?;
        let header = tar::Header::from_byte_slice(&header);
        if header.path_bytes().as_ref() != digest.blob_path().as_bytes() || header.size()? != size {
            return Err(damaged("the frame holds another layer"));
        }
        let mut hashing = HashingReader::new(Read::take(&mut decoder, size));
        let copied = io::copy(&mut hashing, &mut File::create_new(target)?)?;
        let (actual, _) = hashing.finish();
        if copied != size || &actual != digest {
            return Err(damaged("the layer does not match its digest"));
        }
        Ok(size)
    }
}

fn parse_trailer(trailer: &[u8; TRAILER_LEN as usize]) -> Option<(Digest, u64)> {
    let word = |at: usize| u32::from_le_bytes(trailer[at..at + 4].try_into().unwrap());
    if word(0) != TRAILER_MAGIC || u64::from(word(4)) != TRAILER_LEN - 8 {
        return None;
    }
    let size = u64::from_le_bytes(trailer[8..16].try_into().unwrap());
    let hex = std::str::from_utf8(&trailer[16..]).ok()?;
    Some((Digest::from_hex(hex).ok()?, size))
}

/// A layer frame being stored: the frame goes to a temporary file, hashed
/// as it goes; [`FrameIngest::commit`] adds the trailer and renames it
/// into place.
pub struct FrameIngest {
    out: HashingWriter<tempfile::NamedTempFile>,
    target: PathBuf,
}

impl FrameIngest {
    pub(super) fn new(temp: tempfile::NamedTempFile, target: PathBuf) -> Self {
        Self {
            out: HashingWriter::new(temp),
            target,
        }
    }

    /// Puts the frame of a layer of `size` bytes in place. Only for frames
    /// whose layer was checked against its digest.
    pub fn commit(self, size: u64) -> io::Result<()> {
        let (sha256, _, mut temp) = self.out.finish();
        let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
        trailer.extend_from_slice(&TRAILER_MAGIC.to_le_bytes());
        trailer.extend_from_slice(&((TRAILER_LEN - 8) as u32).to_le_bytes());
        trailer.extend_from_slice(&size.to_le_bytes());
        trailer.extend_from_slice(sha256.hex().as_bytes());
        temp.write_all(&trailer)?;
        temp.persist(&self.target).map_err(|e| e.error)?;
        Ok(())
    }
}

impl Write for FrameIngest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
