//! A walk over a tar's headers that holds no more than it is allowed to:
//! bodies are skipped (by seeking where the input can), long names and pax
//! records are read only up to a bound, and the first bytes of a body are
//! read only when asked for. The tar crate reads GNU long names and pax
//! headers whole, whatever size they claim, which a hostile file could use
//! to exhaust memory; hence this walker of its own.

use std::fs::File;
use std::io::{self, BufReader, Read};

const BLOCK: u64 = 512;
/// The longest GNU long name or pax header read: real ones are a few
/// hundred bytes.
const EXTENSION_LIMIT: u64 = 1 << 20;

/// Where the tar's bytes come from.
pub(super) enum Input<'a> {
    /// An uncompressed file: bodies are skipped by seeking.
    File { file: BufReader<File>, len: u64 },
    /// A decoded stream: bodies are read and dropped.
    Stream(Box<dyn Read + Send + 'a>),
}

impl Input<'_> {
    fn skip(&mut self, position: u64, count: u64) -> io::Result<()> {
        match self {
            Self::File { file, len } => {
                if position.saturating_add(count) > *len {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                let count = i64::try_from(count)
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
                file.seek_relative(count)
            }
            Self::Stream(stream) => {
                let copied = io::copy(&mut stream.take(count), &mut io::sink())?;
                if copied < count {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(())
            }
        }
    }
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::File { file, .. } => file.read(buf),
            Self::Stream(stream) => stream.read(buf),
        }
    }
}

/// One entry's header, with any long name or pax path and size applied.
#[derive(Clone, Debug)]
pub(super) struct Header {
    /// The path, as bytes turned into text (invalid UTF-8 replaced).
    pub path: String,
    /// The type flag (`b'0'` a file, `b'5'` a directory, `b'2'` a symlink, …).
    pub kind: u8,
    /// The body's size.
    pub size: u64,
}

impl Header {
    /// A regular file (`0`, the old `\0`, or contiguous `7`).
    pub fn is_file(&self) -> bool {
        matches!(self.kind, b'0' | 0 | b'7')
    }
}

/// Walks the headers of a tar.
pub(super) struct Walker<'a> {
    input: Input<'a>,
    /// Bytes of the tar consumed so far.
    position: u64,
    /// Bytes of the current entry's body (with its padding) not yet consumed.
    pending: u64,
    /// Of those, the body's own.
    body_left: u64,
}

/// What a walk ran into that ends it.
#[derive(Debug)]
pub(super) enum WalkError {
    /// A header that is not a tar header: wrong checksum, unreadable size.
    NotATar,
    /// The data ended inside an entry, or could not be read or decoded.
    Damaged,
}

impl<'a> Walker<'a> {
    pub fn new(input: Input<'a>) -> Self {
        Self {
            input,
            position: 0,
            pending: 0,
            body_left: 0,
        }
    }

    /// The next entry's header; `None` at the end-of-archive marker or
    /// where the data ends between entries.
    pub fn next(&mut self) -> Result<Option<Header>, WalkError> {
        let mut long_name: Option<String> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            self.skip_pending()?;
            let Some(block) = self.read_block()? else {
                return Ok(None);
            };
            if block.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            let mut header = parse(&block).ok_or(WalkError::NotATar)?;
            self.pending = padded(header.size);
            self.body_left = header.size;
            match header.kind {
                b'L' => long_name = Some(text(trim_nul(&self.read_extension(&header)?))),
                b'x' => {
                    let records = self.read_extension(&header)?;
                    for extension in tar::PaxExtensions::new(&records).flatten() {
                        match extension.key() {
                            Ok("path") => long_name = Some(text(extension.value_bytes())),
                            Ok("size") => {
                                pax_size = extension.value().ok().and_then(|v| v.parse().ok());
                            }
                            _ => {}
                        }
                    }
                }
                b'g' | b'K' => {}
                _ => {
                    if let Some(name) = long_name.take() {
                        header.path = name;
                    }
                    if let Some(size) = pax_size.take() {
                        header.size = size;
                        self.pending = padded(size);
                        self.body_left = size;
                    }
                    return Ok(Some(header));
                }
            }
        }
    }

    /// Up to `limit` bytes from the start of the current entry's body.
    pub fn read_body(&mut self, limit: u64) -> Result<Vec<u8>, WalkError> {
        let want = limit.min(self.body_left);
        let mut body = Vec::with_capacity(want as usize);
        (&mut self.input)
            .take(want)
            .read_to_end(&mut body)
            .map_err(|_| WalkError::Damaged)?;
        if (body.len() as u64) < want {
            return Err(WalkError::Damaged);
        }
        self.pending -= want;
        self.body_left -= want;
        self.position += want;
        Ok(body)
    }

    fn read_extension(&mut self, header: &Header) -> Result<Vec<u8>, WalkError> {
        if header.size > EXTENSION_LIMIT {
            return Err(WalkError::NotATar);
        }
        self.read_body(EXTENSION_LIMIT)
    }

    fn skip_pending(&mut self) -> Result<(), WalkError> {
        let count = std::mem::take(&mut self.pending);
        self.body_left = 0;
        self.input
            .skip(self.position, count)
            .map_err(|_| WalkError::Damaged)?;
        self.position += count;
        Ok(())
    }

    /// The next 512 bytes; `None` if the data ends before any of them.
    fn read_block(&mut self) -> Result<Option<[u8; BLOCK as usize]>, WalkError> {
        let mut block = [0u8; BLOCK as usize];
        let mut filled = 0;
        while filled < block.len() {
            match self.input.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(WalkError::Damaged),
            }
        }
        let at_start = self.position == 0;
        self.position += filled as u64;
        match filled {
            0 => Ok(None),
            n if n == block.len() => Ok(Some(block)),
            // Shorter than one header: a small file of something else.
            _ if at_start => Err(WalkError::NotATar),
            _ => Err(WalkError::Damaged),
        }
    }
}

fn padded(size: u64) -> u64 {
    size.saturating_add(BLOCK - 1) / BLOCK * BLOCK
}

/// A header block's path, type and size; `None` if it is not a tar header.
fn parse(block: &[u8; BLOCK as usize]) -> Option<Header> {
    let stored = octal(&block[148..156])?;
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return None;
    }
    let size = size(&block[124..136])?;
    let name = trim_nul(&block[..100]);
    // POSIX ustar keeps the path's start in a prefix field; GNU tars use
    // those bytes for other things.
    let path = if &block[257..263] == b"ustar\0" && block[345] != 0 {
        format!("{}/{}", text(trim_nul(&block[345..500])), text(name))
    } else {
        text(name)
    };
    Some(Header {
        path,
        kind: block[156],
        size,
    })
}

fn size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        // GNU base-256: big-endian, the top bit of the first byte a marker.
        if field[0] != 0x80 || field[1..4].iter().any(|&b| b != 0) {
            return None;
        }
        return Some(
            field[4..]
                .iter()
                .fold(0u64, |n, &b| (n << 8) | u64::from(b)),
        );
    }
    octal(field)
}

fn octal(field: &[u8]) -> Option<u64> {
    let digits = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| b != 0 && b != b' ');
    let mut value = 0u64;
    let mut any = false;
    for &digit in digits {
        if !(b'0'..=b'7').contains(&digit) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(digit - b'0'))?;
        any = true;
    }
    any.then_some(value)
}

fn trim_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
