//! Record texts → the typed columns of the files' schema, in one pass over each text: every
//! member's value is appended to its column's buffers where the scan meets it, with no
//! parsed tree in between. Gives exactly the arrays [`crate::convert`]'s tree walk gives
//! (a property test compares them): keys match the lowercase column names ignoring case,
//! a key written exactly as the column's name wins over other spellings and otherwise the
//! first spelling does, a repeated key takes its last value, `null` is a null, objects of
//! free-form maps are `map<string,string>` with nested values as serde_json's compact text.
//!
//! The texts are those of [`opentrail_model::EventRecord`]s: JSON objects serde_json
//! accepts. Strings with escapes and numbers other than plain unsigned integers are decoded
//! by serde_json itself. A text the scan cannot read (none is expected) gives a row of
//! nulls, as the tree walk gives for a text that is not JSON.

use crate::convert::parse_timestamp_millis;
use crate::json::{bytes_eq, plain_run_end, skip_space, Member};
use datafusion::arrow::array::NullBufferBuilder;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, ListArray, MapArray, StringArray, StructArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, FieldRef, Fields, TimeUnit};
use datafusion::arrow::error::ArrowError;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// The columns of `fields` (a struct's or the files' top-level fields) for the record texts
/// `texts`, and each record's top-level members (as [`crate::json::Reader`] finds them, for
/// the skeleton).
pub(crate) fn record_columns<'t>(
    fields: &Fields,
    texts: &[&'t str],
) -> Result<(Vec<ArrayRef>, Vec<Vec<Member<'t>>>), ArrowError> {
    let mut root = StructNode::new(fields, texts.len());
    let mut all_members = Vec::with_capacity(texts.len());
    let mut scratch = Scratch::default();
    for (row, &text) in texts.iter().enumerate() {
        scratch.entries.clear();
        let mut members = Vec::with_capacity(24);
        let read = Scan::new(text)
            .top_level(&mut root, &mut members, &mut scratch)
            .is_some();
        if !read {
            root.truncate(row);
            root.append_null();
            members.clear();
            members.extend(crate::json::top_level_members(text.as_bytes()));
        }
        all_members.push(members);
    }
    Ok((root.finish_children()?, all_members))
}

/// Scratch space shared by a batch's records.
#[derive(Default)]
struct Scratch {
    /// Members of the objects being read as maps or written as JSON text, nested objects'
    /// after their parents'.
    entries: Vec<Entry>,
}

/// A member of an object: where its key (with quotes) and its value are.
#[derive(Clone)]
struct Entry {
    key: Range<usize>,
    escaped: bool,
    value: Range<usize>,
}

/// The buffers of one column.
enum Node {
    Text(TextNode),
    Bool(Vec<Option<bool>>),
    Time(Vec<Option<i64>>),
    Struct(StructNode),
    Map(MapNode),
    List(ListNode),
    /// A type the schema does not use: nulls (the tree walk answers the same).
    Other(DataType, usize),
}

impl Node {
    /// Buffers for a column of `data_type`, sized for about `rows` rows.
    fn new(data_type: &DataType, rows: usize) -> Self {
        match data_type {
            DataType::Utf8 => Node::Text(TextNode::new(rows)),
            DataType::Boolean => Node::Bool(Vec::with_capacity(rows)),
            DataType::Timestamp(TimeUnit::Millisecond, None) => {
                Node::Time(Vec::with_capacity(rows))
            }
            DataType::Struct(fields) => Node::Struct(StructNode::new(fields, rows)),
            DataType::Map(entries, _) => Node::Map(MapNode::new(entries, rows)),
            DataType::List(item) => Node::List(ListNode {
                item: Arc::clone(item),
                offsets: vec![0],
                child: Box::new(Node::new(item.data_type(), rows)),
                valid: Vec::new(),
            }),
            other => Node::Other(other.clone(), 0),
        }
    }

    fn append_null(&mut self) {
        match self {
            Node::Text(text) => text.append_null(),
            Node::Bool(values) => values.push(None),
            Node::Time(values) => values.push(None),
            Node::Struct(node) => node.append_null(),
            Node::Map(node) => node.append_null(),
            Node::List(node) => node.append_null(),
            Node::Other(_, rows) => *rows += 1,
        }
    }

    fn truncate(&mut self, rows: usize) {
        match self {
            Node::Text(text) => text.truncate(rows),
            Node::Bool(values) => values.truncate(rows),
            Node::Time(values) => values.truncate(rows),
            Node::Struct(node) => node.truncate(rows),
            Node::Map(node) => node.truncate(rows),
            Node::List(node) => node.truncate(rows),
            Node::Other(_, count) => *count = rows.min(*count),
        }
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Node::Text(text) => Arc::new(text.finish()?),
            Node::Bool(values) => Arc::new(BooleanArray::from(values)),
            Node::Time(values) => Arc::new(TimestampMillisecondArray::from(values)),
            Node::Struct(mut node) => {
                let nulls = NullBuffer::from(std::mem::take(&mut node.valid));
                let fields = node.fields.clone();
                let children = node.finish_children()?;
                Arc::new(StructArray::try_new(fields, children, Some(nulls))?)
            }
            Node::Map(node) => node.finish()?,
            Node::List(node) => {
                let child = node.child.finish()?;
                Arc::new(ListArray::try_new(
                    node.item,
                    offsets(node.offsets)?,
                    child,
                    Some(NullBuffer::from(node.valid)),
                )?)
            }
            Node::Other(data_type, rows) => {
                datafusion::arrow::array::new_null_array(&data_type, rows)
            }
        })
    }
}

