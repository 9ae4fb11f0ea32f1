//! Manifest parsing: OCI image manifests and indexes, Docker schema 2
//! manifests and manifest lists, and other JSON manifest media types.
//!
//! The registry stores manifests as the exact bytes it was sent; this module
//! only validates them and extracts what the registry needs to know: the
//! descriptors they reference, their subject and their artifact type.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::digest::{Digest, DigestError};

/// Well-known media types.
pub mod media_types {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// Docker image manifest, schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker schema 1 manifest (refused).
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Signed Docker schema 1 manifest (refused).
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

/// What a manifest is, as far as the registry cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest: a config and layers.
    Image,
    /// An index or manifest list: child manifests.
    Index,
    /// Any other media type: stored as sent, references checked when present.
    Other,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not valid JSON, or the wrong JSON shape.
    #[error("manifest is not valid: {0}")]
    Invalid(String),
    /// Docker schema 1.
    #[error(
        "Docker schema 1 manifests are not supported; push with a current client (schema 2 or OCI)"
    )]
    Schema1,
    /// The declared Content-Type disagrees with the manifest's mediaType.
    #[error("Content-Type {declared:?} does not match the manifest's mediaType {body:?}")]
    MediaTypeMismatch {
        /// From the request header.
        declared: String,
        /// From the body.
        body: String,
    },
    /// A descriptor has a bad digest.
    #[error("descriptor digest: {0}")]
    Digest(#[from] DigestError),
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: i64,
    /// Artifact type, when given.
    pub artifact_type: Option<String>,
    /// Annotations as JSON, when given.
    pub annotations: Option<Map<String, Value>>,
}

impl Descriptor {
    /// Layers whose content is not distributed by registries (not checked for existence).
    pub fn is_non_distributable(&self) -> bool {
        self.media_type.contains(".nondistributable.") || self.media_type.contains(".foreign.")
    }
}

#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    annotations: Option<Map<String, Value>>,
}

impl RawDescriptor {
    fn validate(self) -> Result<Descriptor, ManifestError> {
        if self.size < 0 {
            return Err(ManifestError::Invalid(format!(
                "descriptor {} has a negative size",
                self.digest
            )));
        }
        Ok(Descriptor {
            media_type: self.media_type,
            digest: Digest::parse(&self.digest)?,
            size: self.size,
            artifact_type: self.artifact_type,
            annotations: self.annotations,
        })
    }
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    /// The effective media type (the body's `mediaType`, else the declared Content-Type).
    pub media_type: String,
    /// Image, index or other.
    pub kind: ManifestKind,
    /// Config descriptor of an image manifest.
    pub config: Option<Descriptor>,
    /// Layers (blobs) an image manifest references.
    pub layers: Vec<Descriptor>,
    /// Child manifests an index references.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to (referrers API).
    pub subject: Option<Descriptor>,
    /// The artifact type for the referrers API: `artifactType`, else the config media type.
    pub artifact_type: Option<String>,
    /// Top-level annotations.
    pub annotations: Option<Map<String, Value>>,
}

impl ParsedManifest {
    /// Blobs this manifest needs (config and layers).
    pub fn blob_references(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter())
    }
}

/// RFC 6838 `type/subtype`: restricted names of 1 to 127 characters.
pub fn is_valid_media_type(s: &str) -> bool {
    let name = |n: &str| {
        let b = n.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|&c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&c))
    };
    matches!(s.split_once('/'), Some((t, sub)) if name(t) && name(sub))
}

/// Whether `s` may be a manifest's media type: JSON, `application/…+json`
/// (the OCI and Docker manifest and index types among them). Nothing a
/// browser renders or runs (`text/*`, HTML, XML, SVG, JavaScript) is ever
/// stored as one, since a manifest is served with its media type as
/// `Content-Type`.
pub fn is_manifest_media_type(s: &str) -> bool {
    is_valid_media_type(s)
        && s.split_once('/').is_some_and(|(t, sub)| {
            t.eq_ignore_ascii_case("application")
                && sub.len() > "+json".len()
                && sub[sub.len() - 5..].eq_ignore_ascii_case("+json")
        })
}

