//! Encoding a snapshot's body: a sequence of bincode values, written and
//! read one after another (bincode's standard configuration, no limit: the
//! body is read only after its checksum matched), from the body in memory
//! ([`Reader`]) or as it streams from the file ([`Stream`]).

use bincode::config::{standard, Configuration};
use bincode::de::read::SliceReader;
use bincode::de::DecoderImpl;
use bincode::{Decode, Encode};

const CONFIG: Configuration = standard();

/// Writes values one after another: into `bytes`, or, for a writer made
/// with [`Writer::spilling`], into `bytes` as a buffer that goes to its sink
/// whenever it holds a few MiB, so a large body is never held whole.
#[derive(Default)]
pub struct Writer<'s> {
    /// What was written (for a spilling writer: since the last spill).
    pub bytes: Vec<u8>,
    spill: Option<Spill<'s>>,
}

/// Where a spilling writer's bytes go, and the first error it met there.
struct Spill<'s> {
    sink: Box<dyn std::io::Write + 's>,
    at: usize,
    failed: Option<std::io::Error>,
}

impl<'s> Writer<'s> {
    /// A writer that hands its bytes to `sink` each time it holds `at` of
    /// them or more; [`Writer::finish`] hands over the rest.
    pub fn spilling(sink: impl std::io::Write + 's, at: usize) -> Writer<'s> {
        Writer { bytes: Vec::with_capacity(at + at / 4), spill: Some(Spill { sink: Box::new(sink), at, failed: None }) }
    }

    pub fn put<T: Encode>(&mut self, value: &T) {
        bincode::encode_into_std_write(value, &mut self.bytes, CONFIG).expect("encoding into a Vec cannot fail");
        self.spill_when_full();
    }

    /// Bytes as they are (no length before them: a body made elsewhere).
    pub fn put_raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.spill_when_full();
    }

    /// Spills what is buffered when it is `at` or more (a caller that wrote
    /// into `bytes` itself calls this after).
    pub fn spill_when_full(&mut self) {
        if self.spill.as_ref().is_some_and(|spill| self.bytes.len() >= spill.at) {
            self.spill_now();
        }
    }

    fn spill_now(&mut self) {
        if let Some(spill) = &mut self.spill {
            if spill.failed.is_none() {
                if let Err(error) = spill.sink.write_all(&self.bytes) {
                    spill.failed = Some(error);
                }
            }
            self.bytes.clear();
        }
    }

    /// Hands a spilling writer's last bytes to its sink and flushes it;
    /// the first error the sink gave, if any. A writer into memory keeps its bytes.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.spill_now();
        match &mut self.spill {
            Some(spill) => match spill.failed.take() {
                Some(error) => Err(error),
                None => spill.sink.flush(),
            },
            None => Ok(()),
        }
    }
}

/// One value written with [`Writer::put`] at the start of `bytes`, and how
/// many bytes it took (for a reader that needs the bytes of each value too).
pub fn take_from_slice<T: Decode<()>>(bytes: &[u8], what: &'static str) -> Result<(T, usize), String> {
    bincode::decode_from_slice(bytes, CONFIG).map_err(|e| format!("{what}: {e}"))
}

/// Reads values back in the order they were written.
pub struct Reader<'a> {
    decoder: DecoderImpl<SliceReader<'a>, Configuration, ()>,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { decoder: DecoderImpl::new(SliceReader::new(bytes), CONFIG, ()), what }
    }

    pub fn take<T: Decode<()>>(&mut self) -> Result<T, String> {
        T::decode(&mut self.decoder).map_err(|e| format!("{}: {e}", self.what))
    }

    /// Bytes written with [`Writer::put`] as a `&[u8]`, where the body holds them.
    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        <&'a [u8] as bincode::BorrowDecode<'a, ()>>::borrow_decode(&mut self.decoder).map_err(|e| format!("{}: {e}", self.what))
    }

    /// A length written with [`Writer::put`] as a `u64`.
    pub fn count(&mut self) -> Result<usize, String> {
        let len: u64 = self.take()?;
        usize::try_from(len).map_err(|_| format!("{}: a length out of range", self.what))
    }

    /// Fails unless every byte was read.
    pub fn finish(mut self) -> Result<(), String> {
        use bincode::de::read::Reader as _;
        use bincode::de::Decoder as _;
        match self.decoder.reader().peek_read(1) {
            Some(rest) if !rest.is_empty() => Err(format!("{}: trailing bytes", self.what)),
            _ => Ok(()),
        }
    }
}

/// Reads values back in the order they were written, as the body streams
/// from its file (or any reader): a body decoded this way is never held
/// whole, only the values and the chunks of bytes taken from it.
pub struct Stream {
    decoder: DecoderImpl<Left, Configuration, ()>,
    what: &'static str,
}

/// A reader that ends after the body's length.
struct Left {
    inner: Box<dyn std::io::Read + Send>,
    left: u64,
}

