use std::io::Write;
use std::path::Path;

use super::*;
use crate::bundle::parts::{PARTS_MEDIA_TYPE, PartWriter};
use crate::digest::Digest;

const ID: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// A tar of `entries`: a path ending in `/` is a directory, `->` a symlink.
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        if let Some((link, target)) = path.split_once(" -> ") {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, link, target).unwrap();
        } else if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder.append_data(&mut header, path, &[][..]).unwrap();
        } else {
            header.set_size(content.len() as u64);
            builder.append_data(&mut header, path, *content).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn compress(bytes: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => bytes.to_vec(),
        Compression::Gzip => {
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gzip.write_all(bytes).unwrap();
            gzip.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(bytes, 1).unwrap(),
        Compression::Xz => {
            let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
            xz.write_all(bytes).unwrap();
            xz.finish().unwrap()
        }
        Compression::Bzip2 => {
            let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            bz.write_all(bytes).unwrap();
            bz.finish().unwrap()
        }
    }
}

const ALL: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Zstd,
    Compression::Xz,
    Compression::Bzip2,
];

fn recognise_bytes(bytes: &[u8]) -> Recognised {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, bytes).unwrap();
    recognise(&path).unwrap()
}

fn layer() -> Vec<u8> {
    tar_of(&[("etc/", b""), ("etc/app.conf", b"x=1\n")])
}

fn hex_of(bytes: &[u8]) -> String {
    Digest::of(bytes).hex().to_owned()
}

fn legacy_save() -> Vec<u8> {
    let manifest =
        format!(r#"[{{"Config":"{ID}.json","RepoTags":["app:1"],"Layers":["{ID}/layer.tar"]}}]"#);
    tar_of(&[
        (&format!("{ID}/"), b""),
        (&format!("{ID}/VERSION"), b"1.0"),
        (&format!("{ID}/json"), b"{}"),
        (&format!("{ID}/layer.tar"), &layer()),
        (&format!("{ID}.json"), b"{}"),
        ("manifest.json", manifest.as_bytes()),
        ("repositories", br#"{"app":{"1":"x"}}"#),
    ])
}

/// An OCI layout as a tar: the layer compressed with `layers`, the
/// manifest naming its media type, and Docker's `manifest.json` if asked.
fn oci_tar(layers: Compression, docker_manifest: bool, layer_present: bool) -> Vec<u8> {
    let layer = compress(&layer(), layers);
    let media_type = match layers {
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[{{"mediaType":"{media_type}","digest":"sha256:{}","size":{}}}]}}"#,
        hex_of(config),
        config.len(),
        hex_of(&layer),
        layer.len()
    );
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":{}}}]}}"#,
        hex_of(manifest.as_bytes()),
        manifest.len()
    );
    let docker = format!(
        r#"[{{"Config":"blobs/sha256/{}","RepoTags":["app:1"],"Layers":["blobs/sha256/{}"]}}]"#,
        hex_of(config),
        hex_of(&layer)
    );
    let blob = |bytes: &[u8]| format!("blobs/sha256/{}", hex_of(bytes));
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        ("blobs/".into(), vec![]),
        ("blobs/sha256/".into(), vec![]),
        (blob(config), config.to_vec()),
        (blob(manifest.as_bytes()), manifest.clone().into_bytes()),
    ];
    if layer_present {
        entries.push((blob(&layer), layer.clone()));
    }
    entries.push(("index.json".into(), index.into_bytes()));
    if docker_manifest {
        entries.push(("manifest.json".into(), docker.into_bytes()));
    }
    entries.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    if docker_manifest {
        entries.push(("repositories".into(), b"{}".to_vec()));
    }
    let borrowed: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    tar_of(&borrowed)
}

fn docker_archive() -> Vec<u8> {
    let layer = layer();
    let layer_hex = hex_of(&layer);
    let manifest = format!(
        r#"[{{"Config":"{ID}.json","RepoTags":["localhost/app:1"],"Layers":["{layer_hex}.tar"]}}]"#
    );
    tar_of(&[
        (&format!("{layer_hex}.tar"), &layer),
        (&format!("{ID}.json"), b"{}"),
        (&format!("{ID}/"), b""),
        (&format!("{ID}/layer.tar -> ../{layer_hex}.tar"), b""),
        ("manifest.json", manifest.as_bytes()),
        ("repositories", b"{}"),
    ])
}

fn export() -> Vec<u8> {
    tar_of(&[
        (".dockerenv", b""),
        ("bin/", b""),
        ("bin/sh", b"\x7fELF"),
        ("dev/", b""),
        ("etc/", b""),
        ("etc/hosts", b""),
        ("etc/hostname", b""),
        ("proc/", b""),
        ("sys/", b""),
        ("usr/", b""),
    ])
}

