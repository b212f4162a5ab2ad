//! The blob store a pack writes through: every source hands its layers to
//! one [`BlobStore`], which dedups them by digest, stages what must be
//! staged and streams the rest, and delivers them in order to one consumer
//! (the bundle writer) on another thread, so receiving, hashing and
//! compressing overlap.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::digest::Digest;
use crate::media::source::{LayerSink, SourceError};
use crate::store::StagedLayer;

/// Deliveries waiting for the consumer. A staged layer is a file on disk, a
/// streamed layer's piece is memory: the queue bounds temporary disk use to
/// four layers and memory to four pieces.
const QUEUE: usize = 4;

/// Bytes of a streamed layer travel in pieces this large: big enough that
/// handing them across threads costs nothing next to compressing them.
const PIECE: u64 = 1 << 20;

/// The smallest layer a source may only hash on the strength of its size.
/// Smaller layers cost little to stage, and small layers of one size are
/// common (empty ones, ones that only make a directory), where a wrong
/// guess costs a second export.
const SKIMMED_MIN: u64 = 1 << 20;

/// What travels to the consumer: a staged layer, or a streamed one
/// announced by its digest and followed by its bytes.
enum Delivery {
    Staged(StagedLayer),
    Streamed { digest: Digest, size: u64 },
    Bytes(Vec<u8>),
}

/// One layer as the consumer receives it.
pub enum Arrival<'a> {
    /// Staged on disk; the consumer removes the file.
    Staged(StagedLayer),
    /// Streaming past: `content` yields `size` bytes, which hash to `digest`
    /// unless the source finds otherwise and fails the export.
    Streamed {
        /// The layer's digest, as the source named it.
        digest: Digest,
        /// Its size.
        size: u64,
        /// Its bytes.
        content: &'a mut dyn Read,
    },
}

/// The sources' end of the store.
pub struct BlobStore {
    sender: SyncSender<Delivery>,
    staging: PathBuf,
    handed_over: HashSet<Digest>,
    needs_staging: HashSet<Digest>,
    left_out: HashSet<Digest>,
    /// Sizes of the layers left out.
    skimmed_sizes: HashSet<u64>,
}

/// The consumer's end of the store.
pub struct Deliveries {
    receiver: Receiver<Delivery>,
}

/// A store staging in `staging`. Layers in `needs_staging` (a delta's
/// patch targets, which are read twice) are staged even when a source
/// could stream them.
pub fn blob_store(staging: &Path, needs_staging: HashSet<Digest>) -> (BlobStore, Deliveries) {
    let (sender, receiver) = sync_channel(QUEUE);
    let store = BlobStore {
        sender,
        staging: staging.to_owned(),
        handed_over: HashSet::new(),
        needs_staging,
        left_out: HashSet::new(),
        skimmed_sizes: HashSet::new(),
    };
    (store, Deliveries { receiver })
}

impl Deliveries {
    /// Hands every layer to `consume` until the store is dropped. `Ok(false)`
    /// when the source stopped in the middle of a streamed layer: the
    /// consumer's error then is only a consequence, the source's own says why.
    pub fn consume<E>(
        self,
        mut consume: impl FnMut(Arrival<'_>) -> Result<(), E>,
    ) -> Result<bool, E> {
        while let Ok(delivery) = self.receiver.recv() {
            match delivery {
                Delivery::Staged(layer) => consume(Arrival::Staged(layer))?,
                Delivery::Streamed { digest, size } => {
                    let mut bytes = StreamedBytes {
                        receiver: &self.receiver,
                        piece: Vec::new(),
                        offset: 0,
                        remaining: size,
                        cut_short: false,
                    };
                    let consumed = consume(Arrival::Streamed {
                        digest,
                        size,
                        content: &mut bytes,
                    });
                    if bytes.cut_short {
                        return Ok(false);
                    }
                    consumed?;
                }
                Delivery::Bytes(_) => unreachable!("bytes come only after their layer"),
            }
        }
        Ok(true)
    }
}

/// One streamed layer's bytes, read from the pieces that follow its announcement.
struct StreamedBytes<'a> {
    receiver: &'a Receiver<Delivery>,
    piece: Vec<u8>,
    offset: usize,
    remaining: u64,
    cut_short: bool,
}