impl bincode::de::read::Reader for Left {
    fn read(&mut self, bytes: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        if bytes.len() as u64 > self.left {
            return Err(bincode::error::DecodeError::UnexpectedEnd { additional: bytes.len() - self.left as usize });
        }
        self.inner.read_exact(bytes).map_err(|inner| bincode::error::DecodeError::Io { inner, additional: bytes.len() })?;
        self.left -= bytes.len() as u64;
        Ok(())
    }
}

impl Stream {
    /// The `length` bytes `inner` holds from where it is.
    pub fn new(inner: impl std::io::Read + Send + 'static, length: u64, what: &'static str) -> Stream {
        Stream { decoder: DecoderImpl::new(Left { inner: Box::new(inner), left: length }, CONFIG, ()), what }
    }

    pub fn take<T: Decode<()>>(&mut self) -> Result<T, String> {
        T::decode(&mut self.decoder).map_err(|e| format!("{}: {e}", self.what))
    }

    /// A length written with [`Writer::put`] as a `u64`.
    pub fn count(&mut self) -> Result<usize, String> {
        let len: u64 = self.take()?;
        usize::try_from(len).map_err(|_| format!("{}: a length out of range", self.what))
    }

    /// Bytes written with [`Writer::put`] as a `&[u8]`, read into a buffer of their own.
    pub fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let length = self.count()?;
        self.next_bytes(length as u64)
    }

    /// What is left of the body, in memory.
    pub fn rest(&mut self) -> Result<Vec<u8>, String> {
        use bincode::de::Decoder as _;
        let left = self.decoder.reader().left;
        self.next_bytes(left)
    }

    /// The next `length` bytes, refused when the body ends before them.
    fn next_bytes(&mut self, length: u64) -> Result<Vec<u8>, String> {
        use bincode::de::Decoder as _;
        if length > self.decoder.reader().left {
            return Err(format!("{}: bytes past its end", self.what));
        }
        let mut bytes = vec![0; usize::try_from(length).map_err(|_| format!("{}: too long", self.what))?];
        bincode::de::read::Reader::read(self.decoder.reader(), &mut bytes).map_err(|e| format!("{}: {e}", self.what))?;
        Ok(bytes)
    }

    /// Fails unless every byte was read.
    pub fn finish(mut self) -> Result<(), String> {
        use bincode::de::Decoder as _;
        match self.decoder.reader().left {
            0 => Ok(()),
            _ => Err(format!("{}: trailing bytes", self.what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spilling_writer_hands_over_what_a_writer_in_memory_holds_in_pieces() {
        let write = |out: &mut Writer| {
            for n in 0..1000u64 {
                out.put(&(n, format!("value {n}")));
                if n % 100 == 0 {
                    out.put_raw(b"raw");
                }
            }
        };
        let mut memory = Writer::default();
        write(&mut memory);
        let mut pieces: Vec<usize> = Vec::new();
        let mut file = Vec::new();
        struct Counting<'a>(&'a mut Vec<u8>, &'a mut Vec<usize>);
        impl std::io::Write for Counting<'_> {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.1.push(bytes.len());
                self.0.extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut spilling = Writer::spilling(Counting(&mut file, &mut pieces), 1000);
        write(&mut spilling);
        spilling.finish().unwrap();
        drop(spilling);
        assert_eq!(file, memory.bytes);
        assert!(pieces.len() > 10 && pieces.iter().all(|&n| n < 1100), "{pieces:?}");

        // The sink's first error is what finish reports.
        struct Full;
        impl std::io::Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("the disk is full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut failing = Writer::spilling(Full, 1000);
        write(&mut failing);
        assert_eq!(failing.finish().unwrap_err().to_string(), "the disk is full");
    }

    #[test]
    fn a_stream_reads_what_a_slice_does_and_stops_at_its_length() {
        let mut out = Writer::default();
        out.put(&7u64);
        out.put(&"seven".to_string());
        out.put(&b"some bytes".as_slice());
        out.put(&(3u64, 4u8));
        let body = out.bytes.clone();
        let read = |length: u64| {
            let mut input = Stream::new(std::io::Cursor::new(body.clone()), length, "test");
            let parts = (input.count()?, input.take::<String>()?, input.bytes()?, input.take::<(u64, u8)>()?);
            input.finish().map(|()| parts)
        };
        assert_eq!(read(body.len() as u64).unwrap(), (7, "seven".to_string(), b"some bytes".to_vec(), (3, 4)));
        assert!(read(body.len() as u64 - 1).is_err(), "a value past the length is refused");
        let mut longer = body.clone();
        longer.push(0);
        let mut input = Stream::new(std::io::Cursor::new(longer.clone()), longer.len() as u64, "test");
        let _ = (input.count().unwrap(), input.take::<String>().unwrap(), input.bytes().unwrap(), input.take::<(u64, u8)>().unwrap());
        assert!(input.finish().is_err(), "trailing bytes are refused");
        let mut input = Stream::new(std::io::Cursor::new(body.clone()), body.len() as u64, "test");
        input.count().unwrap();
        assert_eq!(input.rest().unwrap(), body[1..]);
        input.finish().unwrap();
    }
}