fn pre_v110() -> Vec<u8> {
    tar_of(&[
        (&format!("{ID}/"), b""),
        (&format!("{ID}/VERSION"), b"1.0"),
        (&format!("{ID}/json"), b"{}"),
        (&format!("{ID}/layer.tar"), &layer()),
        ("repositories", br#"{"app":{"1":"x"}}"#),
    ])
}

#[test]
fn every_archive_kind_is_told_in_every_compression() {
    let cases: Vec<(Vec<u8>, Kind, &str)> = vec![
        (
            legacy_save(),
            Kind::DockerLegacy,
            "docker save archive (Docker 24 or earlier): pack it with airgap pack --archive",
        ),
        (
            oci_tar(Compression::None, true, true),
            Kind::DockerOci,
            "docker save archive (Docker 25 or later): pack it with airgap pack --archive",
        ),
        (
            oci_tar(Compression::Gzip, true, true),
            Kind::ContainerdSave {
                layers: Compression::Gzip,
            },
            "docker save archive of the containerd image store (Docker 25 or later, nerdctl or ctr; gzip-compressed layers): pack it with",
        ),
        (
            oci_tar(Compression::Zstd, true, true),
            Kind::ContainerdSave {
                layers: Compression::Zstd,
            },
            "zstd-compressed layers",
        ),
        (
            docker_archive(),
            Kind::DockerArchive,
            "docker-archive (podman save or skopeo docker-archive:): pack it with",
        ),
        (
            oci_tar(Compression::Gzip, false, true),
            Kind::OciArchive,
            "OCI archive (podman save --format oci-archive or skopeo oci-archive:): pack it with",
        ),
        (
            export(),
            Kind::RootFilesystem {
                docker_export: true,
            },
            "root filesystem (docker export output), not an image: make it one with airgap pack --import ",
        ),
        (
            pre_v110(),
            Kind::PreV110,
            "from before Docker 1.10 (repositories and <id>/json, no manifest.json), which no current tool takes",
        ),
    ];
    for (tar, kind, words) in &cases {
        for compression in ALL {
            let found = recognise_bytes(&compress(tar, compression));
            assert_eq!(&found.kind, kind, "{compression:?}: {found}");
            assert_eq!(found.compression, compression, "{found}");
            let line = found.to_string();
            assert!(line.contains(words), "{line}");
            assert!(!line.contains('\n'));
            if compression != Compression::None {
                assert!(line.contains(compression.adjective()), "{line}");
            }
            assert_eq!(
                found.is_image_archive(),
                !matches!(kind, Kind::RootFilesystem { .. } | Kind::PreV110)
            );
            assert!(!found.is_bundle());
        }
    }
}

#[test]
fn the_advice_names_the_path_as_a_shell_word() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop it's.tar.gz");
    std::fs::write(
        &path,
        compress(&oci_tar(Compression::None, true, true), Compression::Gzip),
    )
    .unwrap();
    let line = recognise(&path).unwrap().to_string();
    let shown = path.display().to_string();
    assert_eq!(
        line,
        format!(
            "{shown} is a gzip-compressed docker save archive (Docker 25 or later): pack it with airgap pack --archive '{}'",
            shown.replace('\'', r"'\''")
        )
    );
    let path = dir.path().join("export.tar");
    std::fs::write(&path, export()).unwrap();
    let line = recognise(&path).unwrap().to_string();
    assert_eq!(
        line,
        format!(
            "{0} is a root filesystem (docker export output), not an image: make it one with airgap pack --import {0}=REPO:TAG --change 'CMD [\"…\"]'",
            path.display()
        )
    );
}

#[test]
fn a_containerd_save_is_told_by_media_type_where_its_layers_are_absent() {
    let found = recognise_bytes(&oci_tar(Compression::Gzip, true, false));
    assert_eq!(
        found.kind,
        Kind::ContainerdSave {
            layers: Compression::Gzip
        }
    );
    let found = recognise_bytes(&oci_tar(Compression::None, true, false));
    assert_eq!(found.kind, Kind::DockerOci);
}

#[test]
fn a_root_filesystem_without_dockerenv_is_still_one() {
    let tar = tar_of(&[
        ("./", b""),
        ("./bin/", b""),
        ("./etc/", b""),
        ("./usr/", b""),
        ("./usr/bin/", b""),
    ]);
    let found = recognise_bytes(&tar);
    assert_eq!(
        found.kind,
        Kind::RootFilesystem {
            docker_export: false
        }
    );
    assert!(
        found
            .to_string()
            .contains("is a root filesystem tar, not an image"),
        "{found}"
    );
}

