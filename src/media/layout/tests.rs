//! Writing layouts and reading them back, no engine needed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::bundle::layout::image_manifest;
use crate::digest::Digest;
use crate::image::{BlobRef, ImageRecord, ImageRef, Platform};
use crate::media::source::{LayerSink, Source, SourceError};
use crate::progress::NoProgress;
use crate::store::StagedLayer;

use super::*;

fn reference(given: &str) -> ImageRef {
    ImageRef::parse(given).unwrap()
}

fn blob(bytes: &[u8]) -> BlobRef {
    BlobRef {
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
    }
}

/// An image of `layers` (any bytes: nothing here unpacks them).
fn image(marker: &str, layers: &[&[u8]]) -> ImageRecord {
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["echo", marker] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .unwrap();
    ImageRecord {
        refs: Vec::new(),
        config_digest: Digest::of(&config),
        config,
        platform: Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        },
        layers: layers.iter().map(|l| blob(l)).collect(),
    }
}

/// Writes `image` with its `layers` under `refs`, as an unpack would.
fn write(writer: &mut LayoutWriter, image: &ImageRecord, layers: &[&[u8]], refs: &[&str]) {
    for (layer, bytes) in image.layers.iter().zip(layers) {
        if !writer.has_blob(layer) {
            writer.put_blob(layer, &mut &bytes[..]).unwrap();
        }
    }
    writer.put_bytes(&image.config).unwrap();
    let manifest = writer.put_bytes(&image_manifest(image)).unwrap();
    let refs: Vec<ImageRef> = refs.iter().map(|r| reference(r)).collect();
    writer.add_image(&refs, &manifest, Some(&image.platform));
}

fn index(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

/// (containerd name, ref name, manifest digest) of every index entry.
fn entries(dir: &Path) -> Vec<(String, String, String)> {
    let field = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    index(dir)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                field(&m["annotations"][CONTAINERD_NAME]),
                field(&m["annotations"][REF_NAME]),
                field(&m["digest"]),
            )
        })
        .collect()
}

fn blob_files(dir: &Path) -> HashMap<String, u64> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().ino(),
            )
        })
        .collect()
}

const BASE: &[u8] = b"base layer";

#[test]
fn images_sharing_a_layer_merge_into_a_layout_without_rewriting_blobs() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("out");
    let web = image("web", &[BASE, b"web"]);
    let api = image("api", &[BASE, b"api"]);
    let mut writer = LayoutWriter::open(&dir).unwrap();
    write(&mut writer, &web, &[BASE, b"web"], &["fixture/web:1"]);
    write(
        &mut writer,
        &api,
        &[BASE, b"api"],
        &["fixture/api:1", "fixture/api:latest"],
    );
    writer.finish().unwrap();

    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout, serde_json::json!({"imageLayoutVersion": "1.0.0"}));
    let web_manifest = Digest::of(&image_manifest(&web)).to_string();
    let api_manifest = Digest::of(&image_manifest(&api)).to_string();
    assert_eq!(
        entries(&dir),
        [
            (
                "docker.io/fixture/web:1".into(),
                "docker.io/fixture/web:1".into(),
                web_manifest
            ),
            (
                "docker.io/fixture/api:1".into(),
                "docker.io/fixture/api:1".into(),
                api_manifest.clone()
            ),
            (
                "docker.io/fixture/api:latest".into(),
                "docker.io/fixture/api:latest".into(),
                api_manifest.clone()
            ),
        ]
    );
    // Base, two layers, two configs, two manifests.
    let before = blob_files(&dir);
    assert_eq!(before.len(), 7, "{before:?}");

    let app = image("app", &[BASE, b"app"]);
    let web2 = image("web 2", &[BASE, b"web 2"]);
    let mut writer = LayoutWriter::open(&dir).unwrap();
    assert!(writer.has_blob(&blob(BASE)));
    // A blob already there is not written again, even when offered.
    assert!(!writer.put_blob(&blob(BASE), &mut &BASE[..]).unwrap());
    write(
        &mut writer,
        &app,
        &[BASE, b"app"],
        &["registry.local:5000/app:2"],
    );
    write(&mut writer, &web2, &[BASE, b"web 2"], &["fixture/web:1"]);
    writer.finish().unwrap();

    let web2_manifest = Digest::of(&image_manifest(&web2)).to_string();
    let app_manifest = Digest::of(&image_manifest(&app)).to_string();
    let names: Vec<(String, String)> = entries(&dir)
        .into_iter()
        .map(|(name, ref_name, digest)| {
            assert_eq!(name, ref_name);
            (name, digest)
        })
        .collect();
    assert_eq!(
        names,
        [
            ("docker.io/fixture/api:1".into(), api_manifest.clone()),
            ("docker.io/fixture/api:latest".into(), api_manifest),
            ("registry.local:5000/app:2".into(), app_manifest),
            ("docker.io/fixture/web:1".into(), web2_manifest),
        ]
    );
    // The same index gives the same bytes.
    let written = std::fs::read(dir.join("index.json")).unwrap();
    LayoutWriter::open(&dir).unwrap().finish().unwrap();
    assert_eq!(std::fs::read(dir.join("index.json")).unwrap(), written);
    let after = blob_files(&dir);
    for (name, inode) in &before {
        assert_eq!(after.get(name), Some(inode), "blob {name} was rewritten");
    }
    // The old web image's blobs stay (other tools may still refer to them).
    assert_eq!(after.len(), 7 + 6);
}

