//! The signature policy's settings: what it trusts (named PEM public keys,
//! keyless authorities with their identities) and, optionally, the tag
//! patterns it applies to. Checked when set and read back into trust
//! material ready to verify.

use berth_meta::PullPolicyRecord;
use berth_oci::{glob_match, validate_pattern};
use berth_signature::notation::{TrustStore, TrustedIdentity};
use berth_signature::sigstore::{certificates_from_pem, Authority, IdentityRule, Match};
use berth_signature::{Mode, PublicKey, Trust, TrustedKey};
use serde::{Deserialize, Serialize};

/// The kind stored for signature policies.
pub const KIND: &str = "signature";
/// Most keys one policy trusts.
pub const MAX_KEYS: usize = 20;
/// Most tag patterns one policy has.
pub const MAX_TAG_PATTERNS: usize = 20;
/// Most keyless authorities one policy trusts.
pub const MAX_AUTHORITIES: usize = 8;
/// Most identities one keyless authority accepts.
pub const MAX_IDENTITIES: usize = 50;

/// A trusted key as set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySetting {
    /// A name people know it by (shown as the signer).
    pub name: String,
    /// The PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub public_key: String,
}

/// A keyless authority as set: a Fulcio-style CA, a Rekor-style log,
/// and the identities it accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeylessSetting {
    /// A name people know it by.
    pub name: String,
    /// The CA's root (and any intermediate) certificates, PEM.
    pub certificates: String,
    /// The transparency log's public keys, PEM.
    pub log_keys: Vec<String>,
    /// Signers accepted (at least one).
    pub identities: Vec<IdentitySetting>,
}

/// An accepted signer: the OIDC issuer and the subject (e-mail or URI),
/// each exact or a glob pattern (`*`, `?`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySetting {
    /// The issuer, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Or a pattern of issuers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_pattern: Option<String>,
    /// The signer, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Or a pattern of signers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_pattern: Option<String>,
}

impl IdentitySetting {
    fn rule(&self) -> Result<IdentityRule, String> {
        fn one(
            what: &str,
            exact: &Option<String>,
            pattern: &Option<String>,
        ) -> Result<Match, String> {
            let m = match (exact, pattern) {
                (Some(e), None) => Match::Exact(e.clone()),
                (None, Some(p)) => Match::Pattern(p.clone()),
                _ => {
                    return Err(format!(
                        "each identity needs exactly one of {what} and {what}_pattern"
                    ))
                }
            };
            let (Match::Exact(v) | Match::Pattern(v)) = &m;
            if v.trim().is_empty() || v.len() > 512 || v.chars().any(char::is_control) {
                return Err(format!("an identity's {what} must be 1 to 512 characters"));
            }
            if matches!(&m, Match::Pattern(p) if p.chars().all(|c| c == '*' || c == '?')) {
                return Err(format!(
                    "an identity's {what}_pattern must name something (not only wildcards)"
                ));
            }
            Ok(m)
        }
        Ok(IdentityRule {
            issuer: one("issuer", &self.issuer, &self.issuer_pattern)?,
            subject: one("subject", &self.subject, &self.subject_pattern)?,
        })
    }
}

impl KeylessSetting {
    fn authority(&self) -> Result<Authority, String> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err("each keyless authority needs a name of 1 to 64 characters".into());
        }
        if self.certificates.len() > 64 * 1024 {
            return Err(format!(
                "authority {name:?}: at most 64 KiB of certificates"
            ));
        }
        let certificates = certificates_from_pem(&self.certificates)
            .map_err(|e| format!("authority {name:?}: certificates: {e}"))?;
        if self.log_keys.is_empty() || self.log_keys.len() > 8 {
            return Err(format!(
                "authority {name:?}: 1 to 8 transparency-log keys (Berth checks keyless signatures against the log offline)"
            ));
        }
        let log_keys = self
            .log_keys
            .iter()
            .map(|k| {
                PublicKey::from_pem(k).map_err(|e| format!("authority {name:?}: log key: {e}"))
            })
            .collect::<Result<_, _>>()?;
        if self.identities.is_empty() || self.identities.len() > MAX_IDENTITIES {
            return Err(format!(
                "authority {name:?}: 1 to {MAX_IDENTITIES} identities (anyone can get a certificate: say whose signatures count)"
            ));
        }
        let identities = self
            .identities
            .iter()
            .map(|i| i.rule().map_err(|e| format!("authority {name:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Authority {
            name: name.to_owned(),
            certificates,
            log_keys,
            identities,
        })
    }
}