fn strip_params(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn descriptor(v: &Value, what: &str) -> Result<Descriptor, ManifestError> {
    let raw: RawDescriptor = serde_json::from_value(v.clone())
        .map_err(|e| ManifestError::Invalid(format!("{what}: {e}")))?;
    raw.validate()
}

fn descriptors(obj: &Map<String, Value>, key: &str) -> Result<Vec<Descriptor>, ManifestError> {
    // An explicit null is not an empty list: clients such as containerd
    // refuse such manifests at pull time, so they are refused at push.
    match obj.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Null) => Err(ManifestError::Invalid(format!(
            "{key} must be an array, not null"
        ))),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| descriptor(v, &format!("{key}[{i}]")))
            .collect(),
        Some(_) => Err(ManifestError::Invalid(format!("{key} must be an array"))),
    }
}

/// Parse and validate manifest bytes sent with the given Content-Type.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, ManifestError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(ManifestError::Invalid(
            "a manifest must be a JSON object".into(),
        ));
    };
    let declared = content_type.map(strip_params).filter(|s| !s.is_empty());
    if matches!(
        declared,
        Some(media_types::DOCKER_SCHEMA1 | media_types::DOCKER_SCHEMA1_SIGNED)
    ) || field(&obj, "schemaVersion").and_then(Value::as_i64) == Some(1)
    {
        return Err(ManifestError::Schema1);
    }
    let body_type = match field(&obj, "mediaType") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(ManifestError::Invalid("mediaType must be a string".into())),
    };
    if let (Some(d), Some(b)) = (declared, body_type) {
        if d != b {
            return Err(ManifestError::MediaTypeMismatch {
                declared: d.to_owned(),
                body: b.to_owned(),
            });
        }
    }
    let media_type = match body_type.or(declared) {
        Some(t) => t.to_owned(),
        None if obj.contains_key("manifests") => media_types::OCI_INDEX.to_owned(),
        None if obj.contains_key("config") => media_types::OCI_MANIFEST.to_owned(),
        None => {
            return Err(ManifestError::Invalid(
                "no media type: send a Content-Type or a mediaType field".into(),
            ))
        }
    };
    if !is_valid_media_type(&media_type) {
        return Err(ManifestError::Invalid(format!(
            "{media_type:?} is not a valid media type"
        )));
    }
    if !is_manifest_media_type(&media_type) {
        return Err(ManifestError::Invalid(format!(
            "{media_type:?} is not a manifest media type: manifests are JSON, application/…+json"
        )));
    }
    let kind = match media_type.as_str() {
        media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST => ManifestKind::Image,
        media_types::OCI_INDEX | media_types::DOCKER_LIST => ManifestKind::Index,
        media_types::DOCKER_SCHEMA1 | media_types::DOCKER_SCHEMA1_SIGNED => {
            return Err(ManifestError::Schema1)
        }
        _ => ManifestKind::Other,
    };
    if kind != ManifestKind::Other
        && field(&obj, "schemaVersion").and_then(Value::as_i64) != Some(2)
    {
        return Err(ManifestError::Invalid("schemaVersion must be 2".into()));
    }
    let config = field(&obj, "config")
        .map(|v| descriptor(v, "config"))
        .transpose()?;
    let layers = descriptors(&obj, "layers")?;
    let manifests = descriptors(&obj, "manifests")?;
    match kind {
        ManifestKind::Image if config.is_none() => {
            return Err(ManifestError::Invalid(
                "an image manifest needs a config".into(),
            ))
        }
        ManifestKind::Image
            if media_type == media_types::DOCKER_MANIFEST && !obj.contains_key("layers") =>
        {
            return Err(ManifestError::Invalid("layers is required".into()));
        }
        ManifestKind::Index if !obj.contains_key("manifests") => {
            return Err(ManifestError::Invalid(
                "an index needs a manifests array".into(),
            ))
        }
        _ => {}
    }
    let subject = field(&obj, "subject")
        .map(|v| descriptor(v, "subject"))
        .transpose()?;
    let artifact_type = match field(&obj, "artifactType") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ManifestError::Invalid(
                "artifactType must be a string".into(),
            ))
        }
        None if kind == ManifestKind::Image => config.as_ref().map(|c| c.media_type.clone()),
        None => None,
    };
    let annotations = match field(&obj, "annotations") {
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => {
            return Err(ManifestError::Invalid(
                "annotations must be an object".into(),
            ))
        }
        None => None,
    };
    Ok(ParsedManifest {
        media_type,
        kind,
        config,
        layers,
        manifests,
        subject,
        artifact_type,
        annotations,
    })
}