#[test]
fn an_image_known_by_digest_only_gets_one_entry_without_names() {
    let temp = tempfile::tempdir().unwrap();
    let pinned = image("pinned", &[BASE]);
    let manifest = blob(&image_manifest(&pinned));
    let by_digest = reference(&format!("fixture/pinned@{}", manifest.digest));
    for _ in 0..2 {
        let mut writer = LayoutWriter::open(temp.path()).unwrap();
        write(&mut writer, &pinned, &[BASE], &[]);
        writer.add_image(std::slice::from_ref(&by_digest), &manifest, None);
        writer.finish().unwrap();
    }
    let index = index(temp.path());
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert!(manifests[0].get("annotations").is_none());
    assert_eq!(manifests[0]["digest"], manifest.digest.as_str());
}

#[test]
fn content_that_does_not_match_its_digest_is_refused_and_leaves_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let mut writer = LayoutWriter::open(temp.path()).unwrap();
    let named = blob(b"the real layer");
    for content in [
        &b"a forged layer"[..],
        b"the real layer and more",
        b"the real",
    ] {
        let error = writer.put_blob(&named, &mut &content[..]).unwrap_err();
        assert!(matches!(error, LayoutError::Mismatch { .. }), "{error}");
        assert!(error.to_string().contains("it was not kept"), "{error}");
    }
    assert!(blob_files(temp.path()).is_empty());
    assert!(!writer.has_blob(&named));
    assert!(
        writer
            .put_blob(&named, &mut &b"the real layer"[..])
            .unwrap()
    );
    assert!(writer.has_blob(&named));
}

#[test]
fn a_directory_that_is_neither_empty_nor_a_layout_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("notes.txt"), b"mine").unwrap();
    let error = LayoutWriter::open(temp.path()).unwrap_err();
    assert!(matches!(error, LayoutError::NotLayout { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("neither empty nor an OCI image layout")
    );
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 1);

    let empty = temp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    LayoutWriter::open(&empty).unwrap().finish().unwrap();
    assert!(empty.join("oci-layout").is_file() && empty.join("blobs/sha256").is_dir());
}

