//! Layers are compressed on push (a bundle stores them uncompressed), the
//! same bytes every time: gzip with no name, no mtime and a fixed level,
//! zstd at a fixed level on one thread. A compressed layer is written to a
//! temporary file while both digests are taken, so that its digest is known
//! before it is looked up or uploaded, and an interrupted upload can go on
//! from any offset.
//!
//! gzip, the slow one, runs on every core the way pigz does: the layer is
//! cut into blocks of a fixed size, each deflated on its own (primed with
//! the 32 KiB before it, so the cut costs almost nothing in size) and ended
//! on a byte boundary, and the blocks are written in order as one gzip
//! member. The cuts depend on the layer's bytes only, never on the number of
//! threads, so the output is the same on every machine.

use std::collections::VecDeque;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;

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

/// zlib-rs level 4 took 20 % less time than 6 for 1.5 % more bytes on the
/// bench stack's layers (5: 10 %, 0.2 %), still 1.5 % fewer than skopeo's.
const GZIP_LEVEL: u32 = 4;
const ZSTD_LEVEL: i32 = 3;
/// Layer bytes deflated as one piece: fixed, so that the output does not
/// depend on how many threads share the work.
const GZIP_BLOCK: usize = 256 << 10;
/// What deflate can refer back to: each block is primed with this much of
/// the layer before it.
const DEFLATE_WINDOW: usize = 32 << 10;
/// gzip header: deflate, no flags, no mtime, no extra flags, unknown OS
/// (what flate2 wrote for these layers with `mtime(0)` and OS 255).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// Blocks between two trims of the allocator's free memory (4 MiB of layer).
const TRIM_EVERY: usize = 16;

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
    /// Asked to stop before the layer was done.
    Stopped,
}

impl From<io::Error> for CompressError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// Compresses `content`, which must be `layer` (checked as it is read),
/// into a temporary file in `dir`; gives up with [`CompressError::Stopped`]
/// once `stop` says so.
pub fn compress(
    content: &mut dyn Read,
    layer: &BlobRef,
    how: PushCompression,
    dir: &Path,
    stop: &dyn Fn() -> bool,
) -> Result<Compressed, CompressError> {
    let file = tempfile::NamedTempFile::new_in(dir)?;
    let mut reader = HashingReader::new(Stoppable {
        inner: content,
        stop,
    });
    let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, file.reopen()?));
    let written = match how {
        PushCompression::Gzip => gzip(&mut reader, &mut out, gzip_threads()),
        PushCompression::Zstd => zstd(&mut reader, &mut out),
        PushCompression::None => io::copy(&mut reader, &mut out).map(drop),
    };
    if let Err(error) = written {
        return Err(if stop() {
            CompressError::Stopped
        } else {
            CompressError::Io(error)
        });
    }
    give_back_freed_memory();
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

/// Returns freed memory to the system. glibc keeps freed memory at the top
/// of each thread's heap up to a threshold it raises as large buffers are
/// freed; with blocks and deflaters passing between threads that held
/// 7–15 MB more at the peak of a push than compressing on one thread did.
/// Trimming every few MiB of layer and after each layer costs far less than
/// a millisecond a time.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A reader that fails once it is asked to stop.
struct Stoppable<'a> {
    inner: &'a mut dyn Read,
    stop: &'a dyn Fn() -> bool,
}

impl Read for Stoppable<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if (self.stop)() {
            return Err(io::Error::other("asked to stop"));
        }
        self.inner.read(buf)
    }
}

fn zstd(input: &mut dyn Read, out: &mut dyn Write) -> io::Result<()> {
    let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
    encoder.include_checksum(true)?;
    io::copy(input, &mut encoder)?;
    encoder.finish()?;
    Ok(())
}

/// Threads deflating gzip blocks: one per core, at most 4.
fn gzip_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// A block's buffers, handed back and forth and filled again, so that
/// memory stays flat: fresh buffers per block, allocated on one thread and
/// freed on another, left the allocator holding tens of MB spread over its
/// per-thread arenas.
#[derive(Default)]
struct Block {
    /// The layer's bytes.
    data: Vec<u8>,
    /// The layer's bytes just before them.
    primer: Vec<u8>,
    /// `data` deflated.
    deflated: Vec<u8>,
}

