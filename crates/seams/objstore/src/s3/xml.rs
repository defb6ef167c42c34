//! The two S3 XML documents bucket administration reads: error bodies and
//! ListBuckets pages. Elements are matched by local name, ignoring namespaces.

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;

/// Calls `on_element(path, text)` for every element as it closes, with the
/// local names from the root down to it and its text, entity and character
/// references decoded.
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
            // Since quick-xml 0.38 a text event stops at `&`: each reference
            // (`&amp;`, `&#38;`) arrives as its own event, decoded here.
            Event::Text(text) => {
                let text = text
                    .xml10_content()
                    .map_err(|e| format!("malformed XML text: {e}"))?;
                if let Some(current) = texts.last_mut() {
                    current.push_str(&text);
                }
            }
            Event::GeneralRef(reference) => {
                let decoded = decode_reference(&reference)?;
                if let Some(current) = texts.last_mut() {
                    current.push(decoded);
                }
            }
            Event::CData(data) => {
                let data = data
                    .xml10_content()
                    .map_err(|e| format!("malformed XML CDATA: {e}"))?;
                if let Some(current) = texts.last_mut() {
                    current.push_str(&data);
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

/// The character a reference stands for: a character reference (`&#38;`,
/// `&#x26;`) or one of XML's five predefined entities, each one character
/// (S3 declares no others).
fn decode_reference(reference: &BytesRef<'_>) -> Result<char, String> {
    let name = reference
        .decode()
        .map_err(|e| format!("malformed XML reference: {e}"))?;
    if let Some(ch) = reference
        .resolve_char_ref()
        .map_err(|e| format!("malformed XML character reference &{name};: {e}"))?
    {
        return Ok(ch);
    }
    resolve_xml_entity(&name)
        .and_then(|text| text.chars().next())
        .ok_or_else(|| format!("malformed XML: unknown entity &{name};"))
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

    /// quick-xml (0.38 on) hands entity and character references over as
    /// separate events; messages and tokens must still come out decoded.
    #[test]
    fn decodes_references_in_an_error_message() {
        let xml = "<Error><Code>InvalidArgument</Code><Message>key &quot;a&amp;b&lt;c&gt;&apos;d&apos;&quot; \
                   has &#233;&#x20AC; and <![CDATA[raw &amp;]]></Message></Error>";
        assert_eq!(
            parse_error(xml),
            S3ErrorBody {
                code: "InvalidArgument".into(),
                message: "key \"a&b<c>'d'\" has \u{e9}\u{20ac} and raw &amp;".into()
            }
        );
    }

    #[test]
    fn an_unknown_entity_or_a_bad_character_reference_is_malformed() {
        let unknown = "<Error><Code>X</Code><Message>a &nbsp; b</Message></Error>";
        assert_eq!(parse_error(unknown), S3ErrorBody::default());
        let error = parse_list_buckets(
            "<ListAllMyBucketsResult><ContinuationToken>&#0;</ContinuationToken></ListAllMyBucketsResult>",
        )
        .unwrap_err();
        assert!(error.contains("&#0;"), "{error}");
        let error = parse_list_buckets("<ListAllMyBucketsResult>&bogus;</ListAllMyBucketsResult>")
            .unwrap_err();
        assert!(error.contains("&bogus;"), "{error}");
    }

    #[test]
    fn decodes_references_in_a_continuation_token() {
        let xml = r#"<ListAllMyBucketsResult><Buckets><Bucket><Name>logs</Name></Bucket></Buckets>
<ContinuationToken>a+b/c&#61;&amp;d</ContinuationToken></ListAllMyBucketsResult>"#;
        assert_eq!(
            parse_list_buckets(xml).unwrap(),
            (vec!["logs".to_owned()], Some("a+b/c=&d".to_owned()))
        );
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
