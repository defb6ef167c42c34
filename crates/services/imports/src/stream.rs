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

/// What the record callback says: go on, stop reading (the reason is kept by the caller),
/// or that the record is not JSON ([`json_error`]'s message), which makes the file
/// unreadable.
pub enum Next {
    Continue,
    Stop,
    NotJson(String),
}

/// Why `record` is not one JSON value (serde_json's message), or None when it is. Records
/// reach the callback unchecked: a callback whose own parse refuses a record asks this to
/// tell a record that is not JSON (the file is then unreadable) from one that is JSON but
/// not a valid event.
pub fn json_error(record: &[u8]) -> Option<String> {
    serde_json::from_slice::<IgnoredAny>(record)
        .err()
        .map(|e| e.to_string())
}

/// Why reading stopped early.
#[derive(Debug)]
pub enum ReadError {
    /// The callback asked to stop.
    Stopped,
    /// The file is not `{"Records":[...]}` JSON, or its bytes could not be read.
    Unreadable(String),
}

/// Calls `on_record` with the text of each element of the file's `Records` array, in
/// order.
///
/// Files as CloudTrail writes them (`{"Records":[{…},{…}]}`) are split by a scanner that
/// finds each record's end; the record's text is handed over as it is, not checked to be
/// JSON (the callback parses it anyway, and asks [`json_error`] only when its parse
/// refuses it: checking every record first had cost ~5 % of an import's CPU). Any other
/// layout (other members first, spacing) goes through serde_json's streaming parser. Both
/// hold at most one record and a read chunk. The scanner exists because serde_json's
/// reader path handles a byte at a time; the scanner looks for a record's end with memchr
/// instead.
pub fn for_each_record<'a>(
    reader: impl Read + 'a,
    gzipped: bool,
    on_record: &mut dyn FnMut(&[u8]) -> Next,
) -> Result<(), ReadError> {
    let mut reader: Box<dyn Read + 'a> = if gzipped {
        Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(256 * 1024, reader),
        ))
    } else {
        Box::new(reader)
    };
    let mut head = Vec::with_capacity(CHUNK);
    while head.len() < RECORDS_START.len() + 64 {
        let read = fill(&mut reader, &mut head)?;
        if read == 0 {
            break;
        }
    }
    let start = head
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(head.len());
    if head[start..].starts_with(RECORDS_START) {
        let mut splitter = Splitter {
            reader,
            buf: head,
            at: start + RECORDS_START.len(),
        };
        return splitter.run(on_record);
    }
    for_each_record_streamed(Read::chain(std::io::Cursor::new(head), reader), on_record)
}

/// How CloudTrail's log files begin.
const RECORDS_START: &[u8] = b"{\"Records\":[";
/// Bytes read at a time.
const CHUNK: usize = 256 * 1024;

/// Appends up to [`CHUNK`] bytes from `reader` to `buf`; returns how many.
fn fill(reader: &mut dyn Read, buf: &mut Vec<u8>) -> Result<usize, ReadError> {
    let len = buf.len();
    buf.resize(len + CHUNK, 0);
    let read = loop {
        match reader.read(&mut buf[len..]) {
            Ok(read) => break read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(len);
                return Err(ReadError::Unreadable(format!(
                    "not a CloudTrail log file ({{\"Records\":[...]}}): {e}"
                )));
            }
        }
    };
    buf.truncate(len + read);
    Ok(read)
}

fn malformed(why: &str) -> ReadError {
    ReadError::Unreadable(format!(
        "not a CloudTrail log file ({{\"Records\":[...]}}): {why}"
    ))
}

/// Splits the `Records` array of a file that starts with [`RECORDS_START`].
struct Splitter<'a> {
    reader: Box<dyn Read + 'a>,
    buf: Vec<u8>,
    /// The first byte not yet consumed.
    at: usize,
}

