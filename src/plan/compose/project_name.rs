//! The project name, which names the images of services that are only
//! built (`<project>-<service>`). Precedence, as in Compose: the explicit
//! name, then `COMPOSE_PROJECT_NAME`, then the last `name:` of the compose
//! files, then the project directory's name.

use std::path::Path;

use super::error::ComposeError;

/// Compose's normal form: lowercase, only `a-z 0-9 _ -`, no leading `_`/`-`.
pub fn normalize(name: &str) -> String {
    let lower = name.to_lowercase();
    let kept: String = lower
        .chars()
        .filter(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
        .collect();
    kept.trim_start_matches(['_', '-']).to_owned()
}

/// An explicitly given name must already be in normal form.
pub fn explicit(name: &str, origin: &'static str) -> Result<String, ComposeError> {
    if normalize(name) == name && !name.is_empty() {
        Ok(name.to_owned())
    } else {
        Err(ComposeError::ProjectName {
            name: name.to_owned(),
            origin,
        })
    }
}

/// The name derived from the files' `name:` (already interpolated) or, when
/// none is set, from the project directory.
pub fn derived(from_files: Option<&str>, dir: &Path) -> Result<String, ComposeError> {
    let name = match from_files {
        Some(name) => normalize(name),
        None => normalize(
            &dir.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
        ),
    };
    if name.is_empty() {
        return Err(ComposeError::EmptyProjectName {
            dir: dir.to_owned(),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_as_compose_does() {
        assert_eq!(normalize("My Proj!"), "myproj");
        assert_eq!(normalize("__-x.y_z-1"), "xy_z-1");
        assert_eq!(normalize("ac-aspnet-mssql"), "ac-aspnet-mssql");
    }

    #[test]
    fn explicit_names_must_already_be_normal() {
        assert_eq!(explicit("web-1", "test").unwrap(), "web-1");
        assert!(matches!(
            explicit("Web", "test"),
            Err(ComposeError::ProjectName { .. })
        ));
        assert!(explicit("", "test").is_err());
        assert!(explicit("-x", "test").is_err());
    }

    #[test]
    fn the_directory_name_is_the_fallback() {
        assert_eq!(derived(None, Path::new("/work/My_App")).unwrap(), "my_app");
        assert_eq!(
            derived(Some("Named"), Path::new("/work/dir")).unwrap(),
            "named"
        );
        assert!(derived(Some("!!!"), Path::new("/work/dir")).is_err());
    }
}