#[test]
fn a_link_planted_for_the_blobs_directory_is_not_followed() {
    let temp = tempfile::tempdir().unwrap();
    let elsewhere = temp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let dir = temp.path().join("out");
    LayoutWriter::open(&dir).unwrap().finish().unwrap();
    std::fs::remove_dir_all(dir.join("blobs")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("blobs")).unwrap();
    let error = LayoutWriter::open(&dir).unwrap_err();
    assert!(error.to_string().contains("cannot write"), "{error}");
    assert!(
        format!("{:?}", error).contains("symbolic link"),
        "{error:?}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn a_link_planted_at_a_blob_name_is_replaced_when_writing_and_refused_when_reading() {
    let temp = tempfile::tempdir().unwrap();
    let victim = temp.path().join("victim");
    std::fs::write(&victim, BASE).unwrap();
    let dir = temp.path().join("out");
    let web = image("web", &[BASE]);
    let mut writer = LayoutWriter::open(&dir).unwrap();
    let planted = dir.join(Digest::of(BASE).blob_path());
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    assert!(!writer.has_blob(&blob(BASE)), "a link is not a blob");
    write(&mut writer, &web, &[BASE], &["fixture/web:1"]);
    writer.finish().unwrap();
    assert!(std::fs::symlink_metadata(&planted).unwrap().is_file());
    export(&dir, &["fixture/web:1"], &mut Collector::new(true)).unwrap();

    std::fs::remove_file(&planted).unwrap();
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let error = export(&dir, &["fixture/web:1"], &mut Collector::new(true)).unwrap_err();
    assert!(error.to_string().contains("symbolic link"), "{error}");
}

/// Keeps what the source hands over, streamed or staged.
struct Collector {
    staging: tempfile::TempDir,
    streams: bool,
    streamed: Vec<Digest>,
    layers: HashMap<Digest, Vec<u8>>,
    left_out: Vec<Digest>,
}

impl Collector {
    fn new(streams: bool) -> Self {
        Self {
            staging: tempfile::tempdir().unwrap(),
            streams,
            streamed: Vec::new(),
            layers: HashMap::new(),
            left_out: Vec::new(),
        }
    }
}

impl LayerSink for Collector {
    fn staging_dir(&self) -> &Path {
        self.staging.path()
    }
    fn has_layer(&self, digest: &Digest) -> bool {
        self.layers.contains_key(digest)
    }
    fn put_layer(&mut self, layer: StagedLayer) -> Result<(), SourceError> {
        let bytes = std::fs::read(&layer.path).unwrap();
        std::fs::remove_file(&layer.path).unwrap();
        assert_eq!(Digest::of(&bytes), layer.digest);
        assert!(
            self.layers.insert(layer.digest, bytes).is_none(),
            "handed over twice"
        );
        Ok(())
    }
    fn takes_stream(&self, digest: &Digest) -> bool {
        self.streams && !self.layers.contains_key(digest)
    }
    fn is_left_out(&self, digest: &Digest) -> bool {
        self.left_out.contains(digest)
    }
    fn stream_layer(
        &mut self,
        digest: &Digest,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<(), SourceError> {
        let mut bytes = Vec::new();
        content.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, size);
        self.streamed.push(digest.clone());
        self.layers.insert(digest.clone(), bytes);
        Ok(())
    }
}

fn export(
    dir: &Path,
    refs: &[&str],
    sink: &mut Collector,
) -> Result<Vec<ImageRecord>, SourceError> {
    let refs: Vec<ImageRef> = refs.iter().map(|r| reference(r)).collect();
    let source = LayoutSource::new(dir);
    let resolved = source.resolve(&refs)?;
    source.export(&resolved, sink, &NoProgress)
}

#[test]
fn images_written_read_back_the_same_streamed_or_staged() {
    let temp = tempfile::tempdir().unwrap();
    let web = image("web", &[BASE, b"web"]);
    let api = image("api", &[BASE, b"api"]);
    let mut writer = LayoutWriter::open(temp.path()).unwrap();
    write(&mut writer, &web, &[BASE, b"web"], &["fixture/web:1"]);
    write(
        &mut writer,
        &api,
        &[BASE, b"api"],
        &["fixture/api:1", "fixture/api:2"],
    );
    writer.finish().unwrap();

    for streams in [true, false] {
        let mut sink = Collector::new(streams);
        let wanted = ["fixture/api:2", "fixture/web:1", "fixture/api:1"];
        let records = export(temp.path(), &wanted, &mut sink).unwrap();
        assert_eq!(records.len(), 2);
        let (api_read, web_read) = (&records[0], &records[1]);
        for (read, written) in [(api_read, &api), (web_read, &web)] {
            assert_eq!(read.config, written.config);
            assert_eq!(read.config_digest, written.config_digest);
            assert_eq!(read.layers, written.layers);
            assert_eq!(read.platform, written.platform);
        }
        let names = |r: &ImageRecord| r.refs.iter().map(|r| r.given.clone()).collect::<Vec<_>>();
        assert_eq!(names(api_read), ["fixture/api:2", "fixture/api:1"]);
        assert_eq!(names(web_read), ["fixture/web:1"]);
        assert_eq!(sink.layers.len(), 3, "the shared base is handed over once");
        assert_eq!(sink.layers[&Digest::of(BASE)], BASE);
        assert_eq!(sink.streamed.len(), if streams { 3 } else { 0 });
        assert_eq!(std::fs::read_dir(sink.staging.path()).unwrap().count(), 0);
    }
    let resolved = LayoutSource::new(temp.path())
        .resolve(&[reference("fixture/web:1"), reference("fixture/api:1")])
        .unwrap();
    let lists: Vec<&Vec<Digest>> = resolved
        .iter()
        .map(|i| i.layers.as_ref().unwrap())
        .collect();
    assert_eq!(*lists[0], [Digest::of(BASE), Digest::of(b"web")]);
    assert_eq!(*lists[1], [Digest::of(BASE), Digest::of(b"api")]);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A layout as skopeo writes one: compressed layers, the reference as typed.
fn compressed_layout(dir: &Path, layers: &[(&[u8], &str)], config: &[u8], ref_name: &str) {
    let mut writer = LayoutWriter::open(dir).unwrap();
    let descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|(plain, media_type)| {
            let stored = match *media_type {
                "application/vnd.oci.image.layer.v1.tar+gzip" => gzip(plain),
                "application/vnd.oci.image.layer.v1.tar+zstd" => {
                    zstd::encode_all(*plain, 3).unwrap()
                }
                _ => plain.to_vec(),
            };
            let stored = writer.put_bytes(&stored).unwrap();
            serde_json::json!({"mediaType": media_type, "digest": stored.digest, "size": stored.size})
        })
        .collect();
    let config = writer.put_bytes(config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
        "layers": descriptors,
    }))
    .unwrap();
    let manifest = writer.put_bytes(&manifest).unwrap();
    writer.finish().unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest.digest,
            "size": manifest.size,
            "annotations": {REF_NAME: ref_name},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn gzip_and_zstd_layers_are_handed_over_uncompressed_and_found_by_the_name_typed() {
    let temp = tempfile::tempdir().unwrap();
    let layers: [&[u8]; 3] = [BASE, b"gzip layer", b"zstd layer"];
    let config = image("mixed", &layers).config;
    compressed_layout(
        temp.path(),
        &[
            (BASE, "application/vnd.oci.image.layer.v1.tar"),
            (layers[1], "application/vnd.oci.image.layer.v1.tar+gzip"),
            (layers[2], "application/vnd.oci.image.layer.v1.tar+zstd"),
        ],
        &config,
        "fixture/web:1",
    );
    for wanted in ["fixture/web:1", "docker.io/fixture/web:1"] {
        let mut sink = Collector::new(true);
        let records = export(temp.path(), &[wanted], &mut sink).unwrap();
        assert_eq!(records[0].config, config);
        for plain in layers {
            assert_eq!(sink.layers[&Digest::of(plain)], plain);
        }
        assert_eq!(
            sink.streamed,
            [Digest::of(BASE)],
            "only the plain layer streams"
        );
    }
}

