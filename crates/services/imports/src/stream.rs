//! Reads a log file's records one at a time: the object's bytes arrive as a stream, are
//! inflated as they come (`.gz`) and `{"Records":[...]}` is parsed record by record, so a
//! large file is never held whole, compressed or decoded.

use bytes::{Buf, Bytes};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::io::Read;
use tokio::runtime::Handle;

/// A blocking `Read` over an object's byte stream (use on a blocking thread).
pub struct StreamReader {
    handle: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
}

impl StreamReader {
    pub fn new(handle: Handle, stream: BoxStream<'static, object_store::Result<Bytes>>) -> Self {
        Self {
            handle,
            stream,
            current: Bytes::new(),
        }
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// What the record callback says: go on, or stop reading (the reason is kept by the caller).
pub enum Next {
    Continue,
    Stop,
}

/// Why reading stopped early.
#[derive(Debug)]
pub enum ReadError {
    /// The callback asked to stop.
    Stopped,
    /// The file is not `{"Records":[...]}` JSON, or its bytes could not be read.
    Unreadable(String),
}

/// Calls `on_record` for each element of the file's `Records` array, in order.
pub fn for_each_record(
    reader: impl Read,
    gzipped: bool,
    on_record: &mut dyn FnMut(Box<RawValue>) -> Next,
) -> Result<(), ReadError> {
    let reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(256 * 1024, reader),
        ))
    } else {
        Box::new(reader)
    };
    let mut stopped = false;
    let mut deserializer = serde_json::Deserializer::from_reader(
        std::io::BufReader::with_capacity(256 * 1024, reader),
    );
    let outcome = FileSeed {
        on_record,
        stopped: &mut stopped,
    }
    .deserialize(&mut deserializer)
    .and_then(|found| {
        deserializer.end()?;
        Ok(found)
    });
    if stopped {
        return Err(ReadError::Stopped);
    }
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(ReadError::Unreadable(
            "not a CloudTrail log file: no Records array".into(),
        )),
        Err(e) => Err(ReadError::Unreadable(format!(
            "not a CloudTrail log file ({{\"Records\":[...]}}): {e}"
        ))),
    }
}

struct FileSeed<'a> {
    on_record: &'a mut dyn FnMut(Box<RawValue>) -> Next,
    stopped: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    /// Whether a `Records` array was found.
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object with a Records array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "Records" && !found {
                map.next_value_seed(RecordsSeed {
                    on_record: &mut *self.on_record,
                    stopped: &mut *self.stopped,
                })?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

struct RecordsSeed<'a> {
    on_record: &'a mut dyn FnMut(Box<RawValue>) -> Next,
    stopped: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<Box<RawValue>>()? {
            if let Next::Stop = (self.on_record)(record) {
                *self.stopped = true;
                return Err(A::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn records(text: &[u8], gzipped: bool) -> Result<Vec<String>, ReadError> {
        let mut out = Vec::new();
        for_each_record(text, gzipped, &mut |r| {
            out.push(r.get().to_string());
            Next::Continue
        })?;
        Ok(out)
    }

    #[test]
    fn records_are_read_one_by_one_plain_and_gzipped() {
        let text = br#"{"Other":{"a":[1]},"Records":[{"eventID":"1"}, {"eventID":"2"}]}"#;
        assert_eq!(
            records(text, false).unwrap(),
            vec![r#"{"eventID":"1"}"#, r#"{"eventID":"2"}"#]
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(records(&gz, true).unwrap().len(), 2);
    }

    #[test]
    fn files_that_are_not_log_files_are_unreadable() {
        assert!(matches!(
            records(b"{\"Nope\":1}", false),
            Err(ReadError::Unreadable(_))
        ));
        assert!(matches!(
            records(b"{\"Records\":[{\"a\":1}", false),
            Err(ReadError::Unreadable(_))
        ));
        assert!(matches!(
            records(b"not gzip", true),
            Err(ReadError::Unreadable(_))
        ));
    }

    #[test]
    fn the_callback_can_stop_reading() {
        let text = br#"{"Records":[{"a":1},{"a":2},{"a":3}]}"#;
        let mut seen = 0;
        let outcome = for_each_record(&text[..], false, &mut |_| {
            seen += 1;
            if seen == 2 {
                Next::Stop
            } else {
                Next::Continue
            }
        });
        assert!(matches!(outcome, Err(ReadError::Stopped)));
        assert_eq!(seen, 2);
    }
}
