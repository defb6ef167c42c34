//! Just enough Apache Avro for Iceberg's manifests and manifest lists: the binary encoding
//! of records, ints, longs, strings and unions, in an uncompressed object container file
//! (Avro 1.11 specification, "Object Container Files"). Written here rather than with the
//! `apache-avro` crate, whose mandatory dependencies turn on features (uuid/serde,
//! num-bigint/serde) of crates DataFusion shares, which rebuilds DataFusion.

/// A value to encode; a record's fields come in its schema's order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Datum {
    Int(i32),
    Long(i64),
    Str(String),
    /// Only read (the writers never write a null).
    #[cfg(test)]
    Null,
    /// The branch's index in the union's schema, and its value.
    Union(u32, Box<Datum>),
    Record(Vec<Datum>),
}

fn put_long(out: &mut Vec<u8>, n: i64) {
    let mut zigzag = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

impl Datum {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(n) => put_long(out, i64::from(*n)),
            Self::Long(n) => put_long(out, *n),
            Self::Str(text) => put_bytes(out, text.as_bytes()),
            #[cfg(test)]
            Self::Null => {}
            Self::Union(branch, value) => {
                put_long(out, i64::from(*branch));
                value.encode(out);
            }
            Self::Record(fields) => fields.iter().for_each(|field| field.encode(out)),
        }
    }
}

/// An object container file holding `records` of `schema` (JSON), with `metadata` (Iceberg
/// puts the table schema, spec and format version there) and the 16-byte `sync` marker.
pub(crate) fn container(
    schema: &str,
    metadata: &[(&str, String)],
    records: &[Datum],
    sync: [u8; 16],
) -> Vec<u8> {
    let mut out = b"Obj\x01".to_vec();
    let entries: Vec<(&str, &[u8])> = [("avro.schema", schema.as_bytes()), ("avro.codec", b"null")]
        .into_iter()
        .chain(metadata.iter().map(|(k, v)| (*k, v.as_bytes())))
        .collect();
    put_long(&mut out, entries.len() as i64);
    for (key, value) in entries {
        put_bytes(&mut out, key.as_bytes());
        put_bytes(&mut out, value);
    }
    put_long(&mut out, 0);
    out.extend_from_slice(&sync);
    if !records.is_empty() {
        let mut block = Vec::new();
        for record in records {
            record.encode(&mut block);
        }
        put_long(&mut out, records.len() as i64);
        put_long(&mut out, block.len() as i64);
        out.extend_from_slice(&block);
        out.extend_from_slice(&sync);
    }
    out
}

/// A reader of what [`container`] writes, driven by the schema (tests): Avro's rules, so a
/// value that does not match its schema fails to decode.
#[cfg(test)]
pub(crate) mod read {
    use super::Datum;
    use serde_json::Value;
    use std::collections::BTreeMap;

    pub(crate) struct Container {
        pub(crate) metadata: BTreeMap<String, Vec<u8>>,
        pub(crate) records: Vec<Datum>,
    }

