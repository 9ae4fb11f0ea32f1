//! The signature policy's settings: the keys it trusts (named PEM public
//! keys) and, optionally, the tag patterns it applies to. Checked when set
//! and read back into keys ready to verify.

use berth_meta::PullPolicyRecord;
use berth_oci::{glob_match, validate_pattern};
use berth_signature::{Mode, PublicKey, TrustedKey};
use serde::{Deserialize, Serialize};

/// The kind stored for signature policies.
pub const KIND: &str = "signature";
/// Most keys one policy trusts.
pub const MAX_KEYS: usize = 20;
/// Most tag patterns one policy has.
pub const MAX_TAG_PATTERNS: usize = 20;

/// A trusted key as set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySetting {
    /// A name people know it by (shown as the signer).
    pub name: String,
    /// The PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub public_key: String,
}

/// The settings as set and stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSettings {
    /// Keys whose signatures satisfy the policy.
    #[serde(default)]
    pub keys: Vec<KeySetting>,
    /// Tag patterns it applies to (globs); empty: every image.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl SignatureSettings {
    /// Check the settings for `mode`; the trusted keys, parsed.
    pub fn check(&self, mode: Mode) -> Result<Vec<TrustedKey>, String> {
        if self.keys.len() > MAX_KEYS {
            return Err(format!("at most {MAX_KEYS} keys"));
        }
        if mode != Mode::Off && self.keys.is_empty() {
            return Err(format!(
                "a policy in mode {} needs at least one trusted key",
                mode.as_str()
            ));
        }
        let mut keys = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            let name = k.name.trim();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err("each key needs a name of 1 to 64 characters".into());
            }
            if keys.iter().any(|t: &TrustedKey| t.name == name) {
                return Err(format!("two keys are named {name:?}"));
            }
            if k.public_key.len() > 4096 {
                return Err(format!("key {name:?}: at most 4096 characters of PEM"));
            }
            let key =
                PublicKey::from_pem(&k.public_key).map_err(|e| format!("key {name:?}: {e}"))?;
            keys.push(TrustedKey {
                name: name.to_owned(),
                key,
            });
        }
        if self.tags.len() > MAX_TAG_PATTERNS {
            return Err(format!("at most {MAX_TAG_PATTERNS} tag patterns"));
        }
        for p in &self.tags {
            validate_pattern(p).map_err(|e| format!("tags: {e}"))?;
        }
        Ok(keys)
    }
}

/// A signature policy in force.
#[derive(Debug, Clone)]
pub struct SignaturePolicy {
    /// Its id (verdicts are cached per policy).
    pub id: i64,
    /// The namespace it belongs to; `None` for the platform default.
    pub namespace: Option<String>,
    /// Its mode.
    pub mode: Mode,
    /// The settings as set.
    pub settings: SignatureSettings,
    /// The keys, parsed.
    pub keys: Vec<TrustedKey>,
    /// Who set it last.
    pub updated_by: String,
    /// When, Unix milliseconds.
    pub updated_at: i64,
}

impl SignaturePolicy {
    /// Read a stored policy; an unreadable one is reported, and enforced
    /// as trusting nothing rather than ignored.
    pub fn from_record(r: &PullPolicyRecord) -> SignaturePolicy {
        let mode = Mode::parse(&r.mode).unwrap_or(Mode::Enforce);
        let settings: SignatureSettings = serde_json::from_str(&r.settings).unwrap_or_else(|e| {
            tracing::error!(policy = r.id, error = %e, "unreadable signature policy: it trusts no key");
            SignatureSettings::default()
        });
        let keys = settings.check(Mode::Off).unwrap_or_else(|e| {
            tracing::error!(policy = r.id, error = %e, "signature policy with unusable keys: it trusts no key");
            Vec::new()
        });
        SignaturePolicy {
            id: r.id,
            namespace: r.namespace.clone(),
            mode,
            settings,
            keys,
            updated_by: r.updated_by.clone(),
            updated_at: r.updated_at,
        }
    }

    /// How the policy is named in refusals and audit entries.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("signature policy of namespace {ns}"),
            None => "platform signature policy".to_owned(),
        }
    }

    /// Whether it governs `repo`'s namespace.
    pub fn governs(&self, namespace: &str) -> bool {
        self.mode != Mode::Off && self.namespace.as_deref().is_none_or(|n| n == namespace)
    }

    /// Whether it applies to an image with these tags (all images when it
    /// names no pattern).
    pub fn applies_to(&self, tags: &[String]) -> bool {
        self.settings.tags.is_empty()
            || tags
                .iter()
                .any(|t| self.settings.tags.iter().any(|p| glob_match(p, t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7
6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==
-----END PUBLIC KEY-----";

    fn key(name: &str, pem: &str) -> KeySetting {
        KeySetting {
            name: name.into(),
            public_key: pem.into(),
        }
    }

    #[test]
    fn settings_are_checked_with_the_reason() {
        let ok = SignatureSettings {
            keys: vec![key("release", KEY)],
            tags: vec!["v*".into()],
        };
        assert_eq!(ok.check(Mode::Enforce).unwrap()[0].name, "release");
        let none = SignatureSettings::default();
        assert!(none.check(Mode::Off).is_ok());
        assert!(none
            .check(Mode::Audit)
            .unwrap_err()
            .contains("at least one"));
        let twice = SignatureSettings {
            keys: vec![key("a", KEY), key("a", KEY)],
            tags: vec![],
        };
        assert!(twice.check(Mode::Enforce).unwrap_err().contains("two keys"));
        let bad = SignatureSettings {
            keys: vec![key("a", "not a key")],
            tags: vec![],
        };
        assert!(bad.check(Mode::Enforce).unwrap_err().contains("key \"a\""));
        let pattern = SignatureSettings {
            keys: vec![key("a", KEY)],
            tags: vec!["".into()],
        };
        assert!(pattern.check(Mode::Enforce).is_err());
    }

    #[test]
    fn a_policy_governs_its_namespace_and_tags() {
        let record = |ns: Option<&str>, mode: &str, tags: &str| PullPolicyRecord {
            id: 1,
            namespace: ns.map(str::to_owned),
            kind: KIND.into(),
            mode: mode.into(),
            settings: format!(
                r#"{{"keys":[{{"name":"k","public_key":{}}}],"tags":{tags}}}"#,
                serde_json::to_string(KEY).unwrap()
            ),
            updated_by: "admin".into(),
            updated_at: 1,
        };
        let p = SignaturePolicy::from_record(&record(Some("team"), "enforce", r#"["prod-*"]"#));
        assert!(p.governs("team") && !p.governs("other"));
        assert!(p.applies_to(&["prod-1".into()]) && !p.applies_to(&["dev".into()]));
        assert!(
            !p.applies_to(&[]),
            "an untagged image is outside tag patterns"
        );
        assert_eq!(p.keys.len(), 1);
        let platform = SignaturePolicy::from_record(&record(None, "audit", "[]"));
        assert!(platform.governs("anything") && platform.applies_to(&[]));
        assert!(!SignaturePolicy::from_record(&record(None, "off", "[]")).governs("x"));
        // Unreadable: enforced, trusting nothing.
        let mut broken = record(None, "nonsense", "[]");
        broken.settings = "{".into();
        let b = SignaturePolicy::from_record(&broken);
        assert_eq!((b.mode, b.keys.len()), (Mode::Enforce, 0));
    }
}
