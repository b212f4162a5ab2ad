//! Layers into the bundle in one fixed order, whatever order the engine
//! exports them in and whichever the cache supplies: a layer that arrives
//! before its turn is compressed at once into a frame of its own, which
//! waits on disk (compression keeps pace with the export; the containerd
//! store, for one, exports blobs in digest order), or waits uncompressed
//! if a patch is to be made of it. The frame of every layer the
//! bundle carries is kept in the layer cache as it is written.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};

use crate::bundle::BundleError;
use crate::bundle::writer::{BundleWriter, FramedLayer};
use crate::cache::{CachedFrame, LayerCache};
use crate::digest::Digest;
use crate::store::StagedLayer;

/// The order to write in and what the cache supplies.
pub struct Order<'c> {
    /// The layers the bundle carries, in the order it carries them.
    pub layers: Vec<Digest>,
    /// Checked cache entries for some of them.
    pub cached: HashMap<Digest, CachedFrame>,
    /// Where the frames of the layers written are kept for later packs.
    pub cache: Option<&'c LayerCache>,
}

enum Waiting {
    Staged(StagedLayer),
    Framed(FramedLayer),
    Cached(CachedFrame),
}

/// A bundle writer fed in order.
pub struct Ordered {
    writer: BundleWriter,
    order: Vec<Digest>,
    in_order: HashSet<Digest>,
    next: usize,
    waiting: HashMap<Digest, Waiting>,
}

impl Ordered {
    /// Feeds `writer` in `order`.
    pub fn new(mut writer: BundleWriter, order: Order<'_>) -> Self {
        if let Some(cache) = order.cache {
            writer.keep_frames_in(cache.clone());
        }
        Self {
            writer,
            in_order: order.layers.iter().cloned().collect(),
            order: order.layers,
            next: 0,
            waiting: order
                .cached
                .into_iter()
                .map(|(digest, layer)| (digest, Waiting::Cached(layer)))
                .collect(),
        }
    }

    fn wanted_now(&self, digest: &Digest) -> bool {
        self.order.get(self.next) == Some(digest)
    }

    /// True when the layer already went in or waits for its turn.
    fn had(&self, digest: &Digest) -> bool {
        self.writer.has_layer(digest) || self.waiting.contains_key(digest)
    }

    /// A layer the source staged.
    pub fn staged(&mut self, layer: StagedLayer) -> Result<(), BundleError> {
        self.write_waiting()?;
        let digest = layer.digest.clone();
        if !self.in_order.contains(&digest) || self.wanted_now(&digest) {
            // Left out, or its turn: the writer decides (and removes the file).
            self.writer
                .add_staged_layer(&layer.digest, layer.size, &layer.path)?;
            return self.write_waiting();
        }
        if self.had(&digest) {
            let _ = std::fs::remove_file(&layer.path);
            return Ok(());
        }
        if self.writer.must_stay_staged(&digest) {
            self.waiting.insert(digest, Waiting::Staged(layer));
            return Ok(());
        }
        let framed = File::open(&layer.path)
            .map_err(|source| self.stage_error(&digest, source))
            .and_then(|mut file| self.writer.frame_aside(&digest, layer.size, &mut file));
        let _ = std::fs::remove_file(&layer.path);
        self.waiting.insert(digest, Waiting::Framed(framed?));
        Ok(())
    }

    /// A layer streaming past.
    pub fn streamed(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), BundleError> {
        self.write_waiting()?;
        if !self.in_order.contains(digest) || self.wanted_now(digest) {
            self.writer
                .add_streamed_layer(digest, size, content)
                .and_then(|()| self.write_waiting())
        } else if self.had(digest) {
            io::copy(content, &mut io::sink())
                .map(drop)
                .map_err(|source| self.stage_error(digest, source))
        } else if self.writer.must_stay_staged(digest) {
            self.stage(digest, size, content)
        } else {
            let framed = self.writer.frame_aside(digest, size, content)?;
            self.waiting.insert(digest.clone(), Waiting::Framed(framed));
            Ok(())
        }
    }

    /// Keeps a layer that came before its turn in the writer's work directory.
    fn stage(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), BundleError> {
        let path = self
            .writer
            .workdir()
            .join(format!("early-{}", digest.hex()));
        let copied = File::create_new(&path).and_then(|mut file| io::copy(content, &mut file));
        match copied {
            Ok(copied) if copied == size => {}
            Ok(_) => {
                return Err(self.stage_error(digest, io::ErrorKind::UnexpectedEof.into()));
            }
            Err(source) => return Err(self.stage_error(digest, source)),
        }
        self.waiting.insert(
            digest.clone(),
            Waiting::Staged(StagedLayer {
                path,
                digest: digest.clone(),
                size,
            }),
        );
        Ok(())
    }

    fn stage_error(&self, digest: &Digest, source: io::Error) -> BundleError {
        BundleError::Io {
            action: "staging a layer in",
            path: self.writer.workdir().join(digest.hex()),
            source,
        }
    }

    /// Writes every layer whose turn has come.
    pub fn write_waiting(&mut self) -> Result<(), BundleError> {
        while let Some(digest) = self.order.get(self.next).cloned() {
            if self.writer.has_layer(&digest) {
                self.next += 1;
                continue;
            }
            match self.waiting.remove(&digest) {
                Some(waiting) => self.write(&digest, waiting)?,
                None => return Ok(()),
            }
            self.next += 1;
        }
        Ok(())
    }

    fn write(&mut self, digest: &Digest, waiting: Waiting) -> Result<(), BundleError> {
        match waiting {
            Waiting::Staged(layer) => {
                self.writer
                    .add_staged_layer(&layer.digest, layer.size, &layer.path)
            }
            Waiting::Framed(framed) => self.writer.add_framed_layer(digest, framed),
            Waiting::Cached(mut frame) => self.writer.add_cached_frame(digest, &mut frame),
        }
    }

    /// Writes what still waits (in order; a layer that never came is
    /// reported missing when the bundle is finished) and hands the writer back.
    pub fn finish(mut self) -> Result<BundleWriter, BundleError> {
        self.write_waiting()?;
        for digest in std::mem::take(&mut self.order) {
            if let Some(waiting) = self.waiting.remove(&digest) {
                self.write(&digest, waiting)?;
            }
        }
        for (_, waiting) in self.waiting.drain() {
            match waiting {
                Waiting::Staged(layer) => {
                    let _ = std::fs::remove_file(&layer.path);
                }
                Waiting::Framed(framed) => framed.discard(),
                Waiting::Cached(_) => {}
            }
        }
        Ok(self.writer)
    }
}