#[test]
fn a_tag_alone_names_an_image_as_skopeo_writes_it() {
    let temp = tempfile::tempdir().unwrap();
    let config = image("tagged", &[BASE]).config;
    compressed_layout(
        temp.path(),
        &[(BASE, "application/vnd.oci.image.layer.v1.tar")],
        &config,
        "1",
    );
    let records = export(temp.path(), &["fixture/web:1"], &mut Collector::new(false)).unwrap();
    assert_eq!(records[0].config, config);

    // As containerd writes it, the full name decides.
    let mut index = index(temp.path());
    index["manifests"][0]["annotations"][CONTAINERD_NAME] = "docker.io/fixture/api:1".into();
    std::fs::write(temp.path().join("index.json"), index.to_string()).unwrap();
    let error = export(temp.path(), &["fixture/web:1"], &mut Collector::new(false)).unwrap_err();
    assert!(matches!(error, SourceError::Missing { .. }), "{error}");
    export(temp.path(), &["fixture/api:1"], &mut Collector::new(false)).unwrap();
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_an_error() {
    let temp = tempfile::tempdir().unwrap();
    let honest = image("honest", &[BASE, b"app"]);
    for media_type in [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ] {
        let dir = temp.path().join(media_type.rsplit('.').next().unwrap());
        compressed_layout(
            &dir,
            &[(BASE, media_type), (b"tampered", media_type)],
            &honest.config,
            "docker.io/fixture/app:1",
        );
        for streams in [true, false] {
            let error = export(&dir, &["fixture/app:1"], &mut Collector::new(streams)).unwrap_err();
            assert!(
                matches!(&error, SourceError::LayerMismatch { index: 1, actual, .. } if *actual == Digest::of(b"tampered")),
                "{error}"
            );
        }
    }
}

#[test]
fn every_missing_reference_is_named_in_one_error_with_what_the_layout_holds() {
    let temp = tempfile::tempdir().unwrap();
    let web = image("web", &[BASE]);
    let mut writer = LayoutWriter::open(temp.path()).unwrap();
    write(&mut writer, &web, &[BASE], &["fixture/web:1"]);
    writer.finish().unwrap();
    let source = LayoutSource::new(temp.path());
    let wanted = [
        reference("fixture/web:1"),
        reference("fixture/nope:1"),
        reference("other:2"),
    ];
    let error = source.resolve(&wanted).unwrap_err();
    let SourceError::Missing { refs } = &error else {
        panic!("{error}")
    };
    assert_eq!(refs.len(), 2);
    let message = error.to_string();
    assert!(
        message.starts_with("images not found: fixture/nope:1, other:2"),
        "{message}"
    );
    assert!(
        message.contains("holds docker.io/fixture/web:1"),
        "{message}"
    );
    source.resolve(&wanted[..1]).unwrap();
}

#[test]
fn a_directory_without_oci_layout_is_refused_as_a_source() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("index.json"), b"{}").unwrap();
    let error = LayoutSource::new(temp.path())
        .resolve(&[reference("fixture/web:1")])
        .unwrap_err();
    assert!(error.to_string().contains("no oci-layout file"), "{error}");
}

