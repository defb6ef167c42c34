//! Words for ranking: what a search phrase and a sample query are made of, normalised so
//! that "logins", "Login" and `ConsoleLogin` meet.

/// Words too common to tell samples apart.
const STOP_WORDS: &[&str] = &[
    "a", "about", "all", "an", "and", "any", "are", "as", "at", "be", "by", "did", "do", "does",
    "for", "from", "give", "how", "i", "in", "into", "is", "it", "its", "me", "my", "of", "on",
    "or", "our", "show", "so", "that", "the", "their", "them", "then", "there", "these", "this",
    "to", "was", "we", "were", "what", "when", "where", "which", "who", "whom", "why", "with",
    "you", "your", "find", "list", "get", "query", "queries",
];

/// The terms of `text`: lowercase ASCII words split at non-alphanumerics and at camel-case
/// boundaries (`ConsoleLogin` gives `consolelogin`, `consol` and `login`), stop words
/// dropped, each reduced to a stem.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let parts = camel_parts(word);
        if parts.len() > 1 {
            push_term(&mut out, &word.to_ascii_lowercase());
        }
        for part in parts {
            push_term(&mut out, &part.to_ascii_lowercase());
        }
    }
    out
}

fn push_term(out: &mut Vec<String>, word: &str) {
    if STOP_WORDS.contains(&word) {
        return;
    }
    out.push(stem(word));
}

/// `ConsoleLogin` → `Console`, `Login`; `MFAUsed` → `MFA`, `Used`; `s3` stays whole.
fn camel_parts(word: &str) -> Vec<&str> {
    let bytes = word.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..bytes.len() {
        let (prev, cur) = (bytes[i - 1], bytes[i]);
        let next_lower = bytes.get(i + 1).is_some_and(|b| b.is_ascii_lowercase());
        let boundary = (prev.is_ascii_lowercase() && cur.is_ascii_uppercase())
            || (prev.is_ascii_uppercase() && cur.is_ascii_uppercase() && next_lower);
        if boundary {
            parts.push(&word[start..i]);
            start = i;
        }
    }
    parts.push(&word[start..]);
    parts
}

/// A light suffix stripper (plural and verb endings), enough for English search phrases
/// about API activity: `deletions`/`deleted`/`deleting` → `delet`, `logins` → `login`.
pub fn stem(word: &str) -> String {
    let w = word;
    if w.len() <= 3 || w.bytes().any(|b| b.is_ascii_digit()) {
        return w.to_owned();
    }
    let mut stemmed = w;
    for suffix in [
        "ations", "ation", "ions", "ion", "ing", "ies", "ied", "es", "ed", "s",
    ] {
        if let Some(rest) = w.strip_suffix(suffix) {
            if rest.len() < 3 || (suffix == "s" && rest.ends_with(['s', 'u'])) {
                continue;
            }
            if matches!(suffix, "ies" | "ied") {
                return format!("{rest}y");
            }
            stemmed = rest;
            break;
        }
    }
    // `change`, `changes` and `changed` all end as `chang`.
    match stemmed.strip_suffix('e') {
        Some(rest) if rest.len() >= 3 => rest.to_owned(),
        _ => stemmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_words_split_and_stay_whole() {
        assert_eq!(terms("ConsoleLogin"), ["consolelogin", "consol", "login"]);
        assert_eq!(terms("MFAUsed"), ["mfaus", "mfa", "used"]);
        assert_eq!(terms("s3 bucket"), ["s3", "bucket"]);
    }

    #[test]
    fn inflections_meet() {
        assert_eq!(stem("logins"), stem("login"));
        assert_eq!(stem("deletions"), stem("deletion"));
        assert_eq!(stem("policies"), stem("policy"));
        assert_eq!(stem("changes"), stem("change"));
        assert_eq!(stem("changed"), stem("change"));
        assert_eq!(stem("access"), "access");
    }

    #[test]
    fn stop_words_are_dropped() {
        assert_eq!(terms("show me the errors"), ["error"]);
    }
}