impl Splitter<'_> {
    /// The next byte that is not whitespace, reading more as needed; None at the end.
    fn next_token(&mut self) -> Result<Option<u8>, ReadError> {
        loop {
            if let Some(offset) = self.buf[self.at..]
                .iter()
                .position(|byte| !byte.is_ascii_whitespace())
            {
                self.at += offset;
                return Ok(Some(self.buf[self.at]));
            }
            self.at = self.buf.len();
            if self.more()? == 0 {
                return Ok(None);
            }
        }
    }

    /// Drops what was consumed when that is most of the buffer, then reads a chunk.
    fn more(&mut self) -> Result<usize, ReadError> {
        if self.at > 0 && self.at >= self.buf.len() / 2 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        fill(&mut self.reader, &mut self.buf)
    }

    fn run(&mut self, on_record: &mut dyn FnMut(&[u8]) -> Next) -> Result<(), ReadError> {
        let mut first = true;
        loop {
            match self.next_token()? {
                Some(b']') => break,
                Some(b',') if !first => self.at += 1,
                Some(b'{') if first => {}
                Some(_) | None => return Err(malformed("the Records array is cut short")),
            }
            if !first && self.next_token()? != Some(b'{') {
                return Err(malformed("a record is not a JSON object"));
            }
            first = false;
            let end = self.record_end()?;
            let record = &self.buf[self.at..end];
            self.at = end;
            match on_record(record) {
                Next::Continue => {}
                Next::Stop => return Err(ReadError::Stopped),
                Next::NotJson(why) => return Err(malformed(&why)),
            }
        }
        self.at += 1;
        if self.next_token()? != Some(b'}') {
            return Err(malformed("expected } after the Records array"));
        }
        self.at += 1;
        match self.next_token()? {
            None => Ok(()),
            Some(_) => Err(malformed("trailing characters after the log file's object")),
        }
    }

    /// The end (exclusive) of the object starting at `self.at`, reading more as needed.
    fn record_end(&mut self) -> Result<usize, ReadError> {
        let mut scan = self.at;
        let mut depth = 0usize;
        let mut in_string = false;
        loop {
            while scan < self.buf.len() {
                if in_string {
                    match memchr::memchr2(b'"', b'\\', &self.buf[scan..]) {
                        None => scan = self.buf.len(),
                        Some(offset) => {
                            scan += offset;
                            if self.buf[scan] == b'\\' {
                                if scan + 1 >= self.buf.len() {
                                    break;
                                }
                                scan += 2;
                            } else {
                                in_string = false;
                                scan += 1;
                            }
                        }
                    }
                    continue;
                }
                match self.buf[scan] {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok(scan + 1);
                        }
                    }
                    _ => {}
                }
                scan += 1;
            }
            let consumed = self.at;
            if self.more()? == 0 {
                return Err(malformed("the file ends inside a record"));
            }
            // `more` may have dropped the consumed bytes: keep `scan` on the same byte.
            scan -= consumed - self.at;
        }
    }
}

/// [`for_each_record`] through serde_json's streaming parser.
fn for_each_record_streamed(
    reader: impl Read,
    on_record: &mut dyn FnMut(&[u8]) -> Next,
) -> Result<(), ReadError> {
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
    on_record: &'a mut dyn FnMut(&[u8]) -> Next,
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
    on_record: &'a mut dyn FnMut(&[u8]) -> Next,
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
            match (self.on_record)(record.get().as_bytes()) {
                Next::Continue => {}
                Next::Stop => {
                    *self.stopped = true;
                    return Err(A::Error::custom("stopped"));
                }
                Next::NotJson(why) => return Err(A::Error::custom(why)),
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
        for_each_record(text, gzipped, &mut |r| match json_error(r) {
            Some(why) => Next::NotJson(why),
            None => {
                out.push(String::from_utf8(r.to_vec()).unwrap());
                Next::Continue
            }
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
    fn the_scanner_splits_records_across_chunks_and_escapes() {
        // Records as CloudTrail writes them, large enough to span several read chunks,
        // with escaped quotes and backslashes and brackets inside strings.
        let records: Vec<String> = (0..400)
            .map(|i| {
                format!(
                    r#"{{"eventID":"{i}","s":"a \" ] }} {{ \\","pad":"{}","n":[1,{{"x":[]}}]}}"#,
                    "x".repeat(i * 7)
                )
            })
            .collect();
        let text = format!("{{\"Records\":[{}]}}\n", records.join(","));
        assert!(text.len() > 2 * CHUNK);
        assert_eq!(records_of(text.as_bytes()), records);
        assert_eq!(records_of(br#"{"Records":[]}"#), Vec::<String>::new());
        // The same through the streaming parser (another layout) gives the same records.
        let spaced = format!("{{ \"Records\" : [{}] }}", records.join(" , "));
        assert_eq!(records_of(spaced.as_bytes()), records);
    }

    fn records_of(text: &[u8]) -> Vec<String> {
        records(text, false).unwrap()
    }

    #[test]
    fn the_scanner_refuses_what_is_not_a_log_file() {
        for text in [
            &br#"{"Records":[{"a":1}"#[..],
            br#"{"Records":[{"a":1},]}"#,
            br#"{"Records":[{"a":1}]} x"#,
            br#"{"Records":[{"a":1}]"#,
            br#"{"Records":[1]}"#,
            br#"{"Records":[{"a":}]}"#,
            br#"{"Records":[{"a":1} {"a":2}]}"#,
        ] {
            assert!(
                matches!(records(text, false), Err(ReadError::Unreadable(_))),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
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
