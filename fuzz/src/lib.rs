//! What the fuzz targets share: they drive airgap's bundle reader the way
//! `airgap verify`, `unpack` and `inspect` do with a bundle that came from
//! outside. Errors are the expected outcome; a panic, an allocation above
//! libFuzzer's limit or a run above its timeout is a finding.

use std::hint::black_box;
use std::io::{self, Read};
use std::path::Path;
use std::sync::OnceLock;

use airgap::bundle::reader::{self, Head};
use airgap::bundle::{BundleError, BundleImage, BundleManifest, Entry, SourceInfo};
use airgap::digest::Digest;
use airgap::image::{BlobRef, ImageRef, Platform};
use airgap::bundle::inspect::summarize;
use airgap::trust::keys::PublicKey;
use airgap::verify::{self, TrustPolicy};
use libfuzzer_sys::arbitrary::{self, Arbitrary};

/// Trusts the golden bundle's signer, so the seed that carries its signature
/// reaches the "signature valid" path, and accepts unsigned bundles.
fn policy() -> &'static TrustPolicy {
    static POLICY: OnceLock<TrustPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let pem = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/bundles/v1.0-signer.pub.pem");
        TrustPolicy {
            keys: vec![PublicKey::read(&pem).expect("the golden signer's key is readable")],
            allow_unsigned: true,
        }
    })
}

/// Reads `bundle` (zstd-compressed bytes) in full, as `verify` does, and its
/// head alone, as `inspect` does.
pub fn read_bundle(bundle: &[u8]) {
    let whole = reader::read(
        bundle,
        |head: &Head| {
            look_at(head);
            Ok::<(), BundleError>(())
        },
        |_: &Entry, content: &mut dyn Read| {
            io::copy(content, &mut io::sink())
                .map(drop)
                .map_err(BundleError::Corrupt)
        },
    );
    let head = reader::read_head(bundle);
    if let Ok(head) = &head {
        look_at(head);
    }
    if let Ok(whole) = whole {
        let head = head.expect("a bundle that reads in full has a readable head");
        assert_eq!(whole.manifest_bytes, head.manifest_bytes);
    }
}

/// Wraps `tar` in zstd and reads it: mutations then land on the tar and the
/// manifest instead of being rejected by the decompressor. Header checksums
/// are set right first, or nearly every mutation of a header (type, size,
/// name) would stop at the checksum; `bundle_reader` keeps bad ones.
pub fn read_tar(tar: &[u8]) {
    let mut tar = tar.to_vec();
    fix_checksums(&mut tar);
    let bundle = zstd::bulk::compress(&tar, 1).expect("zstd compresses any bytes");
    read_bundle(&bundle);
}

/// Sets the checksum of every header up to the first zero block, following
/// the sizes the headers declare; stops at a size that does not parse.
fn fix_checksums(tar: &mut [u8]) {
    let mut at = 0usize;
    while let Some(block) = tar.get_mut(at..at + 512) {
        if block.iter().all(|&b| b == 0) {
            return;
        }
        let mut header = tar::Header::new_old();
        header.as_mut_bytes().copy_from_slice(block);
        header.set_cksum();
        block.copy_from_slice(header.as_bytes());
        let Some(next) = header
            .entry_size()
            .ok()
            .and_then(|size| usize::try_from(size.div_ceil(512)).ok())
            .and_then(|blocks| blocks.checked_mul(512))
            .and_then(|data| (at + 512).checked_add(data))
        else {
            return;
        };
        at = next;
    }
}

/// Parses `bytes` as a bundle manifest; one that parses must survive being
/// written again and parsed again unchanged.
pub fn parse_manifest(bytes: &[u8]) {
    let Ok(manifest) = BundleManifest::parse(bytes) else {
        return;
    };
    black_box(summarize(&manifest));
    black_box(manifest.content_size());
    let written = manifest.to_bytes();
    let again = BundleManifest::parse(&written).expect("a manifest airgap wrote parses");
    assert_eq!(again.to_bytes(), written);
}

/// What the CLI does with a head before any content is read.
fn look_at(head: &Head) {
    let _ = black_box(verify::check_signature(head, policy()));
    black_box(summarize(&head.manifest));
    black_box(head.manifest.content_size());
}

/// A manifest described by its shape rather than its bytes: blob entries
/// whose paths match their digests and images that point at carried or
/// required blobs, so what byte mutations of JSON rarely reach (a manifest
/// that passes the consistency rules, with any sizes) is the common case.
#[derive(Debug, Arbitrary)]
pub struct ManifestShape {
    blobs: Vec<(u8, u64)>,
    others: Vec<(Vec<u8>, u8, u64)>,
    required: Vec<(u8, u64)>,
    images: Vec<ImageShape>,
}

/// One image of a [`ManifestShape`]; blobs are picked by index.
#[derive(Debug, Arbitrary)]
pub struct ImageShape {
    refs: Vec<(String, String)>,
    platform: (String, String, Option<String>),
    manifest: u8,
    config: u8,
    layers: Vec<(bool, u8)>,
}

