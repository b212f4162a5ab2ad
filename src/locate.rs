//! Finds a bundle's bytes from what a user names: a bundle file, or a split
//! bundle given by its name, any of its parts, or their directory. A split
//! bundle's index is checked (signature, then every part present with its
//! size) before any content is read, so a missing part is named at once.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::bundle::parts::{self, PartsIndex};
use crate::bundle::seal::{self, Seal};
use crate::bundle::{BundleError, SignatureEntry};
use crate::trust::TrustPolicy;
use crate::verify::{VerifyError, check_signed};

/// Where a bundle's bytes are.
#[derive(Clone, Debug)]
pub enum Location {
    /// One file.
    File(PathBuf),
    /// Parts in a directory, as their index lists them.
    Parts {
        /// The directory.
        dir: PathBuf,
        /// The checked index.
        index: PartsIndex,
    },
}

impl Location {
    /// Finds the bundle `named` points at; for a split bundle, checks its
    /// index's signature against `policy` (unless `None`: only to show what
    /// a bundle claims) and that every part is there.
    pub fn find(named: &Path, policy: Option<&TrustPolicy>) -> Result<Self, VerifyError> {
        let is_part = named
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.len() == 3 && e.bytes().all(|b| b.is_ascii_digit()));
        let whole_file = named.is_file() && !is_part;
        let index_path = if whole_file {
            None
        } else {
            parts::find_index(named)
        };
        let Some(index_path) = index_path else {
            return Ok(Self::File(named.to_owned()));
        };
        let (index, bytes) = PartsIndex::read(&index_path)?;
        let base = index_path.with_extension("");
        let signature_path = parts::index_signature_path(&base);
        let signature: Option<SignatureEntry> = match std::fs::read(&signature_path) {
            Ok(bytes) => {
                Some(
                    serde_json::from_slice(&bytes).map_err(|_| BundleError::Inconsistent {
                        reason: format!("{} is not a signature", signature_path.display()),
                    })?,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(BundleError::Io {
                    action: "reading",
                    path: signature_path,
                    source,
                }
                .into());
            }
        };
        if let Some(policy) = policy {
            check_signed(
                &bytes,
                signature.as_ref(),
                parts::PARTS_SIGNATURE_CONTEXT,
                policy,
            )?;
        }
        let dir = index_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let missing = index.missing_or_short(&dir);
        if !missing.is_empty() {
            return Err(VerifyError::PartsMissing { parts: missing });
        }
        Ok(Self::Parts { dir, index })
    }

    /// Reads the bundle from the start.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, VerifyError> {
        match self {
            Self::File(path) => {
                let file = File::open(path).map_err(|source| VerifyError::Open {
                    path: path.clone(),
                    source,
                })?;
                Ok(Box::new(file))
            }
            Self::Parts { dir, index } => Ok(Box::new(index.reader(dir))),
        }
    }

    /// The seal the bundle ends with, and the length of its frame; `None`
    /// for a bundle without one (unsigned, or written before format 1.3).
    pub fn seal(&self) -> Result<Option<(Seal, u64)>, VerifyError> {
        let Some(size) = self.size() else {
            return Ok(None);
        };
        let footer_len = seal::FOOTER_LEN as u64;
        if size < footer_len {
            return Ok(None);
        }
        let footer = self.read_at(size - footer_len, footer_len)?;
        let Some(frame_len) = seal::frame_len(&footer)? else {
            return Ok(None);
        };
        if frame_len > size {
            return Err(BundleError::BadSeal {
                reason: "it claims to be larger than the file".into(),
            }
            .into());
        }
        let frame = self.read_at(size - frame_len, frame_len)?;
        Ok(Some((seal::parse(&frame, size)?, frame_len)))
    }

    /// `len` bytes from `offset` on.
    fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, VerifyError> {
        let mut bytes = Vec::with_capacity(len as usize);
        let mut read = |path: &Path, from: u64, count: u64| {
            let io_error = |source| BundleError::Io {
                action: "reading",
                path: path.to_owned(),
                source,
            };
            let mut file = File::open(path).map_err(io_error)?;
            file.seek(SeekFrom::Start(from)).map_err(io_error)?;
            let before = bytes.len();
            file.take(count).read_to_end(&mut bytes).map_err(io_error)?;
            if ((bytes.len() - before) as u64) < count {
                return Err(io_error(std::io::ErrorKind::UnexpectedEof.into()));
            }
            Ok::<(), BundleError>(())
        };
        match self {
            Self::File(path) => read(path, offset, len)?,
            Self::Parts { dir, index } => {
                let end = offset + len;
                let mut start = 0u64;
                for part in &index.parts {
                    let (from, to) = (offset.max(start), end.min(start + part.size));
                    if from < to {
                        read(&dir.join(&part.name), from - start, to - from)?;
                    }
                    start += part.size;
                }
            }
        }
        Ok(bytes)
    }

    /// The bundle as a person would name it.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Parts { dir, index } => {
                format!("{} (in parts)", dir.join(&index.bundle).display())
            }
        }
    }

    /// The bundle's size in bytes, where known.
    pub fn size(&self) -> Option<u64> {
        match self {
            Self::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Self::Parts { index, .. } => Some(index.size),
        }
    }

    /// Parts whose content differs from the index: what to recopy after a
    /// read of the whole failed.
    pub fn damaged_parts(&self) -> Vec<String> {
        let Self::Parts { dir, index } = self else {
            return Vec::new();
        };
        index
            .parts
            .iter()
            .filter(|part| {
                let Ok(file) = File::open(dir.join(&part.name)) else {
                    return true;
                };
                let mut hashing = crate::digest::HashingReader::new(file);
                std::io::copy(&mut hashing, &mut std::io::sink()).is_err()
                    || hashing.finish() != (part.sha256.clone(), part.size)
            })
            .map(|part| part.name.clone())
            .collect()
    }
}

