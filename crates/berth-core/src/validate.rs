//! Checks of free-form input shared by the directory and management:
//! labels and bounded text.

use crate::error::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

/// Label keys: 1 to 63 of `[A-Za-z0-9._/-]`, starting with a letter or
/// digit. Values: up to 128 printable characters without quotes or
/// backslashes. At most 20 labels.
pub fn check_labels(labels: &[(String, String)]) -> Result<()> {
    if labels.len() > 20 {
        return Err(DirectoryError::Invalid(
            "at most 20 labels per namespace".into(),
        ));
    }
    for (k, v) in labels {
        let kb = k.as_bytes();
        let key_ok = (1..=63).contains(&kb.len())
            && kb[0].is_ascii_alphanumeric()
            && kb
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._/-".contains(c));
        if !key_ok {
            return Err(DirectoryError::Invalid(format!(
                "invalid label key {k:?}: 1 to 63 letters, digits, '.', '_', '/' or '-', starting with a letter or digit"
            )));
        }
        let value_ok =
            v.chars().count() <= 128 && v.chars().all(|c| !c.is_control() && c != '"' && c != '\\');
        if !value_ok {
            return Err(DirectoryError::Invalid(format!(
                "invalid value for label {k}: up to 128 characters, no quotes, backslashes or control characters"
            )));
        }
    }
    let mut keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(DirectoryError::Invalid("label keys must be unique".into()));
    }
    Ok(())
}

/// Labels as the stored JSON object.
pub(crate) fn labels_json(labels: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Stored labels as pairs (sorted by key).
pub fn parse_labels(json: &str) -> Vec<(String, String)> {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json) {
        Ok(map) => map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub(crate) fn check_text(what: &str, s: &str, max: usize) -> Result<()> {
    if s.chars().count() > max || s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(DirectoryError::Invalid(format!(
            "{what}: at most {max} characters, no control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked() {
        let ok = vec![("team".to_owned(), "web ops".to_owned())];
        assert!(check_labels(&ok).is_ok());
        for bad in [
            ("".to_owned(), "x".to_owned()),
            ("-x".to_owned(), "x".to_owned()),
            ("k".to_owned(), "a\"b".to_owned()),
            ("k".to_owned(), "a\\b".to_owned()),
            ("k".to_owned(), "x".repeat(129)),
        ] {
            assert!(check_labels(std::slice::from_ref(&bad)).is_err(), "{bad:?}");
        }
        let dup = vec![
            ("a".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ];
        assert!(check_labels(&dup).is_err());
        assert_eq!(parse_labels(&labels_json(&ok)), ok);
    }
}
