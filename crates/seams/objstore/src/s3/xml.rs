//! The two S3 XML documents bucket administration reads: error bodies and
//! ListBuckets pages. Elements are matched by local name, ignoring namespaces.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Calls `on_element(path, text)` for every element as it closes, with the
/// local names from the root down to it and its unescaped text.
fn walk_elements(xml: &str, mut on_element: impl FnMut(&[String], &str)) -> Result<(), String> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("malformed XML: {e}"))?
        {
            Event::Start(start) => {
                path.push(String::from_utf8_lossy(start.local_name().as_ref()).into_owned());
                texts.push(String::new());
            }
            Event::Empty(empty) => {
                path.push(String::from_utf8_lossy(empty.local_name().as_ref()).into_owned());
                on_element(&path, "");
                path.pop();
            }
            Event::Text(text) => {
                let text = text
                    .unescape()
                    .map_err(|e| format!("malformed XML text: {e}"))?;
                if let Some(current) = texts.last_mut() {
                    current.push_str(&text);
                }
            }
            Event::CData(data) => {
                if let Some(current) = texts.last_mut() {
                    current.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::End(_) => {
                let text = texts.pop().unwrap_or_default();
                on_element(&path, &text);
                path.pop();
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

fn is_path(path: &[String], expected: &[&str]) -> bool {
    path.len() == expected.len() && path.iter().zip(expected).all(|(a, b)| a == b)
}

/// `<Error><Code>..</Code><Message>..</Message></Error>`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct S3ErrorBody {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// Reads an S3 error body; anything unreadable gives empty code and message.
pub(crate) fn parse_error(xml: &str) -> S3ErrorBody {
    let mut body = S3ErrorBody::default();
    let parsed = walk_elements(xml, |path, text| {
        if is_path(path, &["Error", "Code"]) {
            body.code = text.trim().to_owned();
        } else if is_path(path, &["Error", "Message"]) {
            body.message = text.trim().to_owned();
        }
    });
    match parsed {
        Ok(()) => body,
        Err(_) => S3ErrorBody::default(),
    }
}

/// One ListBuckets page: the names and the token of the next page, if any.
pub(crate) fn parse_list_buckets(xml: &str) -> Result<(Vec<String>, Option<String>), String> {
    let mut names = Vec::new();
    let mut token = None;
    walk_elements(xml, |path, text| {
        if is_path(
            path,
            &["ListAllMyBucketsResult", "Buckets", "Bucket", "Name"],
        ) {
            names.push(text.to_owned());
        } else if is_path(path, &["ListAllMyBucketsResult", "ContinuationToken"])
            && !text.is_empty()
        {
            token = Some(text.to_owned());
        }
    })?;
    Ok((names, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_error() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>x</BucketName></Error>"#;
        assert_eq!(
            parse_error(xml),
            S3ErrorBody {
                code: "NoSuchBucket".into(),
                message: "The specified bucket does not exist".into()
            }
        );
        assert_eq!(parse_error("not xml <"), S3ErrorBody::default());
        assert_eq!(parse_error(""), S3ErrorBody::default());
    }

    #[test]
    fn reads_bucket_names() {
        let xml = r#"<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>1</ID></Owner>
<Buckets><Bucket><Name>alpha</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket>
<Bucket><Name>beta</Name></Bucket></Buckets><ContinuationToken>t1</ContinuationToken></ListAllMyBucketsResult>"#;
        assert_eq!(
            parse_list_buckets(xml).unwrap(),
            (
                vec!["alpha".to_owned(), "beta".to_owned()],
                Some("t1".to_owned())
            )
        );
    }
}