fn offsets(offsets: Vec<usize>) -> Result<OffsetBuffer<i32>, ArrowError> {
    let offsets = offsets
        .into_iter()
        .map(|offset| i32::try_from(offset).map_err(|_| too_large()))
        .collect::<Result<Vec<i32>, _>>()?;
    Ok(OffsetBuffer::new(ScalarBuffer::from(offsets)))
}

/// A text column: values end to end, where each row ends, which rows are not null.
struct TextNode {
    bytes: Vec<u8>,
    ends: Vec<i32>,
    valid: NullBufferBuilder,
    /// Set when the values outgrew an `i32` offset (the batch is refused).
    overflow: bool,
}

impl TextNode {
    fn new(rows: usize) -> Self {
        let mut ends = Vec::with_capacity(rows + 1);
        ends.push(0);
        Self {
            bytes: Vec::with_capacity(rows * TEXT_BYTES_PER_ROW),
            ends,
            valid: NullBufferBuilder::new(rows),
            overflow: false,
        }
    }

    fn len(&self) -> usize {
        self.ends.len() - 1
    }

    fn push(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
        self.close(true);
    }

    /// Ends a row whose bytes were appended to `bytes`.
    fn close(&mut self, valid: bool) {
        let end = i32::try_from(self.bytes.len()).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.ends.push(end);
        if valid {
            self.valid.append_non_null();
        } else {
            self.valid.append_null();
        }
    }

    fn append_null(&mut self) {
        self.close(false);
    }

    /// Keeps the first `rows` rows, and none of the bytes of a row left unfinished.
    fn truncate(&mut self, rows: usize) {
        let Some(&end) = self.ends.get(rows) else {
            return;
        };
        self.ends.truncate(rows + 1);
        self.bytes.truncate(usize::try_from(end).unwrap_or(0));
        self.valid.truncate(rows);
    }

    fn finish(mut self) -> Result<StringArray, ArrowError> {
        if self.overflow {
            return Err(too_large());
        }
        StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(self.ends)),
            Buffer::from_vec(self.bytes),
            self.valid.finish(),
        )
    }
}

/// About the bytes a text column's value takes: its buffer's first size.
const TEXT_BYTES_PER_ROW: usize = 16;

fn too_large() -> ArrowError {
    ArrowError::ComputeError("lake column too large".into())
}

/// A struct column; also the files' top level (whose own validity is not used).
struct StructNode {
    fields: Fields,
    children: Vec<Node>,
    valid: Vec<bool>,
    /// Field names sorted, with their index: a key's field is found by a binary search of
    /// its lowercase spelling.
    names: Vec<(String, usize)>,
    /// Per key position, the last key seen there and its field: records of a kind have the
    /// same keys in the same order.
    hints: Vec<(Vec<u8>, Resolved)>,
    /// Per field, for the row being read: 0 nothing yet, 1 a key equal ignoring case,
    /// 2 the key written exactly as the field.
    how: Vec<u8>,
    /// Per field, the key that gave its value and whether it has escapes (for a repeat of
    /// that key).
    keys: Vec<(Range<usize>, bool)>,
}

impl StructNode {
    fn new(fields: &Fields, rows: usize) -> Self {
        let mut names: Vec<(String, usize)> = fields
            .iter()
            .enumerate()
            .map(|(index, field)| (field.name().clone(), index))
            .collect();
        names.sort_unstable();
        Self {
            fields: fields.clone(),
            children: fields
                .iter()
                .map(|field| Node::new(field.data_type(), rows))
                .collect(),
            valid: Vec::new(),
            names,
            hints: Vec::new(),
            how: vec![0; fields.len()],
            keys: vec![(0..0, false); fields.len()],
        }
    }

    fn append_null(&mut self) {
        self.valid.push(false);
        for child in &mut self.children {
            child.append_null();
        }
    }

    fn truncate(&mut self, rows: usize) {
        self.valid.truncate(rows);
        for child in &mut self.children {
            child.truncate(rows);
        }
    }

    fn finish_children(self) -> Result<Vec<ArrayRef>, ArrowError> {
        self.children.into_iter().map(Node::finish).collect()
    }

    /// The field of a key, and whether the key is spelled exactly as the field.
    fn resolve(&mut self, at: usize, key: &str) -> Resolved {
        if let Some((hinted, resolved)) = self.hints.get(at) {
            if bytes_eq(hinted, key.as_bytes()) {
                return *resolved;
            }
        }
        let resolved = resolve_name(&self.names, key);
        let known = self.hints.len();
        match self.hints.get_mut(at) {
            Some(hint) => {
                hint.0.clear();
                hint.0.extend_from_slice(key.as_bytes());
                hint.1 = resolved;
            }
            None if at == known => self.hints.push((key.as_bytes().to_vec(), resolved)),
            None => {}
        }
        resolved
    }
}

/// A key's field and whether the key is spelled exactly as the field (None: no field).
type Resolved = Option<(usize, bool)>;

/// The longest key that can name a field: lowercasing ASCII keeps the length.
const LONGEST_FIELD_NAME: usize = 64;

fn resolve_name(names: &[(String, usize)], key: &str) -> Resolved {
    let mut lower = [0u8; LONGEST_FIELD_NAME];
    let buffer = lower.get_mut(..key.len())?;
    buffer.copy_from_slice(key.as_bytes());
    buffer.make_ascii_lowercase();
    let position = names
        .binary_search_by(|(name, _)| name.as_bytes().cmp(buffer))
        .ok()?;
    let (name, index) = &names[position];
    Some((*index, name == key))
}