impl Read for StreamedBytes<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.offset == self.piece.len() {
            match self.receiver.recv() {
                Ok(Delivery::Bytes(piece)) => {
                    self.piece = piece;
                    self.offset = 0;
                }
                _ => {
                    self.cut_short = true;
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
        let available = &self.piece[self.offset..];
        let n = available.len().min(buf.len()).min(self.remaining as usize);
        buf[..n].copy_from_slice(&available[..n]);
        self.offset += n;
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl BlobStore {
    /// Layers the receiving site holds (a delta), which the bundle does not
    /// carry: a source that can tell their sizes need not read them. `sizes`
    /// are those of the left-out layers known before the export, so that a
    /// source that learns a layer's digest only by reading it need not stage
    /// one of that size ([`LayerSink::skims`]).
    pub fn leave_out(&mut self, layers: HashSet<Digest>, sizes: HashSet<u64>) {
        self.left_out = layers;
        self.skimmed_sizes = sizes;
    }

    fn send(&self, delivery: Delivery) -> Result<(), SourceError> {
        self.sender
            .send(delivery)
            .map_err(|_| SourceError::WriterStopped)
    }
}

impl LayerSink for BlobStore {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    fn has_layer(&self, digest: &Digest) -> bool {
        self.handed_over.contains(digest)
    }

    fn put_layer(&mut self, layer: StagedLayer) -> Result<(), SourceError> {
        self.handed_over.insert(layer.digest.clone());
        self.send(Delivery::Staged(layer))
    }

    fn is_left_out(&self, digest: &Digest) -> bool {
        self.left_out.contains(digest)
    }

    fn skims(&self, size: u64) -> bool {
        size >= SKIMMED_MIN && self.skimmed_sizes.contains(&size)
    }

    fn takes_stream(&self, digest: &Digest) -> bool {
        !self.handed_over.contains(digest) && !self.needs_staging.contains(digest)
    }

    fn stream_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), SourceError> {
        self.handed_over.insert(digest.clone());
        self.send(Delivery::Streamed {
            digest: digest.clone(),
            size,
        })?;
        let mut sent = 0;
        while sent < size {
            let mut piece = Vec::with_capacity(PIECE.min(size - sent) as usize);
            let read = content
                .take(PIECE)
                .read_to_end(&mut piece)
                .map_err(SourceError::Read)?;
            if read == 0 {
                return Err(SourceError::Read(std::io::ErrorKind::UnexpectedEof.into()));
            }
            sent += read as u64;
            self.send(Delivery::Bytes(piece))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// Consumes into memory, as a bundle writer would into the bundle.
    fn collect(deliveries: Deliveries) -> (bool, Vec<(Digest, Vec<u8>)>) {
        let mut layers = Vec::new();
        let complete = deliveries
            .consume(|arrival| -> std::io::Result<()> {
                match arrival {
                    Arrival::Staged(layer) => {
                        layers.push((layer.digest, std::fs::read(&layer.path)?));
                    }
                    Arrival::Streamed {
                        digest, content, ..
                    } => {
                        let mut bytes = Vec::new();
                        content.read_to_end(&mut bytes)?;
                        layers.push((digest, bytes));
                    }
                }
                Ok(())
            })
            .unwrap_or(false);
        (complete, layers)
    }

    #[test]
    fn a_streamed_layer_arrives_whole_from_its_pieces_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let layer = b"0123456789".repeat(300_000);
        let digest = Digest::of(&layer);
        let (mut store, deliveries) = blob_store(dir.path(), HashSet::new());
        thread::scope(|scope| {
            let consuming = scope.spawn(move || collect(deliveries));
            assert!(store.takes_stream(&digest));
            store
                .stream_layer(&digest, layer.len() as u64, &mut &layer[..])
                .unwrap();
            assert!(!store.takes_stream(&digest), "a layer streams once");
            assert!(store.has_layer(&digest));
            drop(store);
            let (complete, layers) = consuming.join().unwrap();
            assert!(complete);
            assert_eq!(layers, vec![(digest, layer)]);
        });
    }

    #[test]
    fn a_layer_cut_short_leaves_the_source_to_explain() {
        let dir = tempfile::tempdir().unwrap();
        let (store, deliveries) = blob_store(dir.path(), HashSet::new());
        thread::scope(|scope| {
            let consuming = scope.spawn(move || collect(deliveries));
            store
                .send(Delivery::Streamed {
                    digest: Digest::of(b"x"),
                    size: 3 * PIECE,
                })
                .unwrap();
            store
                .send(Delivery::Bytes(vec![0; PIECE as usize]))
                .unwrap();
            drop(store);
            assert!(!consuming.join().unwrap().0);
        });
    }

    #[test]
    fn only_large_layers_of_a_left_out_size_are_skimmed() {
        let (mut store, _deliveries) = blob_store(Path::new(""), HashSet::new());
        store.leave_out(
            HashSet::from([Digest::of(b"a"), Digest::of(b"b")]),
            HashSet::from([SKIMMED_MIN, 1024]),
        );
        assert!(store.skims(SKIMMED_MIN));
        assert!(!store.skims(SKIMMED_MIN + 512));
        assert!(!store.skims(1024), "small layers of one size are common");
    }

    #[test]
    fn layers_a_delta_leaves_out_or_patches_are_staged_not_streamed() {
        let patched = Digest::of(b"patched");
        let (store, _deliveries) = blob_store(Path::new(""), HashSet::from([patched.clone()]));
        assert!(!store.takes_stream(&patched));
        assert!(store.takes_stream(&Digest::of(b"other")));
    }
}
