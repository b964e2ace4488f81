//! Encoding a snapshot's body: a sequence of bincode values, written and
//! read one after another (bincode's standard configuration, no limit: the
//! body is read only after its checksum matched).

use bincode::config::{standard, Configuration};
use bincode::de::read::SliceReader;
use bincode::de::DecoderImpl;
use bincode::{Decode, Encode};

const CONFIG: Configuration = standard();

/// Writes values one after another.
#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn put<T: Encode>(&mut self, value: &T) {
        bincode::encode_into_std_write(value, &mut self.bytes, CONFIG).expect("encoding into a Vec cannot fail");
    }
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
