//! SearchSampleQueries: the library ranked against a phrase, paged.

use crate::library::SampleLibrary;
use crate::SampleError;
use base64::Engine as _;
use opentrail_operations::{
    SearchSampleQueriesRequest, SearchSampleQueriesResponse, SearchSampleQueriesSearchResult,
};
use sha2::{Digest, Sha256};

/// SearchPhrase length limits (the model's).
const MIN_PHRASE: usize = 2;
const MAX_PHRASE: usize = 1000;
/// MaxResults limits (the model's) and OpenTrail's default page size.
const MAX_RESULTS: i32 = 50;
pub const DEFAULT_MAX_RESULTS: i32 = 10;

/// Whether `text` is printable ASCII and newlines (the model's `^[ -~\n]*$`).
pub(crate) fn printable(text: &str) -> bool {
    text.bytes()
        .all(|b| b == b'\n' || (b' '..=b'~').contains(&b))
}

pub fn search(
    library: &SampleLibrary,
    input: &SearchSampleQueriesRequest,
) -> Result<SearchSampleQueriesResponse, SampleError> {
    let phrase = &input.search_phrase;
    let length = phrase.chars().count();
    if !(MIN_PHRASE..=MAX_PHRASE).contains(&length) {
        return Err(SampleError::InvalidParameter(format!(
            "SearchPhrase must be between {MIN_PHRASE} and {MAX_PHRASE} characters long, got {length}"
        )));
    }
    if !printable(phrase) {
        return Err(SampleError::InvalidParameter(
            "SearchPhrase may hold only printable ASCII characters and newlines".into(),
        ));
    }
    let page_size = input.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    if !(1..=MAX_RESULTS).contains(&page_size) {
        return Err(SampleError::InvalidParameter(format!(
            "MaxResults must be between 1 and {MAX_RESULTS}, got {page_size}"
        )));
    }
    let start = match &input.next_token {
        Some(token) => decode_token(token, phrase)?,
        None => 0,
    };
    let ranked = library.search(phrase);
    let end = (start + page_size as usize).min(ranked.len());
    let page = ranked.get(start..end).unwrap_or_default();
    let next_token = (end < ranked.len()).then(|| encode_token(end, phrase));
    Ok(SearchSampleQueriesResponse {
        search_results: Some(
            page.iter()
                .map(|r| SearchSampleQueriesSearchResult {
                    name: Some(r.sample.name.clone()),
                    description: Some(r.sample.description.clone()),
                    sql: Some(r.sample.sql.clone()),
                    // Four decimals: stable across platforms' float formatting.
                    relevance: Some((r.relevance * 10_000.0).round() / 10_000.0),
                })
                .collect(),
        ),
        next_token,
    })
}

/// A token names the next result's position and the phrase it pages through, so that it
/// cannot be used with another phrase.
fn encode_token(position: usize, phrase: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{position}:{}", phrase_digest(phrase)))
}

fn decode_token(token: &str, phrase: &str) -> Result<usize, SampleError> {
    let invalid = || {
        SampleError::InvalidParameter(format!(
            "NextToken {token} is not valid for this SearchPhrase"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (position, digest) = text.split_once(':').ok_or_else(invalid)?;
    if digest != phrase_digest(phrase) {
        return Err(invalid());
    }
    position.parse().map_err(|_| invalid())
}

fn phrase_digest(phrase: &str) -> String {
    hex::encode(&Sha256::digest(phrase.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        phrase: &str,
        max: Option<i32>,
        token: Option<String>,
    ) -> SearchSampleQueriesRequest {
        SearchSampleQueriesRequest {
            search_phrase: phrase.into(),
            max_results: max,
            next_token: token,
        }
    }

    fn names(response: &SearchSampleQueriesResponse) -> Vec<String> {
        response
            .search_results
            .iter()
            .flatten()
            .map(|r| r.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn the_best_match_comes_first() {
        let library = SampleLibrary::builtin().unwrap();
        let cases = [
            ("failed console logins", "Failed console logins"),
            ("root user activity", "Root user activity"),
            ("who deleted S3 buckets", "S3 bucket deletions"),
            ("security group changes", "Security group changes"),
            ("KMS key deletion", "KMS key deletion scheduled or disabled"),
            (
                "brute force password guessing",
                "Brute force console login attempts",
            ),
            ("access denied", "Access denied errors"),
        ];
        for (phrase, expected) in cases {
            let answer = search(&library, &request(phrase, None, None)).unwrap();
            assert_eq!(
                names(&answer).first().map(String::as_str),
                Some(expected),
                "{phrase}: {:?}",
                names(&answer)
            );
        }
    }

    #[test]
    fn relevance_is_normalised_and_descending() {
        let library = SampleLibrary::builtin().unwrap();
        let answer = search(&library, &request("console login mfa", Some(50), None)).unwrap();
        let relevance: Vec<f64> = answer
            .search_results
            .unwrap()
            .iter()
            .map(|r| r.relevance.unwrap())
            .collect();
        assert!(!relevance.is_empty());
        assert!(relevance
            .iter()
            .all(|r| (0.0..=1.0).contains(r) && *r > 0.0));
        assert!(relevance.windows(2).all(|w| w[0] >= w[1]), "{relevance:?}");
    }

    #[test]
    fn unrelated_phrases_find_nothing() {
        let library = SampleLibrary::builtin().unwrap();
        let answer = search(&library, &request("zzzz qqqq", None, None)).unwrap();
        assert_eq!(answer.search_results, Some(vec![]));
        assert_eq!(answer.next_token, None);
    }

    #[test]
    fn pages_cover_every_result_once() {
        let library = SampleLibrary::builtin().unwrap();
        let all = names(&search(&library, &request("changes", Some(50), None)).unwrap());
        assert!(all.len() > 3);
        let mut paged = Vec::new();
        let mut token = None;
        loop {
            let page = search(&library, &request("changes", Some(3), token)).unwrap();
            assert!(names(&page).len() <= 3);
            paged.extend(names(&page));
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(paged, all);
    }

    #[test]
    fn bad_parameters_are_invalid_parameters() {
        let library = SampleLibrary::builtin().unwrap();
        let invalid = |r: SearchSampleQueriesRequest| {
            matches!(search(&library, &r), Err(SampleError::InvalidParameter(_)))
        };
        assert!(invalid(request("a", None, None)));
        assert!(invalid(request(&"a".repeat(1001), None, None)));
        assert!(invalid(request("caf\u{e9} logins", None, None)));
        assert!(invalid(request("logins", Some(0), None)));
        assert!(invalid(request("logins", Some(51), None)));
        assert!(invalid(request("logins", None, Some("garbage!".into()))));
        let other = search(&library, &request("changes", Some(1), None))
            .unwrap()
            .next_token;
        assert!(
            invalid(request("logins", None, other)),
            "a token of another phrase"
        );
    }
}
