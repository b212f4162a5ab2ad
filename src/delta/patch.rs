//! Layer patches: a new layer compressed with the site's older version of it
//! as zstd's reference prefix (what `zstd --patch-from` does), so a one-line
//! change ships as a few kilobytes. Both sides hold the reference in memory
//! and the decoder's window must cover it, so layers and references above
//! [`PATCH_LIMIT`] always ship whole.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::digest::{Digest, HashingWriter};

/// Largest layer, and largest reference, a patch is made for.
pub const PATCH_LIMIT: u64 = 64 << 20;

/// A patch is shipped only when it is smaller than this share of the layer.
const WORTH_IT: f64 = 0.5;

/// The zstd level patches are made at: `zstd --patch-from`'s default, which
/// keeps the encoder's tables small next to the reference held in memory.
const LEVEL: i32 = 3;

/// Window that covers a reference and a layer of up to `size` bytes each.
fn window_log(size: u64) -> u32 {
    let needed = (2 * size.max(1 << 10)).next_power_of_two().trailing_zeros();
    needed.clamp(10, crate::bundle::WINDOW_LOG_MAX)
}

/// Writes into `out` the patch that turns `base` into `layer`, and returns
/// its size, or `None` when a patch would not be worth shipping (or either
/// file is above the limit).
pub fn make(layer: &Path, base: &Path, out: &Path) -> io::Result<Option<u64>> {
    let layer_size = std::fs::metadata(layer)?.len();
    let base_size = std::fs::metadata(base)?.len();
    if layer_size > PATCH_LIMIT || base_size > PATCH_LIMIT {
        return Ok(None);
    }
    let reference = std::fs::read(base)?;
    let file = BufWriter::new(File::create(out)?);
    let mut encoder = zstd::stream::write::Encoder::with_ref_prefix(file, LEVEL, &reference)?;
    encoder.window_log(window_log(layer_size.max(base_size)))?;
    encoder.long_distance_matching(true)?;
    encoder.include_checksum(true)?;
    encoder.set_pledged_src_size(Some(layer_size))?;
    io::copy(&mut BufReader::new(File::open(layer)?), &mut encoder)?;
    encoder
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_data()?;
    let patch_size = std::fs::metadata(out)?.len();
    Ok(((patch_size as f64) < WORTH_IT * layer_size as f64).then_some(patch_size))
}

/// Applies `patch` to the reference at `base`, writing the layer to `out`,
/// and returns the result's digest and size (for the caller to check).
pub fn apply(patch: &mut dyn Read, base: &Path, out: &mut dyn Write) -> io::Result<(Digest, u64)> {
    if std::fs::metadata(base)?.len() > PATCH_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "patch reference above the limit",
        ));
    }
    let reference = std::fs::read(base)?;
    let mut decoder =
        zstd::stream::read::Decoder::with_ref_prefix(BufReader::new(patch), &reference)?;
    decoder.window_log_max(crate::bundle::WINDOW_LOG_MAX)?;
    // A patch never decodes to more than a layer may be; stop a bomb there.
    let mut hashing = HashingWriter::new(out);
    let copied = io::copy(&mut decoder.take(PATCH_LIMIT + 1), &mut hashing)?;
    if copied > PATCH_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "patch decodes beyond the layer size limit",
        ));
    }
    let (digest, size, _) = hashing.finish();
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: std::ops::Range<u32>) -> Vec<u8> {
        lines
            .map(|i| format!("line {i:06} of an application file\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn a_one_line_change_patches_small_and_applies_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let old = text(0..100_000);
        let mut new = text(0..50_000);
        new.extend_from_slice(b"the one added line\n");
        new.extend(text(50_000..100_000));
        std::fs::write(dir.path().join("old"), &old).unwrap();
        std::fs::write(dir.path().join("new"), &new).unwrap();

        let size = make(
            &dir.path().join("new"),
            &dir.path().join("old"),
            &dir.path().join("patch"),
        )
        .unwrap();
        let size = size.expect("a one-line change is worth a patch");
        assert!(size < 4096, "patch of {size} bytes for a one-line change");

        let mut rebuilt = Vec::new();
        let mut patch = File::open(dir.path().join("patch")).unwrap();
        let (digest, length) = apply(&mut patch, &dir.path().join("old"), &mut rebuilt).unwrap();
        assert_eq!(rebuilt, new);
        assert_eq!((digest, length), (Digest::of(&new), new.len() as u64));
    }

    #[test]
    fn unrelated_content_is_not_worth_a_patch() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        std::fs::write(dir.path().join("old"), text(0..1000)).unwrap();
        std::fs::write(dir.path().join("new"), noise).unwrap();
        assert_eq!(
            make(
                &dir.path().join("new"),
                &dir.path().join("old"),
                &dir.path().join("p")
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn the_wrong_reference_does_not_yield_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old"), text(0..50_000)).unwrap();
        let mut new = text(0..50_000);
        new.extend_from_slice(b"added\n");
        std::fs::write(dir.path().join("new"), &new).unwrap();
        std::fs::write(dir.path().join("other"), text(1..50_001)).unwrap();
        make(
            &dir.path().join("new"),
            &dir.path().join("old"),
            &dir.path().join("patch"),
        )
        .unwrap()
        .unwrap();
        let mut out = Vec::new();
        let mut patch = File::open(dir.path().join("patch")).unwrap();
        let result = apply(&mut patch, &dir.path().join("other"), &mut out);
        assert!(result.is_err() || result.unwrap().0 != Digest::of(&new));
    }
}
