//! A snapshot file: a header naming what the body holds and where the log
//! was, a checksum over both, then the body.
//!
//! Layout: magic (8 bytes), body format (u32), position (u64), the id of the
//! event at that position (16 bytes), body length (u64), all little-endian,
//! then the CRC-32 of everything before it and of the body, then the body.
//! A file is written beside its final name, synced, renamed over it, and the
//! directory synced: a reader finds the old file or the new one, whole.

use std::fs::File;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 8] = b"OSSNAP\0\x01";
const HEADER: usize = 8 + 4 + 8 + 16 + 8;

/// What a file's header says.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub format: u32,
    /// The position the body is current as of.
    pub position: u64,
    /// The id of the event the log holds at `position`.
    pub event_id: [u8; 16],
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    #[error("it is not a snapshot file")]
    NotSnapshot,
    #[error("it is of format {found}, this server reads {wanted}")]
    Format { found: u32, wanted: u32 },
    #[error("it is damaged (its checksum does not match, or it is cut short)")]
    Damaged,
}

/// Writes `body` under `header` to `path`, atomically and durably.
pub fn write(path: &Path, header: &Header, body: &[u8]) -> std::io::Result<()> {
    write_with(path, |out| out.write_all(body).map(|()| (header.clone(), ()))).map(drop)
}

/// Bytes a body is written to its file in, at most (a [`codec::Writer`]
/// spilling into the file hands it over in pieces about this large).
///
/// [`codec::Writer`]: super::codec::Writer
pub const SPILL_AT: usize = 4 << 20;

/// Writes the body `fill` writes to `path`, under the header `fill` returns
/// once the body is whole (with anything else it learnt, handed back),
/// atomically and durably: the body goes to the file
/// as it comes and is never held whole. The header's place is kept while it
/// streams and written last, with the body's length and the checksum over
/// both. (The header comes last so that a model encoded as it is, under its
/// lock, names the position it was at while it was encoded.) Any failure,
/// `fill`'s included, leaves no partial file and `path` as it was.
pub fn write_with<R, E: From<std::io::Error>>(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<(Header, R), E>) -> Result<(Header, R), E> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let partial = path.with_extension("partial");
    let written = write_partial(&partial, fill).and_then(|written| {
        std::fs::rename(&partial, path)?;
        File::open(dir)?.sync_all()?;
        Ok(written)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// The whole file at `partial`, synced, its header last.
fn write_partial<R, E: From<std::io::Error>>(partial: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<(Header, R), E>) -> Result<(Header, R), E> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::create(partial)?;
    file.write_all(&[0; HEADER + 4])?;
    let mut body = Body { file, crc: crc32fast::Hasher::new(), length: 0 };
    let (header, learnt) = fill(&mut body)?;
    let Body { mut file, crc: body_crc, length } = body;
    let head = encode_header(&header, length);
    // The checksum is over the header, then the body: the body's, taken as
    // it streamed, appended to the header's.
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.combine(&body_crc);
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&head)?;
    file.write_all(&crc.finalize().to_le_bytes())?;
    file.sync_all()?;
    Ok((header, learnt))
}

/// A body on its way to the file: its checksum and length kept as it passes.
struct Body {
    file: File,
    crc: crc32fast::Hasher,
    length: u64,
}

impl Write for Body {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(bytes)?;
        self.crc.update(&bytes[..written]);
        self.length += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A file whose header and checksum were checked, open at its body.
pub struct Checked {
    pub header: Header,
    /// The body's length in bytes.
    pub length: u64,
    pub body: std::io::BufReader<File>,
}

impl Checked {
    /// The whole body, read into memory.
    pub fn into_bytes(mut self) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut bytes = Vec::with_capacity(usize::try_from(self.length).unwrap_or(usize::MAX));
        (&mut self.body).take(self.length).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// Bytes checked at a time: the body is checked as it streams past, never
/// held whole, so a model that decodes while reading never holds its file's
/// bytes all at once.
const CHECKED_AT_ONCE: usize = 1 << 20;

/// Opens the file at `path` when it is a whole snapshot of `format`: its
/// header read and its checksum checked over header and body (one pass
/// through the file), and the file left at the start of the body. Snapshot
/// files are replaced by renaming, never written in place, so what the open
/// file holds cannot change between the check and the read.
pub fn open(path: &Path, format: u32) -> Result<Checked, FileError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut head = [0u8; HEADER + 4];
    if size < head.len() as u64 {
        return Err(FileError::NotSnapshot);
    }
    file.read_exact(&mut head)?;
    if &head[..8] != MAGIC {
        return Err(FileError::NotSnapshot);
    }
    let u64_at = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
    let found = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    let header = Header { format: found, position: u64_at(12), event_id: head[20..36].try_into().expect("16 bytes") };
    let length = u64_at(36);
    if found != format {
        return Err(FileError::Format { found, wanted: format });
    }
    if length != size - head.len() as u64 {
        return Err(FileError::Damaged);
    }
    let stored = u32::from_le_bytes(head[HEADER..HEADER + 4].try_into().expect("4 bytes"));
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[..HEADER]);
    let mut block = vec![0u8; CHECKED_AT_ONCE];
    let mut left = length;
    while left > 0 {
        let now = block.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        file.read_exact(&mut block[..now])
            .map_err(|error| if error.kind() == std::io::ErrorKind::UnexpectedEof { FileError::Damaged } else { error.into() })?;
        crc.update(&block[..now]);
        left -= now as u64;
    }
    if crc.finalize() != stored {
        return Err(FileError::Damaged);
    }
    file.seek(SeekFrom::Start(head.len() as u64))?;
    Ok(Checked { header, length, body: std::io::BufReader::with_capacity(CHECKED_AT_ONCE, file) })
}

