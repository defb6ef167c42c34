//! The sample queries OpenTrail ships (`data/sample-queries.json`), indexed for search.

use crate::bm25::Bm25Index;
use crate::text::terms;
use serde::Deserialize;

/// The placeholder samples use for the event data store, as AWS's samples do.
pub const EDS_PLACEHOLDER: &str = "$EDS_ID";

const LIBRARY_JSON: &str = include_str!("../data/sample-queries.json");

/// How much a term counts by where it occurs: names are short and say what a query is for.
const NAME_WEIGHT: f64 = 3.0;
const DESCRIPTION_WEIGHT: f64 = 1.0;
/// Identifiers and literals of the SQL (`ConsoleLogin`, `s3.amazonaws.com`) help a little.
const SQL_WEIGHT: f64 = 0.3;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SampleQuery {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Description")]
    pub description: String,
    /// Lake SQL with [`EDS_PLACEHOLDER`] in FROM.
    #[serde(rename = "SQL")]
    pub sql: String,
}

impl SampleQuery {
    /// The SQL over the store `store_id`.
    pub fn sql_for(&self, store_id: &str) -> String {
        self.sql.replace(EDS_PLACEHOLDER, store_id)
    }
}

#[derive(Deserialize)]
struct LibraryFile {
    #[serde(rename = "SampleQueries")]
    sample_queries: Vec<SampleQuery>,
}

/// One sample and how relevant it is to a phrase (0–1).
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked<'a> {
    pub sample: &'a SampleQuery,
    pub relevance: f64,
}

pub struct SampleLibrary {
    samples: Vec<SampleQuery>,
    index: Bm25Index,
}

impl SampleLibrary {
    /// The library built into OpenTrail (checked by this crate's tests).
    pub fn builtin() -> Result<Self, String> {
        let file: LibraryFile = serde_json::from_str(LIBRARY_JSON)
            .map_err(|e| format!("data/sample-queries.json is not a sample library: {e}"))?;
        Ok(Self::new(file.sample_queries))
    }

    pub fn new(samples: Vec<SampleQuery>) -> Self {
        let index = Bm25Index::new(
            samples
                .iter()
                .map(|s| {
                    vec![
                        (NAME_WEIGHT, terms(&s.name)),
                        (DESCRIPTION_WEIGHT, terms(&s.description)),
                        (SQL_WEIGHT, sql_terms(&s.sql)),
                    ]
                })
                .collect(),
        );
        Self { samples, index }
    }

    pub fn samples(&self) -> &[SampleQuery] {
        &self.samples
    }

    /// The samples relevant to `phrase` (relevance above zero), most relevant first; ties
    /// in library order.
    pub fn search(&self, phrase: &str) -> Vec<Ranked<'_>> {
        let relevance = self.index.relevance(&terms(phrase));
        let mut ranked: Vec<Ranked<'_>> = self
            .samples
            .iter()
            .zip(relevance)
            .filter(|(_, r)| *r > 0.0)
            .map(|(sample, relevance)| Ranked { sample, relevance })
            .collect();
        ranked.sort_by(|a, b| b.relevance.total_cmp(&a.relevance));
        ranked
    }
}

/// The words of a query's SQL that say what it is about: quoted literals and identifiers,
/// not SQL keywords or the store placeholder.
fn sql_terms(sql: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "null",
        "is",
        "in",
        "like",
        "group",
        "order",
        "by",
        "desc",
        "asc",
        "limit",
        "as",
        "count",
        "sum",
        "case",
        "when",
        "then",
        "else",
        "end",
        "now",
        "interval",
        "day",
        "hour",
        "having",
        "distinct",
        "element",
        "at",
        "eds",
        "id",
        "eventtime",
        "event",
        "time",
        "cast",
        "double",
        "min",
        "max",
        "cross",
        "join",
        "unnest",
        "date",
        "trunc",
        "length",
        "useridentity",
        "user",
        "identity",
    ];
    terms(sql)
        .into_iter()
        .filter(|t| !KEYWORDS.contains(&t.as_str()))
        .collect()
}