impl ManifestShape {
    /// The manifest this shape describes.
    pub fn build(&self) -> BundleManifest {
        let blob = |(id, size): (u8, u64)| BlobRef {
            digest: Digest::of(&[id]),
            size,
        };
        let carried: Vec<BlobRef> = self.blobs.iter().copied().map(blob).collect();
        let required: Vec<BlobRef> = self.required.iter().copied().map(blob).collect();
        let pick =
            |from: &[BlobRef], index: u8| from.get(usize::from(index) % from.len().max(1)).cloned();
        let mut manifest = BundleManifest::new(
            "fuzz".into(),
            "2026-01-01T00:00:00Z".into(),
            SourceInfo::default(),
        );
        manifest.entries = self
            .others
            .iter()
            .map(|(path, id, size)| Entry {
                path: path_of(path),
                size: *size,
                sha256: Digest::of(&[*id]).hex().into(),
            })
            .chain(carried.iter().map(|b| Entry {
                path: b.digest.blob_path(),
                size: b.size,
                sha256: b.digest.hex().into(),
            }))
            .collect();
        manifest.required = required.clone();
        manifest.images = self
            .images
            .iter()
            .filter_map(|image| {
                Some(BundleImage {
                    refs: image
                        .refs
                        .iter()
                        .map(|(given, name)| ImageRef {
                            given: given.clone(),
                            name: name.clone(),
                        })
                        .collect(),
                    platform: Platform {
                        os: image.platform.0.clone(),
                        architecture: image.platform.1.clone(),
                        variant: image.platform.2.clone(),
                    },
                    manifest: pick(&carried, image.manifest)?,
                    config: pick(&carried, image.config)?,
                    layers: image
                        .layers
                        .iter()
                        .filter_map(|&(is_carried, index)| {
                            pick(if is_carried { &carried } else { &required }, index)
                        })
                        .collect(),
                })
            })
            .collect();
        manifest
    }
}

/// A path over the characters that matter to the path rules, so that valid
/// paths are common and `..`, `//` and reserved names are near.
fn path_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ab0._-/";
    bytes
        .iter()
        .map(|&b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// Writes `bundle` to a file and admits it as `unpack` does: by its seal
/// when it ends with one (seal, signature, the digest of the bytes before
/// it, then the head), else by a full read. Trusts the signer of the golden
/// 1.3 bundle, the seed whose seal is valid.
pub fn admit_bundle(bundle: &[u8]) {
    static POLICY: OnceLock<TrustPolicy> = OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        let pem = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/bundles/v1.3-signer.pub.pem");
        TrustPolicy {
            keys: vec![PublicKey::read(&pem).expect("the golden signer's key is readable")],
            allow_unsigned: true,
        }
    });
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
    }
    DIR.with(|dir| {
        let path = dir.path().join("bundle.zst");
        std::fs::write(&path, bundle).expect("the temporary directory is writable");
        if let Ok(admitted) = verify::admit(&path, policy, &airgap::progress::NoProgress) {
            black_box(admitted.manifest());
        }
    });
}

/// Resolves `data` as the compose file of a project directory of its own,
/// with a small environment, as `airgap plan` does. Errors are expected;
/// what must not happen is a panic, a hang or unbounded memory (YAML
/// anchors, merge keys and `extends` chains are the usual suspects).
pub fn load_compose(data: &[u8]) {
    use airgap::plan::compose::{ComposeOptions, load};
    use std::collections::BTreeMap;
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
    }
    DIR.with(|dir| {
        std::fs::write(dir.path().join("compose.yaml"), data)
            .expect("the temporary directory is writable");
        let options = ComposeOptions {
            project_directory: Some(dir.path().to_owned()),
            current_dir: dir.path().to_owned(),
            environment: BTreeMap::from([("TAG".to_owned(), "1.0".to_owned())]),
            ..ComposeOptions::default()
        };
        if let Ok(project) = load(&options) {
            black_box(project);
        }
    });
}

/// Finds and parses a seal as a reader does at the end of a file: the
/// first 8 bytes (little-endian) are how many bytes come before the rest in
/// that file, so the fuzzer can make a seal that covers them; the rest is
/// the file's tail. A seal that parses must parse again, unchanged, once
/// written.
pub fn parse_seal(data: &[u8]) {
    use airgap::bundle::seal;
    let Some((before, tail)) = data.split_first_chunk::<8>() else {
        return;
    };
    let file_size = u64::from_le_bytes(*before).saturating_add(tail.len() as u64);
    let Some(footer) = tail
        .len()
        .checked_sub(seal::FOOTER_LEN)
        .map(|at| &tail[at..])
    else {
        return;
    };
    let Ok(Some(frame_len)) = seal::frame_len(footer) else {
        return;
    };
    let Some(frame) = usize::try_from(frame_len)
        .ok()
        .and_then(|len| tail.len().checked_sub(len))
        .map(|at| &tail[at..])
    else {
        return;
    };
    let Ok(parsed) = seal::parse(frame, file_size) else {
        return;
    };
    let written = parsed.to_frame();
    let Some(covered) = parsed.size.checked_add(written.len() as u64) else {
        return;
    };
    let again = seal::parse(&written, covered).expect("a seal airgap wrote parses");
    assert_eq!(again.signed_bytes(), parsed.signed_bytes());
    assert_eq!(again.to_frame(), written);
}

/// Parses `bytes` as a split bundle's parts index, then looks for its parts
/// in an empty directory as a reader does (whatever the names, nothing is
/// found outside it). An index that parses must parse again, unchanged,
/// once written.
pub fn parse_parts_index(bytes: &[u8]) {
    use airgap::bundle::parts::PartsIndex;
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
    }
    let Ok(index) = PartsIndex::parse(bytes) else {
        return;
    };
    DIR.with(|dir| {
        black_box(index.check_regular(dir.path())).expect("an empty directory holds no odd files");
        assert_eq!(index.missing_or_short(dir.path()).len(), index.parts.len());
    });
    let written = index.to_bytes();
    let again = PartsIndex::parse(&written).expect("an index airgap wrote parses");
    assert_eq!(again.to_bytes(), written);
}