    struct Cursor<'a>(&'a [u8]);

    impl Cursor<'_> {
        fn byte(&mut self) -> Result<u8, String> {
            let (&first, rest) = self.0.split_first().ok_or("truncated")?;
            self.0 = rest;
            Ok(first)
        }

        fn long(&mut self) -> Result<i64, String> {
            let mut value = 0u64;
            for shift in (0..64).step_by(7) {
                let byte = self.byte()?;
                value |= u64::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
                }
            }
            Err("varint too long".into())
        }

        fn bytes(&mut self) -> Result<Vec<u8>, String> {
            let len = usize::try_from(self.long()?).map_err(|_| "negative length")?;
            if self.0.len() < len {
                return Err("truncated".into());
            }
            let (taken, rest) = self.0.split_at(len);
            self.0 = rest;
            Ok(taken.to_vec())
        }

        fn datum(&mut self, schema: &Value) -> Result<Datum, String> {
            match schema {
                Value::String(kind) => match kind.as_str() {
                    "int" => Ok(Datum::Int(
                        i32::try_from(self.long()?).map_err(|_| "int out of range")?,
                    )),
                    "long" => Ok(Datum::Long(self.long()?)),
                    "string" => String::from_utf8(self.bytes()?)
                        .map(Datum::Str)
                        .map_err(|e| e.to_string()),
                    "null" => Ok(Datum::Null),
                    other => Err(format!("unsupported type {other}")),
                },
                Value::Array(branches) => {
                    let branch = self.long()?;
                    let schema = usize::try_from(branch)
                        .ok()
                        .and_then(|i| branches.get(i))
                        .ok_or("union branch out of range")?;
                    Ok(Datum::Union(branch as u32, Box::new(self.datum(schema)?)))
                }
                Value::Object(object) if object["type"] == "record" => {
                    let fields = object["fields"].as_array().ok_or("record without fields")?;
                    let values = fields
                        .iter()
                        .map(|field| self.datum(&field["type"]))
                        .collect::<Result<_, _>>()?;
                    Ok(Datum::Record(values))
                }
                other => Err(format!("unsupported schema {other}")),
            }
        }
    }

    /// Decodes a container file with the schema it names in its header.
    pub(crate) fn container(bytes: &[u8]) -> Result<Container, String> {
        let (magic, rest) = bytes.split_at(4);
        if magic != b"Obj\x01" {
            return Err("not an Avro object container file".into());
        }
        let mut cursor = Cursor(rest);
        let mut metadata = BTreeMap::new();
        loop {
            let count = cursor.long()?;
            if count == 0 {
                break;
            }
            for _ in 0..count.abs() {
                let key = String::from_utf8(cursor.bytes()?).map_err(|e| e.to_string())?;
                metadata.insert(key, cursor.bytes()?);
            }
        }
        let sync: Vec<u8> = (0..16).map(|_| cursor.byte()).collect::<Result<_, _>>()?;
        let schema: Value = serde_json::from_slice(metadata.get("avro.schema").ok_or("no schema")?)
            .map_err(|e| e.to_string())?;
        if metadata.get("avro.codec").map(Vec::as_slice) != Some(b"null") {
            return Err("unexpected codec".into());
        }
        let mut records = Vec::new();
        while !cursor.0.is_empty() {
            let count = cursor.long()?;
            let size = usize::try_from(cursor.long()?).map_err(|_| "negative size")?;
            let before = cursor.0.len();
            for _ in 0..count {
                records.push(cursor.datum(&schema)?);
            }
            if before - cursor.0.len() != size {
                return Err("block size does not match its records".into());
            }
            let marker: Vec<u8> = (0..16).map(|_| cursor.byte()).collect::<Result<_, _>>()?;
            if marker != sync {
                return Err("sync marker mismatch".into());
            }
        }
        Ok(Container { metadata, records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_are_zigzag_varints() {
        for (n, bytes) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            put_long(&mut out, n);
            assert_eq!(out, bytes, "{n}");
        }
    }

    #[test]
    fn containers_read_back() {
        let schema = r#"{"type": "record", "name": "r", "fields": [
            {"name": "a", "type": "int"}, {"name": "b", "type": ["null", "long"]},
            {"name": "c", "type": "string"},
            {"name": "d", "type": {"type": "record", "name": "e", "fields": []}}]}"#;
        let records = vec![
            Datum::Record(vec![
                Datum::Int(-3),
                Datum::Union(1, Box::new(Datum::Long(i64::MAX))),
                Datum::Str("é".into()),
                Datum::Record(vec![]),
            ]),
            Datum::Record(vec![
                Datum::Int(7),
                Datum::Union(0, Box::new(Datum::Null)),
                Datum::Str(String::new()),
                Datum::Record(vec![]),
            ]),
        ];
        let bytes = container(schema, &[("k", "v".into())], &records, [9; 16]);
        let read = read::container(&bytes).unwrap();
        assert_eq!(read.records, records);
        assert_eq!(read.metadata["k"], b"v");
        // A mismatched schema does not decode to the same values.
        let wrong = schema.replace(r#""type": "int""#, r#""type": "string""#);
        let bytes = container(&wrong, &[], &records, [9; 16]);
        assert!(read::container(&bytes).map(|c| c.records) != Ok(records));
    }
}