/// A Notation trust store with its trust-policy statement: the CA
/// certificates, the trusted identities (`x509.subject: C=…, ST=…, O=…`
/// or `*`) and the repositories it speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotationSetting {
    /// A name people know it by.
    pub name: String,
    /// CA certificates (or a self-signed signing certificate), PEM.
    pub certificates: String,
    /// Signers accepted.
    pub trusted_identities: Vec<String>,
    /// Repositories it speaks for: patterns of repository names (`*` all).
    pub registry_scopes: Vec<String>,
}

impl NotationSetting {
    fn store(&self) -> Result<TrustStore, String> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err("each Notation trust store needs a name of 1 to 64 characters".into());
        }
        if self.certificates.len() > 64 * 1024 {
            return Err(format!(
                "trust store {name:?}: at most 64 KiB of certificates"
            ));
        }
        let certificates = certificates_from_pem(&self.certificates)
            .map_err(|e| format!("trust store {name:?}: certificates: {e}"))?;
        if self.trusted_identities.is_empty() || self.trusted_identities.len() > MAX_IDENTITIES {
            return Err(format!(
                "trust store {name:?}: 1 to {MAX_IDENTITIES} trusted identities (`*` for anyone its certificates vouch for)"
            ));
        }
        let identities = self
            .trusted_identities
            .iter()
            .map(|i| TrustedIdentity::parse(i).map_err(|e| format!("trust store {name:?}: {e}")))
            .collect::<Result<_, _>>()?;
        if self.registry_scopes.is_empty() || self.registry_scopes.len() > MAX_TAG_PATTERNS {
            return Err(format!(
                "trust store {name:?}: 1 to {MAX_TAG_PATTERNS} registry scopes (repository patterns; `*` for all)"
            ));
        }
        for p in &self.registry_scopes {
            validate_pattern(p)
                .map_err(|e| format!("trust store {name:?}: registry scopes: {e}"))?;
        }
        Ok(TrustStore {
            name: name.to_owned(),
            certificates,
            identities,
            scopes: self.registry_scopes.clone(),
        })
    }
}

