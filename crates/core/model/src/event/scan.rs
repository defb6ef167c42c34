//! A single-pass, validating JSON scanner over a record's text. It accepts exactly what
//! `serde_json` accepts when it skips a value (RFC 8259, any nesting: skipping keeps its
//! own stack, as serde's does) and hands out byte ranges, so records are indexed in one
//! pass without building values. Strings are scanned eight bytes at a time.

/// Why the text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub(crate) what: std::borrow::Cow<'static, str>,
    pub(crate) at: usize,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// Boxed, so that results stay small enough to return in registers on the hot path.
pub(crate) type ScanResult<T> = Result<T, Box<ScanError>>;

impl ScanError {
    #[cold]
    pub(crate) fn at(what: std::borrow::Cow<'static, str>, at: u32) -> Box<Self> {
        Box::new(Self {
            what,
            at: at as usize,
        })
    }

    /// A known key given twice in one object (serde's typed parse refuses it too).
    pub(crate) fn duplicate_field(key: &str, at: u32) -> Box<Self> {
        Self::at(format!("duplicate field `{key}`").into(), at)
    }
}

/// The delimiters and error messages of one container kind.
struct Container {
    open: u8,
    close: u8,
    not_this: &'static str,
    not_next: &'static str,
}

/// A JSON string as scanned: the byte range between its quotes, and whether it holds
/// escapes (then it must be decoded to be read).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StrToken {
    pub(crate) start: u32,
    pub(crate) end: u32,
    pub(crate) escaped: bool,
}

