//! The fixture images, made by fixtures/images/build (the one place that
//! defines them) on the engine a test packs from.

use std::process::Command;

use super::engine::TestEngine;

/// A fixture image: its tags and what a container of it prints.
pub struct Fixture {
    /// Every tag, first one first.
    pub tags: Vec<String>,
    /// What `docker run` prints.
    pub output: String,
}

/// The fixture list, from fixtures/images/images.tsv.
pub fn fixtures() -> Vec<Fixture> {
    let list = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/images/images.tsv"
    ))
    .unwrap();
    list.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            Fixture {
                tags: fields[0].split(',').map(str::to_owned).collect(),
                output: fields[2].to_owned(),
            }
        })
        .collect()
}

/// Every fixture tag except the bare base, which the others share.
pub fn app_tags() -> Vec<String> {
    fixtures()
        .into_iter()
        .skip(1)
        .flat_map(|f| f.tags)
        .collect()
}

/// Builds the fixture images on `engine` unless they are all there.
pub fn ensure(engine: &TestEngine) {
    build(engine, "--if-missing");
}

/// Builds the fixture images on `engine` anew (new image IDs).
pub fn rebuild(engine: &TestEngine) {
    build(engine, "--no-check");
}

fn build(engine: &TestEngine, option: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/images/build");
    let output = Command::new(script)
        .arg(option)
        .arg(&engine.host)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building fixtures on {}: {}",
        engine.name,
        String::from_utf8_lossy(&output.stderr)
    );
}