/// A `map<string,string>` column.
struct MapNode {
    entries: FieldRef,
    entry_fields: Option<Fields>,
    offsets: Vec<usize>,
    keys: TextNode,
    values: TextNode,
    valid: Vec<bool>,
}

impl MapNode {
    fn new(entries: &FieldRef, rows: usize) -> Self {
        let entry_fields = match entries.data_type() {
            DataType::Struct(fields) => Some(fields.clone()),
            _ => None,
        };
        Self {
            entries: Arc::clone(entries),
            entry_fields,
            offsets: vec![0],
            keys: TextNode::new(rows),
            values: TextNode::new(rows),
            valid: Vec::new(),
        }
    }

    fn append_null(&mut self) {
        self.offsets.push(self.keys.len());
        self.valid.push(false);
    }

    /// Keeps the first `rows` rows, and none of the entries of a row left unfinished.
    fn truncate(&mut self, rows: usize) {
        let Some(&entries) = self.offsets.get(rows) else {
            return;
        };
        self.offsets.truncate(rows + 1);
        self.keys.truncate(entries);
        self.values.truncate(entries);
        self.valid.truncate(rows);
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        let rows = self.valid.len();
        let Some(entry_fields) = self.entry_fields else {
            return Ok(datafusion::arrow::array::new_null_array(
                &DataType::Map(self.entries, false),
                rows,
            ));
        };
        let entry_array = StructArray::try_new(
            entry_fields,
            vec![
                Arc::new(self.keys.finish()?) as ArrayRef,
                Arc::new(self.values.finish()?),
            ],
            None,
        )?;
        Ok(Arc::new(MapArray::try_new(
            self.entries,
            offsets(self.offsets)?,
            entry_array,
            Some(NullBuffer::from(self.valid)),
            false,
        )?))
    }
}

/// A list column.
struct ListNode {
    item: FieldRef,
    offsets: Vec<usize>,
    child: Box<Node>,
    valid: Vec<bool>,
}

impl ListNode {
    fn append_null(&mut self) {
        self.offsets.push(self.offsets.last().copied().unwrap_or(0));
        self.valid.push(false);
    }

    /// Keeps the first `rows` rows, and none of the items of a row left unfinished.
    fn truncate(&mut self, rows: usize) {
        let Some(&items) = self.offsets.get(rows) else {
            return;
        };
        self.offsets.truncate(rows + 1);
        self.child.truncate(items);
        self.valid.truncate(rows);
    }
}

/// One record text being read.
struct Scan<'t> {
    text: &'t str,
    bytes: &'t [u8],
}

/// Containers nested deeper than this are not read (serde_json refuses 128 levels or more).
const MAX_DEPTH: usize = 128;
/// Past this many members, a map's repeated keys are found through an index.
const SCAN_MEMBERS: usize = 16;