/// The settings as set and stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSettings {
    /// Keys whose signatures satisfy the policy.
    #[serde(default)]
    pub keys: Vec<KeySetting>,
    /// Keyless authorities whose signatures satisfy the policy.
    #[serde(default)]
    pub keyless: Vec<KeylessSetting>,
    /// Notation trust stores whose signatures satisfy the policy.
    #[serde(default)]
    pub notation: Vec<NotationSetting>,
    /// Tag patterns it applies to (globs); empty: every image.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl SignatureSettings {
    /// Check the settings for `mode`; what they trust, parsed.
    pub fn check(&self, mode: Mode) -> Result<Trust, String> {
        if self.keys.len() > MAX_KEYS {
            return Err(format!("at most {MAX_KEYS} keys"));
        }
        if self.keyless.len() > MAX_AUTHORITIES {
            return Err(format!("at most {MAX_AUTHORITIES} keyless authorities"));
        }
        if self.notation.len() > MAX_AUTHORITIES {
            return Err(format!("at most {MAX_AUTHORITIES} Notation trust stores"));
        }
        if mode != Mode::Off
            && self.keys.is_empty()
            && self.keyless.is_empty()
            && self.notation.is_empty()
        {
            return Err(format!(
                "a policy in mode {} needs at least one trusted key, keyless authority or Notation trust store",
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
        let mut authorities: Vec<Authority> = Vec::with_capacity(self.keyless.len());
        for k in &self.keyless {
            let a = k.authority()?;
            if authorities.iter().any(|b| b.name == a.name) || keys.iter().any(|t| t.name == a.name)
            {
                return Err(format!("two trusted signers are named {:?}", a.name));
            }
            authorities.push(a);
        }
        let mut stores: Vec<TrustStore> = Vec::with_capacity(self.notation.len());
        for n in &self.notation {
            let st = n.store()?;
            if stores.iter().any(|b| b.name == st.name)
                || authorities.iter().any(|a| a.name == st.name)
                || keys.iter().any(|t| t.name == st.name)
            {
                return Err(format!("two trusted signers are named {:?}", st.name));
            }
            stores.push(st);
        }
        Ok(Trust {
            keys,
            authorities,
            stores,
        })
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
    /// What it trusts, parsed.
    pub trust: Trust,
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
        let trust = settings.check(Mode::Off).unwrap_or_else(|e| {
            tracing::error!(policy = r.id, error = %e, "signature policy with unusable trust material: it trusts nothing");
            Trust::default()
        });
        SignaturePolicy {
            id: r.id,
            namespace: r.namespace.clone(),
            mode,
            settings,
            trust,
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
            ..Default::default()
        };
        assert_eq!(ok.check(Mode::Enforce).unwrap().keys[0].name, "release");
        let none = SignatureSettings::default();
        assert!(none.check(Mode::Off).is_ok());
        assert!(none
            .check(Mode::Audit)
            .unwrap_err()
            .contains("at least one"));
        let twice = SignatureSettings {
            keys: vec![key("a", KEY), key("a", KEY)],
            ..Default::default()
        };
        assert!(twice.check(Mode::Enforce).unwrap_err().contains("two keys"));
        let bad = SignatureSettings {
            keys: vec![key("a", "not a key")],
            ..Default::default()
        };
        assert!(bad.check(Mode::Enforce).unwrap_err().contains("key \"a\""));
        let pattern = SignatureSettings {
            keys: vec![key("a", KEY)],
            tags: vec!["".into()],
            ..Default::default()
        };
        assert!(pattern.check(Mode::Enforce).is_err());
    }

    #[test]
    fn keyless_authorities_need_a_root_a_log_and_identities() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../../berth-signature/testdata/sigstore/valid.json"
        ))
        .unwrap();
        let identity = IdentitySetting {
            issuer: Some("https://token.actions.githubusercontent.com".into()),
            subject_pattern: Some("https://github.com/acme/*".into()),
            ..Default::default()
        };
        let authority = KeylessSetting {
            name: "ci".into(),
            certificates: v["root_pem"].as_str().unwrap().into(),
            log_keys: vec![v["log_key_pem"].as_str().unwrap().into()],
            identities: vec![identity.clone()],
        };
        let settings = |a: KeylessSetting| SignatureSettings {
            keyless: vec![a],
            ..Default::default()
        };
        let trust = settings(authority.clone()).check(Mode::Enforce).unwrap();
        assert_eq!(trust.authorities[0].name, "ci");
        assert!(trust.keys.is_empty());
        let err = |a: KeylessSetting| settings(a).check(Mode::Enforce).unwrap_err();
        assert!(err(KeylessSetting {
            identities: vec![],
            ..authority.clone()
        })
        .contains("identities"));
        assert!(err(KeylessSetting {
            log_keys: vec![],
            ..authority.clone()
        })
        .contains("log keys"));
        assert!(err(KeylessSetting {
            certificates: KEY.into(),
            ..authority.clone()
        })
        .contains("certificates"));
        let both = IdentitySetting {
            subject: Some("x".into()),
            ..identity.clone()
        };
        assert!(err(KeylessSetting {
            identities: vec![both],
            ..authority.clone()
        })
        .contains("exactly one"));
        let anyone = IdentitySetting {
            subject_pattern: Some("*".into()),
            ..identity
        };
        assert!(err(KeylessSetting {
            identities: vec![anyone],
            ..authority.clone()
        })
        .contains("only wildcards"));
        let clash = SignatureSettings {
            keys: vec![key("ci", KEY)],
            keyless: vec![authority],
            ..Default::default()
        };
        assert!(clash
            .check(Mode::Enforce)
            .unwrap_err()
            .contains("two trusted signers"));
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
        assert_eq!(p.trust.keys.len(), 1);
        let platform = SignaturePolicy::from_record(&record(None, "audit", "[]"));
        assert!(platform.governs("anything") && platform.applies_to(&[]));
        assert!(!SignaturePolicy::from_record(&record(None, "off", "[]")).governs("x"));
        // Unreadable: enforced, trusting nothing.
        let mut broken = record(None, "nonsense", "[]");
        broken.settings = "{".into();
        let b = SignaturePolicy::from_record(&broken);
        assert_eq!((b.mode, b.trust.is_empty()), (Mode::Enforce, true));
    }
}