type Deflated = io::Result<Block>;
/// A block, the deflater for it and where to send it deflated. A deflater
/// is made afresh for every block (one reset and reused gave other bytes)
/// on the reading thread, so that its memory goes back to that thread's
/// arena.
type Job = (Block, flate2::Compress, mpsc::SyncSender<Deflated>);

/// Writes `input` gzip-compressed to `out`, blocks deflated on `threads`
/// threads; the bytes are the same for any number of threads.
fn gzip(input: &mut dyn Read, out: &mut dyn Write, threads: usize) -> io::Result<()> {
    out.write_all(&GZIP_HEADER)?;
    let (jobs, queue) = mpsc::sync_channel::<Job>(0);
    let queue = Mutex::new(queue);
    let mut crc = flate2::Crc::new();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| deflate_blocks(&queue));
        }
        // Dropping `jobs` (at the end of this call) lets the threads end.
        let jobs = jobs;
        // Blocks handed out and not yet written, in layer order: enough to
        // keep every thread busy while one is read and one written.
        let mut in_flight: VecDeque<mpsc::Receiver<Deflated>> = VecDeque::new();
        let mut spare: Vec<Block> = Vec::new();
        let mut primer = Vec::with_capacity(DEFLATE_WINDOW);
        let mut written = 0_usize;
        loop {
            let mut block = spare.pop().unwrap_or_default();
            read_block(input, &mut block.data)?;
            if block.data.is_empty() {
                break;
            }
            crc.update(&block.data);
            block.primer.clear();
            block.primer.extend_from_slice(&primer);
            primer.clear();
            primer
                .extend_from_slice(&block.data[block.data.len().saturating_sub(DEFLATE_WINDOW)..]);
            block.deflated.reserve(GZIP_BLOCK + 1024);
            let (done, deflated) = mpsc::sync_channel(1);
            jobs.send((block, new_deflater(), done))
                .map_err(|_| io::Error::other("the gzip threads stopped"))?;
            in_flight.push_back(deflated);
            if in_flight.len() >= threads + 2 {
                spare.push(write_deflated(in_flight.pop_front(), out)?);
            }
            written += 1;
            if written % TRIM_EVERY == 0 {
                give_back_freed_memory();
            }
        }
        while !in_flight.is_empty() {
            drop(write_deflated(in_flight.pop_front(), out)?);
        }
        Ok::<(), io::Error>(())
    })?;
    let mut end = Vec::new();
    deflate(
        &mut new_deflater(),
        &[],
        &[],
        &mut end,
        flate2::FlushCompress::Finish,
    )?;
    out.write_all(&end)?;
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&crc.amount().to_le_bytes())?;
    Ok(())
}

fn new_deflater() -> flate2::Compress {
    flate2::Compress::new(flate2::Compression::new(GZIP_LEVEL), false)
}

/// Deflates the blocks `queue` hands out until it closes.
fn deflate_blocks(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = queue.lock().expect("gzip queue lock").recv();
        let Ok((mut block, mut deflater, done)) = job else {
            return;
        };
        let deflated = deflate(
            &mut deflater,
            &block.data,
            &block.primer,
            &mut block.deflated,
            flate2::FlushCompress::Sync,
        )
        .map(|()| block);
        // The writer stops listening only when it failed anyway.
        let _ = done.send(deflated);
    }
}

/// Writes the next block once it is deflated; gives its buffers back.
fn write_deflated(
    deflated: Option<mpsc::Receiver<Deflated>>,
    out: &mut dyn Write,
) -> io::Result<Block> {
    let block = deflated
        .expect("a block is in flight")
        .recv()
        .map_err(|_| io::Error::other("a gzip thread stopped"))??;
    out.write_all(&block.deflated)?;
    Ok(block)
}