impl<'t> Scan<'t> {
    fn new(text: &'t str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
        }
    }

    fn skip_space(&self, at: usize) -> usize {
        skip_space(self.bytes, at)
    }

    /// The record's object into the top-level columns, its members into `members`.
    fn top_level(
        &self,
        root: &mut StructNode,
        members: &mut Vec<Member<'t>>,
        scratch: &mut Scratch,
    ) -> Option<()> {
        let start = self.skip_space(0);
        let end = self.object_into(root, start, 1, Some(members), scratch)?;
        (self.skip_space(end) == self.bytes.len()).then_some(())
    }

    /// At `{`: appends the object's members to the struct's children (one row each, null
    /// for fields it lacks) and returns where the object ends. The struct's own validity
    /// is the caller's.
    fn object_into(
        &self,
        node: &mut StructNode,
        start: usize,
        depth: usize,
        mut top: Option<&mut Vec<Member<'t>>>,
        scratch: &mut Scratch,
    ) -> Option<usize> {
        if self.bytes.get(start) != Some(&b'{') || depth > MAX_DEPTH {
            return None;
        }
        let row = node.valid.len();
        node.how.fill(0);
        let mut at = self.skip_space(start + 1);
        let mut position = 0;
        if self.bytes.get(at) == Some(&b'}') {
            at += 1;
        } else {
            loop {
                let (key_range, escaped) = self.string(at)?;
                let key = self.decoded(&key_range, escaped)?;
                at = self.skip_space(key_range.end);
                if self.bytes.get(at) != Some(&b':') {
                    return None;
                }
                let value_start = self.skip_space(at + 1);
                let resolved = node.resolve(position, &key);
                position += 1;
                let value_end = match resolved {
                    Some((index, exact)) => {
                        let take = match node.how[index] {
                            0 => true,
                            2 => exact,
                            _ => {
                                let (earlier, earlier_escaped) = node.keys[index].clone();
                                exact
                                    || self.same_key(
                                        &(earlier, earlier_escaped),
                                        &(key_range.clone(), escaped),
                                    )?
                            }
                        };
                        if take {
                            let child = &mut node.children[index];
                            if node.how[index] != 0 {
                                child.truncate(row);
                            }
                            node.how[index] = if exact { 2 } else { 1 };
                            node.keys[index] = (key_range.clone(), escaped);
                            self.value_into(child, value_start, depth, scratch)?
                        } else {
                            self.value_end(value_start, depth)?
                        }
                    }
                    None => self.value_end(value_start, depth)?,
                };
                if let (Some(top), false) = (top.as_deref_mut(), escaped) {
                    top.push(Member {
                        key: self.text.get(key_range.start + 1..key_range.end - 1)?,
                        value: value_start..value_end,
                    });
                }
                at = self.skip_space(value_end);
                match self.bytes.get(at) {
                    Some(b',') => at = self.skip_space(at + 1),
                    Some(b'}') => {
                        at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        for (index, child) in node.children.iter_mut().enumerate() {
            if node.how[index] == 0 {
                child.append_null();
            }
        }
        node.valid.push(true);
        Some(at)
    }

    /// A string's text (its range with quotes), decoded by serde_json when it has escapes.
    fn decoded(&self, range: &Range<usize>, escaped: bool) -> Option<Cow<'t, str>> {
        if escaped {
            serde_json::from_str::<String>(self.text.get(range.clone())?)
                .ok()
                .map(Cow::Owned)
        } else {
            self.text
                .get(range.start + 1..range.end - 1)
                .map(Cow::Borrowed)
        }
    }

    /// Appends the value at `start` to a column; returns where the value ends.
    fn value_into(
        &self,
        node: &mut Node,
        start: usize,
        depth: usize,
        scratch: &mut Scratch,
    ) -> Option<usize> {
        let first = *self.bytes.get(start)?;
        if first == b'n' {
            let end = self.literal(start, b"null")?;
            node.append_null();
            return Some(end);
        }
        match node {
            Node::Text(text) => self.text_into(text, start, depth, scratch),
            Node::Bool(values) => {
                let (end, value) = match first {
                    b't' => (self.literal(start, b"true")?, Some(true)),
                    b'f' => (self.literal(start, b"false")?, Some(false)),
                    b'"' => {
                        let (range, escaped) = self.string(start)?;
                        let value = self.decoded(&range, escaped)?.parse().ok();
                        (range.end, value)
                    }
                    _ => (self.value_end(start, depth)?, None),
                };
                values.push(value);
                Some(end)
            }
            Node::Time(values) => {
                let (end, value) = match first {
                    b'"' => {
                        let (range, escaped) = self.string(start)?;
                        let value = parse_timestamp_millis(&self.decoded(&range, escaped)?);
                        (range.end, value)
                    }
                    _ => (self.value_end(start, depth)?, None),
                };
                values.push(value);
                Some(end)
            }
            Node::Struct(child) => {
                if first == b'{' {
                    self.object_into(child, start, depth + 1, None, scratch)
                } else {
                    child.append_null();
                    self.value_end(start, depth)
                }
            }
            Node::Map(map) => {
                if first == b'{' {
                    self.map_into(map, start, depth, scratch)
                } else {
                    map.append_null();
                    self.value_end(start, depth)
                }
            }
            Node::List(list) => {
                if first == b'[' {
                    self.list_into(list, start, depth, scratch)
                } else {
                    list.append_null();
                    self.value_end(start, depth)
                }
            }
            Node::Other(_, rows) => {
                *rows += 1;
                self.value_end(start, depth)
            }
        }
    }

    /// A value as text: a string as it reads, anything else as its compact JSON text.
    fn text_into(
        &self,
        text: &mut TextNode,
        start: usize,
        depth: usize,
        scratch: &mut Scratch,
    ) -> Option<usize> {
        if self.bytes.get(start) == Some(&b'"') {
            let (range, escaped) = self.string(start)?;
            text.push(self.decoded(&range, escaped)?.as_bytes());
            return Some(range.end);
        }
        let end = self.compact_into(start, depth, &mut text.bytes, scratch)?;
        text.close(true);
        Some(end)
    }

    /// At `{`: the object's members as map entries, nested values as JSON text.
    fn map_into(
        &self,
        map: &mut MapNode,
        start: usize,
        depth: usize,
        scratch: &mut Scratch,
    ) -> Option<usize> {
        let first = scratch.entries.len();
        let end = self.gather(start, depth + 1, scratch)?;
        let last = scratch.entries.len();
        for position in first..last {
            let entry = scratch.entries[position].clone();
            map.keys
                .push(self.decoded(&entry.key, entry.escaped)?.as_bytes());
            if self.bytes.get(entry.value.start) == Some(&b'n') {
                map.values.append_null();
            } else {
                self.text_into(&mut map.values, entry.value.start, depth + 1, scratch)?;
            }
        }
        scratch.entries.truncate(first);
        map.offsets.push(map.keys.len());
        map.valid.push(true);
        Some(end)
    }

    /// At `[`: the items into the list's child column.
    fn list_into(
        &self,
        list: &mut ListNode,
        start: usize,
        depth: usize,
        scratch: &mut Scratch,
    ) -> Option<usize> {
        if depth + 1 > MAX_DEPTH {
            return None;
        }
        let mut at = self.skip_space(start + 1);
        let mut items = list.offsets.last().copied().unwrap_or(0);
        if self.bytes.get(at) == Some(&b']') {
            at += 1;
        } else {
            loop {
                at = self.value_into(&mut list.child, at, depth + 1, scratch)?;
                items += 1;
                at = self.skip_space(at);
                match self.bytes.get(at) {
                    Some(b',') => at = self.skip_space(at + 1),
                    Some(b']') => {
                        at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        list.offsets.push(items);
        list.valid.push(true);
        Some(at)
    }

    /// At `{`: pushes the object's members onto `scratch.entries` as serde_json keeps
    /// them (a repeated key in its first place with its last value); returns the end.
    fn gather(&self, start: usize, depth: usize, scratch: &mut Scratch) -> Option<usize> {
        if self.bytes.get(start) != Some(&b'{') || depth > MAX_DEPTH {
            return None;
        }
        let first = scratch.entries.len();
        let mut index: Option<HashMap<Cow<'t, str>, usize>> = None;
        let mut at = self.skip_space(start + 1);
        if self.bytes.get(at) == Some(&b'}') {
            return Some(at + 1);
        }
        loop {
            let (key, escaped) = self.string(at)?;
            at = self.skip_space(key.end);
            if self.bytes.get(at) != Some(&b':') {
                return None;
            }
            let value_start = self.skip_space(at + 1);
            let value_end = self.value_end(value_start, depth)?;
            let entry = Entry {
                key,
                escaped,
                value: value_start..value_end,
            };
            let object = &scratch.entries[first..];
            let earlier = match &mut index {
                None if object.len() < SCAN_MEMBERS => {
                    let mut earlier = None;
                    for (position, seen) in object.iter().enumerate() {
                        if self.same_key(
                            &(seen.key.clone(), seen.escaped),
                            &(entry.key.clone(), escaped),
                        )? {
                            earlier = Some(position);
                            break;
                        }
                    }
                    earlier
                }
                None => {
                    let mut map = HashMap::with_capacity(object.len() * 2);
                    for (position, seen) in object.iter().enumerate() {
                        map.insert(self.decoded(&seen.key, seen.escaped)?, position);
                    }
                    index
                        .insert(map)
                        .get(&self.decoded(&entry.key, escaped)?)
                        .copied()
                }
                Some(map) => map.get(&self.decoded(&entry.key, escaped)?).copied(),
            };
            match earlier {
                Some(position) => scratch.entries[first + position].value = entry.value,
                None => {
                    if let Some(map) = &mut index {
                        map.insert(self.decoded(&entry.key, escaped)?, object.len());
                    }
                    scratch.entries.push(entry);
                }
            }
            at = self.skip_space(value_end);
            match self.bytes.get(at) {
                Some(b',') => at = self.skip_space(at + 1),
                Some(b'}') => return Some(at + 1),
                _ => return None,
            }
        }
    }

    /// Whether two keys (where they are, with quotes, and whether they have escapes) are
    /// the same key once decoded.
    fn same_key(&self, a: &(Range<usize>, bool), b: &(Range<usize>, bool)) -> Option<bool> {
        if !a.1 && !b.1 {
            return Some(bytes_eq(&self.bytes[a.0.clone()], &self.bytes[b.0.clone()]));
        }
        Some(self.decoded(&a.0, a.1)? == self.decoded(&b.0, b.1)?)
    }

    /// Writes the value at `start` as serde_json writes it compactly; returns its end.
    fn compact_into(
        &self,
        start: usize,
        depth: usize,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Option<usize> {
        match *self.bytes.get(start)? {
            b'"' => {
                let (range, escaped) = self.string(start)?;
                if escaped {
                    let value: String = serde_json::from_str(self.text.get(range.clone())?).ok()?;
                    serde_json::to_writer(&mut *out, &value).ok()?;
                } else {
                    out.extend_from_slice(&self.bytes[range.clone()]);
                }
                Some(range.end)
            }
            b'{' => {
                let first = scratch.entries.len();
                let end = self.gather(start, depth + 1, scratch)?;
                out.push(b'{');
                for position in first..scratch.entries.len() {
                    if position > first {
                        out.push(b',');
                    }
                    let entry = scratch.entries[position].clone();
                    if entry.escaped {
                        let key = self.decoded(&entry.key, true)?;
                        serde_json::to_writer(&mut *out, key.as_ref()).ok()?;
                    } else {
                        out.extend_from_slice(&self.bytes[entry.key.clone()]);
                    }
                    out.push(b':');
                    self.compact_into(entry.value.start, depth + 1, out, scratch)?;
                }
                scratch.entries.truncate(first);
                out.push(b'}');
                Some(end)
            }
            b'[' => {
                if depth + 1 > MAX_DEPTH {
                    return None;
                }
                out.push(b'[');
                let mut at = self.skip_space(start + 1);
                if self.bytes.get(at) == Some(&b']') {
                    out.push(b']');
                    return Some(at + 1);
                }
                loop {
                    at = self.compact_into(at, depth + 1, out, scratch)?;
                    at = self.skip_space(at);
                    match self.bytes.get(at) {
                        Some(b',') => {
                            out.push(b',');
                            at = self.skip_space(at + 1);
                        }
                        Some(b']') => {
                            out.push(b']');
                            return Some(at + 1);
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal_into(start, b"true", out),
            b'f' => self.literal_into(start, b"false", out),
            b'n' => self.literal_into(start, b"null", out),
            _ => {
                let end = self.number_end(start);
                let number = self.text.get(start..end)?;
                if plain_unsigned(number.as_bytes()) {
                    out.extend_from_slice(number.as_bytes());
                } else {
                    let number: serde_json::Number = serde_json::from_str(number).ok()?;
                    serde_json::to_writer(&mut *out, &number).ok()?;
                }
                Some(end)
            }
        }
    }

    fn literal(&self, start: usize, word: &[u8]) -> Option<usize> {
        let end = start + word.len();
        bytes_eq(self.bytes.get(start..end)?, word).then_some(end)
    }

    fn literal_into(&self, start: usize, word: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let end = self.literal(start, word)?;
        out.extend_from_slice(word);
        Some(end)
    }

    fn number_end(&self, start: usize) -> usize {
        let mut at = start;
        while matches!(
            self.bytes.get(at),
            Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
        ) {
            at += 1;
        }
        at
    }

    /// At `"`: the string's range with its quotes, and whether it has escapes.
    fn string(&self, start: usize) -> Option<(Range<usize>, bool)> {
        if self.bytes.get(start) != Some(&b'"') {
            return None;
        }
        let mut at = start + 1;
        let mut escaped = false;
        loop {
            at = plain_run_end(self.bytes, at);
            match *self.bytes.get(at)? {
                b'"' => return Some((start..at + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    at += 2;
                }
                0x00..=0x1F => return None,
                _ => at += 1,
            }
        }
    }

    /// Where the value at `start` ends, without reading it into anything.
    fn value_end(&self, start: usize, depth: usize) -> Option<usize> {
        match *self.bytes.get(start)? {
            b'"' => self.string(start).map(|(range, _)| range.end),
            b'{' | b'[' => {
                let mut level = 0usize;
                let mut at = start;
                loop {
                    match *self.bytes.get(at)? {
                        b'"' => {
                            at = self.string(at)?.0.end;
                            continue;
                        }
                        b'{' | b'[' => {
                            level += 1;
                            if depth + level > MAX_DEPTH {
                                return None;
                            }
                        }
                        b'}' | b']' => {
                            level -= 1;
                            if level == 0 {
                                return Some(at + 1);
                            }
                        }
                        _ => {}
                    }
                    at += 1;
                }
            }
            b't' => self.literal(start, b"true"),
            b'f' => self.literal(start, b"false"),
            b'n' => self.literal(start, b"null"),
            _ => {
                let end = self.number_end(start);
                (end > start).then_some(end)
            }
        }
    }
}

/// An unsigned integer of 1 to 19 digits without a leading zero: serde_json writes it back
/// as it is.
fn plain_unsigned(number: &[u8]) -> bool {
    (1..=19).contains(&number.len())
        && number.iter().all(u8::is_ascii_digit)
        && (number.len() == 1 || number[0] != b'0')
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::convert::{conformance_events, file_batch_by_tree, file_batch_of};
    use datafusion::arrow::array::{Array, AsArray};
    use opentrail_model::EventRecord;
    use proptest::prelude::*;
    use serde_json::Value;

    /// A JSON text's shape, written with repeated keys, spacing and escapes as asked.
    #[derive(Clone, Debug)]
    pub(crate) enum Doc {
        Leaf(Value),
        /// A value written as it is: numbers (`1.0e2`, `-0`…) and strings with escapes
        /// serde_json would not write (`\/`, `\u00e9`, surrogate pairs).
        Raw(&'static str),
        Array(Vec<Doc>),
        Object(Vec<(String, bool, Doc)>),
    }

    impl Doc {
        pub(crate) fn write(&self, gap: &str, out: &mut String) {
            match self {
                Doc::Leaf(value) => out.push_str(&value.to_string()),
                Doc::Raw(text) => out.push_str(text),
                Doc::Array(items) => {
                    out.push('[');
                    out.push_str(gap);
                    for (at, item) in items.iter().enumerate() {
                        if at > 0 {
                            out.push(',');
                            out.push_str(gap);
                        }
                        item.write(gap, out);
                    }
                    out.push_str(gap);
                    out.push(']');
                }
                Doc::Object(members) => {
                    out.push('{');
                    out.push_str(gap);
                    for (at, (key, escape_first, value)) in members.iter().enumerate() {
                        if at > 0 {
                            out.push(',');
                            out.push_str(gap);
                        }
                        let written = Value::String(key.clone()).to_string();
                        match key.chars().next() {
                            // The first character as a `\u` escape: the same key, decoded.
                            Some(first) if *escape_first && first.is_ascii_alphanumeric() => {
                                out.push_str(&format!("\"\\u{:04x}", first as u32));
                                out.push_str(&written[2..]);
                            }
                            _ => out.push_str(&written),
                        }
                        out.push_str(gap);
                        out.push(':');
                        out.push_str(gap);
                        value.write(gap, out);
                    }
                    out.push_str(gap);
                    out.push('}');
                }
            }
        }
    }

    const RAW: [&str; 14] = [
        "0",
        "-0",
        "1.0e2",
        "1E5",
        "0.10",
        "-12",
        "18446744073709551616",
        "12345678901234567890",
        "-9223372036854775809",
        "2.5e-3",
        r#""a\/b""#,
        r#""\u00e9t\u00E9""#,
        r#""\ud83d\ude00 \"q\" \t""#,
        r#""2024-03-10T11:45:03\u005a""#,
    ];
    const TIMES: [&str; 5] = [
        "2024-03-10T11:45:03Z",
        "2024-03-10T11:45:03.120Z",
        "2024-03-10T11:45:03",
        "2024-03-10T11:45:03+02:00",
        "yesterday",
    ];

    pub(crate) fn leaf() -> BoxedStrategy<Doc> {
        prop_oneof![
            Just(Doc::Leaf(Value::Null)),
            any::<bool>().prop_map(|flag| Doc::Leaf(Value::Bool(flag))),
            any::<u64>().prop_map(|n| Doc::Leaf(Value::from(n))),
            any::<i64>().prop_map(|n| Doc::Leaf(Value::from(n))),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| Doc::Leaf(Value::from(f))),
            proptest::sample::select(RAW.to_vec()).prop_map(Doc::Raw),
            "(?s).{0,10}".prop_map(|text| Doc::Leaf(Value::String(text))),
            "[a-z \"\\\\/é]{0,12}".prop_map(|text| Doc::Leaf(Value::String(text))),
            proptest::sample::select(TIMES.to_vec())
                .prop_map(|text| Doc::Leaf(Value::String(text.into()))),
            proptest::sample::select(vec!["true", "false", "True"])
                .prop_map(|text| Doc::Leaf(Value::String(text.into()))),
        ]
        .boxed()
    }

    /// Keys as records spell them, other spellings of them, and keys no column has.
    fn key(names: &'static [&'static str]) -> impl Strategy<Value = (String, bool)> {
        (
            proptest::sample::select(names.to_vec()),
            0..4u8,
            proptest::bool::weighted(0.05),
        )
            .prop_map(|(name, how, escape_first)| {
                let key = match how {
                    0 | 1 => name.to_string(),
                    2 => name.to_ascii_lowercase(),
                    _ => name.to_ascii_uppercase(),
                };
                (key, escape_first)
            })
    }

    pub(crate) fn any_doc() -> BoxedStrategy<Doc> {
        leaf()
            .prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..5).prop_map(Doc::Array),
                    proptest::collection::vec((key(&["a", "B", "k", "é", "q\""]), inner), 0..7)
                        .prop_map(|members| Doc::Object(
                            members
                                .into_iter()
                                .map(|((key, escape), value)| (key, escape, value))
                                .collect()
                        )),
                ]
            })
            .boxed()
    }

    /// An object of members keyed from `names`, values from `value`.
    fn object_of(
        names: &'static [&'static str],
        value: BoxedStrategy<Doc>,
        members: std::ops::Range<usize>,
    ) -> BoxedStrategy<Doc> {
        prop_oneof![
            9 => proptest::collection::vec((key(names), value), members).prop_map(|members| {
                Doc::Object(
                    members
                        .into_iter()
                        .map(|((key, escape), value)| (key, escape, value))
                        .collect(),
                )
            }),
            1 => leaf(),
        ]
        .boxed()
    }

    pub(crate) fn identity() -> BoxedStrategy<Doc> {
        let issuer = object_of(
            &[
                "type",
                "principalId",
                "arn",
                "accountId",
                "userName",
                "other",
            ],
            leaf(),
            0..6,
        );
        let attributes = object_of(&["creationDate", "mfaAuthenticated", "other"], leaf(), 0..4);
        let web = object_of(
            &["federatedProvider", "attributes"],
            prop_oneof![leaf(), any_doc()].boxed(),
            0..3,
        );
        let context = (attributes, issuer, web).prop_flat_map(|(attributes, issuer, web)| {
            object_of(
                &[
                    "attributes",
                    "sessionIssuer",
                    "webIdFederationData",
                    "sourceIdentity",
                    "x",
                ],
                prop_oneof![Just(attributes), Just(issuer), Just(web), leaf(),].boxed(),
                0..5,
            )
        });
        context
            .prop_flat_map(|context| {
                object_of(
                    &[
                        "type",
                        "principalId",
                        "arn",
                        "accountId",
                        "accessKeyId",
                        "sessionContext",
                        "invokedBy",
                        "unknown",
                    ],
                    prop_oneof![3 => leaf(), 2 => Just(context), 1 => any_doc()].boxed(),
                    0..9,
                )
            })
            .boxed()
    }

    fn resources() -> BoxedStrategy<Doc> {
        let resource = object_of(&["type", "ARN", "accountId", "extra"], leaf(), 0..4);
        prop_oneof![
            4 => proptest::collection::vec(prop_oneof![4 => resource, 1 => leaf()], 0..4)
                .prop_map(Doc::Array),
            1 => leaf(),
        ]
        .boxed()
    }

    const TOP: [&str; 22] = [
        "eventVersion",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "errorCode",
        "requestID",
        "eventID",
        "readOnly",
        "managementEvent",
        "recipientAccountId",
        "sessionCredentialFromConsole",
        "edgeDeviceDetails",
        "insightSource",
        "eventContext",
        "somethingElse",
        "eventJsonSkeleton",
        "userAgent",
        "errorMessage",
        "addendum",
        "insightDetails",
    ];
    const MAPS: [&str; 4] = [
        "requestParameters",
        "responseElements",
        "additionalEventData",
        "serviceEventDetails",
    ];

    /// A record: scalars, maps, the identity, resources and unknown members, in any order.
    fn record() -> BoxedStrategy<Doc> {
        let scalar = (key(&TOP), prop_oneof![4 => leaf(), 1 => any_doc()]);
        let map = (
            key(&MAPS),
            object_of(
                &["bucketName", "key", "Key", "nested", "é"],
                any_doc(),
                0..6,
            ),
        );
        let identity = (key(&["userIdentity"]), identity());
        let resources = (key(&["resources"]), resources());
        let tls = (
            key(&["tlsDetails"]),
            object_of(&["tlsVersion", "cipherSuite", "x"], leaf(), 0..3),
        );
        proptest::collection::vec(
            prop_oneof![4 => scalar, 2 => map, 1 => identity, 1 => resources, 1 => tls],
            0..14,
        )
        .prop_map(|members| {
            Doc::Object(
                members
                    .into_iter()
                    .map(|((key, escape), value)| (key, escape, value))
                    .collect(),
            )
        })
        .boxed()
    }

    fn assert_same(events: &[EventRecord]) -> Result<(), TestCaseError> {
        let texts: Vec<&str> = events.iter().map(EventRecord::json).collect();
        assert_same_texts(&texts)
    }

    fn assert_same_texts(texts: &[&str]) -> Result<(), TestCaseError> {
        let direct = file_batch_of(texts).unwrap();
        let tree = file_batch_by_tree(texts).unwrap();
        prop_assert_eq!(direct.schema(), tree.schema());
        for (index, field) in tree.schema().fields().iter().enumerate() {
            prop_assert!(
                direct.column(index).to_data() == tree.column(index).to_data(),
                "column {} of {:?}",
                field.name(),
                texts
            );
        }
        // And each skeleton gives its record's text back byte for byte.
        let skeletons = direct
            .column_by_name(crate::schema::EVENT_JSON_SKELETON)
            .unwrap()
            .as_string::<i32>();
        let schema = direct.schema();
        let columns = crate::skeleton::ElidedColumns::of(&schema, direct.columns()).unwrap();
        for (row, text) in texts.iter().enumerate() {
            let rebuilt = crate::skeleton::rebuild(skeletons.value(row), &columns, row);
            prop_assert_eq!(rebuilt.as_deref(), Some(*text));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(768))]

        /// Any record reads into exactly the columns (and skeleton) the tree walk gives.
        #[test]
        fn one_pass_reading_gives_the_tree_walks_columns(
            records in proptest::collection::vec(
                (record(), proptest::sample::select(vec!["", " ", "\n\t", " \r\n "])),
                1..6,
            )
        ) {
            let events: Vec<EventRecord> = records
                .iter()
                .filter_map(|(doc, gap)| {
                    let mut text = String::new();
                    doc.write(gap, &mut text);
                    // Records repeating a field OpenTrail reads are refused at ingest.
                    EventRecord::from_json(&text).ok()
                })
                .collect();
            prop_assume!(!events.is_empty());
            assert_same(&events)?;
        }
    }

    #[test]
    fn every_conformance_record_reads_as_the_tree_walk_reads_it() {
        let events = conformance_events();
        assert!(events.len() > 50);
        for slice in events.chunks(256) {
            assert_same(slice).unwrap();
        }
    }

    /// A text the scan cannot read (no record's, which are all JSON) is a row of nulls,
    /// and leaves nothing of itself in the rows after it.
    #[test]
    fn an_unreadable_text_is_a_row_of_nulls() {
        let texts = [
            r#"{"resources":[{"type":"a"},tru]}"#,
            r#"{"resources":[{"type":"b"}]}"#,
            r#"{"requestParameters":{"k":[tru]},"eventName":"n"}"#,
            r#"{"requestParameters":{"j":"v"},"userIdentity":{"type":"x","arn":[1,}}"#,
            r#"{"userIdentity":{"type":"y"},"eventName":"m"}"#,
            "not json",
            r#"{"eventName":"z"} and more"#,
            r#"{"eventName":"w","readOnly":true}"#,
        ];
        assert_same_texts(&texts).unwrap();
        let batch = file_batch_of(&texts).unwrap();
        let names = batch
            .column_by_name("eventname")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .collect::<Vec<_>>();
        assert_eq!(
            names,
            [None, None, None, None, Some("m"), None, None, Some("w")]
        );
        let resources = batch.column_by_name("resources").unwrap().as_list::<i32>();
        assert!(resources.is_null(0));
        let second = resources.value(1);
        let types = second.as_struct().column_by_name("type").unwrap();
        assert_eq!(types.as_string::<i32>().value(0), "b");
    }

    #[test]
    fn repeated_and_respelled_keys_read_as_the_tree_walk_reads_them() {
        let texts = [
            r#"{"EventName":"a","EVENTNAME":"b","EventName":"c","eventSource":"s"}"#,
            r#"{"eventname":null,"EventName":"x","requestParameters":{"k":1,"k":{"a":[1,2.50,"\/"]},"j":null}}"#,
            r#"{"userIdentity":{"Type":"a","type":"b","TYPE":"c","sessionContext":{"attributes":{"creationDate":"2024-01-01T00:00:00Z"}},"SessionContext":5}}"#,
            r#"{"resources":[null,{"ARN":"x","arn":"y"},7,{"Type":"t"}],"readOnly":"true","managementEvent":"no"}"#,
            r#"{ "eventTime" : "2024-03-10T11:45:03.5Z" , "sourceIPAddress" : { "b" : 1 , "a" : [ ] } , "errorCode" : 1.0e2 }"#,
            r#"{"\u0065ventName":"escaped key","requestParameters":{"\u006b":"v","k":"w"}}"#,
            r#"{"insightDetails":{"state":"Start","insightContext":{"statistics":{"baseline":{"average":0.5}},"attributions":[]}},"addendum":{"reason":"r"}}"#,
        ];
        let events: Vec<EventRecord> = texts
            .iter()
            .map(|text| EventRecord::from_json(text).unwrap())
            .collect();
        assert_same(&events).unwrap();
        // Maps with more members than are compared one by one, keys repeated.
        let members = |count: usize| -> String {
            (0..count)
                .map(|i| {
                    format!(
                        r#""k{}":{{"n{}":{},"n{}":[{}]}}"#,
                        i % 23,
                        i % 3,
                        i,
                        i % 3,
                        i
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let many = format!(
            r#"{{"requestParameters":{{{}}},"responseElements":{{"r":{{{}}}}}}}"#,
            members(60),
            members(40)
        );
        assert_same(&[EventRecord::from_json(&many).unwrap()]).unwrap();
    }
}
