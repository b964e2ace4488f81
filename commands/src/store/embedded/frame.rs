//! Log file framing: `[len: u32 LE][crc32: u32 LE][body: len bytes]`, where the
//! body is an encoded envelope. A frame is valid when it is complete and its
//! checksum matches.

use std::io::{Read, Seek, SeekFrom};

pub(crate) const HEADER: usize = 8;

/// Largest frame body accepted (an event of 64 MiB is a bug, not data).
pub(crate) const MAX_BODY: usize = 64 << 20;

/// Appends one frame for `body` to `out`.
pub(crate) fn write_frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// Reads the frame starting at `buf[0]`: `Ok(Some((body, frame_len)))`, `Ok(None)`
/// when the buffer holds only part of it, `Err` when it is invalid.
pub(crate) fn read_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if len > MAX_BODY {
        return Err(format!("frame length {len} is over the limit"));
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    let body = &buf[HEADER..HEADER + len];
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(Some((body, HEADER + len)))
}

/// The outcome of scanning a log file from the start.
pub(crate) struct Scan {
    /// Offset just past the last valid frame.
    pub valid_end: u64,
    /// Bytes after `valid_end` that do not form a valid frame (a torn tail).
    pub torn_bytes: u64,
}

/// Scans every frame, calling `visit(offset, body)` for each valid one, and
/// finds where the valid prefix ends. A damaged frame followed by a valid one
/// is corruption, not a torn tail, and is an error.
pub(crate) fn scan(file: &mut std::fs::File, mut visit: impl FnMut(u64, &[u8]) -> Result<(), String>) -> Result<Scan, String> {
    let total = file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut buf: Vec<u8> = Vec::with_capacity(8 << 20);
    let mut buf_start: u64 = 0; // file offset of buf[0]
    let mut cursor = 0usize; // next frame within buf
    let mut chunk = vec![0u8; 8 << 20];
    let mut eof = false;
    loop {
        match read_frame(&buf[cursor..]) {
            Ok(Some((body, len))) => {
                visit(buf_start + cursor as u64, body)?;
                cursor += len;
            }
            Ok(None) if !eof => {
                buf.drain(..cursor);
                buf_start += cursor as u64;
                cursor = 0;
                let n = file.read(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    eof = true;
                } else {
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
            Ok(None) => {
                let valid_end = buf_start + cursor as u64;
                return Ok(Scan { valid_end, torn_bytes: total - valid_end });
            }
            Err(problem) => {
                let valid_end = buf_start + cursor as u64;
                if followed_by_valid_frame(file, &buf[cursor..], valid_end)? {
                    return Err(format!("damaged frame at offset {valid_end} ({problem}) is followed by valid data"));
                }
                return Ok(Scan { valid_end, torn_bytes: total - valid_end });
            }
        }
    }
}

/// Whether the bad frame's declared length leads to a valid frame: the sign of
/// corruption in the middle rather than a write cut short at the end.
fn followed_by_valid_frame(file: &mut std::fs::File, at_bad: &[u8], bad_offset: u64) -> Result<bool, String> {
    if at_bad.len() < HEADER {
        return Ok(false);
    }
    let len = u32::from_le_bytes(at_bad[0..4].try_into().expect("4 bytes")) as u64;
    if len as usize > MAX_BODY {
        return Ok(false);
    }
    let next = bad_offset + HEADER as u64 + len;
    let mut header = [0u8; HEADER];
    file.seek(SeekFrom::Start(next)).map_err(|e| e.to_string())?;
    if file.read_exact(&mut header).is_err() {
        return Ok(false);
    }
    let next_len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    if next_len > MAX_BODY || next_len == 0 {
        return Ok(false);
    }
    let mut body = vec![0u8; next_len];
    if file.read_exact(&mut body).is_err() {
        return Ok(false);
    }
    Ok(crc32fast::hash(&body) == u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")))
}