/// Raw deflate of `data` primed with `primer` into `out`: a sync flush
/// ends it on a byte boundary with no final bit, so blocks simply follow
/// one another; `Finish` on nothing gives the empty final block.
fn deflate(
    deflater: &mut flate2::Compress,
    data: &[u8],
    primer: &[u8],
    out: &mut Vec<u8>,
    flush: flate2::FlushCompress,
) -> io::Result<()> {
    out.clear();
    if !primer.is_empty() {
        deflater.set_dictionary(primer).map_err(io::Error::other)?;
    }
    out.reserve(data.len() + 64);
    let start = deflater.total_in();
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity() / 2 + 64);
        }
        let consumed =
            usize::try_from(deflater.total_in() - start).expect("a block fits in memory");
        let status = deflater
            .compress_vec(&data[consumed..], out, flush)
            .map_err(io::Error::other)?;
        let all_in = deflater.total_in() - start == data.len() as u64;
        // Done once everything is in and the flush left room to spare.
        if status == flate2::Status::StreamEnd || (all_in && out.len() < out.capacity()) {
            return Ok(());
        }
    }
}

/// Reads up to one block into `data`: short only at the end of `input`.
fn read_block(input: &mut dyn Read, data: &mut Vec<u8>) -> io::Result<()> {
    data.clear();
    data.reserve(GZIP_BLOCK);
    Read::take(&mut *input, GZIP_BLOCK as u64)
        .read_to_end(data)
        .map(drop)
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
            let first = compress(&mut &bytes[..], &layer(&bytes), how, dir.path(), &|| false)
                .ok()
                .unwrap();
            let second = compress(&mut &bytes[..], &layer(&bytes), how, dir.path(), &|| false)
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
            &|| false,
        );
        assert!(matches!(refused, Err(CompressError::Changed { .. })));
    }

    /// Compressible bytes with matches across block boundaries: words
    /// from a small vocabulary in a pseudo-random order.
    fn text(len: usize) -> Vec<u8> {
        let words = [
            "layer", "registry", "gzip", "bundle", "digest", "manifest", "tar", "\n",
        ];
        let mut state = 0x2545_f491_u32;
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            out.extend_from_slice(words[(state >> 24) as usize % words.len()].as_bytes());
            out.extend_from_slice(&state.to_le_bytes()[..1]);
        }
        out.truncate(len);
        out
    }

    fn gzipped(bytes: &[u8], threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        gzip(&mut &bytes[..], &mut out, threads).unwrap();
        out
    }

    #[test]
    fn gzip_blocks_are_the_same_on_any_number_of_threads_and_decode_to_the_layer() {
        let bytes = text(3 * GZIP_BLOCK + 12_345);
        let one = gzipped(&bytes, 1);
        assert_eq!(one, gzipped(&bytes, 2));
        assert_eq!(one, gzipped(&bytes, 3));
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, bytes);
        for exact in [0, 1, GZIP_BLOCK, 2 * GZIP_BLOCK] {
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&gzipped(&bytes[..exact], 2)[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, &bytes[..exact], "{exact} bytes");
        }
    }

    #[test]
    fn gzip_blocks_cost_almost_nothing_in_size() {
        let bytes = text(4 * GZIP_BLOCK);
        let mut whole =
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
        whole.write_all(&bytes).unwrap();
        let whole = whole.finish().unwrap().len();
        let blocks = gzipped(&bytes, 2).len();
        assert!(
            blocks * 1000 <= whole * 1002,
            "{blocks} bytes in blocks, {whole} in one piece"
        );
    }

    #[test]
    fn a_stop_ends_the_compression() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = text(2 * GZIP_BLOCK);
        for how in [
            PushCompression::Gzip,
            PushCompression::Zstd,
            PushCompression::None,
        ] {
            let stopped = compress(&mut &bytes[..], &layer(&bytes), how, dir.path(), &|| true);
            assert!(matches!(stopped, Err(CompressError::Stopped)), "{how:?}");
        }
    }
}
