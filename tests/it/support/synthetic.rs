//! `docker save` archives built in the test, for tests that need no engine:
//! the legacy layout Docker ≤ 24 writes and the OCI layout Docker 25+ writes.

use std::io::Write;

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A layer tar holding one file.
pub fn layer(file: &str, content: impl AsRef<[u8]>) -> Vec<u8> {
    let content = content.as_ref();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, file, content).unwrap();
    builder.into_inner().unwrap()
}

/// `len` bytes zstd cannot shrink (xorshift), for layers that must stay large.
pub fn noise(len: usize) -> Vec<u8> {
    let mut noise = vec![0u8; len];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in noise.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    noise
}

/// An image config with these diff IDs.
pub fn config(diff_ids: &[String], marker: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["cat", marker] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .unwrap()
}

/// One image of a synthetic archive.
#[derive(Clone)]
pub struct Image {
    /// Tag in the archive's manifest.json.
    pub tag: String,
    /// Layer tars, bottom first.
    pub layers: Vec<Vec<u8>>,
    /// The config bytes.
    pub config: Vec<u8>,
}

impl Image {
    /// An image with `layers`, whose config lists their digests.
    pub fn new(tag: &str, layers: Vec<Vec<u8>>) -> Self {
        let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
        let config = config(&diff_ids, tag);
        Self {
            tag: tag.to_owned(),
            layers,
            config,
        }
    }
}

impl Image {
    /// The image with one history entry per layer, from which an engine
    /// tells each layer's size (`docker history`).
    pub fn with_history(mut self) -> Self {
        let mut config: serde_json::Value = serde_json::from_slice(&self.config).unwrap();
        let history: Vec<serde_json::Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, _)| {
                serde_json::json!({
                    "created": "2026-01-01T00:00:00Z",
                    "created_by": format!("layer {i}"),
                })
            })
            .collect();
        config["history"] = serde_json::Value::Array(history);
        self.config = serde_json::to_vec(&config).unwrap();
        self
    }
}

fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, path, bytes).unwrap();
}

fn append_symlink(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder.append_link(&mut header, path, target).unwrap();
}

/// A legacy-layout archive (`<id>/layer.tar`; a layer already written by an
/// earlier image becomes a symlink, as Docker 20.10 writes it).
pub fn legacy_archive(images: &[Image]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut written: Vec<(String, String)> = Vec::new();
    let mut manifest = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let mut paths = Vec::new();
        for (j, layer) in image.layers.iter().enumerate() {
            let layer_digest = digest(layer);
            let dir = format!("{:064x}", i * 100 + j);
            let path = format!("{dir}/layer.tar");
            match written.iter().find(|(d, _)| *d == layer_digest) {
                Some((_, first)) => append_symlink(&mut builder, &path, &format!("../{first}")),
                None => {
                    append(&mut builder, &format!("{dir}/VERSION"), b"1.0");
                    append(&mut builder, &path, layer);
                    written.push((layer_digest, path.clone()));
                }
            }
            paths.push(path);
        }
        let config_digest = digest(&image.config);
        let config_path = format!("{}.json", config_digest.trim_start_matches("sha256:"));
        append(&mut builder, &config_path, &image.config);
        manifest.push(
            serde_json::json!({ "Config": config_path, "RepoTags": [image.tag], "Layers": paths }),
        );
    }
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    builder.into_inner().unwrap()
}

/// An OCI-layout archive with gzip-compressed layers, as Docker 25+ writes
/// it from a containerd image store; `omit` leaves those layer blobs out.
pub fn oci_archive(images: &[Image], omit: &[usize]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut written = Vec::new();
    let mut manifest = Vec::new();
    for image in images {
        let mut paths = Vec::new();
        for (j, layer) in image.layers.iter().enumerate() {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(layer).unwrap();
            let gz = gz.finish().unwrap();
            let path = format!("blobs/sha256/{}", digest(&gz).trim_start_matches("sha256:"));
            if !written.contains(&path) && !omit.contains(&j) {
                append(&mut builder, &path, &gz);
                written.push(path.clone());
            }
            paths.push(path);
        }
        let config_path = format!(
            "blobs/sha256/{}",
            digest(&image.config).trim_start_matches("sha256:")
        );
        append(&mut builder, &config_path, &image.config);
        manifest.push(
            serde_json::json!({ "Config": config_path, "RepoTags": [image.tag], "Layers": paths }),
        );
    }
    append(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    builder.into_inner().unwrap()
}

/// Loads a synthetic `docker save` archive of `images` into `engine`.
pub fn load(engine: &crate::support::engine::TestEngine, images: &[Image]) {
    let archive = legacy_archive(images);
    let mut child = std::process::Command::new("docker")
        .args(["-H", &engine.host, "load", "-q"])
        .env_remove("DOCKER_HOST")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&archive).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "docker load on {}",
        engine.name
    );
}
