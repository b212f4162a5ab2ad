//! Writes tar entries one at a time into any writer, without the end-of-archive
//! marker `tar::Builder` always adds: a bundle's tar is written in several
//! pieces (head and body frames) that only together form one archive.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;

/// Writes one regular-file entry of exactly `size` bytes from `content`.
/// Fails if `content` yields fewer or more bytes than `size`.
pub fn append<W, R>(out: &mut W, path: &str, size: u64, content: &mut R) -> io::Result<()>
where
    W: Write + ?Sized,
    R: Read + ?Sized,
{
    out.write_all(header(path, size)?.as_bytes())?;
    let copied = io::copy(&mut Read::take(&mut *content, size), out)?;
    let mut probe = [0u8; 1];
    if copied != size || content.read(&mut probe)? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: content is not the declared {size} bytes"),
        ));
    }
    pad(out, size)
}

/// The bytes [`append`] writes for an entry of `size` bytes: header,
/// content and padding.
pub fn entry_len(size: u64) -> u64 {
    BLOCK as u64 + size.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// Writes one regular-file entry holding `bytes`.
pub fn append_bytes<W: Write + ?Sized>(out: &mut W, path: &str, bytes: &[u8]) -> io::Result<()> {
    append(out, path, bytes.len() as u64, &mut &bytes[..])
}

/// Writes the end-of-archive marker: two zero records.
pub fn finish<W: Write + ?Sized>(out: &mut W) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK])
}

fn header(path: &str, size: u64) -> io::Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(header)
}

fn pad<W: Write + ?Sized>(out: &mut W, size: u64) -> io::Result<()> {
    let remainder = (size % BLOCK as u64) as usize;
    if remainder != 0 {
        out.write_all(&[0u8; BLOCK][..BLOCK - remainder])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_with_the_tar_crate() {
        let mut out = Vec::new();
        append_bytes(&mut out, "a/b.txt", b"hello").unwrap();
        let long = format!("blobs/sha256/{}", "f".repeat(64));
        append_bytes(&mut out, &long, &[1u8; 1000]).unwrap();
        finish(&mut out).unwrap();

        let mut archive = tar::Archive::new(&out[..]);
        let entries: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), e.size())
            })
            .collect();
        assert_eq!(entries, vec![("a/b.txt".to_owned(), 5), (long, 1000)]);
        assert_eq!(out.len() as u64, entry_len(5) + entry_len(1000) + 1024);
        assert_eq!(entry_len(512), 1024);
    }

    #[test]
    fn short_content_is_an_error() {
        let mut out = Vec::new();
        assert!(append(&mut out, "x", 10, &mut &b"abc"[..]).is_err());
        assert!(append(&mut out, "x", 2, &mut &b"abc"[..]).is_err());
    }
}
