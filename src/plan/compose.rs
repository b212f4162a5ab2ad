//! Compose files: the `image:` of every service.

use std::path::Path;

use serde_yaml::Value;

use super::PlanError;

/// `(origin, image reference)` for every service with an `image:`.
pub fn images(path: &Path) -> Result<Vec<(String, String)>, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
        path: path.to_owned(),
        source,
    })?;
    let compose_error = |reason: String| PlanError::Compose {
        path: path.to_owned(),
        reason,
    };
    let document: Value = serde_yaml::from_str(&text).map_err(|e| compose_error(e.to_string()))?;
    let services = match document.get("services") {
        Some(Value::Mapping(services)) => services,
        Some(_) => return Err(compose_error("`services` is not a mapping".into())),
        None => {
            return Err(compose_error(
                "it has no `services` (is it a compose file?)".into(),
            ));
        }
    };
    let mut images = Vec::new();
    for (name, service) in services {
        let name = name.as_str().unwrap_or("?");
        match service.get("image") {
            Some(Value::String(image)) => {
                images.push((format!("{} service {name}", path.display()), image.clone()));
            }
            Some(_) => {
                return Err(compose_error(format!(
                    "service {name}: `image` is not a string"
                )));
            }
            None if service.get("build").is_some() => {}
            None => {
                return Err(compose_error(format!(
                    "service {name} has neither `image` nor `build`"
                )));
            }
        }
    }
    Ok(images)
}
