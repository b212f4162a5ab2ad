//! Several sources behind one (`pack --archive A --archive B`, and later
//! containers and imports beside them): each reference goes to the first
//! member holding it, and members export one after another into the same
//! layer sink, which keeps one copy of a layer by digest. Records of the
//! same config from several members become one.

use std::sync::Mutex;

use crate::bundle::SourceInfo;
use crate::digest::Digest;
use crate::image::{ImageRecord, ImageRef};
use crate::media::source::{HeldImage, LayerSink, ResolvedImage, Source, SourceError};
use crate::progress::Progress;

/// Sources tried in order.
pub struct CombinedSource {
    members: Vec<Box<dyn Source>>,
    /// Which member resolved which image (by ID and reference names).
    routes: Mutex<Vec<(Route, usize)>>,
}

#[derive(PartialEq, Eq)]
struct Route {
    id: Option<Digest>,
    names: Vec<String>,
}

impl Route {
    fn of(image: &ResolvedImage) -> Self {
        Self {
            id: image.id.clone(),
            names: image.refs.iter().map(|r| r.name.clone()).collect(),
        }
    }
}

impl CombinedSource {
    /// Combines `members`, earlier ones winning a name held by several.
    pub fn new(members: Vec<Box<dyn Source>>) -> Self {
        Self {
            members,
            routes: Mutex::new(Vec::new()),
        }
    }

    fn remember(&self, image: &ResolvedImage, member: usize) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes.push((Route::of(image), member));
    }

    fn route(&self, image: &ResolvedImage) -> Option<usize> {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let route = Route::of(image);
        routes.iter().find(|(r, _)| *r == route).map(|(_, m)| *m)
    }

    /// What the members that can list their images hold, for a
    /// name-not-found message; `None` when no member can (an engine,
    /// containers, imports).
    fn held(&self) -> Option<Vec<String>> {
        let mut held: Option<Vec<String>> = None;
        for member in &self.members {
            if let Ok(Some(images)) = member.catalogue() {
                held.get_or_insert_with(Vec::new)
                    .extend(images.iter().map(HeldImage::shown));
            }
        }
        held
    }
}

impl Source for CombinedSource {
    fn describe(&self) -> SourceInfo {
        let described: Vec<SourceInfo> = self.members.iter().map(|m| m.describe()).collect();
        let mut kinds: Vec<&str> = Vec::new();
        for info in &described {
            if !kinds.contains(&info.kind.as_str()) {
                kinds.push(&info.kind);
            }
        }
        let kind = kinds.join("+");
        let mut info = described.first().cloned().unwrap_or_default();
        info.kind = kind;
        info
    }

    fn resolve(&self, refs: &[ImageRef]) -> Result<Vec<ResolvedImage>, SourceError> {
        let mut resolved: Vec<ResolvedImage> = Vec::new();
        let mut missing = Vec::new();
        'refs: for reference in refs {
            // What a member said about the reference (the engine: `:latest`
            // was assumed, and the tags it holds), kept for the error.
            let mut explained = None;
            for (index, member) in self.members.iter().enumerate() {
                match member.resolve(std::slice::from_ref(reference)) {
                    Ok(found) => {
                        tracing::info!(
                            "{} found in {}",
                            crate::display::escape(&reference.given),
                            crate::display::escape(&member.describe().kind)
                        );
                        for image in found {
                            self.remember(&image, index);
                            resolved.push(image);
                        }
                        continue 'refs;
                    }
                    Err(SourceError::Missing { refs }) if refs.len() == 1 => {
                        explained = refs.into_iter().next();
                    }
                    Err(SourceError::Missing { .. } | SourceError::NotInArchive { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
            let given = explained.as_deref().unwrap_or(&reference.given);
            missing.push(crate::display::escape(given).into_owned());
        }
        if !missing.is_empty() {
            let Some(held) = self.held() else {
                return Err(SourceError::Missing { refs: missing });
            };
            return Err(SourceError::not_held(missing, "the archives hold", &held));
        }
        Ok(resolved)
    }

    fn resolve_all(&self) -> Result<Option<Vec<ResolvedImage>>, SourceError> {
        let mut all = Vec::new();
        for (index, member) in self.members.iter().enumerate() {
            let Some(found) = member.resolve_all()? else {
                return Ok(None);
            };
            for image in found {
                // The same image in two archives is taken from the first.
                if let Some(known) = all
                    .iter_mut()
                    .find(|known: &&mut ResolvedImage| known.id.is_some() && known.id == image.id)
                {
                    extend_refs(&mut known.refs, image.refs);
                    continue;
                }
                self.remember(&image, index);
                all.push(image);
            }
        }
        Ok(Some(all))
    }

    fn notes(&self, refs: &[ImageRef]) -> Result<Vec<String>, SourceError> {
        let mut notes = Vec::new();
        for reference in refs {
            for member in &self.members {
                if member.resolve(std::slice::from_ref(reference)).is_ok() {
                    notes.extend(member.notes(std::slice::from_ref(reference))?);
                    break;
                }
            }
        }
        Ok(notes)
    }

    fn catalogue(&self) -> Result<Option<Vec<HeldImage>>, SourceError> {
        let mut all = Vec::new();
        for member in &self.members {
            match member.catalogue()? {
                Some(images) => all.extend(images),
                None => return Ok(None),
            }
        }
        Ok(Some(all))
    }

    fn layer_sizes(&self, image: &ResolvedImage) -> Result<Option<Vec<u64>>, SourceError> {
        match self.route(image) {
            Some(member) => self.members[member].layer_sizes(image),
            None => Ok(None),
        }
    }

    fn image_size(&self, image: &ResolvedImage) -> Result<Option<u64>, SourceError> {
        match self.route(image) {
            Some(member) => self.members[member].image_size(image),
            None => Ok(None),
        }
    }

    fn export(
        &self,
        images: &[ResolvedImage],
        layers: &mut dyn LayerSink,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageRecord>, SourceError> {
        let mut records: Vec<ImageRecord> = Vec::new();
        for (index, member) in self.members.iter().enumerate() {
            let mine: Vec<ResolvedImage> = images
                .iter()
                .filter(|image| self.route(image).unwrap_or(0) == index)
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            for record in member.export(&mine, layers, progress)? {
                match records
                    .iter_mut()
                    .find(|r| r.config_digest == record.config_digest)
                {
                    Some(known) => extend_refs(&mut known.refs, record.refs),
                    None => records.push(record),
                }
            }
        }
        Ok(records)
    }
}

/// Adds the references `known` lacks.
fn extend_refs(known: &mut Vec<ImageRef>, more: Vec<ImageRef>) {
    for reference in more {
        if !known.iter().any(|r| r.name == reference.name) {
            known.push(reference);
        }
    }
}