/// A bundle read from standard input, staged to a file first so that it can
/// be verified completely before anything is loaded.
pub struct Staged {
    file: tempfile::NamedTempFile,
    _registration: crate::cleanup::Registration,
}

impl Staged {
    /// Copies `input` into a temporary file in `dir`.
    pub fn stage(input: &mut dyn Read, dir: &Path) -> Result<Self, VerifyError> {
        let io_error = |source| BundleError::Io {
            action: "staging the bundle in",
            path: dir.to_owned(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .prefix(".airgap-stdin-")
            .tempfile_in(dir)
            .map_err(io_error)?;
        let registration = crate::cleanup::register(file.path());
        std::io::copy(input, &mut file).map_err(io_error)?;
        Ok(Self {
            file,
            _registration: registration,
        })
    }

    /// The staged file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::bundle::parts::{PARTS_MEDIA_TYPE, PartWriter};
    use crate::bundle::seal::SEAL_MEDIA_TYPE;
    use crate::digest::Digest;

    fn sealed_bytes() -> Vec<u8> {
        let mut bytes = b"stand-in for a bundle's zstd frames".repeat(20);
        let seal = Seal {
            media_type: SEAL_MEDIA_TYPE.into(),
            size: bytes.len() as u64,
            sha256: Digest::of(&bytes),
            signature: SignatureEntry {
                algorithm: "ed25519".into(),
                key: Digest::of(b"key"),
                signature: "00".repeat(64),
            },
        };
        bytes.extend(seal.to_frame());
        bytes
    }

    #[test]
    fn a_seal_is_found_at_the_end_of_a_file_and_across_parts() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = sealed_bytes();
        let file = dir.path().join("b.zst");
        std::fs::write(&file, &bytes).unwrap();
        let (seal, _) = Location::File(file).seal().unwrap().unwrap();
        let covered = seal.size as usize;
        assert_eq!(seal.sha256, Digest::of(&bytes[..covered]));

        // Parts of 97 bytes: the seal's frame spans several of them.
        let mut writer = PartWriter::new(&dir.path().join("p.zst"), 97);
        writer.write_all(&bytes).unwrap();
        let index = PartsIndex {
            media_type: PARTS_MEDIA_TYPE.into(),
            bundle: "p.zst".into(),
            size: bytes.len() as u64,
            sha256: Digest::of(&bytes),
            parts: writer.finish().unwrap(),
        };
        let parts = Location::Parts {
            dir: dir.path().to_owned(),
            index,
        };
        let (from_parts, frame_len) = parts.seal().unwrap().unwrap();
        assert_eq!(from_parts.sha256, seal.sha256);
        assert_eq!(from_parts.size + frame_len, bytes.len() as u64);
    }

    #[test]
    fn a_file_without_a_seal_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.zst");
        std::fs::write(&file, b"unsealed").unwrap();
        assert!(Location::File(file.clone()).seal().unwrap().is_none());
        std::fs::write(&file, b"").unwrap();
        assert!(Location::File(file).seal().unwrap().is_none());
    }
}
