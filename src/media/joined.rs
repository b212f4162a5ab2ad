//! Several sources as one, for a pack that takes engine images, container
//! snapshots and imported root filesystems together. Each source answers
//! for the references it claims; one source may take every reference no
//! other claims (the engine, for the image names given).

use std::collections::HashSet;

use crate::bundle::SourceInfo;
use crate::digest::Digest;
use crate::image::{ImageRecord, ImageRef};
use crate::media::source::{LayerSink, ResolvedImage, Source, SourceError};
use crate::progress::Progress;
use crate::store::StagedLayers;

/// One source and what it answers for.
pub struct Part<'a> {
    /// The source.
    pub source: &'a dyn Source,
    /// The references it answers for; `None`: every one no other part claims.
    pub claims: Option<Vec<ImageRef>>,
}

/// Sources joined into one.
pub struct Joined<'a> {
    parts: Vec<Part<'a>>,
}

impl<'a> Joined<'a> {
    /// Joins `parts`; the first without claims takes the unclaimed references.
    pub fn new(parts: Vec<Part<'a>>) -> Self {
        Self { parts }
    }

    /// The index of the part answering for `reference`.
    fn owner(&self, reference: &ImageRef) -> Option<usize> {
        self.parts
            .iter()
            .position(|p| {
                p.claims
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|r| r.given == reference.given))
            })
            .or_else(|| self.parts.iter().position(|p| p.claims.is_none()))
    }

    /// `items` grouped by the part answering for each, in part order.
    fn by_part<T: Clone>(
        &self,
        items: &[T],
        reference: impl Fn(&T) -> Option<&ImageRef>,
    ) -> Vec<Vec<T>> {
        let mut groups = vec![Vec::new(); self.parts.len()];
        for item in items {
            if let Some(index) = reference(item).and_then(|r| self.owner(r)) {
                groups[index].push(item.clone());
            }
        }
        groups
    }
}

impl Source for Joined<'_> {
    fn describe(&self) -> SourceInfo {
        let described: Vec<SourceInfo> = self.parts.iter().map(|p| p.source.describe()).collect();
        SourceInfo {
            kind: described
                .iter()
                .map(|d| d.kind.as_str())
                .collect::<Vec<_>>()
                .join("+"),
            engine: described.iter().find_map(|d| d.engine.clone()),
            api_version: described.iter().find_map(|d| d.api_version.clone()),
        }
    }

    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError> {
        let unowned: Vec<String> = refs
            .iter()
            .filter(|r| self.owner(r).is_none())
            .map(|r| r.given.clone())
            .collect();
        if !unowned.is_empty() {
            return Err(SourceError::Missing { refs: unowned });
        }
        let mut resolved = Vec::new();
        for (part, group) in self.parts.iter().zip(self.by_part(refs, |r| Some(r))) {
            if !group.is_empty() {
                resolved.extend(part.source.resolve(&group)?);
            }
        }
        Ok(resolved)
    }

    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let mut records = Vec::new();
        for (part, group) in self
            .parts
            .iter()
            .zip(self.by_part(images, |i| i.refs.first()))
        {
            if !group.is_empty() {
                records.extend(part.source.export(&group, layers, progress)?);
            }
        }
        Ok(records)
    }

    fn layer_sizes(&self, image: &ResolvedImage) -> Result<Option<Vec<u64>>, SourceError> {
        match image.refs.first().and_then(|r| self.owner(r)) {
            Some(index) => self.parts[index].source.layer_sizes(image),
            None => Ok(None),
        }
    }

    fn supply_layers(
        &self,
        digests: &HashSet<Digest>,
        progress: &dyn Progress,
    ) -> Result<StagedLayers, SourceError> {
        // The source taking unclaimed names is the one holding other images.
        match self.parts.iter().find(|p| p.claims.is_none()) {
            Some(part) => part.source.supply_layers(digests, progress),
            None => Ok(StagedLayers::none()?),
        }
    }
}
