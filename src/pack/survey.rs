//! What a pack would take, without packing: per image its layers and sizes
//! on the source, which layers several images share, the total before and
//! after deduplication, and which images the source lacks.

use std::collections::HashMap;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::Error;
use crate::media::source::{Source, SourceError};
use crate::plan::Plan;

/// The survey of a plan against a source.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Survey {
    /// One entry per planned image, in plan order.
    pub images: Vec<SurveyedImage>,
    /// Layers used by more than one planned image.
    pub shared_layers: Vec<SharedLayer>,
    /// Sum of every image's layers, as separate saves would ship them.
    pub total_size: u64,
    /// Sum of distinct layers, as a bundle carries them.
    pub deduplicated_size: u64,
    /// True when some layer sizes were unknown, so both totals are lower bounds.
    pub sizes_incomplete: bool,
    /// References the source does not have.
    pub missing: Vec<String>,
}

/// One planned image.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyedImage {
    /// The reference as given.
    pub reference: String,
    /// Compose services that use it.
    pub services: Vec<String>,
    /// The engine's image ID, if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Digest>,
    /// Layers bottom first, with their size on the engine where known.
    pub layers: Vec<SurveyedLayer>,
}

/// One layer of a surveyed image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyedLayer {
    /// Its diff ID.
    pub digest: Digest,
    /// Its size on the engine, where the history tells it.
    pub size: Option<u64>,
}

/// A layer several images share.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedLayer {
    /// Its diff ID.
    pub digest: Digest,
    /// Its size, where known.
    pub size: Option<u64>,
    /// The references of the images that share it.
    pub used_by: Vec<String>,
}

/// Surveys `plan` against `source`: each reference is resolved on its own,
/// so every missing one is listed beside those found.
pub fn survey(source: &dyn Source, plan: &Plan) -> Result<Survey, Error> {
    let mut images = Vec::new();
    let mut missing = Vec::new();
    for reference in &plan.images {
        let services = plan
            .services
            .iter()
            .filter(|s| s.image.given == reference.given)
            .map(|s| s.service.clone())
            .collect();
        let found = match source.resolve(std::slice::from_ref(reference)) {
            Ok(mut found) if found.len() == 1 => found.remove(0),
            Ok(_) | Err(SourceError::Missing { .. } | SourceError::NotInArchive { .. }) => {
                missing.push(reference.given.clone());
                images.push(SurveyedImage {
                    reference: reference.given.clone(),
                    services,
                    id: None,
                    layers: Vec::new(),
                });
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let sizes = source.layer_sizes(&found)?;
        let layers = found
            .layers
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, digest)| SurveyedLayer {
                digest: digest.clone(),
                size: sizes.as_ref().map(|s| s[i]),
            })
            .collect();
        images.push(SurveyedImage {
            reference: reference.given.clone(),
            services,
            id: found.id,
            layers,
        });
    }
    Ok(summarise(images, missing))
}

fn summarise(images: Vec<SurveyedImage>, missing: Vec<String>) -> Survey {
    let mut users: HashMap<&Digest, (Option<u64>, Vec<String>)> = HashMap::new();
    let mut order = Vec::new();
    let mut total_size = 0;
    let mut sizes_incomplete = false;
    for image in &images {
        for layer in &image.layers {
            total_size += layer.size.unwrap_or(0);
            sizes_incomplete |= layer.size.is_none();
            let slot = users.entry(&layer.digest).or_insert_with(|| {
                order.push(&layer.digest);
                (layer.size, Vec::new())
            });
            if !slot.1.contains(&image.reference) {
                slot.1.push(image.reference.clone());
            }
        }
    }
    let deduplicated_size = order.iter().map(|d| users[d].0.unwrap_or(0)).sum();
    let shared_layers = order
        .iter()
        .filter(|d| users[*d].1.len() > 1)
        .map(|d| SharedLayer {
            digest: (*d).clone(),
            size: users[d].0,
            used_by: users[d].1.clone(),
        })
        .collect();
    Survey {
        images,
        shared_layers,
        total_size,
        deduplicated_size,
        sizes_incomplete,
        missing,
    }
}