impl ParsedManifest {
    /// Parse and validate manifest bytes (see [`parse`]).
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        parse(bytes, content_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    #[test]
    fn oci_image_manifest() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":3}}],"subject":{{"mediaType":"{}","digest":"{}","size":9}},"annotations":{{"a":"b"}}}}"#,
            media_types::OCI_MANIFEST,
            d('a'),
            d('b'),
            media_types::OCI_MANIFEST,
            d('c')
        );
        let m =
            ParsedManifest::parse(body.as_bytes(), Some(media_types::OCI_MANIFEST)).expect("ok");
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.blob_references().count(), 2);
        assert_eq!(
            m.subject.as_ref().map(|s| s.digest.to_string()),
            Some(d('c'))
        );
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn index_without_content_type_is_detected() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{}","size":5}}]}}"#,
            media_types::OCI_MANIFEST,
            d('a')
        );
        let m = ParsedManifest::parse(body.as_bytes(), None).expect("ok");
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(m.media_type, media_types::OCI_INDEX);
        assert_eq!(m.manifests.len(), 1);
    }

    #[test]
    fn media_type_grammar() {
        for ok in [
            media_types::OCI_MANIFEST,
            "application/vnd.example+json",
            "a/b",
        ] {
            assert!(is_valid_media_type(ok), "{ok}");
        }
        for bad in ["", "a", "a/", "/b", "a/b/c", "a b/c", "a/b\n", "a/b;x=y"] {
            assert!(!is_valid_media_type(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_json_types_are_manifest_types() {
        for ok in [
            media_types::OCI_MANIFEST,
            media_types::OCI_INDEX,
            media_types::DOCKER_MANIFEST,
            media_types::DOCKER_LIST,
            "application/vnd.example.artifact+json",
            "Application/VND.Example+JSON",
        ] {
            assert!(is_manifest_media_type(ok), "{ok}");
        }
        for bad in [
            "text/html",
            "text/plain+json",
            "application/xhtml+xml",
            "image/svg+xml",
            "application/javascript",
            "text/javascript",
            "application/json",
            "application/+json",
            "application/xml",
            "application/octet-stream",
        ] {
            assert!(!is_manifest_media_type(bad), "{bad}");
        }
        // A body that says it is HTML, with or without a Content-Type.
        let html = r#"{"mediaType":"text/html","schemaVersion":2,"x":"<script>alert(1)</script>"}"#;
        for ct in [None, Some("text/html")] {
            assert!(
                matches!(
                    ParsedManifest::parse(html.as_bytes(), ct),
                    Err(ManifestError::Invalid(_))
                ),
                "{ct:?}"
            );
        }
        assert!(
            ParsedManifest::parse(b"{\"schemaVersion\":2}", Some("text/html; charset=utf-8"))
                .is_err()
        );
    }

    #[test]
    fn refusals() {
        let cases: Vec<(String, Option<&str>)> = vec![
            ("not json".into(), Some(media_types::OCI_MANIFEST)),
            ("[]".into(), Some(media_types::OCI_MANIFEST)),
            (r#"{"schemaVersion":1,"name":"x"}"#.into(), None),
            (
                r#"{"schemaVersion":2}"#.into(),
                Some(media_types::DOCKER_SCHEMA1_SIGNED),
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
                    media_types::OCI_INDEX
                ),
                Some(media_types::OCI_MANIFEST),
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{}","layers":[]}}"#,
                    media_types::OCI_MANIFEST
                ),
                None,
            ),
            (
                r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:bad","size":1},"layers":[]}"#.to_string(),
                Some(media_types::OCI_MANIFEST),
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{}","size":-1}},"layers":[]}}"#,
                    d('a')
                ),
                Some(media_types::OCI_MANIFEST),
            ),
            (
                format!(
                    r#"{{"schemaVersion":3,"config":{{"mediaType":"x","digest":"{}","size":1}},"layers":[]}}"#,
                    d('a')
                ),
                Some(media_types::OCI_MANIFEST),
            ),
            (r#"{"schemaVersion":2}"#.into(), None),
            (
                r#"{"schemaVersion":2,"mediaType":"application/x\nInjected: 1"}"#.into(),
                None,
            ),
            (r#"{"schemaVersion":2,"mediaType":"noslash"}"#.into(), None),
            // Null where an array belongs is not an empty list.
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{}","manifests":null}}"#,
                    media_types::OCI_INDEX
                ),
                None,
            ),
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"x","digest":"{}","size":1}},"layers":null}}"#,
                    media_types::OCI_MANIFEST,
                    d('a')
                ),
                None,
            ),
        ];
        for (body, ct) in cases {
            assert!(
                ParsedManifest::parse(body.as_bytes(), ct).is_err(),
                "{body} should fail"
            );
        }
    }
}
