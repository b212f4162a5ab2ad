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
    /// The same, each with what the source says about it (`:latest` was
    /// assumed; the tags it holds instead), for the error that ends a plan.
    #[serde(skip)]
    pub missing_explained: Vec<String>,
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
    /// Its size on the source: the sum of its layers', or the source's size
    /// of the whole image where the layers' sizes are unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
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
    let mut missing_explained = Vec::new();
    for reference in &plan.images {
        let services = plan
            .services
            .iter()
            .filter(|s| s.image.given == reference.given)
            .map(|s| s.service.clone())
            .collect();
        let found = match source.resolve(std::slice::from_ref(reference)) {
            Ok(mut found) if found.len() == 1 => found.remove(0),
            outcome @ (Ok(_)
            | Err(SourceError::Missing { .. } | SourceError::NotInArchive { .. })) => {
                missing.push(reference.given.clone());
                missing_explained.push(match outcome {
                    Err(SourceError::Missing { refs } | SourceError::NotInArchive { refs })
                        if refs.len() == 1 =>
                    {
                        refs[0].clone()
                    }
                    _ => reference.given.clone(),
                });
                images.push(SurveyedImage {
                    reference: reference.given.clone(),
                    services,
                    id: None,
                    size: None,
                    layers: Vec::new(),
                });
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let sizes = source.layer_sizes(&found)?;
        let size = match &sizes {
            Some(sizes) => Some(sizes.iter().sum()),
            None => source.image_size(&found)?,
        };
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
            size,
            layers,
        });
    }
    Ok(Survey {
        missing_explained,
        ..summarise(images, missing)
    })
}

fn summarise(images: Vec<SurveyedImage>, missing: Vec<String>) -> Survey {
    let mut users: HashMap<&Digest, (Option<u64>, Vec<String>)> = HashMap::new();
    let mut order = Vec::new();
    let mut total_size = 0;
    let mut sizes_incomplete = false;
    for image in &images {
        let layers_sized = image.layers.iter().all(|l| l.size.is_some());
        if !layers_sized {
            // The whole image's size stands in for its layers' in the total.
            total_size += image.size.unwrap_or(0);
            sizes_incomplete |= image.size.is_none();
        }
        for layer in &image.layers {
            if layers_sized {
                total_size += layer.size.unwrap_or(0);
            }
            let slot = users.entry(&layer.digest).or_insert_with(|| {
                order.push(&layer.digest);
                (layer.size, Vec::new())
            });
            if !slot.1.contains(&image.reference) {
                slot.1.push(image.reference.clone());
            }
        }
    }
    let mut deduplicated_size: u64 = order.iter().map(|d| users[d].0.unwrap_or(0)).sum();
    for image in &images {
        let unsized_layers: Vec<&Digest> = image
            .layers
            .iter()
            .filter(|l| users[&l.digest].0.is_none())
            .map(|l| &l.digest)
            .collect();
        if unsized_layers.is_empty() {
            continue;
        }
        let unshared = unsized_layers.iter().all(|d| users[d].1.len() == 1);
        match image.size {
            // Its layers are its own, so the whole counts once, exactly.
            Some(size) if unshared && unsized_layers.len() == image.layers.len() => {
                deduplicated_size += size;
            }
            _ => sizes_incomplete = true,
        }
    }
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
        missing_explained: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> Digest {
        Digest::of(&[byte])
    }

    fn image(reference: &str, size: Option<u64>, layers: &[(u8, Option<u64>)]) -> SurveyedImage {
        SurveyedImage {
            reference: reference.into(),
            services: Vec::new(),
            id: Some(digest(0)),
            size,
            layers: layers
                .iter()
                .map(|&(byte, size)| SurveyedLayer {
                    digest: digest(byte),
                    size,
                })
                .collect(),
        }
    }

    #[test]
    fn an_image_whose_history_hides_its_layer_sizes_counts_by_its_whole_size() {
        // Docker 20.10 gives an image loaded without history no sizes per
        // layer, but inspect still says how big the image is.
        let survey = summarise(
            vec![
                image("nohistory:1", Some(12_000), &[(1, None), (2, None)]),
                image("sized:1", Some(300), &[(3, Some(100)), (4, Some(200))]),
            ],
            Vec::new(),
        );
        assert_eq!(survey.total_size, 12_300);
        assert_eq!(survey.deduplicated_size, 12_300);
        assert!(!survey.sizes_incomplete);
    }

    #[test]
    fn a_whole_size_is_no_exact_deduplicated_size_when_layers_are_shared() {
        let survey = summarise(
            vec![
                image("a:1", Some(5_000), &[(1, None), (2, None)]),
                image("b:1", Some(4_000), &[(1, None)]),
            ],
            Vec::new(),
        );
        assert_eq!(survey.total_size, 9_000);
        assert!(survey.sizes_incomplete);
    }
}
