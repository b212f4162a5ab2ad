//! Path arithmetic without touching the disk: Compose resolves relative
//! paths lexically (`filepath.Abs`), so `..` is taken literally and symbolic
//! links are not followed.

use std::path::{Component, Path, PathBuf};

/// `path` made absolute against `base` and cleaned of `.` and `..`.
pub fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `base` (both absolute and clean), with `..` where
/// needed; `path` itself when they share no root.
pub fn relative(base: &Path, path: &Path) -> PathBuf {
    let base: Vec<_> = base.components().collect();
    let target: Vec<_> = path.components().collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return path.to_owned();
    }
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for component in &target[common..] {
        out.push(component);
    }
    out
}

/// The directory holding `file` (an absolute file path).
pub fn parent(file: &Path) -> PathBuf {
    file.parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_are_cleaned_lexically() {
        let base = Path::new("/work/project");
        assert_eq!(
            absolute(base, Path::new("a/../b/./c.yml")),
            Path::new("/work/project/b/c.yml")
        );
        assert_eq!(absolute(base, Path::new("../x")), Path::new("/work/x"));
        assert_eq!(absolute(base, Path::new("/etc/./y")), Path::new("/etc/y"));
    }

    #[test]
    fn relative_paths_climb_where_needed() {
        let base = Path::new("/work/project");
        assert_eq!(
            relative(base, Path::new("/work/project/compose.yaml")),
            Path::new("compose.yaml")
        );
        assert_eq!(
            relative(base, Path::new("/work/common/c.yaml")),
            Path::new("../common/c.yaml")
        );
        assert_eq!(relative(base, base), Path::new(""));
    }
}
