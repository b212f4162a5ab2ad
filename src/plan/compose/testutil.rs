//! Test helpers: a project written to a temporary directory and loaded.

use tempfile::TempDir;

use super::{ComposeError, ComposeOptions, Project, load};

/// Writes `files` (relative path, content) into a fresh directory and loads
/// the project there, after `configure` adjusts the options (whose
/// `current_dir` starts as that directory).
pub fn load_in(
    files: &[(&str, &str)],
    configure: impl FnOnce(&mut ComposeOptions),
) -> (TempDir, Result<Project, ComposeError>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("files have a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let mut options = ComposeOptions {
        current_dir: dir.path().to_owned(),
        ..ComposeOptions::default()
    };
    configure(&mut options);
    let project = load(&options);
    (dir, project)
}

/// The images of the active services, in service order.
pub fn images(project: &Project) -> Vec<&str> {
    project.services.iter().map(|s| s.image.as_str()).collect()
}
