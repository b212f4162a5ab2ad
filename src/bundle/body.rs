//! The bundle's body: one zstd frame per tar entry (its header, bytes and
//! padding), then one for the end-of-archive marker. A layer's frame thus
//! depends on that layer and the compression settings alone, so the layer
//! cache can keep it and a later pack copy it in without compressing
//! anything, byte for byte what compressing it again would give.
//!
//! Frames compressed alone lose the matches a single stream finds between
//! the layers of a stack; a higher level than a single stream would need
//! wins that back (docs/BENCHMARKS.md: level 6 alone per layer against
//! level 3 across the stack).

use std::io::{self, BufWriter, Read, Write};

use zstd::stream::raw::CParameter;

use super::in_place::BodyFile;
use super::tar_stream;
use super::writer::Compression;

/// The body file being written.
pub(super) struct Body {
    out: BufWriter<BodyFile>,
    compression: Compression,
}

impl Body {
    pub(super) fn new(file: BodyFile, compression: &Compression) -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 20, file),
            compression: compression.clone(),
        }
    }

    /// The name the layer cache keeps this body's frames under.
    pub(super) fn frame_profile(&self) -> String {
        self.compression.frame_profile()
    }

    /// Appends the tar entry `path` of `size` bytes from `content` as a
    /// frame of its own, also written to `copy` (the layer cache) if given.
    pub(super) fn entry(
        &mut self,
        path: &str,
        size: u64,
        content: &mut dyn Read,
        copy: Option<&mut dyn Write>,
    ) -> io::Result<()> {
        write_frame(&mut self.out, &self.compression, path, size, content, copy)
    }

    /// Compresses the tar entry `path` into `out` as [`Body::entry`] would,
    /// for a layer that arrives before its turn: spliced in later, it gives
    /// the same bytes.
    pub(super) fn frame_aside(
        &self,
        out: &mut dyn Write,
        path: &str,
        size: u64,
        content: &mut dyn Read,
        copy: Option<&mut dyn Write>,
    ) -> io::Result<()> {
        write_frame(out, &self.compression, path, size, content, copy)
    }

    /// Appends a frame made earlier by [`Body::entry`] with the same
    /// settings, as it is.
    pub(super) fn splice(&mut self, frame: &mut dyn Read) -> io::Result<u64> {
        io::copy(frame, &mut self.out)
    }

    /// Ends the tar archive and hands the file back.
    pub(super) fn finish(mut self) -> io::Result<BodyFile> {
        let mut marker = Vec::new();
        tar_stream::finish(&mut marker)?;
        let mut compressor = zstd::bulk::Compressor::new(self.compression.level)?;
        compressor.set_parameter(CParameter::ChecksumFlag(true))?;
        self.out.write_all(&compressor.compress(&marker)?)?;
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Writes one tar entry as one frame into `out` (and `copy`).
fn write_frame(
    out: &mut dyn Write,
    compression: &Compression,
    path: &str,
    size: u64,
    content: &mut dyn Read,
    copy: Option<&mut dyn Write>,
) -> io::Result<()> {
    let tee = Tee { out, copy };
    let mut encoder = frame_encoder(tee, compression, tar_stream::entry_len(size))?;
    tar_stream::append(&mut encoder, path, size, content)?;
    encoder.finish()?;
    Ok(())
}

/// Writes to the body and, for a layer the cache keeps, to its entry.
struct Tee<'a, 'b> {
    out: &'a mut dyn Write,
    copy: Option<&'a mut (dyn Write + 'b)>,
}

impl Write for Tee<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        if let Some(copy) = &mut self.copy {
            copy.write_all(&buf[..n])?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn frame_encoder<W: Write>(
    out: W,
    compression: &Compression,
    len: u64,
) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut encoder = zstd::stream::write::Encoder::new(out, compression.level)?;
    let (window_log, job_size, overlap_log) = compression.window_and_job();
    // zstd's output is the same for any number of workers, but not with
    // none: one worker, not the calling thread, keeps a one-core machine's
    // bundle byte for byte the same as a four-core one's.
    if compression.threads >= 1 {
        encoder.multithread(compression.threads)?;
        encoder.set_parameter(CParameter::JobSize(job_size))?;
        encoder.set_parameter(CParameter::OverlapSizeLog(overlap_log))?;
    }
    encoder.long_distance_matching(true)?;
    encoder.window_log(window_log)?;
    for parameter in compression.match_finder() {
        encoder.set_parameter(parameter)?;
    }
    encoder.include_checksum(true)?;
    // A known length lets zstd size its window and tables to a small entry
    // and records the length in the frame header.
    encoder.set_pledged_src_size(Some(len))?;
    Ok(encoder)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek};

    use super::*;

    /// Writes `before` then `layer` as entries; gives the body's bytes and
    /// the frame the layer's copy received.
    fn body_with(before: &[u8], layer: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let compression = Compression {
            level: 3,
            threads: 2,
        };
        let mut body = Body::new(BodyFile::plain(tempfile::tempfile().unwrap()), &compression);
        body.entry("before", before.len() as u64, &mut &before[..], None)
            .unwrap();
        let mut copy = Vec::new();
        body.entry(
            "layer",
            layer.len() as u64,
            &mut &layer[..],
            Some(&mut copy),
        )
        .unwrap();
        let mut file = body.finish().unwrap().into_file().unwrap();
        file.rewind().unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        (bytes, copy)
    }

    #[test]
    fn a_layers_frame_is_the_same_whatever_came_before_it() {
        let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (first_body, first) = body_with(b"one thing", &layer);
        let (second_body, second) = body_with(&layer[..5000], &layer);
        assert_eq!(first, second, "the frame depends on the layer alone");
        assert!(
            first_body.windows(first.len()).any(|w| w == first),
            "the copy is what the body holds"
        );

        let decoded = zstd::stream::decode_all(&second_body[..]).unwrap();
        let mut archive = tar::Archive::new(&decoded[..]);
        let entries: Vec<(String, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut content = Vec::new();
                e.read_to_end(&mut content).unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), content)
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("before".to_owned(), layer[..5000].to_vec()),
                ("layer".to_owned(), layer.clone())
            ]
        );
    }
}
