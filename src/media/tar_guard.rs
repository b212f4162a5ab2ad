//! A reader under the tar crate that keeps a tar from making it hold more
//! than a bound. The crate reads a GNU long name, long link or pax header
//! whole, at whatever size its header claims, before any caller sees an
//! entry: a few kilobytes of a compressed file claiming a 3 GiB long name
//! took 4 GB of memory. This follows the tar's block structure as the bytes
//! pass (headers, bodies, a pax `size` for the next entry, as the crate
//! applies it) and fails the read at such a header instead.

use std::io::{self, Read, Seek, SeekFrom};

const BLOCK: u64 = 512;

/// The largest long name, long link or pax header taken: real ones hold a
/// few hundred bytes.
pub const EXTENSION_LIMIT: u64 = 1 << 20;

/// Passes a tar through unchanged, failing it at an extension header
/// larger than [`EXTENSION_LIMIT`] or a GNU sparse entry.
pub struct TarGuard<R> {
    inner: R,
    header: [u8; BLOCK as usize],
    filled: usize,
    /// Bytes of the current body left, padding included; zero between entries.
    body_left: u64,
    /// The pax header being read, to learn the next entry's size.
    pax: Option<(Vec<u8>, usize)>,
    next_size: Option<u64>,
}

impl<R: Read> TarGuard<R> {
    /// Guards the tar `inner` yields.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            header: [0; BLOCK as usize],
            filled: 0,
            body_left: 0,
            pax: None,
            next_size: None,
        }
    }

    fn start_entry(&mut self) -> io::Result<()> {
        if self.header.iter().all(|b| *b == 0) {
            // End-of-archive blocks: the reader stops at them.
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&self.header);
        let kind = self.header[156];
        let claimed = header.entry_size()?;
        let size = match kind {
            b'L' | b'K' | b'x' | b'g' => {
                if claimed > EXTENSION_LIMIT {
                    return Err(refused(format!(
                        "a tar extension header claims {claimed} bytes (real ones hold a few hundred; at most {EXTENSION_LIMIT} are taken)"
                    )));
                }
                if kind == b'x' {
                    self.pax = Some((Vec::with_capacity(claimed as usize), claimed as usize));
                }
                claimed
            }
            b'S' => {
                return Err(refused(
                    "it holds a GNU sparse entry, which no image archive or exported root filesystem has"
                        .into(),
                ));
            }
            _ => self.next_size.take().unwrap_or(claimed),
        };
        self.body_left = size
            .checked_add(BLOCK - 1)
            .map(|padded| padded & !(BLOCK - 1))
            .ok_or_else(|| refused(format!("an entry claims {size} bytes")))?;
        if self.body_left == 0 {
            self.end_body();
        }
        Ok(())
    }

    fn end_body(&mut self) {
        if let Some((bytes, len)) = self.pax.take() {
            let records = tar::PaxExtensions::new(&bytes[..len.min(bytes.len())]);
            self.next_size = records
                .flatten()
                .find(|record| record.key() == Ok("size"))
                .and_then(|record| record.value().ok()?.parse().ok());
        }
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.body_left > 0 {
            let want = buf
                .len()
                .min(usize::try_from(self.body_left).unwrap_or(usize::MAX));
            let read = self.inner.read(&mut buf[..want])?;
            if let Some((bytes, _)) = &mut self.pax {
                bytes.extend_from_slice(&buf[..read]);
            }
            self.body_left -= read as u64;
            if self.body_left == 0 && read > 0 {
                self.end_body();
            }
            return Ok(read);
        }
        let want = buf.len().min(BLOCK as usize - self.filled);
        let read = self.inner.read(&mut buf[..want])?;
        self.header[self.filled..self.filled + read].copy_from_slice(&buf[..read]);
        self.filled += read;
        if self.filled == BLOCK as usize {
            self.filled = 0;
            self.start_entry()?;
        }
        Ok(read)
    }
}