#[test]
fn a_blob_altered_in_place_is_caught_streamed_or_staged() {
    let temp = tempfile::tempdir().unwrap();
    let web = image("web", &[BASE, b"web"]);
    let mut writer = LayoutWriter::open(temp.path()).unwrap();
    write(&mut writer, &web, &[BASE, b"web"], &["fixture/web:1"]);
    writer.finish().unwrap();
    let path = temp.path().join(Digest::of(BASE).blob_path());
    std::fs::write(&path, b"BASE LAYER").unwrap();

    let error = export(temp.path(), &["fixture/web:1"], &mut Collector::new(true)).unwrap_err();
    assert!(
        matches!(&error, SourceError::LayerMismatch { index: 0, actual, .. } if *actual == Digest::of(b"BASE LAYER")),
        "{error}"
    );
    let error = export(temp.path(), &["fixture/web:1"], &mut Collector::new(false)).unwrap_err();
    assert!(
        error.to_string().contains("does not hash to its name"),
        "{error}"
    );
}

/// A plain layer named by its digest is not read where the sink holds it
/// or the bundle leaves it out: its blob is gone, and the export works.
#[test]
fn a_plain_layer_the_sink_holds_or_the_bundle_leaves_out_is_not_read() {
    for left_out in [false, true] {
        let temp = tempfile::tempdir().unwrap();
        let web = image("web", &[BASE, b"web"]);
        let mut writer = LayoutWriter::open(temp.path()).unwrap();
        write(&mut writer, &web, &[BASE, b"web"], &["fixture/web:1"]);
        writer.finish().unwrap();
        std::fs::remove_file(temp.path().join(Digest::of(BASE).blob_path())).unwrap();
        let mut sink = Collector::new(true);
        match left_out {
            true => sink.left_out.push(Digest::of(BASE)),
            false => drop(sink.layers.insert(Digest::of(BASE), BASE.to_vec())),
        }
        let records = export(temp.path(), &["fixture/web:1"], &mut sink).unwrap();
        assert_eq!(records[0].layers, web.layers, "its size is the blob's");
        assert_eq!(sink.streamed, [Digest::of(b"web")]);
    }
}

/// containerd's content store: blobs as a layout keeps them, no index.
#[test]
fn a_blob_store_finds_an_image_by_its_manifest_digest_and_tells_when_a_layer_is_absent() {
    let temp = tempfile::tempdir().unwrap();
    let web = image("web", &[BASE, b"web"]);
    let mut writer = LayoutWriter::open(temp.path()).unwrap();
    write(&mut writer, &web, &[BASE, b"web"], &["fixture/web:1"]);
    writer.finish().unwrap();
    std::fs::remove_file(temp.path().join("index.json")).unwrap();
    let manifest = Digest::of(&image_manifest(&web));

    let store = LayoutReader::of_blob_store(temp.path()).unwrap();
    let found = store.images_behind(&manifest).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].config_digest, web.config_digest);
    let diff_ids: Vec<&Digest> = found[0].layers.iter().map(|l| &l.diff_id).collect();
    assert_eq!(diff_ids, [&Digest::of(BASE), &Digest::of(b"web")]);
    assert!(store.holds_layers_of(&found[0]).unwrap());
    assert!(
        store
            .images_behind(&Digest::of(b"absent"))
            .unwrap()
            .is_empty()
    );

    std::fs::remove_file(temp.path().join(Digest::of(b"web").blob_path())).unwrap();
    assert!(!store.holds_layers_of(&found[0]).unwrap());
}
