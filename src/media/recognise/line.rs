//! The one line for each kind: what it is and the command that handles it.
//! Every string taken from the file or its path is escaped.

use std::path::Path;

use super::scan::{ENTRY_LIMIT, RATIO_LIMIT, Stopped};
use super::{Kind, Recognised, Why};
use crate::display::{escape, escape_path};
use crate::media::compression::Compression;

pub(super) fn line(found: &Recognised) -> String {
    let named = escape_path(&found.path);
    let word = command_word(&found.path);
    let pack = format!("pack it with airgap pack --archive {word}");
    let compressed = |noun: &str| with_article(&compressed_noun(found.compression, noun));
    let use_bundle = |word: &str| {
        format!("check it with airgap verify {word} and load it with airgap unpack {word}")
    };
    match &found.kind {
        Kind::Bundle if found.compression == Compression::Zstd => {
            format!("{named} is an airgap bundle: {}", use_bundle(&word))
        }
        Kind::Bundle => format!(
            "{named} is the content of an airgap bundle as {} tar, not the bundle airgap pack wrote (zstd-compressed): use the original bundle file",
            with_article(found.compression.adjective())
        ),
        Kind::BundlePart {
            bundle,
            named: whole,
            of: 0,
            ..
        } => format!(
            "{named} is a part of the split airgap bundle {}: {}",
            escape(bundle),
            use_bundle(&command_word(whole))
        ),
        Kind::BundlePart {
            bundle,
            named: whole,
            number,
            of,
        } => format!(
            "{named} is part {number} of {of} of the split airgap bundle {}: {}",
            escape(bundle),
            use_bundle(&command_word(whole))
        ),
        Kind::PartsIndex {
            bundle,
            named: whole,
        } => format!(
            "{named} is the index of the split airgap bundle {}: {}",
            escape(bundle),
            use_bundle(&command_word(whole))
        ),
        Kind::PartsDirectory { bundle } => format!(
            "{named} holds the split airgap bundle {}: {}",
            escape(bundle),
            use_bundle(&word)
        ),
        Kind::DockerLegacy => format!(
            "{named} is {} (Docker 24 or earlier): {pack}",
            compressed("docker save archive")
        ),
        Kind::DockerOci => format!(
            "{named} is {} (Docker 25 or later): {pack}",
            compressed("docker save archive")
        ),
        Kind::ContainerdSave { layers } => format!(
            "{named} is {} of the containerd image store (Docker 25 or later, nerdctl or ctr; {} layers): {pack}",
            compressed("docker save archive"),
            layers.adjective()
        ),
        Kind::DockerArchive => format!(
            "{named} is {} (podman save or skopeo docker-archive:): {pack}",
            compressed("docker-archive")
        ),
        Kind::OciArchive => format!(
            "{named} is {} (podman save --format oci-archive or skopeo oci-archive:): {pack}",
            compressed("OCI archive")
        ),
        Kind::OciLayout => format!("{named} is an OCI image layout directory: {pack}"),
        Kind::SkopeoDir => format!("{named} is a skopeo dir: directory (one image): {pack}"),
        Kind::RootFilesystem { docker_export } => format!(
            "{named} is {}, not an image: make it one with airgap pack --import {word}=REPO:TAG --change 'CMD [\"…\"]'",
            if *docker_export {
                format!("{} (docker export output)", compressed("root filesystem"))
            } else {
                compressed("root filesystem tar")
            }
        ),
        Kind::PreV110 => format!(
            "{named} is {} from before Docker 1.10 (repositories and <id>/json, no manifest.json), which no current tool takes, airgap included: save the image again with a current docker save",
            compressed("docker save archive")
        ),
        Kind::Other(why) => other(&named, found.compression, why),
    }
}

const NEITHER: &str = "neither an airgap bundle nor an image archive";

fn other(named: &str, compression: Compression, why: &Why) -> String {
    let compressed = |noun: &str| with_article(&compressed_noun(compression, noun));
    match why {
        Why::Empty => format!("{named} is empty: {NEITHER}"),
        Why::NotATar { start } if compression == Compression::None => format!(
            "{named} is {NEITHER}: it is not zstd-, gzip-, xz- or bzip2-compressed and not a tar (it starts with {})",
            hex(start)
        ),
        Why::NotATar { .. } => format!(
            "{named} is {}, but what it holds is not a tar: {NEITHER}",
            compression.adjective()
        ),
        Why::EmptyTar => format!(
            "{named} is {} with no entries: {NEITHER}",
            compressed("tar")
        ),
        Why::OtherTar { first_entry } => format!(
            "{named} is {}, but {NEITHER}: it holds no manifest.json, index.json or oci-layout and no root filesystem (its first entry is \"{}\")",
            compressed("tar"),
            escape(&shorten(first_entry))
        ),
        Why::Damaged { entries } => format!(
            "{named} is {}, but cut short or damaged after {entries} entries: copy it again from the original",
            if compression == Compression::None {
                "a tar".to_owned()
            } else {
                compression.adjective().to_owned()
            }
        ),
        Why::Stopped(Stopped::Entries) => format!(
            "{named} is {} of more than {ENTRY_LIMIT} entries with no image or root filesystem among them: {NEITHER}",
            compressed("tar")
        ),
        Why::Stopped(Stopped::Ratio) => format!(
            "{named} is {} that decodes to more than {RATIO_LIMIT} times its size (a compression bomb?): {NEITHER}, reading stopped",
            compression.adjective()
        ),
        Why::Directory => format!(
            "{named} is a directory holding no split airgap bundle (no .parts index), no OCI image layout (no oci-layout and index.json) and no skopeo dir: (no version file): name the bundle or archive file itself"
        ),
    }
}

/// "gzip-compressed docker save archive", or the noun alone uncompressed.
fn compressed_noun(compression: Compression, noun: &str) -> String {
    match compression {
        Compression::None => noun.to_owned(),
        other => format!("{} {noun}", other.adjective()),
    }
}

fn with_article(phrase: &str) -> String {
    let vowel_sound = phrase.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U'])
        || phrase.starts_with("xz");
    format!("{} {phrase}", if vowel_sound { "an" } else { "a" })
}

/// `path` as a shell word a person can paste, escaped for the terminal.
fn command_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/+:@,%".contains(&b));
    let word = if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    };
    escape(&word).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most 100 characters of a path from the file.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
