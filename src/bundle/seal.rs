//! The seal (FORMAT.md 2.4): a signed statement of the SHA-256 and size of
//! every byte before it, in a zstd skippable frame at the very end of the
//! file. It lets a reader prove a bundle is exactly what its signer wrote by
//! hashing the compressed bytes, without decompressing them first.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

use super::{BundleError, SignatureEntry};

/// Media type of the seal.
pub const SEAL_MEDIA_TYPE: &str = "application/vnd.airgap.seal.v1+json";
/// The context prefixed to the sealed statement before signing.
pub const SEAL_CONTEXT: &[u8] = b"airgap-bundle-seal-v1\n";
/// The last bytes of a sealed file.
const TAG: &[u8; 8] = b"AIRGAPSL";
/// zstd skippable frame magic 0x184D2A5E, little-endian.
const SKIPPABLE_MAGIC: [u8; 4] = [0x5e, 0x2a, 0x4d, 0x18];
/// Largest seal JSON a reader accepts.
const JSON_LIMIT: usize = 4096;
/// What follows the JSON: its length (u32 LE) and the tag.
pub const FOOTER_LEN: usize = 4 + TAG.len();
const HEADER_LEN: usize = 8;

/// The seal's content.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seal {
    /// Always [`SEAL_MEDIA_TYPE`].
    pub media_type: String,
    /// How many bytes before the seal frame it covers: all of them.
    pub size: u64,
    /// Their SHA-256.
    pub sha256: Digest,
    /// The signature over [`SEAL_CONTEXT`] and [`Seal::statement`].
    #[serde(flatten)]
    pub signature: SignatureEntry,
}

impl Seal {
    /// The signed bytes for `sha256` and `size`: `sha256:<hex> <size>\n`.
    pub fn statement(sha256: &Digest, size: u64) -> Vec<u8> {
        format!("{sha256} {size}\n").into_bytes()
    }

    /// This seal's statement.
    pub fn signed_bytes(&self) -> Vec<u8> {
        Self::statement(&self.sha256, self.size)
    }

    /// The skippable frame holding this seal.
    pub fn to_frame(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("seals always serialise");
        let json_len = u32::try_from(json.len()).expect("a seal is a few hundred bytes");
        let mut frame = Vec::with_capacity(HEADER_LEN + json.len() + FOOTER_LEN);
        frame.extend_from_slice(&SKIPPABLE_MAGIC);
        frame.extend_from_slice(&(json_len + FOOTER_LEN as u32).to_le_bytes());
        frame.extend_from_slice(&json);
        frame.extend_from_slice(&json_len.to_le_bytes());
        frame.extend_from_slice(TAG);
        frame
    }
}

/// Given the last [`FOOTER_LEN`] bytes of a file, the length of the seal
/// frame they end, or `None` when the file is not sealed.
pub fn frame_len(footer: &[u8]) -> Result<Option<u64>, BundleError> {
    if footer.len() != FOOTER_LEN || &footer[4..] != TAG {
        return Ok(None);
    }
    let json_len = u32::from_le_bytes(footer[..4].try_into().expect("4 bytes")) as usize;
    if json_len > JSON_LIMIT {
        return Err(malformed("it claims to be larger than a seal can be"));
    }
    Ok(Some((HEADER_LEN + json_len + FOOTER_LEN) as u64))
}

/// Parses the seal frame `frame` found at the end of a file of `file_size`
/// bytes; it must cover exactly the bytes before it.
pub fn parse(frame: &[u8], file_size: u64) -> Result<Seal, BundleError> {
    if frame.len() < HEADER_LEN + FOOTER_LEN || frame[..4] != SKIPPABLE_MAGIC {
        return Err(malformed("it is not a skippable zstd frame"));
    }
    let declared = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes")) as usize;
    if declared != frame.len() - HEADER_LEN {
        return Err(malformed("its frame size and its footer disagree"));
    }
    let json = &frame[HEADER_LEN..frame.len() - FOOTER_LEN];
    let seal: Seal =
        serde_json::from_slice(json).map_err(|_| malformed("its content is not a seal"))?;
    if seal.media_type != SEAL_MEDIA_TYPE {
        return Err(malformed("its media type is not a seal's"));
    }
    // checked: `size` comes from the file, and may be anything
    if seal.size.checked_add(frame.len() as u64) != Some(file_size) {
        return Err(malformed(
            "it does not cover the whole file before it: bytes were added or removed",
        ));
    }
    Ok(seal)
}

fn malformed(reason: &str) -> BundleError {
    BundleError::BadSeal {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(size: u64) -> Seal {
        Seal {
            media_type: SEAL_MEDIA_TYPE.into(),
            size,
            sha256: Digest::of(b"body"),
            signature: SignatureEntry {
                algorithm: "ed25519".into(),
                key: Digest::of(b"key"),
                signature: "00".repeat(64),
            },
        }
    }

    #[test]
    fn a_frame_is_found_from_its_footer_and_parses_back() {
        let frame = seal(1000).to_frame();
        let footer = &frame[frame.len() - FOOTER_LEN..];
        assert_eq!(frame_len(footer).unwrap(), Some(frame.len() as u64));
        let parsed = parse(&frame, 1000 + frame.len() as u64).unwrap();
        assert_eq!(parsed.sha256, Digest::of(b"body"));
        assert_eq!(
            parsed.signed_bytes(),
            format!("{} 1000\n", parsed.sha256).into_bytes()
        );
    }

    #[test]
    fn the_frame_is_skipped_by_zstd() {
        let mut bytes = zstd::encode_all(&b"content"[..], 3).unwrap();
        bytes.extend(seal(bytes.len() as u64).to_frame());
        assert_eq!(zstd::decode_all(&bytes[..]).unwrap(), b"content");
    }

    #[test]
    fn an_unsealed_file_has_no_frame() {
        assert_eq!(frame_len(b"\0\0\0\0ordinary").unwrap(), None);
        assert_eq!(frame_len(b"short").unwrap(), None);
    }

    #[test]
    fn a_seal_that_does_not_cover_the_file_exactly_is_refused() {
        let frame = seal(1000).to_frame();
        for size in [999, 1001] {
            let error = parse(&frame, size + frame.len() as u64).unwrap_err();
            assert!(matches!(error, BundleError::BadSeal { .. }), "{error}");
        }
        let huge = seal(u64::MAX).to_frame();
        assert!(matches!(
            parse(&huge, 1000),
            Err(BundleError::BadSeal { .. })
        ));
    }

    #[test]
    fn damaged_frames_are_refused() {
        let frame = seal(1000).to_frame();
        let size = 1000 + frame.len() as u64;
        let mut magic = frame.clone();
        magic[0] ^= 1;
        let mut length = frame.clone();
        length[4] ^= 1;
        let mut json = frame.clone();
        json[HEADER_LEN] = b'[';
        for bad in [magic, length, json] {
            assert!(matches!(
                parse(&bad, size),
                Err(BundleError::BadSeal { .. })
            ));
        }
        let mut huge = frame[frame.len() - FOOTER_LEN..].to_vec();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(frame_len(&huge).is_err());
    }
}
