//! User metadata rules shared by both stores, so they accept and return the
//! same things: names become lower-case, pairs are sorted by name.

use crate::StoreError;

fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Validates and normalises user metadata for storage.
pub(crate) fn normalize(
    metadata: &[(String, String)],
) -> Result<Vec<(String, String)>, StoreError> {
    let mut normalized = Vec::with_capacity(metadata.len());
    for (name, value) in metadata {
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(StoreError::Other(format!("invalid metadata name {name:?}")));
        }
        if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) || value.trim() != value {
            return Err(StoreError::Other(format!(
                "invalid value for metadata {name}: only printable ASCII without surrounding spaces"
            )));
        }
        normalized.push((name.to_ascii_lowercase(), value.clone()));
    }
    normalized.sort();
    if let Some(pair) = normalized.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(StoreError::Other(format!(
            "metadata {} given twice",
            pair[0].0
        )));
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lowercases_and_sorts() {
        let got = normalize(&pairs(&[
            ("Signature-Algorithm", "SHA256withRSA"),
            ("signature", "ab"),
        ]))
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("signature", "ab"),
                ("signature-algorithm", "SHA256withRSA")
            ])
        );
    }

    #[test]
    fn rejects_what_http_headers_cannot_carry() {
        assert!(normalize(&pairs(&[("bad name", "v")])).is_err());
        assert!(normalize(&pairs(&[("", "v")])).is_err());
        assert!(normalize(&pairs(&[("n", "line\nbreak")])).is_err());
        assert!(normalize(&pairs(&[("n", "ü")])).is_err());
        assert!(normalize(&pairs(&[("n", " padded")])).is_err());
        assert!(normalize(&pairs(&[("a", "1"), ("A", "2")])).is_err());
    }
}