/// The tar crate skips a body it was not asked for by seeking forward to
/// the next header: that much, and only that, is followed.
impl<R: Read + Seek> Seek for TarGuard<R> {
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Current(delta) = position else {
            return Err(unfollowed());
        };
        let delta = u64::try_from(delta).map_err(|_| unfollowed())?;
        if delta > self.body_left || self.filled != 0 || self.pax.is_some() {
            return Err(unfollowed());
        }
        let at = self.inner.seek(position)?;
        self.body_left -= delta;
        if self.body_left == 0 {
            self.end_body();
        }
        Ok(at)
    }
}

fn unfollowed() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a guarded tar is read forwards, a body at a time",
    )
}

fn refused(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_of(tar_bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut archive = tar::Archive::new(TarGuard::new(tar_bytes));
        let mut found = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.display().to_string();
            let mut body = Vec::new();
            entry.read_to_end(&mut body)?;
            found.push((path, body));
        }
        Ok(found)
    }

    fn raw_header(name: &[u8], size: u64, kind: u8) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.as_mut_bytes()[..name.len()].copy_from_slice(name);
        header.set_size(size);
        header.set_mode(0o644);
        header.as_mut_bytes()[156] = kind;
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    #[test]
    fn honest_tars_pass_unchanged_long_names_pax_and_all() {
        let mut builder = tar::Builder::new(Vec::new());
        let long = format!("blobs/sha256/{}/{}", "a".repeat(120), "b".repeat(120));
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, &long, &b"hello"[..])
            .unwrap();
        let pax_size = b"13 size=1234\n";
        builder
            .append_pax_extensions([("path", &b"pax/named"[..])])
            .unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_size(3);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "short", &b"abc"[..])
            .unwrap();
        let mut bytes = builder.into_inner().unwrap();
        // A pax size overriding the header's: 1234 bytes follow, not 7.
        let mut tail = raw_header(b"././@PaxHeader", pax_size.len() as u64, b'x');
        tail.extend_from_slice(pax_size);
        tail.resize(tail.len() + 512 - pax_size.len(), 0);
        tail.extend(raw_header(b"sized", 7, b'0'));
        tail.extend(vec![7u8; 1234]);
        tail.resize(tail.len() + (512 - 1234 % 512), 0);
        let end = bytes.len() - 1024;
        bytes.splice(end..end, tail);
        let found = entries_of(&bytes).unwrap();
        assert_eq!(found[0], (long, b"hello".to_vec()));
        assert_eq!(found[1], ("pax/named".into(), b"abc".to_vec()));
        assert_eq!(found[2], ("sized".into(), vec![7u8; 1234]));
    }

    #[test]
    fn a_long_name_claiming_gigabytes_fails_the_read_at_its_header() {
        let mut bytes = raw_header(b"././@LongLink", 3 << 30, b'L');
        bytes.extend(vec![b'a'; 1 << 16]);
        let error = entries_of(&bytes).unwrap_err();
        assert!(
            error.to_string().contains("extension header claims"),
            "{error}"
        );
        let mut pax = raw_header(b"././@PaxHeader", 2 << 20, b'x');
        pax.extend(vec![b'a'; 1 << 16]);
        assert!(entries_of(&pax).is_err());
    }

    #[test]
    fn bodies_skipped_by_seeking_keep_the_walk_in_step() {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, size) in [("a", 700usize), ("b", 3), ("c", 1024)] {
            let mut header = tar::Header::new_gnu();
            header.set_size(size as u64);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, name, &vec![1u8; size][..])
                .unwrap();
        }
        let bytes = builder.into_inner().unwrap();
        let mut archive = tar::Archive::new(TarGuard::new(io::Cursor::new(bytes)));
        let names: Vec<String> = archive
            .entries_with_seek()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn a_sparse_entry_is_refused() {
        let mut bytes = raw_header(b"sparse", 0, b'S');
        bytes.extend(vec![0u8; 1024]);
        let error = entries_of(&bytes).unwrap_err();
        assert!(error.to_string().contains("sparse"), "{error}");
    }
}