/// The position in the header of the file at `path`, when it is a snapshot
/// of `format` (the body is not read, so not checked).
pub fn read_header(path: &Path, format: u32) -> Option<u64> {
    use std::io::Read;
    let mut head = [0u8; HEADER];
    File::open(path).ok()?.read_exact(&mut head).ok()?;
    let found = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    (&head[..8] == MAGIC && found == format).then(|| u64::from_le_bytes(head[12..20].try_into().expect("8 bytes")))
}

fn encode_header(header: &Header, length: u64) -> Vec<u8> {
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&header.format.to_le_bytes());
    head.extend_from_slice(&header.position.to_le_bytes());
    head.extend_from_slice(&header.event_id);
    head.extend_from_slice(&length.to_le_bytes());
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file's header and whole body, as a load checks them.
    fn read(path: &Path, format: u32) -> Result<(Header, Vec<u8>), FileError> {
        let checked = open(path, format)?;
        let header = checked.header.clone();
        Ok((header, checked.into_bytes()?))
    }

    fn header() -> Header {
        Header { format: 3, position: 42, event_id: [7; 16] }
    }

    #[test]
    fn a_written_file_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.snapshot");
        write(&path, &header(), b"the body").unwrap();
        assert_eq!(read(&path, 3).unwrap(), (header(), b"the body".to_vec()));
        assert_eq!((read_header(&path, 3), read_header(&path, 4)), (Some(42), None));
        assert!(!path.with_extension("partial").exists());
    }

    #[test]
    fn a_body_written_as_it_comes_is_the_file_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..100_000u32).map(|n| (n * 7 % 251) as u8).collect();
        let (whole, streamed) = (dir.path().join("whole.snapshot"), dir.path().join("streamed.snapshot"));
        write(&whole, &header(), &body).unwrap();
        let written = write_with(&streamed, |out| body.chunks(999).try_for_each(|piece| out.write_all(piece)).map(|()| (header(), "learnt"))).unwrap();
        assert_eq!(written, (header(), "learnt"));
        assert_eq!(std::fs::read(&streamed).unwrap(), std::fs::read(&whole).unwrap());
        assert_eq!(read(&streamed, 3).unwrap(), (header(), body.clone()));

        // The header is the one the body names once it is whole (a model
        // encoded under its lock learns its position as it encodes).
        let later = dir.path().join("later.snapshot");
        write_with(&later, |out| out.write_all(&body).map(|()| (Header { position: 44, ..header() }, ()))).unwrap();
        assert_eq!(read(&later, 3).unwrap(), (Header { position: 44, ..header() }, body));

        // A body that fails on its way leaves no file, and the old one as it was.
        let failed = write_with(&streamed, |out| {
            out.write_all(b"half")?;
            Err::<(Header, ()), _>(std::io::Error::other("the encoder gave up"))
        });
        assert!(failed.is_err());
        assert_eq!(read_header(&streamed, 3), Some(42));
        assert!(!streamed.with_extension("partial").exists());
    }

    #[test]
    fn a_damaged_or_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.snapshot");
        write(&path, &header(), b"the body").unwrap();
        assert!(matches!(read(&path, 4), Err(FileError::Format { found: 3, wanted: 4 })));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(&path, 3), Err(FileError::Damaged)));
        bytes[last] ^= 1;
        bytes[14] ^= 1; // the position
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(&path, 3), Err(FileError::Damaged)));
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        assert!(matches!(read(&path, 3), Err(FileError::Damaged)));
        std::fs::write(&path, b"something else entirely, long enough to have a header of its own").unwrap();
        assert!(matches!(read(&path, 3), Err(FileError::NotSnapshot)));
    }
}
