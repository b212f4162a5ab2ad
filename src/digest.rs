//! SHA-256 digests: the one identity every blob has, and readers/writers that
//! compute it in passing so no blob is ever read twice just to hash it.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A `sha256:<64 lowercase hex>` content digest, validated where it enters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// A string that is not a `sha256:<64 lowercase hex>` digest.
#[derive(Debug, thiserror::Error)]
#[error("not a sha256 digest: {0:?}")]
pub struct InvalidDigest(pub String);

impl Digest {
    /// Digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// Builds the digest from its 64 hex digits (no `sha256:` prefix).
    pub fn from_hex(hex: &str) -> Result<Self, InvalidDigest> {
        format!("sha256:{hex}").parse()
    }

    fn from_hasher(hasher: Sha256) -> Self {
        Self(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The 64 hex digits, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The full `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, as `docker images` shows IDs.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    /// The path of this blob in an OCI image layout.
    pub fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, InvalidDigest> {
        let valid = s.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidDigest(s.to_owned()))
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Hashes and counts every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    mark: Option<Mark>,
}

/// The digest of the first `at` bytes, taken on the way past.
struct Mark {
    at: u64,
    digest: Option<Digest>,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
            mark: None,
        }
    }

    /// Wraps `inner`, also taking the digest of its first `at` bytes (a
    /// sealed bundle's, before its seal) without hashing them twice.
    pub fn marking(inner: R, at: u64) -> Self {
        let mut reader = Self::new(inner);
        reader.mark = Some(Mark { at, digest: None });
        reader.take_mark();
        reader
    }

    /// The digest of the first `at` bytes of [`HashingReader::marking`],
    /// once that many have been read.
    pub fn marked(&self) -> Option<&Digest> {
        self.mark.as_ref().and_then(|m| m.digest.as_ref())
    }

    fn take_mark(&mut self) {
        if let Some(mark) = &mut self.mark {
            if mark.digest.is_none() && self.count == mark.at {
                mark.digest = Some(Digest::from_hasher(self.hasher.clone()));
            }
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest and size of everything read.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A read stops at the mark, so the hasher's state there can be taken.
        let limit = match &self.mark {
            Some(mark) if self.count < mark.at => buf
                .len()
                .min((mark.at - self.count).try_into().unwrap_or(usize::MAX)),
            _ => buf.len(),
        };
        let n = self.inner.read(&mut buf[..limit])?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        self.take_mark();
        Ok(n)
    }
}

/// Hashes and counts every byte written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and size of everything written so far.
    pub fn so_far(&self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher.clone()), self.count)
    }

    /// The digest and size of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (Digest::from_hasher(self.hasher), self.count, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_one() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parsing_rejects_wrong_algorithm_length_and_case() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(format!("sha256:{hex}").parse::<Digest>().is_ok());
        assert!(format!("sha512:{hex}").parse::<Digest>().is_err());
        assert!(format!("sha256:{}", &hex[1..]).parse::<Digest>().is_err());
        assert!(
            format!("sha256:{}", hex.to_uppercase())
                .parse::<Digest>()
                .is_err()
        );
        assert!("sha256:../../etc/passwd".parse::<Digest>().is_err());
    }

    #[test]
    fn hashing_reader_matches_one_shot_digest() {
        let data = vec![7u8; 100_000];
        let mut reader = HashingReader::new(&data[..]);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        let (digest, size) = reader.finish();
        assert_eq!(digest, Digest::of(&data));
        assert_eq!(size, 100_000);
    }

    #[test]
    fn a_marking_reader_takes_the_digest_of_the_prefix_wherever_reads_fall() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for at in [0, 1, 8191, 8192, 65_537, 100_000] {
            let mut reader = HashingReader::marking(&data[..], at);
            io::copy(&mut reader, &mut io::sink()).unwrap();
            assert_eq!(reader.marked(), Some(&Digest::of(&data[..at as usize])));
            assert_eq!(reader.finish(), (Digest::of(&data), 100_000));
        }
        let mut short = HashingReader::marking(&data[..10], 11);
        io::copy(&mut short, &mut io::sink()).unwrap();
        assert_eq!(short.marked(), None);
    }
}