#[test]
fn what_is_neither_says_so() {
    let other = tar_of(&[("notes/", b""), ("notes/a\x1b[2Kb.txt", b"hello")]);
    for compression in ALL {
        let found = recognise_bytes(&compress(&other, compression));
        assert!(
            matches!(found.kind, Kind::Other(Why::OtherTar { .. })),
            "{found}"
        );
        let line = found.to_string();
        assert!(
            line.contains("neither an airgap bundle nor an image archive"),
            "{line}"
        );
        assert!(line.contains(r#"its first entry is "notes""#), "{line}");
    }
    let found = recognise_bytes(b"\x7fELF\x02\x01\x01\x00 and more bytes of a program");
    assert_eq!(
        found.kind,
        Kind::Other(Why::NotATar {
            start: b"\x7fELF\x02\x01\x01\x00".to_vec()
        })
    );
    assert!(
        found
            .to_string()
            .contains("and not a tar (it starts with 7f 45 4c 46 02 01 01 00)"),
        "{found}"
    );
    let junk: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for compression in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Xz,
        Compression::Bzip2,
    ] {
        let found = recognise_bytes(&compress(&junk, compression));
        assert!(
            matches!(found.kind, Kind::Other(Why::NotATar { .. })),
            "{found}"
        );
        assert!(
            found.to_string().contains("but what it holds is not a tar"),
            "{found}"
        );
    }
    let found = recognise_bytes(b"");
    assert_eq!(found.kind, Kind::Other(Why::Empty));
    assert!(
        found
            .to_string()
            .ends_with("is empty: neither an airgap bundle nor an image archive")
    );
    let found = recognise_bytes(&[0u8; 10240]);
    assert_eq!(found.kind, Kind::Other(Why::EmptyTar));
}

const GOLDEN: &[u8] = include_bytes!("../../../tests/fixtures/bundles/v1.3-minimal.zst");

#[test]
fn bundles_their_parts_and_index_are_told() {
    let found = recognise_bytes(GOLDEN);
    assert_eq!(
        (found.kind.clone(), found.compression),
        (Kind::Bundle, Compression::Zstd)
    );
    assert!(found.is_bundle() && !found.is_image_archive());
    assert!(
        found
            .to_string()
            .contains("is an airgap bundle: check it with airgap verify"),
        "{found}"
    );

    let cut = recognise_bytes(&GOLDEN[..GOLDEN.len() / 2]);
    assert!(cut.could_be_bundle() && !cut.is_bundle(), "{cut}");

    let inner = zstd::decode_all(GOLDEN).unwrap();
    let found = recognise_bytes(&inner);
    assert_eq!(found.kind, Kind::Bundle);
    assert!(!found.is_bundle(), "its tar alone is not what airgap reads");
    assert!(
        found
            .to_string()
            .contains("content of an airgap bundle as an uncompressed tar"),
        "{found}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut writer = PartWriter::new(&dir.path().join("b.zst"), 1000);
    writer.write_all(GOLDEN).unwrap();
    let parts = writer.finish().unwrap();
    let index = PartsIndex {
        media_type: PARTS_MEDIA_TYPE.into(),
        bundle: "b.zst".into(),
        size: GOLDEN.len() as u64,
        sha256: Digest::of(GOLDEN),
        parts: parts.clone(),
    };
    std::fs::write(dir.path().join("b.zst.parts"), index.to_bytes()).unwrap();
    let second = dir.path().join(&parts[1].name);
    let found = recognise(&second).unwrap();
    assert!(
        matches!(found.kind, Kind::BundlePart { number: 2, .. }),
        "{found}"
    );
    let line = found.to_string();
    let whole = dir.path().join("b.zst").display().to_string();
    assert!(
        line.contains(&format!(
            "part 2 of {} of the split airgap bundle b.zst: check it with airgap verify {whole} and",
            parts.len()
        )),
        "{line}"
    );

    let found = recognise(&dir.path().join("b.zst.parts")).unwrap();
    assert!(matches!(found.kind, Kind::PartsIndex { .. }), "{found}");
    assert!(
        found
            .to_string()
            .contains(&format!("airgap unpack {whole}")),
        "{found}"
    );

    let found = recognise(dir.path()).unwrap();
    assert_eq!(
        found.kind,
        Kind::PartsDirectory {
            bundle: "b.zst".into()
        }
    );
    assert!(found.is_bundle());
}

#[test]
fn directories_are_told_by_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(layout.join("index.json"), "{}").unwrap();
    let found = recognise(&layout).unwrap();
    assert_eq!(found.kind, Kind::OciLayout);
    assert_eq!(
        found.to_string(),
        format!(
            "{0} is an OCI image layout directory: pack it with airgap pack --archive {0}",
            layout.display()
        )
    );

    let skopeo = dir.path().join("skopeo");
    std::fs::create_dir(&skopeo).unwrap();
    std::fs::write(skopeo.join("version"), "Directory Transport Version: 1.1\n").unwrap();
    std::fs::write(skopeo.join("manifest.json"), "{}").unwrap();
    let found = recognise(&skopeo).unwrap();
    assert_eq!(found.kind, Kind::SkopeoDir);
    assert!(found.is_image_archive());

    // Links in a directory are not followed to decide what it is.
    let linked = dir.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(layout.join("oci-layout"), linked.join("oci-layout")).unwrap();
    std::os::unix::fs::symlink(layout.join("index.json"), linked.join("index.json")).unwrap();
    let found = recognise(&linked).unwrap();
    assert_eq!(found.kind, Kind::Other(Why::Directory));
    assert!(
        found.to_string().contains(
            "is a directory holding no split airgap bundle (no .parts index), no OCI image layout"
        ),
        "{found}"
    );
}

#[test]
fn link_loops_fifos_and_devices_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    assert!(matches!(recognise(&a), Err(RecogniseError::Read { .. })));
    let fifo = dir.path().join("fifo");
    crate::files::untrusted::mkfifo(&fifo);
    let chain = |error: RecogniseError| {
        let source = std::error::Error::source(&error).map(ToString::to_string);
        format!("{error}: {}", source.unwrap_or_default())
    };
    let error = chain(recognise(&fifo).unwrap_err());
    assert!(error.contains("FIFO"), "{error}");
    let error = chain(recognise(Path::new("/dev/zero")).unwrap_err());
    assert!(error.contains("character device"), "{error}");
    let error = check_archive(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failure);
}

