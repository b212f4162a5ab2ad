//! The outer compression of a file people already have (`docker save |
//! gzip`, a `.tar.zst`, an `xz`'d export), told by its first bytes, never by
//! its name, and decoded as it streams so nothing is staged whole.
//! The four that moby and containers/image decompress; containerd takes only
//! gzip and zstd.

use std::io::{self, BufReader, Read};

/// How a file is compressed, from its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed (or not in a way recognised here).
    None,
    /// `1F 8B 08`.
    Gzip,
    /// `28 B5 2F FD`, or a skippable frame first.
    Zstd,
    /// `FD 37 7A 58 5A 00`.
    Xz,
    /// `BZh`.
    Bzip2,
}

/// The most magic bytes any kind needs.
pub const MAGIC_LEN: usize = 6;

impl Compression {
    /// Tells the compression from a file's first bytes (at least
    /// [`MAGIC_LEN`] of them where the file has that many).
    pub fn sniff(start: &[u8]) -> Self {
        if start.starts_with(&[0x1f, 0x8b, 0x08]) {
            Self::Gzip
        } else if start.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || is_skippable_frame(start) {
            Self::Zstd
        } else if start.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Self::Xz
        } else if start.starts_with(b"BZh") {
            Self::Bzip2
        } else {
            Self::None
        }
    }

    /// The word for it in messages ("gzip-compressed").
    pub fn adjective(self) -> &'static str {
        match self {
            Self::None => "uncompressed",
            Self::Gzip => "gzip-compressed",
            Self::Zstd => "zstd-compressed",
            Self::Xz => "xz-compressed",
            Self::Bzip2 => "bzip2-compressed",
        }
    }
}

/// A zstd skippable frame: a little-endian magic `0x184D2A5?`.
fn is_skippable_frame(start: &[u8]) -> bool {
    start.len() >= 4
        && u32::from_le_bytes([start[0], start[1], start[2], start[3]]) & 0xFFFF_FFF0 == 0x184D_2A50
}

/// Buffer between the file and the decoder: decoders read in small pieces.
const BUFFER: usize = 1 << 20;

/// A reader of `buffered`'s bytes decoded as `compression` says, boxed as
/// `$boxed` (with or without `Send`).
macro_rules! decoder {
    ($compression:expr, $buffered:expr, $boxed:ty) => {{
        let buffered = $buffered;
        let reader: $boxed = match $compression {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buffered)),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)),
        };
        reader
    }};
}

/// Tells how `input` is compressed and returns a reader of its decoded
/// bytes (the input itself when it is not compressed).
pub fn decoded<'a>(
    mut input: impl Read + Send + 'a,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let head = read_head(&mut input, MAGIC_LEN)?;
    let compression = Compression::sniff(&head);
    let buffered = BufReader::with_capacity(BUFFER, io::Cursor::new(head).chain(input));
    Ok((
        compression,
        decoder!(compression, buffered, Box<dyn Read + Send + 'a>),
    ))
}

/// [`decoded`] for input that cannot move between threads (a tar entry).
pub fn decoded_here<'a>(
    mut input: impl Read + 'a,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let head = read_head(&mut input, MAGIC_LEN)?;
    let compression = Compression::sniff(&head);
    let buffered = BufReader::with_capacity(BUFFER, io::Cursor::new(head).chain(input));
    Ok((
        compression,
        decoder!(compression, buffered, Box<dyn Read + 'a>),
    ))
}

/// The first `len` bytes of `input`, fewer only where it ends sooner (a
/// pipe may deliver them a few at a time).
pub fn read_head(input: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(len);
    input.take(len as u64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(compression: Compression, compressed: Vec<u8>, plain: &[u8]) {
        let (found, mut reader) = decoded(&compressed[..]).unwrap();
        assert_eq!(found, compression);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, plain);
    }

    #[test]
    fn each_compression_is_told_by_its_bytes_and_decoded() {
        let plain = b"a tar would be here ".repeat(1000);
        roundtrip(Compression::None, plain.clone(), &plain);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&plain).unwrap();
        roundtrip(Compression::Gzip, gzip.finish().unwrap(), &plain);
        roundtrip(
            Compression::Zstd,
            zstd::encode_all(&plain[..], 1).unwrap(),
            &plain,
        );
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&plain).unwrap();
        roundtrip(Compression::Xz, xz.finish().unwrap(), &plain);
        let mut bzip2 = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bzip2.write_all(&plain).unwrap();
        roundtrip(Compression::Bzip2, bzip2.finish().unwrap(), &plain);
    }

    #[test]
    fn a_zstd_skippable_frame_first_is_still_zstd() {
        assert_eq!(
            Compression::sniff(&[0x50, 0x2a, 0x4d, 0x18, 0, 0]),
            Compression::Zstd
        );
        assert_eq!(
            Compression::sniff(&[0x5f, 0x2a, 0x4d, 0x18, 0, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"ustar "), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
    }
}
