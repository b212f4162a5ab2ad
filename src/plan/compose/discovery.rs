//! Which compose files a project is made of when none is named: the first
//! of the standard names in the directory, plus the first override file
//! there; and the `COMPOSE_FILE` list.

use std::path::{Path, PathBuf};

/// Standard compose file names, in Compose's order of preference.
pub const FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Override file names, in Compose's order of preference. The override is
/// picked independently of which main name was found.
pub const OVERRIDE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// The compose file of `dir` and its override, if `dir` holds one.
pub fn in_dir(dir: &Path) -> Option<Vec<PathBuf>> {
    let first = |names: &[&str]| {
        names
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
    };
    let main = first(&FILE_NAMES)?;
    Some(
        std::iter::once(main)
            .chain(first(&OVERRIDE_NAMES))
            .collect(),
    )
}

/// The compose files of `dir` or, failing that, of the nearest parent that
/// has some (as Compose does when run with no file from a subdirectory).
pub fn upwards(dir: &Path) -> Option<Vec<PathBuf>> {
    dir.ancestors().find_map(in_dir)
}

/// The entries of `COMPOSE_FILE`, split on `COMPOSE_PATH_SEPARATOR` (`:` by
/// default).
pub fn split_list<'a>(value: &'a str, separator: Option<&'a str>) -> Vec<&'a str> {
    let separator = separator.filter(|s| !s.is_empty()).unwrap_or(":");
    value.split(separator).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, names: &[&str]) {
        for name in names {
            std::fs::write(dir.join(name), "services: {}\n").unwrap();
        }
    }

    #[test]
    fn names_are_preferred_in_compose_order() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), &["docker-compose.yaml", "docker-compose.yml"]);
        assert_eq!(
            in_dir(dir.path()).unwrap(),
            vec![dir.path().join("docker-compose.yml")]
        );
        touch(dir.path(), &["compose.yml"]);
        assert_eq!(
            in_dir(dir.path()).unwrap(),
            vec![dir.path().join("compose.yml")]
        );
        touch(dir.path(), &["compose.yaml"]);
        assert_eq!(
            in_dir(dir.path()).unwrap(),
            vec![dir.path().join("compose.yaml")]
        );
    }

    #[test]
    fn the_first_override_name_is_added_whatever_the_main_name() {
        let dir = tempfile::tempdir().unwrap();
        touch(
            dir.path(),
            &[
                "compose.yaml",
                "docker-compose.override.yml",
                "docker-compose.override.yml.example",
            ],
        );
        assert_eq!(
            in_dir(dir.path()).unwrap(),
            vec![
                dir.path().join("compose.yaml"),
                dir.path().join("docker-compose.override.yml")
            ]
        );
        touch(dir.path(), &["compose.override.yaml"]);
        assert_eq!(
            in_dir(dir.path()).unwrap()[1],
            dir.path().join("compose.override.yaml")
        );
    }

    #[test]
    fn parents_are_searched_upwards() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(in_dir(&deep), None);
        touch(dir.path(), &["compose.yml"]);
        assert_eq!(
            upwards(&deep).unwrap(),
            vec![dir.path().join("compose.yml")]
        );
    }

    #[test]
    fn compose_file_lists_split_on_the_separator() {
        assert_eq!(split_list("a.yml:b.yml", None), vec!["a.yml", "b.yml"]);
        assert_eq!(
            split_list("a.yml;b:c.yml", Some(";")),
            vec!["a.yml", "b:c.yml"]
        );
    }
}
