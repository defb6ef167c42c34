//! Okapi BM25 over documents of weighted fields (BM25F: a term's frequency is the weighted
//! sum of its frequencies in the fields, and so is a document's length), with a relevance
//! in 0–1 that does not depend on the other documents' scores.

use std::collections::HashMap;

/// Term-frequency saturation.
const K1: f64 = 1.2;
/// Length normalisation.
const B: f64 = 0.75;

/// One document's weighted term frequencies and length.
struct Doc {
    frequencies: HashMap<String, f64>,
    length: f64,
}

pub struct Bm25Index {
    docs: Vec<Doc>,
    /// How many documents hold each term.
    document_frequency: HashMap<String, usize>,
    average_length: f64,
}

impl Bm25Index {
    /// Indexes documents given as fields of `(weight, terms)`.
    pub fn new(documents: Vec<Vec<(f64, Vec<String>)>>) -> Self {
        let mut document_frequency: HashMap<String, usize> = HashMap::new();
        let docs: Vec<Doc> = documents
            .into_iter()
            .map(|fields| {
                let mut frequencies: HashMap<String, f64> = HashMap::new();
                let mut length = 0.0;
                for (weight, terms) in fields {
                    for term in terms {
                        *frequencies.entry(term).or_default() += weight;
                        length += weight;
                    }
                }
                for term in frequencies.keys() {
                    *document_frequency.entry(term.clone()).or_default() += 1;
                }
                Doc {
                    frequencies,
                    length,
                }
            })
            .collect();
        let average_length = if docs.is_empty() {
            1.0
        } else {
            (docs.iter().map(|d| d.length).sum::<f64>() / docs.len() as f64).max(1.0)
        };
        Self {
            docs,
            document_frequency,
            average_length,
        }
    }

    /// BM25's inverse document frequency (the "plus one" form, never negative).
    fn idf(&self, term: &str) -> f64 {
        let n = self.docs.len() as f64;
        let df = self.document_frequency.get(term).copied().unwrap_or(0) as f64;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// Each document's relevance to `query` in 0–1, in index order: its BM25 score divided
    /// by the most any document could score (every query term present with saturated
    /// frequency: `idf · (k1 + 1)` per term). Terms no document holds still count in that
    /// maximum, so a phrase that is half unknown words is at most half relevant.
    pub fn relevance(&self, query: &[String]) -> Vec<f64> {
        let mut unique: Vec<&String> = query.iter().collect();
        unique.sort();
        unique.dedup();
        let ideal: f64 = unique.iter().map(|t| self.idf(t) * (K1 + 1.0)).sum();
        self.docs
            .iter()
            .map(|doc| {
                if ideal <= 0.0 {
                    return 0.0;
                }
                let norm = K1 * (1.0 - B + B * doc.length / self.average_length);
                let score: f64 = unique
                    .iter()
                    .filter_map(|term| {
                        let tf = *doc.frequencies.get(*term)?;
                        Some(self.idf(term) * tf * (K1 + 1.0) / (tf + norm))
                    })
                    // A fold from +0.0: an empty `sum` of floats is -0.0.
                    .fold(0.0, |total, part| total + part);
                (score / ideal).clamp(0.0, 1.0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    fn index(docs: &[&str]) -> Bm25Index {
        Bm25Index::new(docs.iter().map(|d| vec![(1.0, words(d))]).collect())
    }

    #[test]
    fn documents_without_query_terms_score_zero() {
        let idx = index(&["root login", "bucket deleted"]);
        assert_eq!(idx.relevance(&words("kms")), vec![0.0, 0.0]);
    }

    #[test]
    fn rare_terms_weigh_more_than_common_ones() {
        // "event" is in every document, "root" in one: the root document ranks first.
        let idx = index(&["event root", "event bucket", "event key", "event region"]);
        let r = idx.relevance(&words("event root"));
        assert!(r[0] > r[1], "{r:?}");
        assert_eq!(r[1], r[2]);
        assert!(r[1] < 0.2, "a term every document holds says little: {r:?}");
    }

    #[test]
    fn shorter_documents_rank_higher_for_the_same_matches() {
        let idx = index(&[
            "console login",
            "console login with many other words about something else entirely",
            "bucket",
        ]);
        let r = idx.relevance(&words("login"));
        assert!(r[0] > r[1], "{r:?}");
    }

    #[test]
    fn frequency_saturates() {
        let idx = index(&[
            "error",
            "error error error error error error",
            "bucket",
            "key",
        ]);
        let r = idx.relevance(&words("error"));
        assert!(r[1] > r[0] * 0.9, "{r:?}");
        assert!(r[1] < 2.0 * r[0], "{r:?}");
    }

    #[test]
    fn field_weights_count() {
        let idx = Bm25Index::new(vec![
            vec![(3.0, words("root")), (1.0, words("activity of a user"))],
            vec![(3.0, words("activity")), (1.0, words("root of a user"))],
            vec![(3.0, words("bucket")), (1.0, words("bucket of a user"))],
        ]);
        let r = idx.relevance(&words("root"));
        assert!(
            r[0] > r[1],
            "a name match outweighs a description match: {r:?}"
        );
    }

    #[test]
    fn relevance_is_between_zero_and_one_and_full_matches_score_high() {
        let idx = index(&["root console login", "bucket", "key", "region", "error"]);
        for query in [
            "root console login",
            "root",
            "nothing here",
            "root bucket key",
        ] {
            for value in idx.relevance(&words(query)) {
                assert!((0.0..=1.0).contains(&value), "{query}: {value}");
            }
        }
        let r = idx.relevance(&words("root console login"));
        // One occurrence of each term in a short document: about a third of the ideal.
        assert!(r[0] > 0.25, "{r:?}");
        assert!(r[1..].iter().all(|x| *x == 0.0), "{r:?}");
        let half = idx.relevance(&words("root unknownword"));
        assert!(
            half[0] < r[0],
            "unknown words lower relevance: {half:?} {r:?}"
        );
    }
}