impl StrToken {
    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

pub(crate) struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` that is `"`, `\` or a control character.
fn special_bytes(word: u64) -> u64 {
    let quote = word ^ (ONES * b'"' as u64);
    let backslash = word ^ (ONES * b'\\' as u64);
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    (zero(quote) | zero(backslash) | below_space) & HIGHS
}

impl<'a> Scanner<'a> {
    /// Scans `text`, which callers keep below 4 GiB (ranges are `u32`).
    pub(crate) fn new(text: &'a str) -> Self {
        debug_assert!(u32::try_from(text.len()).is_ok());
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    #[cold]
    fn error(&self, what: &'static str) -> Box<ScanError> {
        Box::new(ScanError {
            what: what.into(),
            at: self.pos,
        })
    }

    /// Where the scanner is: the byte offset of what it reads next.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Moves on to `position`, past what another scan of the same text read.
    pub(crate) fn advance_to(&mut self, position: usize) {
        debug_assert!(position >= self.pos && position <= self.bytes.len());
        self.pos = position;
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(crate) fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `byte` after optional whitespace.
    pub(crate) fn expect(&mut self, byte: u8, what: &'static str) -> ScanResult<()> {
        self.skip_whitespace();
        if self.peek() != Some(byte) {
            return Err(self.error(what));
        }
        self.pos += 1;
        Ok(())
    }

    /// After the whole value: only whitespace may follow.
    pub(crate) fn finish(&mut self) -> ScanResult<()> {
        self.skip_whitespace();
        if self.pos != self.bytes.len() {
            return Err(self.error("trailing characters"));
        }
        Ok(())
    }

    /// Scans the string starting at the current `"`.
    pub(crate) fn string(&mut self) -> ScanResult<StrToken> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Eight bytes at a time up to the next quote, backslash or control character.
            while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
                let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                let special = special_bytes(word);
                if special != 0 {
                    self.pos += (special.trailing_zeros() / 8) as usize;
                    break;
                }
                self.pos += 8;
            }
            match self.peek() {
                Some(b'"') => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok(StrToken {
                        start: start as u32,
                        end: end as u32,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(byte) if byte < 0x20 => {
                    return Err(self.error("control character in a string"));
                }
                Some(_) => self.pos += 1,
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn escape(&mut self) -> ScanResult<()> {
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
            Some(b'u') => {
                let hex = self.bytes.get(self.pos + 1..self.pos + 5);
                if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(self.error("invalid \\u escape"));
                }
                self.pos += 5;
            }
            _ => return Err(self.error("invalid escape")),
        }
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> ScanResult<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                    return Err(self.error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> ScanResult<()> {
        if self.bytes.get(self.pos..self.pos + word.len()) != Some(word) {
            return Err(self.error("expected a value"));
        }
        self.pos += word.len();
        Ok(())
    }

    /// Skips whitespace and one value of any type; returns the value's byte range.
    pub(crate) fn value(&mut self) -> ScanResult<(usize, usize)> {
        self.skip_whitespace();
        let start = self.pos;
        // Open containers: true for objects.
        let mut open = OpenContainers::default();
        loop {
            // One value, or the start of a container.
            self.skip_whitespace();
            match self.peek() {
                Some(byte @ (b'{' | b'[')) => {
                    self.pos += 1;
                    self.skip_whitespace();
                    let object = byte == b'{';
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        open.push(object);
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.error("expected a value")),
            }
            // After a value: close containers until one continues with a comma.
            loop {
                let Some(object) = open.last() else {
                    return Ok((start, self.pos));
                };
                self.skip_whitespace();
                match (self.peek(), object) {
                    (Some(b','), _) => {
                        self.pos += 1;
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        open.pop();
                    }
                    (_, true) => return Err(self.error("expected `,` or `}`")),
                    (_, false) => return Err(self.error("expected `,` or `]`")),
                }
            }
        }
    }

    /// A member's key and its colon, skipping whitespace before each.
    fn key(&mut self) -> ScanResult<StrToken> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a key string"));
        }
        let key = self.string()?;
        self.expect(b':', "expected `:`")?;
        Ok(key)
    }

    /// Walks the object starting at the current `{` (after whitespace), calling `member`
    /// with each key with the scanner at the value, which `member` must consume (for
    /// example with [`Self::value`]). Returns the object's byte range.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, StrToken) -> ScanResult<()>,
    ) -> ScanResult<(usize, usize)> {
        let container = Container {
            open: b'{',
            close: b'}',
            not_this: "expected an object",
            not_next: "expected `,` or `}`",
        };
        self.container(container, |scanner| {
            let key = scanner.key()?;
            scanner.skip_whitespace();
            member(scanner, key)
        })
    }

    /// Walks the array starting at the current `[` like [`Self::object`]: `element` is
    /// called with the scanner at each element, which it must consume.
    pub(crate) fn array(
        &mut self,
        element: impl FnMut(&mut Self) -> ScanResult<()>,
    ) -> ScanResult<(usize, usize)> {
        let container = Container {
            open: b'[',
            close: b']',
            not_this: "expected an array",
            not_next: "expected `,` or `]`",
        };
        self.container(container, element)
    }

    /// An object or array: `item` consumes each member or element, after whitespace.
    fn container(
        &mut self,
        container: Container,
        mut item: impl FnMut(&mut Self) -> ScanResult<()>,
    ) -> ScanResult<(usize, usize)> {
        self.skip_whitespace();
        let start = self.pos;
        if self.peek() != Some(container.open) {
            return Err(self.error(container.not_this));
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(container.close) {
            self.pos += 1;
            return Ok((start, self.pos));
        }
        loop {
            self.skip_whitespace();
            item(self)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(byte) if byte == container.close => {
                    self.pos += 1;
                    return Ok((start, self.pos));
                }
                _ => return Err(self.error(container.not_next)),
            }
        }
    }

    /// The text of `key`, decoded when it has escapes; an error when they do not decode,
    /// as serde refuses such keys.
    pub(crate) fn key_text(&self, key: StrToken) -> ScanResult<std::borrow::Cow<'a, str>> {
        let text = if key.escaped {
            self.text
                .get(key.start as usize - 1..key.end as usize + 1)
                .and_then(|quoted| serde_json::from_str::<String>(quoted).ok())
                .map(Into::into)
        } else {
            self.text.get(key.range()).map(Into::into)
        };
        text.ok_or_else(|| ScanError::at("invalid escape in a key".into(), key.start))
    }
}

/// The kinds of the containers a skipped value is inside: a bit per level for the first
/// 64 levels (no allocation for any realistic record), a vector beyond.
#[derive(Default)]
struct OpenContainers {
    bits: u64,
    depth: usize,
    deeper: Vec<bool>,
}

impl OpenContainers {
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            self.bits = (self.bits & !(1 << self.depth)) | (u64::from(object) << self.depth);
        } else {
            self.deeper.push(object);
        }
        self.depth += 1;
    }

    fn last(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            depth if depth <= 64 => Some(self.bits & (1 << (depth - 1)) != 0),
            _ => self.deeper.last().copied(),
        }
    }

    fn pop(&mut self) {
        if self.depth > 64 {
            self.deeper.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips(text: &str) -> bool {
        let mut scanner = Scanner::new(text);
        scanner.value().is_ok() && scanner.finish().is_ok()
    }

    #[test]
    fn accepts_and_rejects_like_serde_json() {
        let cases = [
            "{}",
            "[]",
            " { \"a\" : [1, -2.5e+3, true, false, null, \"x\\u00e9\\n\"] } ",
            "{\"a\":{\"b\":{\"c\":[[],[{}]]}}}",
            "\"\\ud800\"",
            "0",
            "-0.0e0",
            "01",
            "1.",
            "-",
            ".5",
            "1e",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "[1 2]",
            "\"a\u{1}b\"",
            "\"tab\there\"",
            "\"\\x\"",
            "\"\\u12G4\"",
            "\"unterminated",
            "tru",
            "nulll",
            "{\"a\":1}}",
            "[",
            "",
            "\"long string with no escapes at all and more than eight bytes\"",
            "\"ends with escape \\\\\"",
            "\"\u{7f}\u{80}é漢\"",
        ];
        for case in cases {
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(case).is_ok();
            assert_eq!(skips(case), serde, "{case:?}");
        }
    }

    #[test]
    fn deep_nesting_is_skipped_like_serde_json() {
        for depth in [127, 128, 129, 10_000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
            assert_eq!(skips(&text), serde, "depth {depth}");
        }
    }

    #[test]
    fn mixed_deep_nesting_is_tracked_past_64_levels() {
        for depth in [63, 64, 65, 130] {
            let open: String = (0..depth)
                .map(|i| if i % 3 == 0 { "{\"k\":" } else { "[" })
                .collect();
            let close: String = (0..depth)
                .rev()
                .map(|i| if i % 3 == 0 { "}" } else { "]" })
                .collect();
            for text in [
                format!("{open}1{close}"),
                format!("{open}1{close}]"),
                format!("{open}1}}{close}"),
            ] {
                let serde = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
                assert_eq!(skips(&text), serde, "depth {depth}: {text}");
            }
        }
    }

    #[test]
    fn special_bytes_finds_quotes_backslashes_and_control_characters() {
        for (index, byte) in [(0, b'"'), (3, b'\\'), (7, 0x1f), (5, 0)] {
            let mut word = *b"abcdefgh";
            word[index] = byte;
            let found = special_bytes(u64::from_le_bytes(word));
            assert_eq!(found.trailing_zeros() / 8, index as u32, "{byte}");
        }
        assert_eq!(special_bytes(u64::from_le_bytes(*b"abc \x7f\xff~ ")), 0);
    }
}