#[test]
fn truncated_input_is_damaged_not_misread() {
    let tar = oci_tar(Compression::None, true, true);
    for compression in ALL {
        let mut bytes = compress(&tar, compression);
        bytes.truncate(bytes.len() * 2 / 3);
        let found = recognise_bytes(&bytes);
        assert!(
            matches!(found.kind, Kind::Other(Why::Damaged { .. })),
            "{compression:?}: {found}"
        );
        assert!(
            found.to_string().contains("cut short or damaged"),
            "{found}"
        );
    }
}

/// A header of `kind` claiming `size` bytes, with a valid checksum.
fn raw_header(path: &str, size: u64, kind: tar::EntryType) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(kind);
    header.set_cksum();
    header.as_bytes().to_vec()
}

#[test]
fn a_long_name_claiming_gigabytes_is_not_read_into_memory() {
    let mut tar = raw_header("././@LongLink", 10 << 30, tar::EntryType::GNULongName);
    tar.extend_from_slice(&[b'a'; 4096]);
    for compression in [Compression::None, Compression::Gzip] {
        let found = recognise_bytes(&compress(&tar, compression));
        assert!(
            matches!(found.kind, Kind::Other(Why::NotATar { .. })),
            "{found}"
        );
    }
}

#[test]
fn a_huge_number_of_headers_stops_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.tar.zst");
    let mut encoder =
        zstd::stream::write::Encoder::new(std::fs::File::create(&path).unwrap(), 1).unwrap();
    let header = raw_header("x", 0, tar::EntryType::Regular);
    for _ in 0..=scan::ENTRY_LIMIT {
        encoder.write_all(&header).unwrap();
    }
    encoder.finish().unwrap();
    let found = recognise(&path).unwrap();
    assert_eq!(
        found.kind,
        Kind::Other(Why::Stopped(Stopped::Entries)),
        "{found}"
    );
}

#[test]
fn a_compression_bomb_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.tar.zst");
    let mut encoder =
        zstd::stream::write::Encoder::new(std::fs::File::create(&path).unwrap(), 1).unwrap();
    let size = 2u64 << 30;
    encoder
        .write_all(&raw_header("zeros", size, tar::EntryType::Regular))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(size >> 20) {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap();
    let started = std::time::Instant::now();
    let found = recognise(&path).unwrap();
    assert_eq!(
        found.kind,
        Kind::Other(Why::Stopped(Stopped::Ratio)),
        "{found}"
    );
    assert!(found.to_string().contains("compression bomb"), "{found}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn check_archive_refuses_what_pack_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, archive) in [
        ("save.tar", legacy_save(), true),
        ("export.tar", export(), false),
        ("bundle.zst", GOLDEN.to_vec(), false),
        ("junk", b"junk junk junk".to_vec(), false),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        match check_archive(&path) {
            Ok(found) => assert!(archive, "{found}"),
            Err(error) => {
                assert!(!archive, "{error}");
                assert_eq!(error.kind(), ErrorKind::Usage);
            }
        }
    }
}
